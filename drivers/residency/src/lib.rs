//! The residency device: what a Cohort guest on Xen hands its TCP/IP
//! stack as its one network device. Generic over xen-proto's platform
//! traits (grants, event channels, the xenstore ring) and over the
//! fallback device (netfront), with the time passed in: the kernel runs it
//! on hypercalls and its clock, the host tests on `tests/xensim` and a
//! simulated clock.
//!
//! - [`Switch`]: the smoltcp device over the fallback and one channel per
//!   co-resident peer (the `channel` crate's [`channel::Manager`]): each
//!   outgoing frame takes the channel to its destination when one is up,
//!   else the fallback; with the [`gso`] and [`checksum`] work each path
//!   needs.
//! - [`Residency`]: the switch, and what drives its channels: the advert
//!   in our xenstore home, the watch on the peer list dom0 keeps for us,
//!   the list read and handed to the manager, housekeeping rounds, and the
//!   close loop at shutdown. What it sees comes out as [`Event`]s, for
//!   the platform to log.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod checksum;
pub mod counters;
pub mod device;
pub mod gso;
pub mod switch;

pub use counters::SwitchCounters;
pub use device::{
    Clock, Event, Fired, Options, Residency, CLOSE_RETRY_NS, CLOSE_TIMEOUT_NS, HOUSEKEEPING_EVERY_NS, OFFERS_TOKEN, PEERS_TOKEN,
};
pub use netdev::Detection;
pub use switch::{FallbackDevice, FallbackFull, FallbackMeta, FallbackOffloads, Switch};
