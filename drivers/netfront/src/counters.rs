//! Statistics of one netfront device. Everything the backend does wrong
//! ends up counted here rather than trusted.

/// Transmit-side frames not delivered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxDrops {
    /// Refused before queuing: shorter than an Ethernet header, longer
    /// than a packet may be (1514 bytes, or 65535 with scatter-gather), or
    /// longer than 1514 bytes without GSO to cut it.
    pub bad_length: u64,
    /// A smoltcp transmit token found no free buffer when consumed.
    pub no_buffer: u64,
    /// The backend answered `NETIF_RSP_ERROR`.
    pub backend_error: u64,
    /// The backend answered `NETIF_RSP_DROPPED`.
    pub backend_dropped: u64,
}

/// Receive-side frames not handed up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxDrops {
    /// Negative status (`NETIF_RSP_ERROR`/`DROPPED`/other).
    pub error_status: u64,
    /// `offset + size` beyond the 4 KiB page.
    pub outside_page: u64,
    /// Longer than 65535 bytes, or more than 18 data slots.
    pub oversize: u64,
    /// Smaller than an Ethernet header, or a data slot of 0 bytes.
    pub runt: u64,
    /// Flags of features we did not negotiate (`more_data` without
    /// feature-sg, `csum_blank` with checksum offload off, `gso_prefix`).
    pub unsupported_flags: u64,
    /// A chain still open when the published responses ran out (netback
    /// publishes whole packets).
    pub truncated_chain: u64,
    /// An extra-info slot of a type we did not ask for, a second GSO
    /// extra, or more extras than any backend sends.
    pub bad_extra: u64,
    /// A GSO extra without GSO negotiated, of another type than TCPv4,
    /// of size 0, or that cuts nothing (not a TCP packet with more
    /// payload than one segment).
    pub bad_gso: u64,
    /// `csum_blank` on a frame that cannot carry a blank checksum (not
    /// whole IPv4 TCP/UDP with its headers in the first slot).
    pub bad_csum_blank: u64,
    /// The backend still had the buffer mapped after answering: the
    /// contents cannot be trusted, the page is quarantined.
    pub busy_grant: u64,
}

/// Responses that break the protocol; each is ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BadResponses {
    /// Tx response id beyond our buffers.
    pub tx_id_out_of_range: u64,
    /// Tx response for an id with no request in flight (duplicate or
    /// invented).
    pub tx_not_outstanding: u64,
    /// Tx status that netif.h does not allow for our requests.
    pub tx_bad_status: u64,
    /// Rx response id beyond the ring (frame dropped, buffer reclaimed).
    pub rx_id_out_of_range: u64,
    /// Rx response whose id is not the one posted in its ring slot
    /// (duplicate, reordered or invented); the slot's buffer is
    /// reclaimed, the frame dropped.
    pub rx_id_mismatch: u64,
    /// `rsp_prod` claimed more responses than requests: the ring is
    /// unusable from then on (the device goes down until reconnected).
    pub ring_overflow: u64,
}

impl BadResponses {
    /// Sum of all kinds.
    pub fn total(&self) -> u64 {
        self.tx_id_out_of_range
            + self.tx_not_outstanding
            + self.tx_bad_status
            + self.rx_id_out_of_range
            + self.rx_id_mismatch
            + self.ring_overflow
    }
}

/// Everything counted by a device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames queued to the backend.
    pub tx_frames: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Frames received and accepted.
    pub rx_frames: u64,
    /// Bytes of those frames.
    pub rx_bytes: u64,
    /// Transmit slots used (a frame of several pages takes several).
    pub tx_slots: u64,
    /// Frames sent with their TCP/UDP checksum left to the backend.
    pub tx_csum_offloaded: u64,
    /// Frames sent for the backend to cut into TCP segments (GSO).
    pub tx_gso_packets: u64,
    /// Transmit responses for extra-info slots (`NETIF_RSP_NULL`).
    pub tx_null_responses: u64,
    /// Received GSO packets.
    pub rx_gso_packets: u64,
    /// Received packets of several slots.
    pub rx_multi_slot: u64,
    /// Extra-info slots received.
    pub rx_extra_slots: u64,
    /// Event-channel notifications we sent.
    pub notifications_sent: u64,
    /// Notifications seen pending on our port by `handle_event`.
    pub notifications_received: u64,
    /// Transmit drops, by reason.
    pub tx_drops: TxDrops,
    /// Receive drops, by reason.
    pub rx_drops: RxDrops,
    /// Protocol violations by the backend.
    pub bad_responses: BadResponses,
    /// Revocations refused because the backend still mapped the grant
    /// (each retried later; the buffer is not reused meanwhile).
    pub revoke_busy: u64,
    /// Times the device disconnected and connected again
    /// ([`Netfront::restart`](crate::Netfront::restart)).
    pub restarts: u64,
}

/// Adds `$other`'s fields to `$this`'s; the destructuring fails to
/// compile when a field is added and not listed.
macro_rules! add_all {
    ($ty:ident, $this:ident, $other:ident, { $($field:ident),* $(,)? }, { $($nested:ident),* $(,)? }) => {{
        let $ty { $($field,)* $($nested,)* } = *$other;
        $($this.$field += $field;)*
        $($this.$nested.add(&$nested);)*
    }};
}

impl TxDrops {
    fn add(&mut self, o: &TxDrops) {
        add_all!(TxDrops, self, o, { bad_length, no_buffer, backend_error, backend_dropped }, {});
    }
}

impl RxDrops {
    fn add(&mut self, o: &RxDrops) {
        add_all!(RxDrops, self, o, {
            error_status, outside_page, oversize, runt, unsupported_flags, truncated_chain, bad_extra, bad_gso,
            bad_csum_blank, busy_grant,
        }, {});
    }
}

impl BadResponses {
    fn add(&mut self, o: &BadResponses) {
        add_all!(BadResponses, self, o, {
            tx_id_out_of_range, tx_not_outstanding, tx_bad_status, rx_id_out_of_range, rx_id_mismatch, ring_overflow,
        }, {});
    }
}

impl Counters {
    /// Adds a later device's counts to these (a restart carries the
    /// counts over).
    pub fn add(&mut self, o: &Counters) {
        add_all!(Counters, self, o, {
            tx_frames, tx_bytes, rx_frames, rx_bytes, tx_slots, tx_csum_offloaded, tx_gso_packets, tx_null_responses,
            rx_gso_packets, rx_multi_slot, rx_extra_slots, notifications_sent, notifications_received, revoke_busy,
            restarts,
        }, { tx_drops, rx_drops, bad_responses });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_counts_every_field() {
        let one = Counters {
            tx_frames: 1,
            rx_bytes: 2,
            restarts: 3,
            tx_drops: TxDrops { backend_dropped: 4, ..TxDrops::default() },
            rx_drops: RxDrops { busy_grant: 5, ..RxDrops::default() },
            bad_responses: BadResponses { ring_overflow: 6, ..BadResponses::default() },
            ..Counters::default()
        };
        let mut sum = one;
        sum.add(&one);
        assert_eq!((sum.tx_frames, sum.rx_bytes, sum.restarts), (2, 4, 6));
        assert_eq!((sum.tx_drops.backend_dropped, sum.rx_drops.busy_grant, sum.bad_responses.ring_overflow), (8, 10, 12));
        assert_eq!(sum.tx_bytes, 0);
    }
}
