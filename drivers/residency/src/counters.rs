//! What the switch counts, for the console and BENCH lines.

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
