//! Pure encoding and decoding of the xenstore wire protocol.
//!
//! This crate mirrors the Xen public header `xen/io/xs_wire.h`: the
//! 16-byte [`Header`] (`struct xsd_sockmsg`), the operation codes
//! ([`MsgType`]), request payload encoding ([`Request`]), an incremental
//! [`Decoder`] for the response stream, reply interpretation ([`reply`]),
//! a bounded table of in-flight requests ([`Pending`]) and the index
//! arithmetic of the shared ring page ([`ring`]).
//!
//! Nothing here touches memory shared with another domain: the transport
//! copies bytes in and out of the ring and hands them to these functions,
//! which keeps every piece testable on the host and free of `unsafe`.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod decimal;
pub mod decode;
pub mod error;
pub mod header;
pub mod path;
pub mod pending;
pub mod perms;
pub mod reply;
pub mod request;
pub mod ring;

pub use decode::{Decoder, Message};
pub use error::Error;
pub use header::{Frame, Header, MsgType, HEADER_LEN, XENSTORE_PAYLOAD_MAX};
pub use path::{PathError, XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX};
pub use pending::Pending;
pub use perms::{Access, Permission};
pub use reply::{WatchEvent, XsError};
pub use request::Request;
