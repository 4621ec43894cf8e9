//! What a channel counts, for the console and BENCH lines (the switch's
//! counters live with the switch, in the `residency` crate).

/// One channel's traffic and events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelCounters {
    pub tx_frames: u64,
    pub tx_bytes: u64,
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub notifications_sent: u64,
    pub notifications_received: u64,
    /// Times a frame did not fit in our ring.
    pub ring_full: u64,
    /// Revocations refused because the peer still mapped the page.
    pub revoke_busy: u64,
    pub unmap_failures: u64,
    /// Closed channels whose peer still mapped our pages
    /// [`crate::manager::DRAIN_DEADLINE_NS`] after we closed (the peer is
    /// shunned).
    pub drain_overdue: u64,
    /// Offers held back by a cap on draining channels, grant refs or pages
    /// (counted once per peer and cause).
    pub offers_deferred: u64,
}

impl core::ops::AddAssign for ChannelCounters {
    fn add_assign(&mut self, o: Self) {
        self.tx_frames += o.tx_frames;
        self.tx_bytes += o.tx_bytes;
        self.rx_frames += o.rx_frames;
        self.rx_bytes += o.rx_bytes;
        self.notifications_sent += o.notifications_sent;
        self.notifications_received += o.notifications_received;
        self.ring_full += o.ring_full;
        self.revoke_busy += o.revoke_busy;
        self.unmap_failures += o.unmap_failures;
        self.drain_overdue += o.drain_overdue;
        self.offers_deferred += o.offers_deferred;
    }
}
