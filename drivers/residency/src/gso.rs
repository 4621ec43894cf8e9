//! Segmentation of large outgoing TCP frames, in software.
//!
//! The stack builds TCP packets of up to 64 KiB (segmentation offload) or
//! of the channels' large MTU. A path that cannot carry one whole, and
//! cannot have it cut for us (netfront without GSO, a channel with a
//! smaller MTU), gets it cut here as a NIC would: same headers, sequence
//! numbers and IPv4 identifications advanced, FIN and PSH on the last
//! piece only. Checksums are the caller's business: channel frames need
//! none, netfront's may be offloaded.

use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpPacket};

/// The headers of a TCP/IPv4 frame that can be cut: their length, and the
/// frame's end (from the IPv4 total length).
pub fn tcp_headers(frame: &[u8]) -> Option<(usize, usize)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    let headers = 14 + usize::from(ip.header_len()) + usize::from(tcp.header_len());
    let end = 14 + usize::from(ip.total_len());
    (headers <= end && end <= frame.len()).then_some((headers, end))
}

/// Cuts `frame` (Ethernet, IPv4, TCP) into frames of at most `max_frame`
/// bytes and at most `mss` bytes of payload each, built in `buf` and
/// handed to `out` (IPv4 and TCP checksums not filled in). False, with
/// nothing handed out, for anything else: not TCP over IPv4, an IPv4
/// fragment, headers that leave no room in `max_frame`, or lengths that
/// do not add up.
pub fn segment(
    frame: &[u8],
    max_frame: usize,
    mss: usize,
    buf: &mut alloc::vec::Vec<u8>,
    mut out: impl FnMut(&mut [u8]),
) -> bool {
    let Some((headers, end)) = tcp_headers(frame) else { return false };
    if headers >= max_frame || mss == 0 {
        return false;
    }
    let ip_hl = usize::from(Ipv4Packet::new_unchecked(&frame[14..]).header_len());
    let ip = Ipv4Packet::new_unchecked(&frame[14..end]);
    let tcp = TcpPacket::new_unchecked(&frame[14 + ip_hl..end]);
    let (seq, ident, fin, psh) = (tcp.seq_number(), ip.ident(), tcp.fin(), tcp.psh());
    let mss = mss.min(max_frame - headers);
    let payload = &frame[headers..end];
    let pieces = payload.len().div_ceil(mss).max(1);
    buf.resize(max_frame, 0);
    for i in 0..pieces {
        let chunk = &payload[(i * mss).min(payload.len())..((i + 1) * mss).min(payload.len())];
        let n = headers + chunk.len();
        buf[..headers].copy_from_slice(&frame[..headers]);
        buf[headers..n].copy_from_slice(chunk);
        let last = i + 1 == pieces;
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut buf[14..n]);
            ip.set_total_len((n - 14) as u16);
            ip.set_ident(ident.wrapping_add(i as u16));
            let mut tcp = TcpPacket::new_unchecked(&mut buf[14 + ip_hl..n]);
            tcp.set_seq_number(seq + i * mss);
            tcp.set_fin(last && fin);
            tcp.set_psh(last && psh);
        }
        out(&mut buf[..n]);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum;
    use alloc::vec;
    use alloc::vec::Vec;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{EthernetAddress, EthernetRepr, IpAddress, Ipv4Address, Ipv4Repr, TcpControl, TcpRepr, TcpSeqNumber};

    fn tcp_frame(payload: &[u8], control: TcpControl) -> Vec<u8> {
        let (src, dst) = (Ipv4Address::new(198, 18, 0, 1), Ipv4Address::new(198, 18, 0, 2));
        let mut tcp = TcpRepr {
            src_port: 40000,
            dst_port: 9,
            control,
            seq_number: TcpSeqNumber(0x7fff_fff0),
            ack_number: Some(TcpSeqNumber(77)),
            window_len: 1000,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        };
        tcp.window_len = 4096;
        let ip =
            Ipv4Repr { src_addr: src, dst_addr: dst, next_header: IpProtocol::Tcp, payload_len: tcp.buffer_len(), hop_limit: 64 };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2; 6]),
            dst_addr: EthernetAddress([4; 6]),
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut frame = vec![0u8; 14 + 20 + tcp.buffer_len()];
        let caps = ChecksumCapabilities::default();
        let mut e = EthernetFrame::new_unchecked(&mut frame[..]);
        eth.emit(&mut e);
        let mut i = Ipv4Packet::new_unchecked(e.payload_mut());
        ip.emit(&mut i, &caps);
        let mut t = TcpPacket::new_unchecked(i.payload_mut());
        tcp.emit(&mut t, &IpAddress::Ipv4(src), &IpAddress::Ipv4(dst), &caps);
        frame
    }

    #[test]
    fn a_large_segment_becomes_standard_frames_that_add_up() {
        let payload: Vec<u8> = (0..9000u32).map(|i| (i * 7) as u8).collect();
        let frame = tcp_frame(&payload, TcpControl::Fin);
        let mut pieces = Vec::new();
        let mut buf = Vec::new();
        assert!(segment(&frame, 1514, usize::MAX, &mut buf, |f| {
            checksum::fill(f);
            pieces.push(f.to_vec())
        }));
        assert_eq!(pieces.len(), 9000usize.div_ceil(1460));
        let mut joined = Vec::new();
        for (i, f) in pieces.iter().enumerate() {
            assert!(f.len() <= 1514);
            assert!(checksum::verify(f), "piece {i} checksums");
            let eth = EthernetFrame::new_checked(&f[..]).unwrap();
            let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
            let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
            // Sequence numbers follow the bytes (across the 2^31 wrap here).
            assert_eq!(tcp.seq_number(), TcpSeqNumber(0x7fff_fff0) + joined.len());
            assert_eq!(tcp.fin(), i + 1 == pieces.len(), "FIN on the last piece only");
            assert_eq!(tcp.ack_number(), TcpSeqNumber(77));
            joined.extend_from_slice(tcp.payload());
        }
        assert_eq!(joined, payload);
    }

    #[test]
    fn pieces_follow_the_segment_size_asked_for() {
        let payload: Vec<u8> = (0..5000u32).map(|i| (i * 3) as u8).collect();
        let frame = tcp_frame(&payload, TcpControl::Psh);
        let (mut sizes, mut joined, mut buf) = (Vec::new(), Vec::new(), Vec::new());
        assert!(segment(&frame, 9014, 1448, &mut buf, |f| {
            let (headers, end) = tcp_headers(f).unwrap();
            sizes.push(end - headers);
            joined.extend_from_slice(&f[headers..end]);
        }));
        assert_eq!(sizes, [1448, 1448, 1448, 656]);
        assert_eq!(joined, payload);
        // The frame size still caps what the segment size allows.
        let mut n = 0;
        assert!(segment(&frame, 1000, 1448, &mut buf, |f| {
            assert!(f.len() <= 1000);
            n += 1;
        }));
        assert_eq!(n, 5000usize.div_ceil(1000 - 54));
    }

    #[test]
    fn only_tcp_over_ipv4_is_cut() {
        let mut buf = Vec::new();
        let frame = tcp_frame(&[1; 3000], TcpControl::None);
        let mut udp = frame.clone();
        udp[14 + 9] = 17;
        assert!(!segment(&udp, 1514, usize::MAX, &mut buf, |_| panic!("UDP cut")));
        let mut arp = frame.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!segment(&arp, 1514, usize::MAX, &mut buf, |_| panic!("ARP cut")));
        // Shorter than its IPv4 header says.
        assert!(!segment(&frame[..frame.len() - 10], 1514, usize::MAX, &mut buf, |_| panic!("truncated frame cut")));
    }
}
