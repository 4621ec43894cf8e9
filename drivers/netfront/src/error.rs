//! Errors of the netfront driver.

use core::fmt;

use xen_proto::iface::XenError;
use xen_proto::xenbus::XenbusState;

/// Why connecting or shutting down failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A xenstore or xenbus operation failed (includes timeouts waiting
    /// for the backend's state).
    Xenstore(xen_proto::Error),
    /// The hypervisor refused something (grant, event channel, page).
    Xen(XenError),
    /// A frontend node is missing or malformed (`backend`, `backend-id`,
    /// `mac`); the string names it.
    BadNode(&'static str),
    /// The backend does not offer `feature-rx-copy`, the only receive
    /// mode we implement.
    NoRxCopy,
    /// The backend moved to this state instead of connecting.
    BackendState(XenbusState),
    /// Grants the backend still has mapped after teardown: they are kept
    /// (never reused or freed); call `shutdown` again to retry.
    GrantsBusy(usize),
    /// The configuration asks for more buffers than a ring has slots, or
    /// for none.
    BadConfig,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Xenstore(e) => write!(f, "xenstore: {e}"),
            Error::Xen(e) => write!(f, "hypervisor: {e:?}"),
            Error::BadNode(n) => write!(f, "missing or malformed xenstore node {n}"),
            Error::NoRxCopy => f.write_str("backend lacks feature-rx-copy"),
            Error::BackendState(s) => write!(f, "backend went to {s} instead of Connected"),
            Error::GrantsBusy(n) => write!(f, "{n} grants still mapped by the backend"),
            Error::BadConfig => f.write_str("invalid netfront configuration"),
        }
    }
}

impl core::error::Error for Error {}

impl From<xen_proto::Error> for Error {
    fn from(e: xen_proto::Error) -> Self {
        Error::Xenstore(e)
    }
}

impl From<XenError> for Error {
    fn from(e: XenError) -> Self {
        Error::Xen(e)
    }
}

/// Why a frame was not queued for transmission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxError {
    /// Longer than 1514 bytes or shorter than an Ethernet header.
    BadLength(usize),
    /// No free buffer or ring slot; retry after responses come back.
    Full,
    /// The device is not connected, or the backend broke the ring
    /// protocol (reconnect needed).
    Down,
    /// Granting the buffer failed.
    Xen(XenError),
}

impl fmt::Display for TxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxError::BadLength(n) => write!(f, "frame length {n} out of range"),
            TxError::Full => f.write_str("transmit ring full"),
            TxError::Down => f.write_str("device not connected"),
            TxError::Xen(e) => write!(f, "hypervisor: {e:?}"),
        }
    }
}
