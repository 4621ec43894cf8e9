//! Index arithmetic shared by Xen-style rings: free-running `u32`
//! producer/consumer indices and event indices (`xen/io/ring.h`).

/// The notification test of `RING_PUSH_*_AND_CHECK_NOTIFY`: after moving an
/// index from `old` to `new`, the other side wants an event iff its event
/// index lies in `(old, new]`, modulo 2^32.
pub fn notify_due(old: u32, new: u32, event: u32) -> bool {
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

#[cfg(test)]
mod tests {
    use super::notify_due;

    #[test]
    fn window() {
        assert!(notify_due(0, 1, 1));
        assert!(!notify_due(1, 1, 1));
        assert!(notify_due(5, 10, 10));
        assert!(!notify_due(5, 10, 11));
        assert!(!notify_due(5, 10, 5));
        // Across the wrap.
        assert!(notify_due(u32::MAX - 1, 3, 0));
        assert!(!notify_due(u32::MAX - 1, 3, u32::MAX - 1));
    }
}
