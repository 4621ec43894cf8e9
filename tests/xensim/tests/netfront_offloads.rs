//! netfront's scatter-gather, checksum offload and GSO against the fake
//! netback, which parses and lays out packets as Linux 6.1's does, and a
//! backend that breaks the multi-slot protocol in every way netif.h leaves
//! open.

mod support;

use netfront::{Config, Offloads, RxChecksum, TxMeta};
use smoltcp::iface::{Config as IfConfig, Interface, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};
use support::vif::{world, world_with, Nf, World};
use xensim::{Netback, NetbackFault, NetbackFeatures, RxPacket};

/// An Ethernet/IPv4/TCP frame with `payload` bytes, checksums not filled
/// in (what a stack with checksum offload builds).
fn tcp_frame(payload: usize, seq: u32) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 20 + payload];
    f[..6].copy_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]);
    f[6..12].copy_from_slice(&support::vif::MAC);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let len = (f.len() - 14) as u16;
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&len.to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&[10, 0, 0, 2]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 1]);
    let tcp = &mut f[34..54];
    tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&9u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x18; // PSH, ACK
    tcp[14..16].copy_from_slice(&8192u16.to_be_bytes());
    for (i, b) in f[54..].iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[1];
    }
    f
}

fn verifies(frame: &[u8]) -> bool {
    use smoltcp::wire::{Ipv4Packet, TcpPacket};
    let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    let (s, d) = (IpAddress::Ipv4(ip.src_addr()), IpAddress::Ipv4(ip.dst_addr()));
    ip.verify_checksum() && TcpPacket::new_checked(ip.payload()).unwrap().verify_checksum(&s, &d)
}

#[test]
fn a_60k_tcp_packet_goes_out_as_one_gso_packet_the_backend_completes() {
    let mut w = world();
    let mut nf = w.connect();
    let n = nf.negotiated();
    assert_eq!((n.tx, n.rx), (Offloads::ALL, Offloads::ALL));
    assert_eq!(nf.max_tx_frame(), 0xffff);
    let frame = tcp_frame(60_000, 7);
    nf.send(&frame, TxMeta { csum: true, gso_size: Some(1448) }).unwrap();
    w.pump(&mut nf);
    let packets = w.nb.take_tx_packets();
    assert_eq!(packets.len(), 1);
    let p = &packets[0];
    assert_eq!(p.slots, frame.len().div_ceil(4096));
    assert!(p.csum_blank && p.data_validated);
    assert_eq!(p.gso.map(|g| (g.size, g.kind)), Some((1448, 1)));
    assert_eq!(p.data[54..], frame[54..], "payload intact");
    let segments = p.segment();
    assert_eq!(segments.len(), 60_000usize.div_ceil(1448));
    assert!(segments.iter().all(|s| s.len() <= 1514 && verifies(s)), "each segment's checksums hold");
    let stats = w.nb.stats();
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
    assert_eq!(stats.tx_gso_packets, 1);
    assert!(stats.tx_csum_completed >= 1, "the seed netfront wrote completes to a valid checksum");
    let c = nf.counters();
    assert_eq!((c.tx_gso_packets, c.tx_csum_offloaded, c.tx_slots), (1, 1, p.slots as u64));
    // Every slot answered (the extra with a NULL response), every buffer back.
    assert_eq!(nf.tx_in_flight(), 0);
    assert_eq!(c.tx_null_responses, 1);
    w.shutdown(nf);
    w.finish();
}

#[test]
fn out_of_order_answers_to_the_slots_of_a_packet_free_every_buffer() {
    let mut w = world();
    let mut nf = w.connect();
    w.nb.set_tx_reverse_responses(true);
    for i in 0..20 {
        nf.send(&tcp_frame(30_000 + i * 1000, i as u32), TxMeta { csum: true, gso_size: Some(1448) }).unwrap();
        w.pump(&mut nf);
    }
    assert_eq!(w.nb.take_tx_packets().len(), 20);
    assert_eq!(nf.tx_in_flight(), 0);
    assert_eq!(nf.counters().bad_responses.total(), 0);
    assert!(w.nb.stats().errors.is_empty(), "{:?}", w.nb.stats().errors);
    w.shutdown(nf);
    w.finish();
}

#[test]
fn without_gso_a_large_frame_is_refused_and_small_ones_use_no_extra() {
    let mut w = world_with(NetbackFeatures { sg: true, gso_tcpv4: false, csum_offload: true });
    let mut nf = w.connect();
    assert_eq!(nf.negotiated().tx, Offloads { sg: true, csum: true, gso: false });
    let big = tcp_frame(9000, 1);
    assert!(nf.send(&big, TxMeta { csum: true, gso_size: Some(1448) }).is_err(), "nobody would cut it");
    assert_eq!(nf.counters().tx_drops.bad_length, 1);
    nf.send(&tcp_frame(1400, 2), TxMeta { csum: true, gso_size: None }).unwrap();
    w.pump(&mut nf);
    let p = w.nb.take_tx_packets();
    assert_eq!(p.len(), 1);
    assert!(p[0].gso.is_none() && p[0].csum_blank);
    assert!(w.nb.stats().errors.is_empty(), "{:?}", w.nb.stats().errors);
    w.shutdown(nf);
    w.finish();
}

#[test]
fn with_offloads_off_frames_carry_full_checksums_and_one_slot() {
    let mut w = world();
    let mut nf = w.connect_with(Config { offloads: Offloads::NONE, ..Config::default() });
    assert_eq!(nf.negotiated().tx, Offloads::NONE);
    let f = w.nb.frontend_features().unwrap();
    assert!(!f.sg && !f.gso_tcpv4 && f.no_csum_offload);
    // Asked to leave the checksum to the backend, netfront computes it.
    nf.send(&tcp_frame(1000, 3), TxMeta { csum: true, gso_size: None }).unwrap();
    w.pump(&mut nf);
    let p = w.nb.take_tx_packets();
    assert!(!p[0].csum_blank && p[0].slots == 1 && verifies(&p[0].data));
    assert!(nf.send(&tcp_frame(2000, 4), TxMeta::default()).is_err(), "1514 bytes at most");
    w.shutdown(nf);
    w.finish();
}

#[test]
fn a_60k_gso_packet_arrives_whole_with_what_dom0_said() {
    let mut w = world();
    let mut nf = w.connect();
    let mut data = tcp_frame(60_000, 9);
    assert!(netfront::offload::seed(&mut data));
    w.nb.inject_rx_packet(RxPacket { data: data.clone(), csum_blank: true, data_validated: true, gso_size: Some(1448) });
    w.pump(&mut nf);
    let mut got = Vec::new();
    let meta = nf.receive_into(&mut got).expect("the packet");
    assert_eq!(got, data);
    assert_eq!(meta.checksum, RxChecksum::Blank);
    assert_eq!(meta.gso_size, Some(1448));
    let c = nf.counters();
    assert_eq!((c.rx_gso_packets, c.rx_multi_slot, c.rx_extra_slots), (1, 1, 1));
    // A plain frame after it, and a validated one.
    w.nb.inject_rx(tcp_frame(100, 10));
    w.nb.inject_rx_packet(RxPacket { data: tcp_frame(200, 11), csum_blank: false, data_validated: true, gso_size: None });
    w.pump(&mut nf);
    assert_eq!(nf.receive_into(&mut got).unwrap().checksum, RxChecksum::Unverified);
    assert_eq!(got, tcp_frame(100, 10));
    assert_eq!(nf.receive_into(&mut got).unwrap().checksum, RxChecksum::Validated);
    assert!(w.nb.stats().errors.is_empty(), "{:?}", w.nb.stats().errors);
    w.shutdown(nf);
    w.finish();
}

/// A plain frame and a GSO packet go through after whatever came before.
fn still_receives(w: &World, nf: &mut Nf, seq: u32) {
    while nf.poll_rx().is_some() {}
    let mut big = tcp_frame(20_000, seq);
    assert!(netfront::offload::seed(&mut big));
    w.nb.inject_rx(tcp_frame(300, seq + 1));
    w.nb.inject_rx_packet(RxPacket { data: big.clone(), csum_blank: true, data_validated: true, gso_size: Some(1448) });
    for _ in 0..3 {
        w.pump(nf);
    }
    assert_eq!(nf.poll_rx(), Some(tcp_frame(300, seq + 1)), "plain frame after the fault");
    assert_eq!(nf.poll_rx(), Some(big), "GSO packet after the fault");
    assert!(nf.is_up());
}

#[test]
fn hostile_chains_are_dropped_counted_and_survived() {
    let mut w = world();
    let mut nf = w.connect();
    still_receives(&w, &mut nf, 0);
    type Case = (NetbackFault, Option<u16>, fn(&netfront::Counters) -> u64);
    let cases: &[Case] = &[
        // A chain longer than any packet (and past 64 KiB).
        (NetbackFault::RxChainNeverEnds(40), None, |c| c.rx_drops.oversize),
        // A chain still open when the published responses run out.
        (NetbackFault::RxMoreDataOnLast, None, |c| c.rx_drops.truncated_chain),
        (NetbackFault::RxChainNeverEnds(5), None, |c| c.rx_drops.truncated_chain),
        // Extras that never end: the second GSO extra is already one too many.
        (NetbackFault::RxExtraMoreForever(6), Some(1448), |c| c.rx_drops.bad_extra),
        // GSO sizes that cut nothing, or nothing at all.
        (NetbackFault::RxGsoSize(0), Some(1448), |c| c.rx_drops.bad_gso),
        (NetbackFault::RxGsoSize(30_000), Some(1448), |c| c.rx_drops.bad_gso),
        (NetbackFault::RxGsoType(2), Some(1448), |c| c.rx_drops.bad_gso),
        (NetbackFault::RxGsoType(9), Some(1448), |c| c.rx_drops.bad_gso),
        // Extras of types we never asked for.
        (NetbackFault::RxExtraType(0), Some(1448), |c| c.rx_drops.bad_extra),
        (NetbackFault::RxExtraType(2), Some(1448), |c| c.rx_drops.bad_extra),
        (NetbackFault::RxExtraType(4), Some(1448), |c| c.rx_drops.bad_extra),
        (NetbackFault::RxExtraType(9), Some(1448), |c| c.rx_drops.bad_extra),
        // csum_blank on a frame that cannot hold a TCP checksum.
        (NetbackFault::RxCsumBlankShort, None, |c| c.rx_drops.bad_csum_blank),
        // A slot that reaches past its page, an error in the middle.
        (NetbackFault::RxSlotOutsidePage, None, |c| c.rx_drops.outside_page),
        (NetbackFault::RxStatusInChain(-1), None, |c| c.rx_drops.error_status),
        (NetbackFault::RxStatusInChain(0), None, |c| c.rx_drops.runt),
    ];
    for (i, &(fault, gso, count)) in cases.iter().enumerate() {
        let before = nf.counters();
        let frames_before = before.rx_frames;
        let mut data = tcp_frame(12_000, 1000 + i as u32);
        assert!(netfront::offload::seed(&mut data));
        w.nb.push_fault(fault);
        w.nb.inject_rx_packet(RxPacket { data, csum_blank: true, data_validated: true, gso_size: gso });
        w.pump(&mut nf);
        assert_eq!(nf.poll_rx(), None, "case {i} ({fault:?}): nothing handed up");
        let after = nf.counters();
        assert_eq!(count(&after), count(&before) + 1, "case {i} ({fault:?}) counted: {:?}", after.rx_drops);
        assert_eq!(after.rx_frames, frames_before, "case {i}");
        still_receives(&w, &mut nf, 100 * (i as u32 + 1));
    }
    // Nothing leaked: every buffer is back and posted.
    assert_eq!(nf.quarantined(), 0);
    w.shutdown(nf);
    w.finish();
}

/// The backend side as a smoltcp device, the way dom0's stack sees
/// netfront's frames: what the frontend sends is received here (GSO
/// packets whole, blank checksums trusted, as a local Linux socket does);
/// what is sent here goes to the frontend with the same flags.
struct BackendPhy {
    nb: Netback,
    queue: std::collections::VecDeque<Vec<u8>>,
    /// The backend stack builds large packets with checksums left blank.
    offload: bool,
}

struct BRx(Vec<u8>);
struct BTx<'a>(&'a Netback, bool, Option<u16>);

impl RxToken for BRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for BTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut b = vec![0u8; len];
        let r = f(&mut b);
        let blank = self.1 && netfront::offload::seed(&mut b);
        self.0.inject_rx_packet(RxPacket { data: b, csum_blank: blank, data_validated: blank, gso_size: self.2 });
        r
    }

    fn set_meta(&mut self, meta: smoltcp::phy::PacketMeta) {
        self.2 = meta.segmentation_offload_size.map(|s| s.get());
    }
}

impl Device for BackendPhy {
    type RxToken<'a> = BRx;
    type TxToken<'a> = BTx<'a>;
    fn receive(&mut self, _: Instant) -> Option<(BRx, BTx<'_>)> {
        for p in self.nb.take_tx_packets() {
            let mut data = p.data;
            if p.csum_blank {
                // What a receiver that checks would need; dom0's sockets
                // trust the flag instead.
                assert!(netfront::offload::complete(&mut data));
            }
            self.queue.push_back(data);
        }
        let f = self.queue.pop_front()?;
        Some((BRx(f), BTx(&self.nb, self.offload, None)))
    }
    fn transmit(&mut self, _: Instant) -> Option<BTx<'_>> {
        Some(BTx(&self.nb, self.offload, None))
    }
    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = 1514;
        if self.offload {
            c.checksum.tcp = smoltcp::phy::Checksum::Rx;
            c.segmentation.tcpv4 = std::num::NonZeroUsize::new(0xffff);
        }
        c
    }
}

/// 300 KB each way over TCP between a smoltcp stack on netfront and one on
/// the backend; returns the frontend's counters.
fn tcp_echo_through_netfront(w: &mut World, config: Config, backend_offloads: bool) -> netfront::Counters {
    let mut nf = w.connect_with(config);
    let mut now = Instant::from_millis(0);
    let mut fe_if = Interface::new(IfConfig::new(HardwareAddress::Ethernet(nf.ethernet_address())), &mut nf, now);
    fe_if.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::v4(10, 0, 0, 2), 24)).unwrap();
    });
    let mut be_phy = BackendPhy { nb: w.nb.clone(), queue: Default::default(), offload: backend_offloads };
    let be_mac = EthernetAddress([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]);
    let mut be_if = Interface::new(IfConfig::new(be_mac.into()), &mut be_phy, now);
    be_if.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::v4(10, 0, 0, 1), 24)).unwrap();
    });
    let sock = || tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 131_072]), tcp::SocketBuffer::new(vec![0; 131_072]));
    let (mut fe_socks, mut be_socks) = (SocketSet::new(vec![]), SocketSet::new(vec![]));
    let client = fe_socks.add(sock());
    let server = be_socks.add(sock());
    be_socks.get_mut::<tcp::Socket>(server).listen(7).unwrap();
    fe_socks.get_mut::<tcp::Socket>(client).connect(fe_if.context(), (IpAddress::v4(10, 0, 0, 1), 7), 49152).unwrap();

    const LEN: usize = 300_000;
    let data: Vec<u8> = (0..LEN).map(|i| (i * 7 + i / 251) as u8).collect();
    let (mut sent, mut echoed, mut received, mut back) = (0, Vec::new(), Vec::new(), Vec::new());
    for _ in 0..20_000 {
        now += smoltcp::time::Duration::from_millis(1);
        fe_if.poll(now, &mut nf, &mut fe_socks);
        w.pump(&mut nf);
        be_if.poll(now, &mut be_phy, &mut be_socks);
        w.pump(&mut nf);
        let s = be_socks.get_mut::<tcp::Socket>(server);
        if s.can_recv() {
            let mut buf = vec![0u8; 65536];
            let n = s.recv_slice(&mut buf).unwrap();
            received.extend_from_slice(&buf[..n]);
            echoed.extend_from_slice(&buf[..n]);
        }
        if !echoed.is_empty() && s.can_send() {
            let n = s.send_slice(&echoed).unwrap();
            echoed.drain(..n);
        }
        let c = fe_socks.get_mut::<tcp::Socket>(client);
        if c.can_send() && sent < LEN {
            sent += c.send_slice(&data[sent..]).unwrap();
        }
        if c.can_recv() {
            let mut buf = vec![0u8; 65536];
            let n = c.recv_slice(&mut buf).unwrap();
            back.extend_from_slice(&buf[..n]);
        }
        if back.len() == LEN {
            break;
        }
    }
    assert!(received == data, "the server got everything, intact");
    assert!(back == data, "the echo came back intact");
    let c = nf.counters();
    assert_eq!(c.bad_responses.total(), 0);
    assert!(w.nb.stats().errors.is_empty(), "{:?}", w.nb.stats().errors);
    drop(fe_if);
    w.shutdown(nf);
    c
}

#[test]
fn tcp_with_every_offload_uses_gso_both_ways() {
    let mut w = world();
    let c = tcp_echo_through_netfront(&mut w, Config::default(), true);
    assert!(c.tx_gso_packets > 0 && c.rx_gso_packets > 0, "{c:?}");
    assert!(c.rx_multi_slot > 0 && c.tx_slots > c.tx_frames, "{c:?}");
    assert!(w.nb.stats().tx_csum_completed > 0);
    assert!(c.tx_frames < 150, "300 KB went in large packets: {} frames", c.tx_frames);
    w.finish();
}

#[test]
fn tcp_with_offloads_off_uses_standard_frames() {
    let mut w = world();
    let config = Config { offloads: Offloads::NONE, ..Config::default() };
    let c = tcp_echo_through_netfront(&mut w, config, false);
    assert_eq!((c.tx_gso_packets, c.rx_gso_packets, c.tx_csum_offloaded, c.rx_multi_slot), (0, 0, 0, 0));
    assert!(c.tx_frames > 200 && c.tx_slots == c.tx_frames, "{c:?}");
    w.finish();
}

#[test]
fn tcp_with_a_backend_that_offers_nothing() {
    let mut w = world_with(NetbackFeatures { sg: false, gso_tcpv4: false, csum_offload: false });
    let c = tcp_echo_through_netfront(&mut w, Config::default(), false);
    assert_eq!((c.tx_gso_packets, c.tx_csum_offloaded), (0, 0), "nothing offloaded on our transmit ring");
    assert!(c.tx_frames > 200, "{c:?}");
    w.finish();
}
