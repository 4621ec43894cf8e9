//! How many TCP payload bytes a guest sent, and how many of them it sent
//! again: smoltcp keeps no retransmission count, so a device that is asked
//! to ([`Paths::track_tcp`](crate::Paths::track_tcp)) looks at each frame
//! it transmits. Per flow it keeps the highest sequence number sent; the
//! bytes of a segment below it were sent before. Fed the frames a device
//! receives, the same count is the peer's payload and the part that
//! arrived behind a later byte: sent again after a loss, reordered, or a
//! duplicate.
//!
//! The frames are our own stack's, but parsed with checked views anyway:
//! anything that is not Ethernet/IPv4/TCP with consistent lengths is
//! ignored.

use smoltcp::wire::{IpProtocol, Ipv4Packet, TcpPacket};

/// Ethernet's header (smoltcp's view of it needs its Ethernet feature,
/// which this crate has no other use for): 14 bytes, the type last.
const ETHERNET_HEADER: usize = 14;
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];

/// Flows followed at once; the oldest is forgotten for a new one (its
/// next segment then counts as new).
pub const FLOWS: usize = 16;

/// TCP payload bytes sent while tracking, and the part sent again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpSent {
    pub payload: u64,
    pub retransmitted: u64,
}

/// Source port, destination address and port: a guest's own address is
/// one.
type FlowKey = (u16, [u8; 4], u16);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Flow {
    key: FlowKey,
    /// The sequence number after the last payload byte sent so far.
    high: u32,
}

/// Follows the flows of the frames it is fed (one direction's).
#[derive(Clone, Debug, Default)]
pub struct TcpSentTracker {
    flows: [Option<Flow>; FLOWS],
    /// Where the next new flow goes (round robin: the oldest slot).
    next: usize,
    sent: TcpSent,
}

impl TcpSentTracker {
    pub fn sent(&self) -> TcpSent {
        self.sent
    }

    /// Counts one transmitted frame (a TCP packet of any size, before any
    /// segmentation: each payload byte once).
    pub fn note(&mut self, frame: &[u8]) {
        let Some((key, seq, len, syn)) = segment(frame) else { return };
        if syn {
            // A new connection on the same ports starts a new sequence.
            if let Some(slot) = self.flows.iter_mut().find(|f| f.is_some_and(|f| f.key == key)) {
                *slot = None;
            }
        }
        if len == 0 {
            return;
        }
        let end = seq.wrapping_add(len);
        self.sent.payload += u64::from(len);
        let Some(flow) = self.flows.iter_mut().flatten().find(|f| f.key == key) else {
            self.flows[self.next] = Some(Flow { key, high: end });
            self.next = (self.next + 1) % FLOWS;
            return;
        };
        // Sequence numbers compare modulo 2^32 (RFC 9293 3.4): `a` is
        // before `b` when b - a, as a signed number, is positive.
        let before = |a: u32, b: u32| (b.wrapping_sub(a) as i32) > 0;
        let again = if !before(flow.high, end) {
            len
        } else if before(seq, flow.high) {
            flow.high.wrapping_sub(seq)
        } else {
            0
        };
        self.sent.retransmitted += u64::from(again);
        if before(flow.high, end) {
            flow.high = end;
        }
    }
}

/// (flow key, sequence number, payload length, SYN) of an
/// Ethernet/IPv4/TCP frame whose lengths add up.
fn segment(frame: &[u8]) -> Option<(FlowKey, u32, u32, bool)> {
    let ethertype = frame.get(ETHERNET_HEADER - 2..ETHERNET_HEADER)?;
    if ethertype != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(&frame[ETHERNET_HEADER..]).ok()?;
    if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    let len = ip.payload().len().checked_sub(usize::from(tcp.header_len()))?;
    let key = (tcp.src_port(), ip.dst_addr().octets(), tcp.dst_port());
    Some((key, tcp.seq_number().0 as u32, u32::try_from(len).ok()?, tcp.syn()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use smoltcp::wire::{Ipv4Address, Ipv4Repr, TcpControl, TcpRepr, TcpSeqNumber};

    /// A frame of `len` payload bytes at `seq`, from port `src` to 10.0.0.2:`dst`.
    fn frame(src: u16, dst: u16, seq: u32, len: usize) -> Vec<u8> {
        frame_with(src, dst, seq, len, TcpControl::None)
    }

    fn frame_with(src: u16, dst: u16, seq: u32, len: usize, control: TcpControl) -> Vec<u8> {
        let payload = vec![0xa5; len];
        let tcp = TcpRepr {
            src_port: src,
            dst_port: dst,
            control,
            seq_number: TcpSeqNumber(seq as i32),
            ack_number: None,
            window_len: 1024,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &payload,
        };
        let ip = Ipv4Repr {
            src_addr: Ipv4Address::new(10, 0, 0, 1),
            dst_addr: Ipv4Address::new(10, 0, 0, 2),
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let mut buf = vec![0u8; ETHERNET_HEADER + ip.buffer_len() + tcp.buffer_len()];
        buf[12..14].copy_from_slice(&ETHERTYPE_IPV4);
        let mut p = Ipv4Packet::new_unchecked(&mut buf[ETHERNET_HEADER..]);
        ip.emit(&mut p, &Default::default());
        let (src_addr, dst_addr) = (ip.src_addr, ip.dst_addr);
        let mut t = TcpPacket::new_unchecked(p.payload_mut());
        tcp.emit(&mut t, &src_addr.into(), &dst_addr.into(), &Default::default());
        buf
    }

    fn sent(frames: &[Vec<u8>]) -> TcpSent {
        let mut t = TcpSentTracker::default();
        frames.iter().for_each(|f| t.note(f));
        t.sent()
    }

    #[test]
    fn new_bytes_once_and_what_is_sent_again() {
        let s = sent(&[frame(1, 9, 100, 1000), frame(1, 9, 1100, 1000), frame(1, 9, 100, 1000), frame(1, 9, 2100, 10)]);
        assert_eq!(s, TcpSent { payload: 3010, retransmitted: 1000 });
        // A segment that overlaps the highest byte sent: only the overlap.
        assert_eq!(sent(&[frame(1, 9, 0, 100), frame(1, 9, 50, 100)]), TcpSent { payload: 200, retransmitted: 50 });
        // Pure ACKs and other protocols count nothing.
        assert_eq!(sent(&[frame(1, 9, 0, 0), vec![0u8; 60], frame(1, 9, 0, 0)[..40].to_vec()]), TcpSent::default());
    }

    #[test]
    fn flows_are_apart_and_sequence_numbers_wrap() {
        let s = sent(&[frame(1, 9, 500, 100), frame(2, 9, 0, 100), frame(1, 9, 500, 100), frame(1, 7, 500, 100)]);
        assert_eq!(s, TcpSent { payload: 400, retransmitted: 100 });
        let top = u32::MAX - 49;
        let s = sent(&[frame(1, 9, top, 100), frame(1, 9, 50, 100), frame(1, 9, top, 100), frame(1, 9, 100, 10)]);
        assert_eq!(s, TcpSent { payload: 310, retransmitted: 110 });
    }

    #[test]
    fn a_syn_starts_the_flow_again() {
        let s = sent(&[
            frame(1, 9, 5000, 100),
            frame_with(1, 9, 100, 0, TcpControl::Syn),
            frame(1, 9, 101, 100),
            frame(1, 9, 101, 100),
        ]);
        assert_eq!(s, TcpSent { payload: 300, retransmitted: 100 });
    }

    #[test]
    fn the_oldest_flow_is_forgotten_past_the_cap() {
        let mut t = TcpSentTracker::default();
        for port in 0..=FLOWS as u16 {
            t.note(&frame(port, 9, 0, 10));
        }
        // Port 0 was forgotten: its resend counts as new; port 1 was not.
        t.note(&frame(0, 9, 0, 10));
        t.note(&frame(2, 9, 0, 10));
        assert_eq!(t.sent(), TcpSent { payload: 10 * (FLOWS as u64 + 3), retransmitted: 10 });
    }
}
