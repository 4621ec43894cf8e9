//! The residency-aware shared-memory channel: how two Cohort guests on the
//! same host move Ethernet frames through memory instead of netfront →
//! dom0 → netback, below the TCP/IP stack. Generic over xen-proto's
//! platform traits: the kernel runs it on hypercalls, the host tests on
//! `tests/xensim`.
//!
//! - [`layout`]: the control page each side owns.
//! - [`ring`]: records in one direction's byte ring (pure arithmetic).
//! - [`offer`]: the xenstore half of the handshake.
//! - [`Channel`]: one pair's pages, mappings and event channel.
//! - [`Manager`]: one channel per peer dom0 lists, driven by xenstore.
//!
//! The switch that sends each frame over a channel or the fallback
//! (netfront), and the residency device around it, are the `residency`
//! crate's.
//!
//! Each side grants its own control page and transmit ring read-only: no
//! page of ours is ever writable by the peer, so frames are built in place
//! in our ring, and what we read of the peer's (indices, lengths) is
//! copied once and checked.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod channel;
pub mod counters;
pub mod layout;
pub mod manager;
pub mod offer;
pub mod ring;

pub use channel::{Channel, ChannelError, Config, SendError};
pub use counters::ChannelCounters;
pub use manager::{Manager, Note};
