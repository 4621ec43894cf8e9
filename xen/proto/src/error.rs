//! The crate's single error type for xenstore and xenbus operations.

use core::fmt;

use xenstore_wire::{Error as WireError, XsError};

use crate::iface::XenError;
use crate::xenbus::XenbusState;

/// Everything a xenstore or xenbus operation can fail with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A request argument was rejected before sending (bad path, token,
    /// oversized value), or a reply was malformed (wrong type, unknown
    /// `req_id`, bad payload). The client stays usable.
    Wire(WireError),
    /// xenstored answered `XS_ERROR` (e.g. `ENOENT`, `EACCES`, `EAGAIN`).
    Xs(XsError),
    /// The platform refused an operation (e.g. notifying xenstored).
    Xen(XenError),
    /// xenstored did not answer within the client's timeout. The request
    /// is abandoned: a late reply to it is silently dropped.
    Timeout,
    /// The shared ring or the reply stream is corrupt (bad indices,
    /// undecodable header). Nothing after this point can be trusted; every
    /// further call fails the same way until the ring is re-established.
    Fatal(WireError),
    /// A transaction conflicted (`EAGAIN`) on every one of this many tries.
    TransactionRetries(u32),
    /// A xenbus `state` node does not hold a state number.
    InvalidState,
    /// A xenbus state change the protocol does not allow.
    IllegalTransition {
        /// State before.
        from: XenbusState,
        /// Rejected target state.
        to: XenbusState,
    },
}

impl Error {
    /// Whether the client can no longer be used.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Error::Fatal(_))
    }

    /// Lifts an error from parsing a reply: `XS_ERROR` becomes
    /// [`Error::Xs`], anything else [`Error::Wire`].
    pub(crate) fn from_reply(e: WireError) -> Error {
        match e {
            WireError::Xs(x) => Error::Xs(x),
            other => Error::Wire(other),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Wire(e) => write!(f, "xenstore protocol error: {e}"),
            Error::Xs(e) => write!(f, "xenstored error {}", e.as_str()),
            Error::Xen(e) => write!(f, "hypervisor error: {e:?}"),
            Error::Timeout => f.write_str("xenstored did not answer in time"),
            Error::Fatal(e) => write!(f, "xenstore ring unusable: {e}"),
            Error::TransactionRetries(n) => {
                write!(f, "transaction conflicted (EAGAIN) {n} times, giving up")
            }
            Error::InvalidState => f.write_str("xenbus state is not a state number"),
            Error::IllegalTransition { from, to } => {
                write!(f, "illegal xenbus transition {from} -> {to}")
            }
        }
    }
}

impl core::error::Error for Error {}

impl From<XenError> for Error {
    fn from(e: XenError) -> Self {
        Error::Xen(e)
    }
}
