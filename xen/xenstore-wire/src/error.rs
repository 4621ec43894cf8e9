//! The crate-wide error type.
//!
//! One flat, `Copy` enum keeps `no_std` callers free of allocation on the
//! error path and lets a poisoned decoder remember what killed it.

use core::fmt;

use crate::header::MsgType;
use crate::path::PathError;
use crate::reply::XsError;

/// Everything that can go wrong while encoding or interpreting xenstore
/// traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A buffer is shorter than the header or the length it declares.
    Truncated,
    /// A payload (declared or about to be encoded) exceeds
    /// [`XENSTORE_PAYLOAD_MAX`](crate::XENSTORE_PAYLOAD_MAX); the value is
    /// the offending length.
    PayloadTooLarge(usize),
    /// The `type` field holds no operation this crate knows.
    UnknownType(u32),
    /// A path argument breaks the xenstore path rules.
    InvalidPath(PathError),
    /// A watch token contains a NUL byte, which would split the payload.
    InvalidToken,
    /// A permission string is not `[nrwb]<decimal domid>`.
    InvalidPermission,
    /// A permission list is empty (the owner entry is mandatory).
    NoPermissions,
    /// A transaction id reply is not a non-zero decimal `u32`.
    InvalidTxId,
    /// A transaction id argument is invalid (0 means "no transaction").
    ZeroTxId,
    /// A reply string lacks its terminating NUL.
    MissingNul,
    /// A reply string is not valid UTF-8.
    NotUtf8,
    /// A reply list contains an empty or otherwise malformed entry.
    MalformedEntry,
    /// A reply has a different number of NUL-terminated fields than its
    /// type requires.
    WrongFieldCount,
    /// An acknowledgement payload is not `OK`.
    NotOk,
    /// A reply arrived with a type other than the one the request implies.
    UnexpectedType {
        /// Type the caller expected.
        expected: MsgType,
        /// Type that arrived.
        got: MsgType,
    },
    /// The daemon answered with `XS_ERROR`.
    Xs(XsError),
    /// The decoder failed earlier and refuses further input.
    Poisoned,
    /// The pending-request table has no free slot.
    PendingFull,
    /// A reply carries a `req_id` with no outstanding request.
    UnknownReqId(u32),
    /// Shared ring indices are inconsistent (`prod - cons > ring size`):
    /// the peer corrupted the ring.
    RingCorrupted {
        /// Consumer index as read from the page.
        cons: u32,
        /// Producer index as read from the page.
        prod: u32,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("buffer truncated"),
            Error::PayloadTooLarge(n) => {
                write!(f, "payload of {n} bytes exceeds XENSTORE_PAYLOAD_MAX")
            }
            Error::UnknownType(t) => write!(f, "unknown xenstore message type {t}"),
            Error::InvalidPath(e) => write!(f, "invalid path: {e}"),
            Error::InvalidToken => f.write_str("watch token contains NUL"),
            Error::InvalidPermission => f.write_str("malformed permission string"),
            Error::NoPermissions => f.write_str("empty permission list"),
            Error::InvalidTxId => f.write_str("malformed transaction id"),
            Error::ZeroTxId => f.write_str("transaction id 0 is not a transaction"),
            Error::MissingNul => f.write_str("string not NUL-terminated"),
            Error::NotUtf8 => f.write_str("string is not UTF-8"),
            Error::MalformedEntry => f.write_str("malformed list entry"),
            Error::WrongFieldCount => f.write_str("wrong number of fields"),
            Error::NotOk => f.write_str("acknowledgement is not OK"),
            Error::UnexpectedType { expected, got } => {
                write!(f, "expected {expected:?} reply, got {got:?}")
            }
            Error::Xs(e) => write!(f, "xenstore error {}", e.as_str()),
            Error::Poisoned => f.write_str("decoder poisoned by earlier error"),
            Error::PendingFull => f.write_str("pending request table full"),
            Error::UnknownReqId(id) => write!(f, "reply for unknown req_id {id}"),
            Error::RingCorrupted { cons, prod } => {
                write!(f, "peer corrupted ring (cons {cons}, prod {prod})")
            }
        }
    }
}

impl core::error::Error for Error {}

impl From<PathError> for Error {
    fn from(e: PathError) -> Self {
        Error::InvalidPath(e)
    }
}

impl From<XsError> for Error {
    fn from(e: XsError) -> Self {
        Error::Xs(e)
    }
}
