//! Request handling: parse the payload, apply it to the tree (or a
//! transaction's copy), produce the reply payload or an xsd_errors name.

use xen_proto::iface::DomId;
use xenstore_wire::{path, Message, MsgType, Permission, XsError};

use super::tree::{Change, Tree};
use super::{home, Txn, Watch, Xenstored};

type Reply = Result<Vec<u8>, XsError>;

const OK: &[u8] = b"OK\0";

/// Splits a payload into its NUL-terminated strings (a trailing
/// unterminated piece is kept: a write's value has no NUL).
fn fields(payload: &[u8]) -> Vec<&[u8]> {
    let body = payload.strip_suffix(&[0]).unwrap_or(payload);
    body.split(|&b| b == 0).collect()
}

fn text(b: &[u8]) -> Result<&str, XsError> {
    std::str::from_utf8(b).map_err(|_| XsError::Einval)
}

/// Validates a path argument and makes it absolute.
fn abs_path(domid: DomId, raw: &[u8]) -> Result<String, XsError> {
    let p = text(raw)?;
    path::validate(p).map_err(|_| XsError::Einval)?;
    if p.starts_with('/') {
        Ok(p.to_string())
    } else {
        Ok(format!("{}/{p}", home(domid)))
    }
}

/// The first NUL-terminated field as an absolute path.
fn path_arg(domid: DomId, payload: &[u8]) -> Result<String, XsError> {
    let raw = payload.split(|&b| b == 0).next().unwrap_or_default();
    abs_path(domid, raw)
}

impl Xenstored {
    /// Handles one request; `events_after` gets watch registrations
    /// whose initial event must follow the reply.
    pub(super) fn handle(&mut self, domid: DomId, m: &Message, events_after: &mut Vec<usize>) -> Reply {
        let tx = m.tx_id();
        let p = &m.payload;
        match m.msg_type() {
            MsgType::Read => {
                let path = path_arg(domid, p)?;
                self.with_tree(domid, tx, |t| Ok(t.readable(domid, &path)?.value.clone()))
            }
            MsgType::Directory => {
                let path = path_arg(domid, p)?;
                self.with_tree(domid, tx, |t| {
                    t.readable(domid, &path)?;
                    let mut out = Vec::new();
                    for c in t.children(&path) {
                        out.extend_from_slice(c.as_bytes());
                        out.push(0);
                    }
                    Ok(out)
                })
            }
            MsgType::GetPerms => {
                let path = path_arg(domid, p)?;
                self.with_tree(domid, tx, |t| {
                    let mut out = Vec::new();
                    for perm in &t.readable(domid, &path)?.perms {
                        perm.encode_into(&mut out);
                        out.push(0);
                    }
                    Ok(out)
                })
            }
            MsgType::Write => {
                let nul = p.iter().position(|&b| b == 0).ok_or(XsError::Einval)?;
                let path = abs_path(domid, &p[..nul])?;
                let value = &p[nul + 1..];
                self.modify(domid, tx, |t| t.write(domid, &path, value).map(|c| (Some(c), false)))
            }
            MsgType::Mkdir => {
                let path = path_arg(domid, p)?;
                self.modify(domid, tx, |t| t.mkdir(domid, &path).map(|c| (c, false)))
            }
            MsgType::Rm => {
                let path = path_arg(domid, p)?;
                self.modify(domid, tx, |t| t.rm(domid, &path).map(|c| (c, true)))
            }
            MsgType::SetPerms => {
                let f = fields(p);
                let path = abs_path(domid, f.first().copied().unwrap_or_default())?;
                let perms = f
                    .get(1..)
                    .unwrap_or_default()
                    .iter()
                    .map(|s| Permission::parse(s).map_err(|_| XsError::Einval))
                    .collect::<Result<Vec<_>, _>>()?;
                if perms.is_empty() {
                    return Err(XsError::Einval);
                }
                self.modify(domid, tx, |t| t.set_perms(domid, &path, perms.clone()).map(|c| (Some(c), false)))
            }
            MsgType::Watch => self.watch(domid, p, events_after),
            MsgType::Unwatch => {
                let (path, token) = watch_args(p)?;
                let pos = self
                    .watches
                    .iter()
                    .position(|w| w.domid == domid && w.path == path && w.token == token)
                    .ok_or(XsError::Enoent)?;
                self.watches.remove(pos);
                Ok(OK.to_vec())
            }
            MsgType::TransactionStart => {
                let id = self.next_tx;
                self.next_tx = self.next_tx.checked_add(1).unwrap_or(1);
                let txn = Txn { tree: self.tree.clone(), base_gen: self.generation, changes: Vec::new() };
                self.conns.get_mut(&domid).ok_or(XsError::Eio)?.txs.insert(id, txn);
                Ok(format!("{id}\0").into_bytes())
            }
            MsgType::TransactionEnd => self.transaction_end(domid, tx, p),
            MsgType::GetDomainPath => {
                let id: DomId = text(p.strip_suffix(&[0]).unwrap_or(p))?.parse().map_err(|_| XsError::Einval)?;
                Ok(format!("{}\0", home(id)).into_bytes())
            }
            MsgType::Error | MsgType::WatchEvent => Err(XsError::Einval),
            _ => Err(XsError::Enosys),
        }
    }

    /// Runs a read-only operation on the live tree or transaction `tx`
    /// (an unknown transaction is ENOENT, as in xenstored).
    fn with_tree(&self, domid: DomId, tx: u32, f: impl FnOnce(&Tree) -> Reply) -> Reply {
        if tx == 0 {
            return f(&self.tree);
        }
        let txn = self.conns.get(&domid).and_then(|c| c.txs.get(&tx)).ok_or(XsError::Enoent)?;
        f(&txn.tree)
    }

    /// Runs a modification; outside a transaction it fires watches now,
    /// inside it the change is remembered for commit.
    fn modify(&mut self, domid: DomId, tx: u32, f: impl FnOnce(&mut Tree) -> Result<(Option<Change>, bool), XsError>) -> Reply {
        if tx == 0 {
            if let (Some(change), removed) = f(&mut self.tree)? {
                self.generation += 1;
                self.fire(&change, removed);
            }
            return Ok(OK.to_vec());
        }
        let txn = self.conns.get_mut(&domid).and_then(|c| c.txs.get_mut(&tx)).ok_or(XsError::Enoent)?;
        if let (Some(change), _) = f(&mut txn.tree)? {
            txn.changes.push(change);
        }
        Ok(OK.to_vec())
    }

    fn watch(&mut self, domid: DomId, p: &[u8], events_after: &mut Vec<usize>) -> Reply {
        let (path, token) = watch_args(p)?;
        let abs = if path.starts_with('@') { path.to_string() } else { abs_path(domid, path.as_bytes())? };
        if self.watches.iter().any(|w| w.domid == domid && w.path == path && w.token == token) {
            return Err(XsError::Eexist);
        }
        self.watches.push(Watch { domid, path: path.to_string(), abs, token: token.to_string() });
        events_after.push(self.watches.len() - 1);
        Ok(OK.to_vec())
    }

    /// Fires a newly registered watch once, as xenstored does.
    pub(super) fn fire_initial(&mut self, idx: usize) {
        if let Some(w) = self.watches.get(idx) {
            Self::queue_event(&mut self.conns, w, &w.path);
        }
    }

    fn transaction_end(&mut self, domid: DomId, tx: u32, p: &[u8]) -> Reply {
        let commit = match p {
            b"T\0" | b"T" => true,
            b"F\0" | b"F" => false,
            _ => return Err(XsError::Einval),
        };
        let conn = self.conns.get_mut(&domid).ok_or(XsError::Eio)?;
        let txn = conn.txs.remove(&tx).ok_or(XsError::Enoent)?;
        if !commit {
            return Ok(OK.to_vec());
        }
        if self.force_eagain > 0 {
            self.force_eagain -= 1;
            return Err(XsError::Eagain);
        }
        // Optimistic: any commit since our start is a conflict.
        if txn.base_gen != self.generation {
            return Err(XsError::Eagain);
        }
        self.tree = txn.tree;
        self.generation += 1;
        for change in &txn.changes {
            self.fire(change, false);
        }
        Ok(OK.to_vec())
    }
}

fn watch_args(p: &[u8]) -> Result<(&str, &str), XsError> {
    let f = fields(p);
    let [path, token] = f.as_slice() else {
        return Err(XsError::Einval);
    };
    Ok((text(path)?, text(token)?))
}
