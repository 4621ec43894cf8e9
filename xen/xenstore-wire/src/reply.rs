//! Interpretation of reply payloads.
//!
//! Two layers: `parse_*` functions take a bare payload, and the
//! message-level helpers ([`read`], [`directory`], ...) first check the
//! reply's type with [`expect`], turning `XS_ERROR` into
//! [`Error::Xs`]. Everything is bounds-checked; malformed input yields a
//! typed [`Error`].
//!
//! Where daemons differ (C xenstored, oxenstored) on whether a single
//! string reply carries a trailing NUL, both forms are accepted. Lists
//! (directory, permissions, watch events) must NUL-terminate every entry,
//! since that is the only unambiguous framing.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::decimal;
use crate::decode::Message;
use crate::error::Error;
use crate::header::MsgType;
use crate::path;
use crate::perms::Permission;

/// Error names a daemon may send in an `XS_ERROR` payload (the
/// `xsd_errors` table of `xs_wire.h`, in table order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XsError {
    /// `EINVAL`
    Einval,
    /// `EACCES`
    Eacces,
    /// `EEXIST`
    Eexist,
    /// `EISDIR`
    Eisdir,
    /// `ENOENT`
    Enoent,
    /// `ENOMEM`
    Enomem,
    /// `ENOSPC`
    Enospc,
    /// `EIO`
    Eio,
    /// `ENOTEMPTY`
    Enotempty,
    /// `ENOSYS`
    Enosys,
    /// `EROFS`
    Erofs,
    /// `EBUSY`
    Ebusy,
    /// `EAGAIN` (notably: transaction conflict, retry it).
    Eagain,
    /// `EISCONN`
    Eisconn,
    /// `E2BIG`
    E2big,
    /// `EPERM`
    Eperm,
    /// A name not in the table (newer daemon or garbage).
    Unknown,
}

/// (variant, wire name, Linux errno) for every known error.
const XS_ERRORS: [(XsError, &str, i32); 16] = [
    (XsError::Einval, "EINVAL", 22),
    (XsError::Eacces, "EACCES", 13),
    (XsError::Eexist, "EEXIST", 17),
    (XsError::Eisdir, "EISDIR", 21),
    (XsError::Enoent, "ENOENT", 2),
    (XsError::Enomem, "ENOMEM", 12),
    (XsError::Enospc, "ENOSPC", 28),
    (XsError::Eio, "EIO", 5),
    (XsError::Enotempty, "ENOTEMPTY", 39),
    (XsError::Enosys, "ENOSYS", 38),
    (XsError::Erofs, "EROFS", 30),
    (XsError::Ebusy, "EBUSY", 16),
    (XsError::Eagain, "EAGAIN", 11),
    (XsError::Eisconn, "EISCONN", 106),
    (XsError::E2big, "E2BIG", 7),
    (XsError::Eperm, "EPERM", 1),
];

impl XsError {
    /// Maps an `XS_ERROR` payload (`"ENOENT\0"`, NUL optional) to a
    /// variant; anything unrecognised is [`XsError::Unknown`].
    pub fn from_payload(payload: &[u8]) -> XsError {
        let name = strip_nul(payload);
        XS_ERRORS.iter().find(|(_, s, _)| s.as_bytes() == name).map_or(XsError::Unknown, |&(e, _, _)| e)
    }

    /// The wire name (`"EINVAL"`, ...), or `"UNKNOWN"`.
    pub fn as_str(self) -> &'static str {
        XS_ERRORS.iter().find(|(e, _, _)| *e == self).map_or("UNKNOWN", |&(_, s, _)| s)
    }

    /// The Linux errno value, for callers exposing a POSIX-like API.
    pub fn errno(self) -> Option<i32> {
        XS_ERRORS.iter().find(|(e, _, _)| *e == self).map(|&(_, _, n)| n)
    }
}

impl fmt::Display for XsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A watch notification: the path that changed and the token given to
/// `XS_WATCH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    /// Path that fired (may be below the watched path).
    pub path: String,
    /// Token registered with the watch.
    pub token: String,
}

/// Drops one trailing NUL, if present.
fn strip_nul(s: &[u8]) -> &[u8] {
    s.strip_suffix(&[0]).unwrap_or(s)
}

/// Splits a list of NUL-terminated strings. The payload must be empty or
/// end in NUL; entries may be empty (callers decide).
fn split_terminated(payload: &[u8]) -> Result<Vec<&[u8]>, Error> {
    if payload.is_empty() {
        return Ok(Vec::new());
    }
    let body = payload.strip_suffix(&[0]).ok_or(Error::MissingNul)?;
    Ok(body.split(|&b| b == 0).collect())
}

fn to_string(s: &[u8]) -> Result<String, Error> {
    core::str::from_utf8(s).map(String::from).map_err(|_| Error::NotUtf8)
}

/// Checks an acknowledgement: `OK\0` or `OK`.
pub fn parse_ok(payload: &[u8]) -> Result<(), Error> {
    if strip_nul(payload) == b"OK" {
        Ok(())
    } else {
        Err(Error::NotOk)
    }
}

/// Parses an `XS_DIRECTORY` payload into child names.
///
/// Each name must be non-empty, NUL-terminated and made of valid path
/// characters other than `/`. An empty payload (and, for tolerance, a lone
/// `\0`) means no children.
pub fn parse_directory(payload: &[u8]) -> Result<Vec<String>, Error> {
    if payload == b"\0" {
        return Ok(Vec::new());
    }
    split_terminated(payload)?
        .into_iter()
        .map(|name| {
            let ok = !name.is_empty() && name.iter().all(|&b| b != b'/' && path::is_valid_char(b));
            if !ok {
                return Err(Error::MalformedEntry);
            }
            to_string(name)
        })
        .collect()
}

/// Parses an `XS_TRANSACTION_START` payload: a non-zero decimal `u32`,
/// normally NUL-terminated.
pub fn parse_tx_id(payload: &[u8]) -> Result<u32, Error> {
    match decimal::parse_u32(strip_nul(payload)) {
        Some(0) | None => Err(Error::InvalidTxId),
        Some(id) => Ok(id),
    }
}

/// Parses an `XS_GET_PERMS` payload: at least one NUL-terminated entry.
pub fn parse_perms(payload: &[u8]) -> Result<Vec<Permission>, Error> {
    let entries = split_terminated(payload)?;
    if entries.is_empty() {
        return Err(Error::NoPermissions);
    }
    entries.into_iter().map(Permission::parse).collect()
}

/// Parses an `XS_WATCH_EVENT` payload: exactly `path\0token\0`.
pub fn parse_watch_event(payload: &[u8]) -> Result<WatchEvent, Error> {
    let fields = split_terminated(payload)?;
    let [path, token] = fields.as_slice() else {
        return Err(Error::WrongFieldCount);
    };
    if path.is_empty() {
        return Err(Error::MalformedEntry);
    }
    Ok(WatchEvent { path: to_string(path)?, token: to_string(token)? })
}

/// Parses an `XS_GET_DOMAIN_PATH` payload: a valid path, NUL optional.
pub fn parse_domain_path(payload: &[u8]) -> Result<String, Error> {
    let s = core::str::from_utf8(strip_nul(payload)).map_err(|_| Error::NotUtf8)?;
    path::validate(s)?;
    Ok(String::from(s))
}

/// Returns the payload of `msg` if it has type `expected`.
///
/// An `XS_ERROR` reply becomes [`Error::Xs`]; any other type becomes
/// [`Error::UnexpectedType`].
pub fn expect(msg: &Message, expected: MsgType) -> Result<&[u8], Error> {
    match msg.msg_type() {
        t if t == expected => Ok(&msg.payload),
        MsgType::Error => Err(Error::Xs(XsError::from_payload(&msg.payload))),
        got => Err(Error::UnexpectedType { expected, got }),
    }
}

/// Interprets the reply to a request of type `request`, expecting an
/// `OK` acknowledgement (write, mkdir, rm, set_perms, watch, unwatch,
/// transaction_end, ...).
pub fn ack(msg: &Message, request: MsgType) -> Result<(), Error> {
    parse_ok(expect(msg, request)?)
}

/// `XS_READ` reply: the raw value (no terminator is added or stripped).
pub fn read(msg: &Message) -> Result<&[u8], Error> {
    expect(msg, MsgType::Read)
}

/// `XS_DIRECTORY` reply: child names.
pub fn directory(msg: &Message) -> Result<Vec<String>, Error> {
    parse_directory(expect(msg, MsgType::Directory)?)
}

/// `XS_TRANSACTION_START` reply: the new transaction id.
pub fn transaction_start(msg: &Message) -> Result<u32, Error> {
    parse_tx_id(expect(msg, MsgType::TransactionStart)?)
}

/// `XS_GET_PERMS` reply: the permission list, owner first.
pub fn get_perms(msg: &Message) -> Result<Vec<Permission>, Error> {
    parse_perms(expect(msg, MsgType::GetPerms)?)
}

/// `XS_GET_DOMAIN_PATH` reply: the domain's home path.
pub fn get_domain_path(msg: &Message) -> Result<String, Error> {
    parse_domain_path(expect(msg, MsgType::GetDomainPath)?)
}

/// `XS_WATCH_EVENT` message: path and token.
pub fn watch_event(msg: &Message) -> Result<WatchEvent, Error> {
    parse_watch_event(expect(msg, MsgType::WatchEvent)?)
}
