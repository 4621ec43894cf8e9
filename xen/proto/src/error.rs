//! The crate's single error type for xenstore and xenbus operations.

use xenstore_wire::{Error as WireError, XsError};

use crate::iface::XenError;
use crate::xenbus::XenbusState;

/// Everything a xenstore or xenbus operation can fail with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A request argument was rejected before sending (bad path, token,
    /// oversized value), or a reply was malformed (wrong type, unknown
    /// `req_id`, bad payload). The client stays usable.
    #[error("xenstore protocol error: {0}")]
    Wire(WireError),
    /// xenstored answered `XS_ERROR` (e.g. `ENOENT`, `EACCES`, `EAGAIN`).
    #[error("xenstored error {}", .0.as_str())]
    Xs(XsError),
    /// The platform refused an operation (e.g. notifying xenstored).
    #[error("hypervisor error: {0:?}")]
    Xen(XenError),
    /// xenstored did not answer within the client's timeout. The request
    /// is abandoned: a late reply to it is silently dropped.
    #[error("xenstored did not answer in time")]
    Timeout,
    /// The shared ring or the reply stream is corrupt (bad indices,
    /// undecodable header). Nothing after this point can be trusted; every
    /// further call fails the same way until the ring is re-established.
    #[error("xenstore ring unusable: {0}")]
    Fatal(WireError),
    /// A transaction conflicted (`EAGAIN`) on every one of this many tries.
    #[error("transaction conflicted (EAGAIN) {0} times, giving up")]
    TransactionRetries(u32),
    /// A xenbus `state` node does not hold a state number.
    #[error("xenbus state is not a state number")]
    InvalidState,
    /// A xenbus state change the protocol does not allow.
    #[error("illegal xenbus transition {from} -> {to}")]
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

impl From<XenError> for Error {
    fn from(e: XenError) -> Self {
        Error::Xen(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn messages() {
        let all = [
            (Error::Wire(WireError::Poisoned), "xenstore protocol error: decoder poisoned by earlier error"),
            (Error::Xs(XsError::Enoent), "xenstored error ENOENT"),
            (Error::Xen(XenError::Errno(-22)), "hypervisor error: Errno(-22)"),
            (Error::Timeout, "xenstored did not answer in time"),
            (
                Error::Fatal(WireError::RingCorrupted { cons: 1, prod: 2000 }),
                "xenstore ring unusable: peer corrupted ring (cons 1, prod 2000)",
            ),
            (Error::TransactionRetries(5), "transaction conflicted (EAGAIN) 5 times, giving up"),
            (Error::InvalidState, "xenbus state is not a state number"),
            (
                Error::IllegalTransition { from: XenbusState::Connected, to: XenbusState::Initialising },
                "illegal xenbus transition Connected -> Initialising",
            ),
        ];
        for (e, message) in all {
            assert_eq!(e.to_string(), message);
        }
        assert!(core::error::Error::source(&Error::Wire(WireError::Poisoned)).is_none());
    }
}
