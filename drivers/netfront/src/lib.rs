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
//! notifications (`feature-rx-notify`), and where the backend agrees
//! ([`features`]): packets of several slots (`feature-sg`), checksum
//! offload, and TCPv4 segmentation offload (`feature-gso-tcpv4`) both
//! ways. One queue, one event channel.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod counters;
pub mod device;
pub mod error;
pub mod features;
mod lifecycle;
pub mod offload;
mod phy;
mod pool;
pub mod ring;
pub mod rx;
pub mod tx;
pub mod watchdog;
pub mod wire;
pub mod xenbus;

pub use counters::{BadResponses, Counters, RxDrops, TxDrops};
pub use device::{Config, Netfront};
pub use error::{Error, TxError};
pub use features::{Negotiated, Offloads};
pub use phy::{NetRxToken, NetTxToken};
pub use rx::{RxChecksum, RxMeta};
pub use tx::TxMeta;
pub use watchdog::{TxProgress, TxWatchdog, RESTART_BACKOFF_MAX_NS, TX_STALL_NS};
