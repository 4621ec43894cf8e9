//! Xen netfront: the netif protocol (`xen/io/netif.h`) with a Linux (or
//! any conforming) netback, generic over xen-proto's platform traits, and
//! usable as a [`smoltcp::phy::Device`].
//!
//! - [`ring`]: shared-ring layout, indices and notification logic (pure).
//! - [`wire`]: checked views of requests and responses.
//! - [`xenbus`]: the xenstore handshake.
//! - [`Netfront`]: the driver.
//!
//! Negotiated: copying receive path (`request-rx-copy`), rx
//! notifications (`feature-rx-notify`), no checksum offload
//! (`feature-no-csum-offload`), one queue, one event channel, no
//! scatter-gather, no GSO. Frames are at most 1514 bytes, one page each.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod counters;
pub mod device;
pub mod error;
mod lifecycle;
mod phy;
mod pool;
pub mod ring;
mod rx;
mod tx;
pub mod wire;
pub mod xenbus;

pub use counters::{BadResponses, Counters, RxDrops, TxDrops};
pub use device::{Config, Netfront};
pub use phy::{NetRxToken, NetTxToken};
pub use error::{Error, TxError};
