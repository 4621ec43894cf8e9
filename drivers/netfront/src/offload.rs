//! The checksum work of checksum offload, on Ethernet/IPv4 frames.
//!
//! With `NETTXF_csum_blank` the TCP or UDP checksum field must hold the
//! pseudo-header sum, not inverted: netback leaves the field alone and
//! whoever completes the checksum (dom0's stack, a NIC) sums from the L4
//! header on, field included (Linux `skb_checksum_setup` and
//! `skb_checksum_help`). The IPv4 header checksum is never offloaded.

use smoltcp::wire::{EthernetFrame, IpProtocol, Ipv4Packet};

/// Where a frame's L4 checksum lives, for an unfragmented IPv4 TCP or UDP
/// frame whose headers are all there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L4 {
    /// Offset of the L4 header in the frame.
    pub start: usize,
    /// Length of the L4 header and payload.
    pub len: usize,
    /// Length of the L4 header.
    pub header: usize,
    /// Offset of the checksum field.
    pub field: usize,
    pub protocol: IpProtocol,
}

const ETH_HEADER: usize = 14;
/// The most header bytes a frame can have before its payload: Ethernet,
/// IPv4 and TCP with all their options.
pub const HEADERS_MAX: usize = ETH_HEADER + 60 + 60;

/// The frame's L4 checksum, if it is one a backend may complete: IPv4
/// without fragmentation, TCP with its whole header or UDP with its
/// header, within the frame.
pub fn l4(frame: &[u8]) -> Option<L4> {
    l4_in_headers(frame, frame.len())
}

/// [`l4`] for a frame of `frame_len` bytes of which `head` holds the
/// first: every header must be in `head`.
pub fn l4_in_headers(head: &[u8], frame_len: usize) -> Option<L4> {
    if head.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = head.get(ETH_HEADER..ETH_HEADER + 20)?;
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    // More-fragments or a fragment offset: not a whole datagram.
    let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
    let end = ETH_HEADER + total;
    if ip[0] >> 4 != 4 || ihl < 20 || total < ihl || end > frame_len || fragment {
        return None;
    }
    let start = ETH_HEADER + ihl;
    let protocol = IpProtocol::from(ip[9]);
    let (field, header) = match protocol {
        IpProtocol::Tcp => (start + 16, usize::from(*head.get(start + 12)? >> 4) * 4),
        IpProtocol::Udp => (start + 6, 8),
        _ => return None,
    };
    let fits = header >= 8 && start + header <= end && start + header <= head.len();
    (fits && (protocol != IpProtocol::Tcp || header >= 20)).then_some(L4 { start, len: end - start, header, field, protocol })
}

/// The one's-complement sum of `data` (as big-endian 16-bit words) added
/// to `sum`, not folded.
fn add(mut sum: u32, data: &[u8]) -> u32 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The pseudo-header sum of `l4` in `frame` (folded, not inverted).
fn pseudo(frame: &[u8], l4: &L4) -> u32 {
    let src_dst = &frame[ETH_HEADER + 12..ETH_HEADER + 20];
    add(0, src_dst) + u32::from(u8::from(l4.protocol)) + l4.len as u32
}

/// Computes the IPv4 header checksum and writes the pseudo-header sum into
/// the L4 checksum field, for a backend to complete. False (frame left as
/// it is) if the frame is not one whose checksum can be offloaded.
pub fn seed(frame: &mut [u8]) -> bool {
    let Some(l4) = l4(frame) else { return false };
    fill_ip_header(frame);
    let seed = fold(pseudo(frame, &l4));
    frame[l4.field..l4.field + 2].copy_from_slice(&seed.to_be_bytes());
    true
}

/// Completes a seeded frame's L4 checksum, as a backend would; false if
/// the frame is not one that can carry a blank checksum.
pub fn complete(frame: &mut [u8]) -> bool {
    let Some(l4) = l4(frame) else { return false };
    let sum = add(0, &frame[l4.start..l4.start + l4.len]);
    let mut check = !fold(sum);
    if l4.protocol == IpProtocol::Udp && check == 0 {
        check = 0xffff;
    }
    frame[l4.field..l4.field + 2].copy_from_slice(&check.to_be_bytes());
    true
}

/// Computes every checksum of an IPv4 TCP or UDP frame in software; false
/// if it is not such a frame.
pub fn fill(frame: &mut [u8]) -> bool {
    seed(frame) && complete(frame)
}

fn fill_ip_header(frame: &mut [u8]) {
    if let Ok(mut eth) = EthernetFrame::new_checked(&mut frame[..]) {
        if let Ok(mut ip) = Ipv4Packet::new_checked(eth.payload_mut()) {
            ip.fill_checksum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{IpAddress, Ipv4Address, TcpPacket, UdpPacket};

    fn frame(protocol: IpProtocol, l4_len: usize) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + l4_len];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((20 + l4_len) as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = u8::from(protocol);
        ip[12..16].copy_from_slice(&[198, 18, 0, 1]);
        ip[16..20].copy_from_slice(&[198, 18, 0, 2]);
        for (i, b) in f[34..].iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        if protocol == IpProtocol::Tcp {
            if let Some(b) = f.get_mut(34 + 12) {
                *b = 5 << 4;
            }
        } else {
            f[34 + 4..34 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        }
        f
    }

    fn verifies(f: &[u8]) -> bool {
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        let (s, d) = (IpAddress::Ipv4(ip.src_addr()), IpAddress::Ipv4(ip.dst_addr()));
        let _ = ChecksumCapabilities::default();
        ip.verify_checksum()
            && match ip.next_header() {
                IpProtocol::Tcp => TcpPacket::new_checked(ip.payload()).unwrap().verify_checksum(&s, &d),
                _ => UdpPacket::new_checked(ip.payload()).unwrap().verify_checksum(&s, &d),
            }
    }

    #[test]
    fn a_seeded_frame_completed_as_a_backend_would_verifies() {
        for (protocol, len) in [(IpProtocol::Tcp, 20), (IpProtocol::Tcp, 1481), (IpProtocol::Udp, 8), (IpProtocol::Udp, 977)] {
            let mut f = frame(protocol, len);
            assert!(!verifies(&f));
            assert!(seed(&mut f), "{protocol} {len}");
            assert!(complete(&mut f));
            assert!(verifies(&f), "{protocol} {len}");
            let mut g = frame(protocol, len);
            assert!(fill(&mut g));
            assert_eq!(f, g);
        }
    }

    #[test]
    fn the_seed_is_the_uninverted_pseudo_header_sum() {
        let mut f = frame(IpProtocol::Tcp, 20);
        assert!(seed(&mut f));
        // 198.18.0.1 + 198.18.0.2 as words, protocol 6, length 20.
        let want = fold(0xc612 + 0x0001 + 0xc612 + 0x0002 + 6 + 20);
        assert_eq!(u16::from_be_bytes([f[34 + 16], f[34 + 17]]), want);
        let _ = Ipv4Address::new(0, 0, 0, 0);
    }

    #[test]
    fn only_whole_unfragmented_tcp_and_udp_over_ipv4_qualify() {
        let f = frame(IpProtocol::Tcp, 20);
        assert!(l4(&f).is_some());
        assert_eq!(l4(&f[..14 + 20 + 19]), None, "TCP header cut short");
        let mut short = frame(IpProtocol::Tcp, 10);
        assert!(!seed(&mut short), "a TCP header cannot fit in 10 bytes");
        assert_eq!(l4(&frame(IpProtocol::Icmp, 8)), None);
        let mut frag = frame(IpProtocol::Udp, 8);
        frag[14 + 6] = 0x20; // more fragments
        assert_eq!(l4(&frag), None);
        let mut arp = frame(IpProtocol::Udp, 8);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(l4(&arp), None);
        let mut long_tcp = frame(IpProtocol::Tcp, 24);
        long_tcp[34 + 12] = 15 << 4; // a 60-byte header in 24 bytes
        assert_eq!(l4(&long_tcp), None);
    }
}
