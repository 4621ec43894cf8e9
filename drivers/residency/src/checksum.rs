//! IPv4, TCP, UDP and ICMP checksums, for frames on the fallback path only.
//!
//! The switch tells the stack to compute and verify no checksum: a frame
//! between co-resident guests crosses memory alone, where nothing corrupts
//! it, and a peer that wanted to send bad data could compute a valid
//! checksum anyway. Frames to and from netfront cross dom0's network stack,
//! so the switch fills in their checksums on the way out and checks them on
//! the way in, as the stack would have.

use smoltcp::wire::{EthernetFrame, EthernetProtocol, Icmpv4Packet, IpAddress, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket};

/// Fills in the checksums of an outgoing IPv4 frame. Anything else, or a
/// frame too short to hold what its headers claim, is left as it is.
pub fn fill(frame: &mut [u8]) {
    fill_with(frame, true);
}

/// [`fill`] but for TCP and UDP checksums, which a device that offloads
/// them completes (netfront: the backend).
pub fn fill_but_l4(frame: &mut [u8]) {
    fill_with(frame, false);
}

fn fill_with(frame: &mut [u8], l4: bool) {
    let Ok(mut eth) = EthernetFrame::new_checked(frame) else { return };
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return;
    }
    let Ok(mut ip) = Ipv4Packet::new_checked(eth.payload_mut()) else { return };
    ip.fill_checksum();
    if ip.more_frags() || ip.frag_offset() != 0 {
        return;
    }
    let (src, dst) = (IpAddress::Ipv4(ip.src_addr()), IpAddress::Ipv4(ip.dst_addr()));
    let protocol = ip.next_header();
    let payload = ip.payload_mut();
    match protocol {
        IpProtocol::Tcp | IpProtocol::Udp if !l4 => {}
        IpProtocol::Tcp => {
            if let Ok(mut tcp) = TcpPacket::new_checked(payload) {
                tcp.fill_checksum(&src, &dst);
            }
        }
        IpProtocol::Udp => {
            if let Ok(mut udp) = UdpPacket::new_checked(payload) {
                udp.fill_checksum(&src, &dst);
            }
        }
        IpProtocol::Icmp => {
            if let Ok(mut icmp) = Icmpv4Packet::new_checked(payload) {
                icmp.fill_checksum();
            }
        }
        _ => {}
    }
}

/// Whether an incoming frame's checksums hold. Frames that are not IPv4,
/// or too malformed to check, pass: the stack rejects those by itself.
pub fn verify(frame: &[u8]) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else { return true };
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return true;
    }
    let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else { return true };
    if !ip.verify_checksum() {
        return false;
    }
    if ip.more_frags() || ip.frag_offset() != 0 {
        return true;
    }
    let (src, dst) = (IpAddress::Ipv4(ip.src_addr()), IpAddress::Ipv4(ip.dst_addr()));
    match ip.next_header() {
        IpProtocol::Tcp => TcpPacket::new_checked(ip.payload()).is_ok_and(|t| t.verify_checksum(&src, &dst)),
        IpProtocol::Udp => UdpPacket::new_checked(ip.payload()).is_ok_and(|u| u.verify_checksum(&src, &dst)),
        IpProtocol::Icmp => Icmpv4Packet::new_checked(ip.payload()).is_ok_and(|i| i.verify_checksum()),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{EthernetAddress, EthernetRepr, IpRepr, Ipv4Address, Ipv4Repr, UdpRepr};

    /// An Ethernet/IPv4/UDP frame emitted without checksums.
    fn udp_frame(payload: &[u8]) -> alloc::vec::Vec<u8> {
        let (src, dst) = (Ipv4Address::new(198, 18, 0, 1), Ipv4Address::new(198, 18, 0, 2));
        let udp = UdpRepr { src_port: 7, dst_port: 9 };
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Udp,
            payload_len: 8 + payload.len(),
            hop_limit: 64,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2; 6]),
            dst_addr: EthernetAddress([4; 6]),
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut frame = vec![0u8; 14 + 20 + 8 + payload.len()];
        let none = ChecksumCapabilities::ignored();
        let mut e = EthernetFrame::new_unchecked(&mut frame[..]);
        eth.emit(&mut e);
        let mut i = Ipv4Packet::new_unchecked(e.payload_mut());
        ip.emit(&mut i, &none);
        let mut u = UdpPacket::new_unchecked(i.payload_mut());
        udp.emit(&mut u, &IpAddress::Ipv4(src), &IpAddress::Ipv4(dst), payload.len(), |b| b.copy_from_slice(payload), &none);
        let _ = IpRepr::Ipv4(ip);
        frame
    }

    #[test]
    fn filled_frames_verify_and_corruption_is_caught() {
        let mut frame = udp_frame(b"hello, netfront");
        fill(&mut frame);
        assert!(verify(&frame));
        for at in [14 + 12, 14 + 20 + 8 + 3] {
            let mut bad = frame.clone();
            bad[at] ^= 0x40;
            assert!(!verify(&bad), "corruption at {at} not caught");
        }
        // Not IPv4, or too short to say: left to the stack.
        assert!(verify(&[0u8; 10]));
        let mut arp = frame.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(verify(&arp));
    }
}
