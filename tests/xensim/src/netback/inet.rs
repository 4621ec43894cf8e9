//! Internet checksums and TCP/IPv4 segmentation: what dom0 does to an
//! offloaded packet before it reaches a NIC without offloads. Written
//! here (not shared with the drivers) so the two can disagree.

const ETH_HLEN: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// One's-complement sum of big-endian 16-bit words, not yet folded.
fn sum(data: &[u8], mut acc: u64) -> u64 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The IPv4 pseudo header's sum for an L4 segment of `len` bytes.
fn pseudo(ip: &[u8], proto: u8, len: usize) -> u64 {
    sum(&ip[12..20], u64::from(proto) + len as u64)
}

/// An untagged Ethernet frame carrying an unfragmented IPv4 TCP or UDP
/// packet whose L4 header is present (`skb_checksum_setup_ipv4`).
struct L4v4 {
    /// Offset of the L4 header in the frame.
    l4: usize,
    /// Offset of the checksum field in the frame.
    check: usize,
    proto: u8,
    /// IPv4 total length.
    tot_len: usize,
}

/// Why a frame cannot take checksum offload.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum NotL4 {
    Ipv6,
    Unusable(&'static str),
}

fn parse_l4v4(f: &[u8]) -> Result<L4v4, NotL4> {
    if f.len() < ETH_HLEN {
        return Err(NotL4::Unusable("shorter than an Ethernet header"));
    }
    match be16(f, 12) {
        ETHERTYPE_IPV4 => {}
        ETHERTYPE_IPV6 => return Err(NotL4::Ipv6),
        _ => return Err(NotL4::Unusable("neither IPv4 nor IPv6")),
    }
    let ip = &f[ETH_HLEN..];
    if ip.len() < 20 || ip[0] >> 4 != 4 || usize::from(ip[0] & 0xf) * 4 < 20 {
        return Err(NotL4::Unusable("no IPv4 header"));
    }
    let ihl = usize::from(ip[0] & 0xf) * 4;
    if ip.len() < ihl {
        return Err(NotL4::Unusable("IPv4 header cut short"));
    }
    if be16(ip, 6) & 0x3fff != 0 {
        return Err(NotL4::Unusable("an IPv4 fragment"));
    }
    let (hdr, check) = match ip[9] {
        PROTO_TCP => (20, 16),
        PROTO_UDP => (8, 6),
        _ => return Err(NotL4::Unusable("neither TCP nor UDP")),
    };
    let l4 = ETH_HLEN + ihl;
    if f.len() < l4 + hdr {
        return Err(NotL4::Unusable("L4 header cut short"));
    }
    Ok(L4v4 { l4, check: l4 + check, proto: ip[9], tot_len: usize::from(be16(ip, 2)) })
}

/// `skb_checksum_help`: sums from the L4 header to the end of the frame
/// (padding included) over the seed already in the field, and stores the
/// folded complement (0 sent as 0xffff).
fn complete(f: &mut [u8], p: &L4v4) {
    let c = !fold(sum(&f[p.l4..], 0));
    let c = if c == 0 { 0xffff } else { c };
    f[p.check..p.check + 2].copy_from_slice(&c.to_be_bytes());
}

/// What a receiver checks: pseudo header plus L4 bytes up to the IP
/// total length sum to 0xffff.
fn verifies(f: &[u8], p: &L4v4) -> bool {
    let ip = &f[ETH_HLEN..];
    let ihl = usize::from(ip[0] & 0xf) * 4;
    let end = ETH_HLEN + p.tot_len;
    if p.tot_len < ihl || end > f.len() {
        return false;
    }
    fold(sum(&f[p.l4..end], pseudo(ip, p.proto, p.tot_len - ihl))) == 0xffff
}

/// The outcome of checking a tx `csum_blank` frame.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum CsumBlank {
    /// Completed by dom0, the checksum verifies at the receiver.
    Verified,
    /// The field did not hold the pseudo-header sum.
    WrongSeed {
        found: u16,
        want: u16,
    },
    /// The seed is right but the bytes after the IP packet are not zero
    /// or missing (dom0 sums to the end of the frame).
    BadTail,
    NotL4(NotL4),
}

/// Completes a copy of `f` the way dom0 does and checks the result.
pub(super) fn check_csum_blank(f: &[u8]) -> CsumBlank {
    let p = match parse_l4v4(f) {
        Ok(p) => p,
        Err(e) => return CsumBlank::NotL4(e),
    };
    let mut done = f.to_vec();
    complete(&mut done, &p);
    if verifies(&done, &p) {
        return CsumBlank::Verified;
    }
    let ip = &f[ETH_HLEN..];
    let ihl = usize::from(ip[0] & 0xf) * 4;
    let want = fold(pseudo(ip, p.proto, p.tot_len.saturating_sub(ihl)));
    let found = be16(f, p.check);
    if found == want {
        CsumBlank::BadTail
    } else {
        CsumBlank::WrongSeed { found, want }
    }
}

/// The frame with its `csum_blank` checksum completed, or None if it
/// cannot take offload (dom0 drops it).
pub(super) fn completed(f: &[u8]) -> Option<Vec<u8>> {
    let p = parse_l4v4(f).ok()?;
    let mut out = f.to_vec();
    complete(&mut out, &p);
    Some(out)
}

/// TCP/IPv4 segments of at most `mss` payload bytes, as `tcp_gso_segment`
/// and `inet_gso_segment` cut them: headers copied, IP id counting up,
/// sequence numbers advanced, FIN and PSH on the last segment only, CWR
/// on the first only, every checksum computed afresh. None if the frame
/// is not TCP/IPv4 or its payload fits one segment (Linux drops those).
pub(super) fn segment_tcpv4(f: &[u8], mss: u16) -> Option<Vec<Vec<u8>>> {
    let p = parse_l4v4(f).ok()?;
    let ip = &f[ETH_HLEN..];
    let ihl = usize::from(ip[0] & 0xf) * 4;
    let end = ETH_HLEN + p.tot_len;
    if p.proto != PROTO_TCP || end > f.len() || mss == 0 {
        return None;
    }
    let thl = usize::from(f[p.l4 + 12] >> 4) * 4;
    let data = p.l4 + thl;
    if thl < 20 || data > end {
        return None;
    }
    let payload = &f[data..end];
    let mss = usize::from(mss);
    if payload.len() <= mss {
        return None;
    }
    let id0 = be16(ip, 4);
    let seq0 = u32::from_be_bytes(f[p.l4 + 4..p.l4 + 8].try_into().unwrap());
    let count = payload.len().div_ceil(mss);
    let mut out = Vec::with_capacity(count);
    for (i, chunk) in payload.chunks(mss).enumerate() {
        let mut s = Vec::with_capacity(data + chunk.len());
        s.extend_from_slice(&f[..data]);
        s.extend_from_slice(chunk);
        let ipo = ETH_HLEN;
        let tot = (ihl + thl + chunk.len()) as u16;
        s[ipo + 2..ipo + 4].copy_from_slice(&tot.to_be_bytes());
        let id = id0.wrapping_add(i as u16);
        s[ipo + 4..ipo + 6].copy_from_slice(&id.to_be_bytes());
        s[ipo + 10..ipo + 12].fill(0);
        let ip_check = !fold(sum(&s[ipo..ipo + ihl], 0));
        s[ipo + 10..ipo + 12].copy_from_slice(&ip_check.to_be_bytes());
        let seq = seq0.wrapping_add((i * mss) as u32);
        s[p.l4 + 4..p.l4 + 8].copy_from_slice(&seq.to_be_bytes());
        if i + 1 < count {
            s[p.l4 + 13] &= !(TCP_FIN | TCP_PSH);
        }
        if i > 0 {
            s[p.l4 + 13] &= !TCP_CWR;
        }
        s[p.check..p.check + 2].fill(0);
        let l4_len = thl + chunk.len();
        let c = !fold(sum(&s[p.l4..], pseudo(&s[ipo..], PROTO_TCP, l4_len)));
        s[p.check..p.check + 2].copy_from_slice(&c.to_be_bytes());
        out.push(s);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 (no options) + TCP (no options) + payload, with
    /// the pseudo-header seed in the checksum field.
    fn tcp_frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 54];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        f[14] = 0x45;
        f[16..18].copy_from_slice(&((40 + payload.len()) as u16).to_be_bytes());
        f[22] = 64;
        f[23] = PROTO_TCP;
        f[26..30].copy_from_slice(&[10, 0, 0, 2]);
        f[30..34].copy_from_slice(&[10, 0, 0, 1]);
        f[46] = 0x50;
        f[47] = TCP_PSH | 0x10;
        f.extend_from_slice(payload);
        let seed = fold(pseudo(&f[14..], PROTO_TCP, 20 + payload.len()));
        f[50..52].copy_from_slice(&seed.to_be_bytes());
        f
    }

    #[test]
    fn sum_of_odd_length_pads_with_zero() {
        assert_eq!(fold(sum(&[0x12, 0x34, 0x56], 0)), 0x6834);
        assert_eq!(fold(sum(&[0xff, 0xff, 0xff, 0xff], 0)), 0xffff);
    }

    #[test]
    fn right_seed_verifies_and_wrong_seed_is_named() {
        let f = tcp_frame(b"hello");
        assert_eq!(check_csum_blank(&f), CsumBlank::Verified);
        let mut bad = f.clone();
        bad[50] ^= 0x01;
        assert!(matches!(check_csum_blank(&bad), CsumBlank::WrongSeed { .. }));
        let mut padded = f.clone();
        padded.extend_from_slice(&[0, 0, 0]);
        assert_eq!(check_csum_blank(&padded), CsumBlank::Verified);
        padded[60] = 1;
        assert_eq!(check_csum_blank(&padded), CsumBlank::BadTail);
    }

    #[test]
    fn segments_carry_consecutive_sequence_numbers() {
        let f = tcp_frame(&[7u8; 25]);
        let segs = segment_tcpv4(&f, 10).unwrap();
        assert_eq!(segs.len(), 3);
        for (i, s) in segs.iter().enumerate() {
            let seq = u32::from_be_bytes(s[38..42].try_into().unwrap());
            assert_eq!(seq, 10 * i as u32);
            assert_eq!(s[47] & TCP_PSH != 0, i == 2);
            let p = parse_l4v4(s).unwrap();
            assert!(verifies(s, &p), "segment {i}");
        }
        assert_eq!(segment_tcpv4(&f, 25), None, "payload fits one segment");
    }
}
