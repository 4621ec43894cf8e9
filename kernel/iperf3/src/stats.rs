//! Per-stream counters shared by server and client: bytes, UDP sequence /
//! loss / jitter (RFC 1889 A.8, as iperf3 computes them), send pacing, and
//! the UDP datagram header.

/// Microseconds on one monotonic clock, supplied by the caller.
pub type Micros = u64;

/// Counters of one data stream.
#[derive(Clone, Debug, Default)]
pub struct StreamStats {
    /// Bytes moved while the test was running (after omit).
    pub bytes: u64,
    /// Bytes sent before the omit period ended (sender).
    pub bytes_omitted: u64,
    /// Successful reads / writes.
    pub blocks: u64,
    /// Sender: datagrams sent (the next sequence number is `packets + 1`).
    pub packets: u64,
    /// Receiver: highest sequence number seen.
    pub packet_count: u64,
    /// Receiver: datagrams lost (iperf3's `cnt_error`).
    pub errors: u64,
    /// Receiver: datagrams that arrived out of order.
    pub out_of_order: u64,
    /// Receiver: jitter in seconds.
    pub jitter: f64,
    prev_transit: Option<f64>,
    /// Sender: bytes sent since the pacing reference (for the throttle).
    paced_bytes: u64,
}

/// Length of the UDP header for the counter size.
pub fn udp_header_len(counters_64bit: bool) -> usize {
    if counters_64bit {
        16
    } else {
        12
    }
}

/// Writes the UDP header (sec, usec, count) at the front of `buf`.
/// `buf` must be at least `udp_header_len` long.
pub fn write_udp_header(buf: &mut [u8], now: Micros, count: u64, counters_64bit: bool) {
    let sec = (now / 1_000_000) as u32;
    let usec = (now % 1_000_000) as u32;
    buf[0..4].copy_from_slice(&sec.to_be_bytes());
    buf[4..8].copy_from_slice(&usec.to_be_bytes());
    if counters_64bit {
        buf[8..16].copy_from_slice(&count.to_be_bytes());
    } else {
        buf[8..12].copy_from_slice(&(count as u32).to_be_bytes());
    }
}

/// Reads (sent time in µs, sequence number) from a UDP datagram.
pub fn read_udp_header(d: &[u8], counters_64bit: bool) -> Option<(Micros, u64)> {
    if d.len() < udp_header_len(counters_64bit) {
        return None;
    }
    let sec = u64::from(u32::from_be_bytes([d[0], d[1], d[2], d[3]]));
    let usec = u64::from(u32::from_be_bytes([d[4], d[5], d[6], d[7]]));
    let count = if counters_64bit {
        u64::from_be_bytes([d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]])
    } else {
        u64::from(u32::from_be_bytes([d[8], d[9], d[10], d[11]]))
    };
    Some((sec * 1_000_000 + usec.min(999_999), count))
}

impl StreamStats {
    /// Counts `n` received bytes (one read).
    pub fn received(&mut self, n: usize) {
        self.bytes = self.bytes.saturating_add(n as u64);
        self.blocks = self.blocks.saturating_add(1);
    }

    /// Counts `n` sent bytes (one write).
    pub fn sent(&mut self, n: usize) {
        self.bytes = self.bytes.saturating_add(n as u64);
        self.paced_bytes = self.paced_bytes.saturating_add(n as u64);
        self.blocks = self.blocks.saturating_add(1);
    }

    /// Accounts one received UDP datagram: loss, reordering and jitter.
    /// Returns false (and counts nothing) if the header is truncated.
    pub fn udp_received(&mut self, d: &[u8], now: Micros, counters_64bit: bool) -> bool {
        let Some((sent, pc)) = read_udp_header(d, counters_64bit) else {
            return false;
        };
        self.received(d.len());
        if pc > self.packet_count {
            let gap = pc - self.packet_count - 1;
            self.errors = self.errors.saturating_add(gap);
            self.packet_count = pc;
        } else {
            self.out_of_order = self.out_of_order.saturating_add(1);
            self.errors = self.errors.saturating_sub(1);
        }
        // The clocks are not synchronised: only differences of transit count.
        let transit = now.abs_diff(sent) as f64 / 1e6;
        if let Some(prev) = self.prev_transit {
            let d = (transit - prev).abs();
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.prev_transit = Some(transit);
        true
    }

    /// Omit period over: restart counting (iperf3's `reset_stats`).
    pub fn reset_for_omit(&mut self) {
        self.bytes_omitted = self.bytes_omitted.saturating_add(self.bytes);
        self.bytes = 0;
        self.blocks = 0;
        self.jitter = 0.0;
        self.paced_bytes = 0;
    }

    /// Whether a sender at `bandwidth` bit/s (0 = unlimited) may send now,
    /// `elapsed` µs after the pacing reference.
    pub fn may_send(&self, bandwidth: u64, elapsed: Micros) -> bool {
        bandwidth == 0 || u128::from(self.paced_bytes) * 8 * 1_000_000 < u128::from(bandwidth) * u128::from(elapsed)
    }
}

/// iperf3's payload: these digits, repeating.
const PATTERN: &[u8; 10] = b"0123456789";
/// The longest slice [`fill_payload`] copies at once.
const CHUNK: usize = 4096;
/// The pattern written out once, `PATTERN.len()` bytes longer than a chunk
/// so that a chunk can start at any phase of it: a block is then filled by
/// slice copies, not a loop over every byte (as iperf3 prefills its
/// buffer once).
static PREFILLED: [u8; CHUNK + PATTERN.len()] = {
    let mut b = [0u8; CHUNK + PATTERN.len()];
    let mut i = 0;
    while i < b.len() {
        b[i] = PATTERN[i % PATTERN.len()];
        i += 1;
    }
    b
};

/// Fills `buf` with iperf3's repeating payload, continuing at `offset`.
pub fn fill_payload(buf: &mut [u8], offset: u64) {
    let mut phase = (offset % PATTERN.len() as u64) as usize;
    for chunk in buf.chunks_mut(CHUNK) {
        chunk.copy_from_slice(&PREFILLED[phase..phase + chunk.len()]);
        phase = (phase + chunk.len()) % PATTERN.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pattern byte by byte, as iperf3 lays it out.
    fn expected(len: usize, offset: u64) -> alloc::vec::Vec<u8> {
        (0..len as u64).map(|i| PATTERN[((offset % 10 + i) % 10) as usize]).collect()
    }

    #[test]
    fn payload_continues_the_pattern_across_chunks_and_offsets() {
        for len in [0, 1, 9, 10, 11, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7, 128 * 1024] {
            for offset in [0, 1, 5, 9, 10, 12_345, u64::MAX] {
                let mut buf = alloc::vec![0xffu8; len];
                fill_payload(&mut buf, offset);
                assert_eq!(buf, expected(len, offset), "len {len}, offset {offset}");
            }
        }
    }

    #[test]
    fn consecutive_fills_make_one_stream() {
        let mut buf = alloc::vec![0u8; 3 * CHUNK];
        let (a, b) = buf.split_at_mut(CHUNK + 3);
        fill_payload(a, 7);
        fill_payload(b, 7 + (CHUNK as u64 + 3));
        assert_eq!(buf, expected(3 * CHUNK, 7));
    }
}
