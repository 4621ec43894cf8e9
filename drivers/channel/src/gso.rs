//! Segmentation of large outgoing TCP frames for the fallback path.
//!
//! With channels configured for frames larger than Ethernet's, the stack
//! sees one interface with the large MTU and builds TCP segments to match
//! (to peers that accept them). A frame the fallback cannot carry is cut
//! here into standard frames, as a NIC's segmentation offload would: same
//! headers, sequence numbers and IPv4 identifications advanced, FIN and
//! PSH on the last piece only, checksums filled in.

use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpPacket};

use crate::checksum;

/// Cuts `frame` (Ethernet, IPv4, TCP) into frames of at most `max_frame`
/// bytes, each built in `buf` and handed to `out`. False, with nothing
/// handed out, for anything else: not TCP over IPv4, an IPv4 fragment,
/// headers longer than `max_frame`, or lengths that do not add up.
pub fn segment(frame: &[u8], max_frame: usize, buf: &mut alloc::vec::Vec<u8>, mut out: impl FnMut(&[u8])) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else { return false };
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return false;
    }
    let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else { return false };
    if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
        return false;
    }
    let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else { return false };
    let (ip_hl, tcp_hl) = (usize::from(ip.header_len()), usize::from(tcp.header_len()));
    let headers = 14 + ip_hl + tcp_hl;
    let end = 14 + usize::from(ip.total_len());
    if headers >= max_frame || end > frame.len() || headers > end {
        return false;
    }
    let (seq, ident, fin, psh) = (tcp.seq_number(), ip.ident(), tcp.fin(), tcp.psh());
    let mss = max_frame - headers;
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
            if !last {
                tcp.set_fin(false);
                tcp.set_psh(false);
            } else {
                tcp.set_fin(fin);
                tcp.set_psh(psh);
            }
        }
        checksum::fill(&mut buf[..n]);
        out(&buf[..n]);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetRepr, IpAddress, Ipv4Address, Ipv4Repr, TcpControl, TcpRepr, TcpSeqNumber,
    };

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
        let ip = Ipv4Repr { src_addr: src, dst_addr: dst, next_header: IpProtocol::Tcp, payload_len: tcp.buffer_len(), hop_limit: 64 };
        let eth = EthernetRepr { src_addr: EthernetAddress([2; 6]), dst_addr: EthernetAddress([4; 6]), ethertype: EthernetProtocol::Ipv4 };
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
        assert!(segment(&frame, 1514, &mut buf, |f| pieces.push(f.to_vec())));
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
    fn only_tcp_over_ipv4_is_cut() {
        let mut buf = Vec::new();
        let frame = tcp_frame(&[1; 3000], TcpControl::None);
        let mut udp = frame.clone();
        udp[14 + 9] = 17;
        assert!(!segment(&udp, 1514, &mut buf, |_| panic!("UDP cut")));
        let mut arp = frame.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!segment(&arp, 1514, &mut buf, |_| panic!("ARP cut")));
        // Shorter than its IPv4 header says.
        assert!(!segment(&frame[..frame.len() - 10], 1514, &mut buf, |_| panic!("truncated frame cut")));
    }
}
