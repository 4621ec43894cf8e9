//! Request encoding.
//!
//! Each constructor validates its arguments and builds the payload exactly
//! as the daemon parses it: NUL-terminated strings, except that a write's
//! value runs to the end of the payload with no terminator (so values may
//! be arbitrary bytes). The header is added by [`Request::encode`] once the
//! caller has picked a `req_id`.

use alloc::vec::Vec;

use crate::error::Error;
use crate::header::{Header, MsgType, HEADER_LEN, XENSTORE_PAYLOAD_MAX};
use crate::path;
use crate::perms::{push_decimal, Permission};

/// A request ready to be framed and sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    msg_type: MsgType,
    tx_id: u32,
    payload: Vec<u8>,
}

/// Appends `s` and its NUL terminator.
fn push_str0(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(s);
    out.push(0);
}

/// Validates `p` and returns its bytes.
fn checked_path(p: &str) -> Result<&[u8], Error> {
    path::validate(p)?;
    Ok(p.as_bytes())
}

/// Watch tokens are opaque to the daemon but must not contain NUL, which
/// would split them into a third field.
fn checked_token(t: &str) -> Result<&[u8], Error> {
    if t.as_bytes().contains(&0) {
        return Err(Error::InvalidToken);
    }
    Ok(t.as_bytes())
}

impl Request {
    /// A request with an arbitrary type and pre-built payload, for
    /// operations without a dedicated constructor (e.g. `XS_INTRODUCE`).
    ///
    /// Only the payload size is checked.
    pub fn raw(msg_type: MsgType, payload: Vec<u8>) -> Result<Request, Error> {
        if payload.len() > XENSTORE_PAYLOAD_MAX {
            return Err(Error::PayloadTooLarge(payload.len()));
        }
        Ok(Request { msg_type, tx_id: 0, payload })
    }

    /// Builds a request whose payload is a single NUL-terminated path.
    fn single_path(msg_type: MsgType, p: &str) -> Result<Request, Error> {
        let mut payload = Vec::new();
        push_str0(&mut payload, checked_path(p)?);
        Request::raw(msg_type, payload)
    }

    /// `XS_READ`: `path\0`.
    pub fn read(path: &str) -> Result<Request, Error> {
        Request::single_path(MsgType::Read, path)
    }

    /// `XS_WRITE`: `path\0value` (the value is not NUL-terminated).
    pub fn write(path: &str, value: &[u8]) -> Result<Request, Error> {
        let p = checked_path(path)?;
        // Check before allocating so a huge value is rejected cheaply.
        let total = p.len() + 1 + value.len();
        if total > XENSTORE_PAYLOAD_MAX {
            return Err(Error::PayloadTooLarge(total));
        }
        let mut payload = Vec::with_capacity(total);
        push_str0(&mut payload, p);
        payload.extend_from_slice(value);
        Request::raw(MsgType::Write, payload)
    }

    /// `XS_MKDIR`: `path\0`.
    pub fn mkdir(path: &str) -> Result<Request, Error> {
        Request::single_path(MsgType::Mkdir, path)
    }

    /// `XS_RM`: `path\0`.
    pub fn rm(path: &str) -> Result<Request, Error> {
        Request::single_path(MsgType::Rm, path)
    }

    /// `XS_DIRECTORY`: `path\0`.
    pub fn directory(path: &str) -> Result<Request, Error> {
        Request::single_path(MsgType::Directory, path)
    }

    /// `XS_GET_PERMS`: `path\0`.
    pub fn get_perms(path: &str) -> Result<Request, Error> {
        Request::single_path(MsgType::GetPerms, path)
    }

    /// `XS_SET_PERMS`: `path\0` then each permission NUL-terminated.
    ///
    /// The first entry is the owner; an empty list is rejected because the
    /// daemon requires the owner entry.
    pub fn set_perms(path: &str, perms: &[Permission]) -> Result<Request, Error> {
        if perms.is_empty() {
            return Err(Error::NoPermissions);
        }
        let mut payload = Vec::new();
        push_str0(&mut payload, checked_path(path)?);
        for p in perms {
            p.encode_into(&mut payload);
            payload.push(0);
            // Bail out early rather than building a huge buffer.
            if payload.len() > XENSTORE_PAYLOAD_MAX {
                return Err(Error::PayloadTooLarge(payload.len()));
            }
        }
        Request::raw(MsgType::SetPerms, payload)
    }

    fn watch_like(msg_type: MsgType, path: &str, token: &str) -> Result<Request, Error> {
        let p = checked_path(path)?;
        let t = checked_token(token)?;
        let total = p.len() + t.len() + 2;
        if total > XENSTORE_PAYLOAD_MAX {
            return Err(Error::PayloadTooLarge(total));
        }
        let mut payload = Vec::with_capacity(total);
        push_str0(&mut payload, p);
        push_str0(&mut payload, t);
        Request::raw(msg_type, payload)
    }

    /// `XS_WATCH`: `path\0token\0`.
    pub fn watch(path: &str, token: &str) -> Result<Request, Error> {
        Request::watch_like(MsgType::Watch, path, token)
    }

    /// `XS_UNWATCH`: `path\0token\0`.
    pub fn unwatch(path: &str, token: &str) -> Result<Request, Error> {
        Request::watch_like(MsgType::Unwatch, path, token)
    }

    /// `XS_TRANSACTION_START`: an empty string, i.e. the single byte `\0`.
    pub fn transaction_start() -> Request {
        Request { msg_type: MsgType::TransactionStart, tx_id: 0, payload: Vec::from([0u8]) }
    }

    /// `XS_TRANSACTION_END` for transaction `tx_id`: `T\0` to commit,
    /// `F\0` to abort. Fails with [`Error::ZeroTxId`] for `tx_id == 0`,
    /// which denotes "no transaction".
    pub fn transaction_end(tx_id: u32, commit: bool) -> Result<Request, Error> {
        if tx_id == 0 {
            return Err(Error::ZeroTxId);
        }
        let flag = if commit { b'T' } else { b'F' };
        Ok(Request { msg_type: MsgType::TransactionEnd, tx_id, payload: Vec::from([flag, 0]) })
    }

    /// `XS_GET_DOMAIN_PATH`: the domid in decimal, NUL-terminated.
    pub fn get_domain_path(domid: u16) -> Request {
        let mut payload = Vec::with_capacity(6);
        push_decimal(&mut payload, u32::from(domid));
        payload.push(0);
        Request { msg_type: MsgType::GetDomainPath, tx_id: 0, payload }
    }

    /// `XS_RESET_WATCHES`: an empty string (`\0`), as Linux sends it.
    pub fn reset_watches() -> Request {
        Request { msg_type: MsgType::ResetWatches, tx_id: 0, payload: Vec::from([0u8]) }
    }

    /// Runs this request inside transaction `tx_id` (0 = none).
    #[must_use]
    pub fn with_tx(mut self, tx_id: u32) -> Request {
        self.tx_id = tx_id;
        self
    }

    /// The operation.
    pub fn msg_type(&self) -> MsgType {
        self.msg_type
    }

    /// The transaction id.
    pub fn tx_id(&self) -> u32 {
        self.tx_id
    }

    /// The payload (without header).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The header this request will carry with `req_id`.
    pub fn header(&self, req_id: u32) -> Header {
        Header {
            msg_type: self.msg_type,
            req_id,
            tx_id: self.tx_id,
            // Constructors keep payload.len() <= XENSTORE_PAYLOAD_MAX.
            len: self.payload.len() as u32,
        }
    }

    /// Appends header and payload to `out`.
    pub fn encode_into(&self, req_id: u32, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.extend_from_slice(&self.header(req_id).to_bytes());
        out.extend_from_slice(&self.payload);
    }

    /// Header and payload as one buffer, ready for the ring.
    pub fn encode(&self, req_id: u32) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(req_id, &mut out);
        out
    }

    /// Length of [`encode`](Self::encode)'s output.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }
}
