//! An in-memory xenstored speaking the real wire format on each domain's
//! ring page.

mod conn;
mod ops;
mod tree;

use std::collections::{BTreeMap, VecDeque};

use xen_proto::iface::DomId;
use xenstore_wire::{Access, Decoder, Header, MsgType, Permission};

use tree::{can_read, is_at_or_below, Change, Tree};

/// Ways xenstored can misbehave towards one domain, for tests. Watch
/// events are unaffected; only replies to requests are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum XsFault {
    /// Behave.
    #[default]
    None,
    /// Consume requests and never answer.
    NeverAnswer,
    /// Answer with bytes that are no valid header.
    Garbage,
    /// Answer correctly but with a `req_id` nobody asked for.
    UnknownReqId,
    /// Answer with a header whose `len` exceeds `XENSTORE_PAYLOAD_MAX`.
    OversizedLen,
    /// Answer with the right `req_id` but a type the request does not
    /// imply.
    WrongType,
    /// Serve nothing: requests stay in the ring until the fault is
    /// cleared, then are answered late.
    Stalled,
}

struct Watch {
    domid: DomId,
    /// As registered (relative paths are reported relative).
    path: String,
    /// Absolute path, or the special `@...` name.
    abs: String,
    token: String,
}

struct Txn {
    tree: Tree,
    base_gen: u64,
    changes: Vec<Change>,
}

#[derive(Default)]
struct Conn {
    decoder: Decoder,
    out: VecDeque<u8>,
    txs: BTreeMap<u32, Txn>,
    fault: XsFault,
    /// The guest corrupted its ring; we stop serving it.
    broken: bool,
}

pub(crate) struct Xenstored {
    tree: Tree,
    generation: u64,
    conns: BTreeMap<DomId, Conn>,
    watches: Vec<Watch>,
    next_tx: u32,
    pub force_eagain: u32,
}

pub(crate) fn home(domid: DomId) -> String {
    format!("/local/domain/{domid}")
}

impl Xenstored {
    pub fn new() -> Xenstored {
        Xenstored { tree: Tree::new(), generation: 0, conns: BTreeMap::new(), watches: Vec::new(), next_tx: 1, force_eagain: 0 }
    }

    /// A new domain: its connection and its home directory, owned by it.
    pub fn introduce(&mut self, domid: DomId) {
        self.conns.insert(domid, Conn::default());
        let h = home(domid);
        // dom0 creates it, so the result is owned by dom0 until re-owned.
        if let Ok(Some(_)) = self.tree.mkdir(0, &h) {
            let perms = vec![Permission::new(domid, Access::None)];
            let _ = self.tree.set_perms(0, &h, perms);
        }
        self.generation += 1;
        self.fire_special("@introduceDomain");
    }

    /// A dead domain: its watches, transactions and home directory go.
    pub fn release(&mut self, domid: DomId) {
        self.conns.remove(&domid);
        self.watches.retain(|w| w.domid != domid);
        if let Ok(Some(change)) = self.tree.rm(0, &home(domid)) {
            self.generation += 1;
            self.fire(&change, true);
        }
        self.fire_special("@releaseDomain");
    }

    pub fn set_fault(&mut self, domid: DomId, fault: XsFault) {
        if let Some(c) = self.conns.get_mut(&domid) {
            c.fault = fault;
        }
    }

    pub fn backdoor_write(&mut self, path: &str, value: &[u8]) -> Result<(), String> {
        let change = self.tree.write(0, path, value).map_err(|e| e.to_string())?;
        self.generation += 1;
        self.fire(&change, false);
        Ok(())
    }

    pub fn backdoor_read(&self, path: &str) -> Option<Vec<u8>> {
        self.tree.get(path).map(|n| n.value.clone())
    }

    /// Leaked watches and transactions of `domid`, described.
    pub fn leaks(&self, domid: DomId) -> Vec<String> {
        let mut out: Vec<String> = self
            .watches
            .iter()
            .filter(|w| w.domid == domid)
            .map(|w| format!("xenstore watch on {:?} token {:?} still registered", w.path, w.token))
            .collect();
        if let Some(c) = self.conns.get(&domid) {
            out.extend(c.txs.keys().map(|t| format!("xenstore transaction {t} still open")));
        }
        out
    }

    /// Queues a watch event for `w` (header with req_id 0).
    fn queue_event(conns: &mut BTreeMap<DomId, Conn>, w: &Watch, path: &str) {
        let Some(conn) = conns.get_mut(&w.domid) else {
            return;
        };
        let mut payload = path.as_bytes().to_vec();
        payload.push(0);
        payload.extend_from_slice(w.token.as_bytes());
        payload.push(0);
        let h = Header { msg_type: MsgType::WatchEvent, req_id: 0, tx_id: 0, len: payload.len() as u32 };
        conn.out.extend(h.to_bytes());
        conn.out.extend(payload);
    }

    /// The path as the watcher should see it: relative if it registered a
    /// relative path and the change is inside its home.
    fn reported(w: &Watch, abs: &str) -> String {
        if w.path.starts_with('/') || w.path.starts_with('@') {
            return abs.to_string();
        }
        let h = home(w.domid);
        match abs.strip_prefix(&h).and_then(|r| r.strip_prefix('/')) {
            Some(rel) => rel.to_string(),
            None => abs.to_string(),
        }
    }

    /// Fires watches on or above the changed node that may read it; with
    /// `removed`, also watches below it (their node vanished too).
    fn fire(&mut self, change: &Change, removed: bool) {
        let (path, perms) = change;
        for w in &self.watches {
            if w.abs.starts_with('@') {
                continue;
            }
            if is_at_or_below(path, &w.abs) {
                if can_read(perms, w.domid) {
                    Self::queue_event(&mut self.conns, w, &Self::reported(w, path));
                }
            } else if removed && is_at_or_below(&w.abs, path) {
                // A watch below the removed node fires if its own node was
                // there and readable by the watcher.
                let node = self.tree.removed.iter().find(|(p, _)| *p == w.abs);
                if node.is_some_and(|(_, perms)| can_read(perms, w.domid)) {
                    Self::queue_event(&mut self.conns, w, &w.path);
                }
            }
        }
    }

    fn fire_special(&mut self, name: &str) {
        for w in self.watches.iter().filter(|w| w.abs == name) {
            Self::queue_event(&mut self.conns, w, name);
        }
    }
}
