//! What a network device offers Cohort's stack beyond
//! `smoltcp::phy::Device`, and the control of the residency-aware paths on
//! a device that has them.
//!
//! A crate of its own, below both the kernel's platform (whose drivers
//! implement these traits: virtio-net, the Xen residency device) and its
//! network applications (which use them): neither has to reach up to the
//! other, and the applications, once a crate of their own, can depend on
//! it without depending on the kernel.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use smoltcp::phy::Device;

pub mod tcp_sent;

pub use tcp_sent::{TcpSent, TcpSentTracker};

/// What a network device offers the stack beyond `smoltcp::phy::Device`.
pub trait NetDevice: Device {
    fn mac(&self) -> [u8; 6];
    /// Short name for logs and BENCH paths ("netfront", "virtio", ...).
    fn kind(&self) -> &'static str;
    /// Driver housekeeping between polls (events, ring refills).
    fn service(&mut self) {}
    /// Called before idling: true if work arrived meanwhile (do not idle).
    fn prepare_idle(&mut self) -> bool {
        false
    }
    /// Whether the loop should spin instead of idling (polled channels).
    fn wants_polling(&self) -> bool {
        false
    }
    /// Whether the device holds the stack back (a full ring): then the
    /// stack's pending frames are no reason to spin.
    fn tx_blocked(&self) -> bool {
        false
    }
    /// The residency-aware paths, on a device that has them.
    fn paths(&mut self) -> Option<&mut dyn Paths> {
        None
    }
    /// Frames moved so far, both ways, on every path (None: the device
    /// does not count them); by default, what its paths count.
    fn frames_moved(&mut self) -> Option<u64> {
        self.paths().map(|p| p.frames().total())
    }
    /// One line of driver counters.
    fn counters(&self) -> String;
    /// Driver figures for BENCH lines: (name, value, unit).
    fn figures(&self) -> Vec<(&'static str, f64, &'static str)> {
        Vec::new()
    }
    /// Disconnects cleanly (netfront: Closing → Closed, grants returned);
    /// a line saying how it went.
    fn shutdown(&mut self) -> Result<String, String> {
        Ok(String::from("nothing to close"))
    }
}

/// Frames by path so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathFrames {
    pub tx_channel: u64,
    pub tx_fallback: u64,
    pub rx_channel: u64,
    pub rx_fallback: u64,
}

impl PathFrames {
    /// Frames (both ways) since `before`, as (channel, fallback).
    pub fn since(&self, before: &PathFrames) -> (u64, u64) {
        (
            (self.tx_channel + self.rx_channel) - (before.tx_channel + before.rx_channel),
            (self.tx_fallback + self.rx_fallback) - (before.tx_fallback + before.rx_fallback),
        )
    }

    /// Every frame, both ways, on both paths.
    pub fn total(&self) -> u64 {
        self.tx_channel + self.tx_fallback + self.rx_channel + self.rx_fallback
    }
}

/// The steps of residency detection, in ns of the guest's clock (zero at
/// its entry): our advert written, and dom0's list read naming a peer
/// for the first time (None: not yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detection {
    pub advertised_ns: u64,
    pub listed_ns: Option<u64>,
}

/// Control of the shared-memory paths, for benchmarks and checks.
pub trait Paths {
    /// Peers whose channel is up.
    fn channels_up(&self) -> usize;
    /// Whether channels are still being set up: dom0 has not answered our
    /// advert yet, or lists a peer whose channel is not up yet.
    fn settling(&self) -> bool;
    /// Keeps every peer on netfront (closing channels), or lets them have
    /// channels again.
    fn hold(&mut self, held: bool);
    fn frames(&self) -> PathFrames;
    /// Starts counting the TCP payload bytes the device sends and
    /// receives, and those that went again (from zero), or stops; off by
    /// default, for measurements.
    fn track_tcp(&mut self, on: bool);
    /// What was sent since tracking began (None: not tracking).
    fn tcp_sent(&self) -> Option<TcpSent>;
    /// What was received since tracking began: the peer's payload, and
    /// the part that arrived behind a later byte (sent again after a loss,
    /// reordered, or a duplicate) as `retransmitted` (None: not tracking).
    fn tcp_received(&self) -> Option<TcpSent>;
    /// When detection's steps happened (None: never advertised).
    fn detection(&self) -> Option<Detection>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_since_add_both_directions_per_path() {
        let before = PathFrames { tx_channel: 10, tx_fallback: 3, rx_channel: 7, rx_fallback: 1 };
        let now = PathFrames { tx_channel: 15, tx_fallback: 4, rx_channel: 9, rx_fallback: 1 };
        assert_eq!(now.since(&before), (7, 1));
        assert_eq!(now.since(&now), (0, 0));
        assert_eq!(now.since(&PathFrames::default()), (24, 5));
        assert_eq!((now.total(), before.total()), (29, 21));
    }
}
