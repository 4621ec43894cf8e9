//! What a channel and the switch count, for the console and BENCH lines.

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

/// Frames by path, as the switch routed them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwitchCounters {
    pub tx_channel_frames: u64,
    pub tx_channel_bytes: u64,
    /// Of those, built in place in the ring.
    pub tx_in_place: u64,
    pub tx_fallback_frames: u64,
    pub tx_fallback_bytes: u64,
    pub rx_channel_frames: u64,
    pub rx_channel_bytes: u64,
    pub rx_fallback_frames: u64,
    /// Frames dropped: no room on their path.
    pub tx_drops: u64,
    /// Times the stack was told to wait for room in a channel's ring.
    pub tx_backpressure: u64,
    /// Channel frames not from the peer's MAC to ours.
    pub rx_misaddressed: u64,
    /// Channels closed because the peer broke the ring protocol.
    pub channel_violations: u64,
    /// Fallback frames dropped for a bad checksum.
    pub rx_bad_checksums: u64,
    /// Large TCP packets cut here for a path that carries smaller frames.
    pub tx_segmented: u64,
    /// Large TCP packets handed to the fallback to cut (GSO).
    pub tx_gso: u64,
}
