//! Host tests: the driver against the mock device.

extern crate std;

use crate::features::*;
use crate::mock::{MockConfig, MockDevice, MockMemory};
use crate::net::{Config, InitError, NetHeader, VirtioNet, NET_HDR_LEN};
use crate::pci::{self, Bar, CapError, Region};
use crate::queue::UsedError;
use crate::{DmaMemory, Transport};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, RngAlgorithm};
use smoltcp::phy::{Device, RxToken, TxToken};
use smoltcp::time::Instant;

const BASE: u64 = 0x10_0000;

/// `len` bytes of a fixed pseudo-random pattern (xorshift64 from `seed`):
/// payloads in which a byte moved, lost or repeated shows.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// `cases` cases from proptest's XorShift generator (in these unoptimised
/// test builds its default, ChaCha, costs ten times as much); failing
/// cases saved beside this file, in `tests.proptest-regressions`.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        rng_algorithm: RngAlgorithm::XorShift,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::with_cases(cases)
    }
}

fn setup(config: MockConfig, driver: Config) -> (MockMemory, MockDevice, Result<VirtioNet<MockMemory, MockDevice>, InitError>) {
    let mem = MockMemory::new(BASE, 1024);
    let dev = MockDevice::new(&mem, config);
    let net = VirtioNet::new(mem.clone(), dev.clone(), driver);
    (mem, dev, net)
}

fn small_queues(size: u16) -> MockConfig {
    MockConfig { queue_max_size: size, ..MockConfig::default() }
}

fn send(net: &mut VirtioNet<MockMemory, MockDevice>, frame: &[u8]) -> bool {
    match net.transmit(Instant::ZERO) {
        Some(tx) => {
            tx.consume(frame.len(), |buf| buf.copy_from_slice(frame));
            true
        }
        None => false,
    }
}

fn recv(net: &mut VirtioNet<MockMemory, MockDevice>) -> Option<Vec<u8>> {
    let (rx, _tx) = net.receive(Instant::ZERO)?;
    Some(rx.consume(|frame| frame.to_vec()))
}

#[test]
fn init_handshake() {
    let (mem, dev, net) = setup(MockConfig::default(), Config::default());
    let net = net.unwrap();
    assert_eq!(dev.status(), status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK);
    // Offloads, MRG_RXBUF, EVENT_IDX, CTRL_VQ declined.
    assert_eq!(dev.driver_features(), VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS);
    assert_eq!(net.features(), dev.driver_features());
    assert_eq!(net.mac(), MockConfig::default().mac);
    assert_eq!(net.queue_sizes(), (256, 256));
    assert!(net.link_up());
    dev.set_link(false);
    assert!(!net.link_up());
    // Every receive buffer is posted, and the device was told.
    assert_eq!(dev.notifications(0), 1);
    let mut posted = 0;
    while let Some(buf) = dev.pop_avail(0) {
        assert!(buf.writable && buf.len >= (NET_HDR_LEN + 1514) as u32);
        posted += 1;
    }
    assert_eq!(posted, 256);
    assert!(dev.violations().is_empty(), "{:?}", dev.violations());
    // rings: 2 x 3 pages; buffers: 2 x 128 pages.
    assert_eq!(mem.pages_in_use(), 6 + 256);
    drop(net);
    assert_eq!(dev.status(), 0, "dropping the driver resets the device");
    assert_eq!(mem.pages_in_use(), 0);
}

#[test]
fn queue_size_is_capped_to_a_power_of_two() {
    let (_mem, dev, net) = setup(small_queues(100), Config::default());
    let net = net.unwrap();
    assert_eq!(net.queue_sizes(), (64, 64));
    assert_eq!(dev.queue_size(0), 64);
    let (_mem, _dev, net) = setup(MockConfig::default(), Config { max_queue_size: 16, ..Config::default() });
    assert_eq!(net.unwrap().queue_sizes(), (16, 16));
}

#[test]
fn legacy_only_device_is_refused() {
    let config = MockConfig { offered_features: VIRTIO_NET_F_MAC, ..MockConfig::default() };
    let (mem, dev, net) = setup(config, Config::default());
    assert_eq!(net.err(), Some(InitError::NoVersion1));
    assert_eq!(dev.status(), 0, "left reset");
    assert_eq!(mem.pages_in_use(), 0);
}

#[test]
fn feature_negotiation_failure() {
    let config = MockConfig { reject_features: true, ..MockConfig::default() };
    let (mem, dev, net) = setup(config, Config::default());
    assert_eq!(net.err(), Some(InitError::FeaturesRejected));
    assert_eq!(mem.pages_in_use(), 0);
    assert!(dev.violations().is_empty(), "{:?}", dev.violations());
}

#[test]
fn other_init_failures_free_everything() {
    let (mem, _dev, net) = setup(MockConfig { num_queues: 1, ..MockConfig::default() }, Config::default());
    assert_eq!(net.err(), Some(InitError::TooFewQueues(1)));
    assert_eq!(mem.pages_in_use(), 0);
    let (mem, _dev, net) = setup(small_queues(0), Config::default());
    assert_eq!(net.err(), Some(InitError::QueueUnavailable(0)));
    assert_eq!(mem.pages_in_use(), 0);
    // Not enough memory for the buffers: rings were allocated, then freed.
    let mem = MockMemory::new(BASE, 20);
    let dev = MockDevice::new(&mem, MockConfig::default());
    let net = VirtioNet::new(mem.clone(), dev, Config::default());
    assert_eq!(net.err(), Some(InitError::OutOfMemory));
    assert_eq!(mem.pages_in_use(), 0);
}

#[test]
fn without_mac_feature_the_fallback_mac_is_used() {
    let config = MockConfig { offered_features: VIRTIO_F_VERSION_1, ..MockConfig::default() };
    let fallback = [0x02, 0xc0, 0x40, 0, 0, 9];
    let (_mem, dev, net) = setup(config, Config { fallback_mac: fallback, ..Config::default() });
    let net = net.unwrap();
    assert_eq!(net.mac(), fallback);
    assert_eq!(dev.driver_features(), VIRTIO_F_VERSION_1);
    assert!(net.link_up(), "no STATUS feature: always up");
}

#[test]
fn capabilities_match_negotiation() {
    let (_mem, _dev, net) = setup(small_queues(32), Config::default());
    let caps = net.unwrap().capabilities();
    assert_eq!(caps.max_transmission_unit, 1514);
    assert_eq!(caps.max_burst_size, Some(32));
    let ck = smoltcp::phy::ChecksumCapabilities::default();
    assert_eq!(alloc::format!("{:?}", caps.checksum), alloc::format!("{ck:?}"), "no offloads: smoltcp does every checksum");
}

/// Frames moved so far, by the tests' own count.
#[derive(Debug, Default)]
struct Moved {
    tx_frames: u64,
    tx_bytes: u64,
    rx_frames: u64,
    rx_bytes: u64,
}

/// Frame `seq` of `len` bytes: a window into `noise` that moves with `seq`,
/// so consecutive frames differ (`noise` is `NOISE + 1514` bytes).
fn frame(noise: &[u8], seq: u64, len: usize) -> &[u8] {
    const NOISE: u64 = 8192;
    let at = (seq * 4099 % NOISE) as usize;
    &noise[at..at + len]
}

/// One round each way: the driver transmits frames of `tx` lengths (as
/// many as the ring takes), the device returns them; the device delivers
/// frames of `rx` lengths (as many as there are posted buffers), the
/// driver receives them. Every frame must come out whole and in order.
fn exchange(
    net: &mut VirtioNet<MockMemory, MockDevice>,
    dev: &MockDevice,
    noise: &[u8],
    tx: &[usize],
    rx: &[usize],
    moved: &mut Moved,
) {
    let mut expected = VecDeque::new();
    for &len in tx {
        let f = frame(noise, moved.tx_frames + expected.len() as u64, len);
        if !send(net, f) {
            break;
        }
        expected.push_back(f);
    }
    let got = dev.transmit_frames();
    assert_eq!(got.len(), expected.len(), "frames the device got from the driver");
    for (got, want) in got.iter().zip(expected) {
        assert!(got[..] == want[..], "tx frame {} altered: {} bytes, sent {}", moved.tx_frames, got.len(), want.len());
        moved.tx_frames += 1;
        moved.tx_bytes += want.len() as u64;
    }
    let mut expected = VecDeque::new();
    for &len in rx {
        // Frames towards the driver: other windows of the same noise.
        let f = frame(noise, moved.rx_frames + expected.len() as u64 + 5000, len);
        if !dev.receive_frame(f) {
            break;
        }
        expected.push_back(f);
    }
    while let Some(got) = recv(net) {
        let want = expected.pop_front().expect("more frames than the device sent");
        assert!(got[..] == want[..], "rx frame {} altered: {} bytes, sent {}", moved.rx_frames, got.len(), want.len());
        moved.rx_frames += 1;
        moved.rx_bytes += want.len() as u64;
    }
    assert!(expected.is_empty(), "{} frames sent to the driver never arrived", expected.len());
}

/// The driver's counters agree with `moved`; nothing went wrong; dropping
/// the driver gives every page back.
fn check_and_drop(net: VirtioNet<MockMemory, MockDevice>, mem: &MockMemory, dev: &MockDevice, moved: &Moved) {
    let stats = net.stats();
    assert_eq!((stats.tx_frames, stats.tx_bytes), (moved.tx_frames, moved.tx_bytes));
    assert_eq!((stats.rx_frames, stats.rx_bytes), (moved.rx_frames, moved.rx_bytes));
    assert_eq!((stats.rx_dropped, stats.tx_dropped, stats.used_ring_errors), (0, 0, 0));
    assert_eq!(stats.tx_notifications, moved.tx_frames, "the mock never suppresses notifications");
    assert!(dev.violations().is_empty(), "{:?}", dev.violations());
    drop(net);
    assert_eq!(mem.pages_in_use(), 0);
}

fn noise() -> Vec<u8> {
    pattern(0x1234_5678_9abc_def1, 8192 + 1514)
}

/// Lengths of the frames of one burst: 1 to 12 frames of 14 to 1514 bytes.
fn burst() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(14..=1514usize, 1..=12)
}

proptest! {
    #![proptest_config(config(256))]

    /// Any bursts each way, around rings of 4, 8 or 16 entries (bursts
    /// larger than the ring fill it): every frame arrives whole, in order,
    /// counted.
    #[test]
    fn frames_cross_whole_and_in_order_in_any_bursts(
        queue in proptest::sample::select(&[4u16, 8, 16][..]),
        rounds in proptest::collection::vec((burst(), burst()), 1..=64),
    ) {
        let (mem, dev, net) = setup(small_queues(queue), Config::default());
        let mut net = net.unwrap();
        prop_assert_eq!(net.queue_sizes(), (queue, queue));
        let (noise, mut moved) = (noise(), Moved::default());
        for (tx, rx) in &rounds {
            exchange(&mut net, &dev, &noise, tx, rx, &mut moved);
        }
        check_and_drop(net, &mem, &dev, &moved);
    }
}

/// 70 000 frames each way through 8-entry rings, past the wrap of the
/// 16-bit ring indices (65 536): every length from 14 to 1514 some 45
/// times in each direction, in bursts of 1 to 12 (the larger ones fill
/// the ring).
#[test]
fn tx_rx_across_the_ring_index_wrap() {
    let (mem, dev, net) = setup(small_queues(8), Config::default());
    let mut net = net.unwrap();
    let (noise, mut moved) = (noise(), Moved::default());
    let mut lengths = (14..=1514usize).cycle();
    let total = 70_000;
    for k in 0.. {
        if moved.tx_frames >= total && moved.rx_frames >= total {
            break;
        }
        let tx: Vec<usize> = lengths.by_ref().take(1 + k % 12).collect();
        let rx: Vec<usize> = lengths.by_ref().take(1 + k * 7 % 12).collect();
        exchange(&mut net, &dev, &noise, &tx, &rx, &mut moved);
    }
    check_and_drop(net, &mem, &dev, &moved);
}

#[test]
fn full_transmit_ring_backs_off_then_recovers() {
    let (_mem, dev, net) = setup(small_queues(4), Config::default());
    let mut net = net.unwrap();
    for i in 0..4u8 {
        assert!(send(&mut net, &[i; 60]));
    }
    assert!(net.transmit(Instant::ZERO).is_none(), "all four buffers with the device");
    // A reply token from receive() with no buffer free drops (and counts).
    assert!(dev.receive_frame(&[7; 60]));
    let (rx, tx) = net.receive(Instant::ZERO).unwrap();
    rx.consume(|f| assert_eq!(f, &[7; 60]));
    tx.consume(60, |b| b.fill(1));
    assert_eq!(net.stats().tx_dropped, 1);
    let held = dev.transmit_frames_with(false);
    assert_eq!(held.len(), 4);
    dev.push_used(1, u32::from(held[2].0), 0);
    assert_eq!(net.tx_free(), 1);
    assert!(send(&mut net, &[9; 60]));
    assert_eq!(dev.transmit_frames(), vec![vec![9u8; 60]]);
    for (id, _) in [&held[0], &held[1], &held[3]] {
        dev.push_used(1, u32::from(*id), 0);
    }
    assert_eq!(net.tx_free(), 4);
    assert_eq!(net.stats().used_ring_errors, 0);
}

#[test]
fn malformed_used_entries_are_counted_and_dropped() {
    let (mem, dev, net) = setup(small_queues(8), Config::default());
    let mut net = net.unwrap();
    // Transmit queue: nothing outstanding, so any entry is bogus.
    dev.push_used(1, 0, 0);
    dev.push_used(1, 0xdead_beef, 0);
    assert!(send(&mut net, &[1; 100]));
    assert_eq!(net.stats().used_ring_errors, 2);
    assert_eq!(dev.transmit_frames(), vec![vec![1u8; 100]]);

    // Receive queue: an id out of range, a length past the buffer, a runt;
    // then a good frame still comes through.
    dev.push_used(0, 8, 100);
    let a = dev.pop_avail(0).unwrap();
    dev.push_used(0, u32::from(a.id), a.len + 1);
    let b = dev.pop_avail(0).unwrap();
    dev.push_used(0, u32::from(b.id), (NET_HDR_LEN + 3) as u32);
    assert!(recv(&mut net).is_none());
    let c = dev.pop_avail(0).unwrap();
    mem.write_bytes(c.addr, &[0; NET_HDR_LEN]);
    mem.write_bytes(c.addr + NET_HDR_LEN as u64, &[0x42; 64]);
    dev.push_used(0, u32::from(c.id), (NET_HDR_LEN + 64) as u32);
    assert_eq!(recv(&mut net), Some(vec![0x42; 64]));
    let stats = net.stats();
    assert_eq!(stats.used_ring_errors, 2 + 2, "{stats:?}");
    assert_eq!(stats.rx_dropped, 2, "too long and runt");
    // Offload flags we did not negotiate: dropped.
    let d = dev.pop_avail(0).unwrap();
    let header = NetHeader { flags: 1, ..NetHeader::default() };
    mem.write_bytes(d.addr, &header.to_bytes());
    dev.push_used(0, u32::from(d.id), (NET_HDR_LEN + 60) as u32);
    assert!(recv(&mut net).is_none());
    assert_eq!(net.stats().rx_dropped, 3);
    // Normal traffic goes on, and no buffer was lost: all 8 still posted.
    for i in 0..20u8 {
        assert!(dev.receive_frame(&[i; 90]));
        assert_eq!(recv(&mut net), Some(vec![i; 90]));
    }
    assert!(!net.failed());
}

#[test]
fn impossible_used_index_fails_the_device_without_panic() {
    let (mem, dev, net) = setup(small_queues(8), Config::default());
    let mut net = net.unwrap();
    dev.set_used_idx(0, 300);
    assert!(recv(&mut net).is_none());
    assert!(net.failed());
    assert_ne!(dev.status() & status::FAILED, 0);
    assert!(net.transmit(Instant::ZERO).is_none());
    assert!(net.stats().used_ring_errors >= 1);
    assert!(net.shutdown());
    assert_eq!(dev.status(), 0);
    assert_eq!(mem.pages_in_use(), 0);
    assert!(recv(&mut net).is_none() && net.transmit(Instant::ZERO).is_none());
    drop(net);
    assert_eq!(mem.pages_in_use(), 0);
}

#[test]
fn notifications_follow_the_device_s_wish() {
    let config = MockConfig { suppress_notifications: true, ..small_queues(8) };
    let (_mem, dev, net) = setup(config, Config::default());
    let mut net = net.unwrap();
    assert!(send(&mut net, &[1; 60]));
    assert_eq!(dev.notifications(1), 1, "used.flags still 0");
    dev.transmit_frames(); // sets NO_NOTIFY
    for _ in 0..5 {
        assert!(send(&mut net, &[2; 60]));
    }
    assert_eq!(dev.notifications(1), 1);
    let stats = net.stats();
    assert_eq!((stats.tx_notifications, stats.notifications_suppressed), (1, 5));
}

#[test]
fn net_header_roundtrip() {
    let h = NetHeader { flags: 1, gso_type: 3, hdr_len: 54, gso_size: 1448, csum_start: 34, csum_offset: 16, num_buffers: 1 };
    assert_eq!(NetHeader::from_bytes(&h.to_bytes()), h);
    assert_eq!(NetHeader::default().to_bytes(), [0; 12]);
}

#[test]
fn queue_reports_each_kind_of_bad_entry() {
    let mem = MockMemory::new(BASE, 8);
    let pages: Vec<u64> = (0..3).map(|_| mem.alloc_page().unwrap()).collect();
    let addrs = crate::queue::QueueAddrs { desc: pages[0], avail: pages[1], used: pages[2] };
    let mut q = crate::queue::SplitQueue::new(&mem, 0, 4, addrs, 0);
    let buf = mem.alloc_page().unwrap();
    let id = q.add(&mem, buf, 100, true).unwrap();
    assert_eq!(q.publish(&mem), Some(true));
    assert_eq!(q.publish(&mem), None);
    let put = |i: u16, id: u32, len: u32| {
        mem.write_u32(addrs.used + 4 + 8 * u64::from(i % 4), id);
        mem.write_u32(addrs.used + 8 + 8 * u64::from(i % 4), len);
        mem.write_u16(addrs.used + 2, i + 1);
    };
    put(0, 4, 0);
    assert_eq!(q.pop_used(&mem), Some(Err(UsedError::IdOutOfRange { id: 4 })));
    put(1, 1, 0);
    assert_eq!(q.pop_used(&mem), Some(Err(UsedError::NotOutstanding { id: 1 })));
    put(2, u32::from(id), 101);
    assert!(matches!(q.pop_used(&mem), Some(Err(UsedError::TooLong { .. }))));
    assert_eq!(q.free_descriptors(), 4, "the too-long buffer is the driver's again");
    assert_eq!(q.pop_used(&mem), None);
    mem.write_u16(addrs.used + 2, 3 + 5);
    assert_eq!(q.pop_used(&mem), Some(Err(UsedError::IndexJump { from: 3, to: 8 })));
}

/// A peer for end-to-end tests: frames queued in memory.
#[derive(Default)]
struct Wire {
    inbox: VecDeque<Vec<u8>>,
    outbox: VecDeque<Vec<u8>>,
}

struct WireRx(Vec<u8>);
struct WireTx<'a>(&'a mut VecDeque<Vec<u8>>);

impl RxToken for WireRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for WireTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0; len];
        let r = f(&mut buf);
        self.0.push_back(buf);
        r
    }
}

impl Device for Wire {
    type RxToken<'a> = WireRx;
    type TxToken<'a> = WireTx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(WireRx, WireTx<'_>)> {
        let frame = self.inbox.pop_front()?;
        Some((WireRx(frame), WireTx(&mut self.outbox)))
    }

    fn transmit(&mut self, _: Instant) -> Option<WireTx<'_>> {
        Some(WireTx(&mut self.outbox))
    }

    fn capabilities(&self) -> smoltcp::phy::DeviceCapabilities {
        let mut caps = smoltcp::phy::DeviceCapabilities::default();
        caps.max_transmission_unit = 1514;
        caps
    }
}

/// smoltcp on the driver talks TCP with a smoltcp peer on the other side of
/// the mock device: ARP, handshake, 512 KiB each way, with frames lost when
/// the driver's receive ring is full.
#[test]
fn smoltcp_tcp_echo_through_the_driver() {
    use smoltcp::iface::{Config as IfConfig, Interface, SocketSet};
    use smoltcp::socket::tcp;
    use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};

    let (_mem, dev, net) = setup(small_queues(16), Config::default());
    let mut net = net.unwrap();
    let mut wire = Wire::default();
    let t0 = Instant::ZERO;
    let mut iface = Interface::new(IfConfig::new(EthernetAddress(net.mac()).into()), &mut net, t0);
    iface.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::v4(198, 18, 1, 2), 24)).unwrap());
    let mut peer = Interface::new(IfConfig::new(EthernetAddress([2, 0, 0, 0, 0, 2]).into()), &mut wire, t0);
    peer.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::v4(198, 18, 1, 1), 24)).unwrap());

    let socket = || tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 16384]), tcp::SocketBuffer::new(vec![0; 16384]));
    let mut sockets = SocketSet::new(vec![]);
    let server = sockets.add(socket());
    sockets.get_mut::<tcp::Socket>(server).listen(7).unwrap();
    let mut peer_sockets = SocketSet::new(vec![]);
    let client = peer_sockets.add(socket());
    peer_sockets.get_mut::<tcp::Socket>(client).connect(peer.context(), (IpAddress::v4(198, 18, 1, 2), 7), 40000).unwrap();

    let total = 512 * 1024;
    let data = pattern(7, total);
    let (mut sent, mut echoed) = (0, 0);
    let mut buf = vec![0u8; 4096];
    let mut now = t0;
    let mut rounds = 0;
    while echoed < total {
        rounds += 1;
        assert!(rounds < 200_000, "stalled: sent {sent}, echoed {echoed}");
        now += smoltcp::time::Duration::from_millis(1);
        iface.poll(now, &mut net, &mut sockets);
        peer.poll(now, &mut wire, &mut peer_sockets);
        // Wire <-> device, dropping what does not fit the receive ring.
        wire.inbox.extend(dev.transmit_frames());
        while let Some(frame) = wire.outbox.pop_front() {
            dev.receive_frame(&frame);
        }
        let s = sockets.get_mut::<tcp::Socket>(server);
        while s.can_recv() && s.send_queue() < s.send_capacity() {
            let room = (s.send_capacity() - s.send_queue()).min(buf.len());
            let n = s.recv_slice(&mut buf[..room]).unwrap();
            assert_eq!(s.send_slice(&buf[..n]).unwrap(), n);
            if n == 0 {
                break;
            }
        }
        let c = peer_sockets.get_mut::<tcp::Socket>(client);
        if c.can_send() && sent < total {
            sent += c.send_slice(&data[sent..]).unwrap();
        }
        while c.can_recv() {
            let n = c.recv_slice(&mut buf).unwrap();
            assert_eq!(buf[..n], data[echoed..echoed + n]);
            echoed += n;
        }
    }
    let stats = net.stats();
    assert!(stats.rx_frames > 300 && stats.tx_frames > 300, "{stats:?}");
    assert_eq!(stats.used_ring_errors, 0);
    assert!(dev.violations().is_empty(), "{:?}", dev.violations());
}

// --- PCI -----------------------------------------------------------------

/// Configuration space of QEMU's virtio-net-pci with disable-legacy=on:
/// MSI-X, then the five virtio capabilities (common, ISR, device, notify,
/// pci-cfg) in BAR 4.
fn qemu_like_config() -> [u8; 256] {
    let mut c = [0u8; 256];
    c[0..2].copy_from_slice(&0x1af4u16.to_le_bytes());
    c[2..4].copy_from_slice(&0x1041u16.to_le_bytes());
    c[6] = 0x10; // capability list
    c[0x34] = 0x98;
    c[0x98] = 0x11; // MSI-X
    c[0x99] = 0x84;
    let mut vendor = |at: usize, next: u8, len: u8, kind: u8, bar: u8, offset: u32, length: u32| {
        c[at] = 0x09;
        c[at + 1] = next;
        c[at + 2] = len;
        c[at + 3] = kind;
        c[at + 4] = bar;
        c[at + 8..at + 12].copy_from_slice(&offset.to_le_bytes());
        c[at + 12..at + 16].copy_from_slice(&length.to_le_bytes());
    };
    vendor(0x84, 0x70, 0x14, pci::cfg_type::PCI, 0, 0, 0);
    vendor(0x70, 0x60, 0x14, pci::cfg_type::NOTIFY, 4, 0x3000, 0x1000);
    vendor(0x60, 0x50, 0x10, pci::cfg_type::DEVICE, 4, 0x2000, 0x1000);
    vendor(0x50, 0x40, 0x10, pci::cfg_type::ISR, 4, 0x1000, 0x1000);
    vendor(0x40, 0x00, 0x10, pci::cfg_type::COMMON, 4, 0x0000, 0x1000);
    c[0x70 + 16..0x70 + 20].copy_from_slice(&4u32.to_le_bytes());
    c
}

#[test]
fn virtio_capabilities_are_found() {
    let caps = pci::parse_virtio_caps(&qemu_like_config()).unwrap();
    assert_eq!(caps.common, Region { bar: 4, offset: 0, length: 0x1000 });
    assert_eq!(caps.notify, Region { bar: 4, offset: 0x3000, length: 0x1000 });
    assert_eq!(caps.notify_off_multiplier, 4);
    assert_eq!(caps.isr, Some(Region { bar: 4, offset: 0x1000, length: 0x1000 }));
    assert_eq!(caps.device, Some(Region { bar: 4, offset: 0x2000, length: 0x1000 }));
}

#[test]
fn bad_capability_lists_are_errors() {
    let mut c = qemu_like_config();
    c[6] = 0;
    assert_eq!(pci::parse_virtio_caps(&c), Err(CapError::NoCapabilityList));
    assert_eq!(pci::parse_virtio_caps(&c[..64]), Err(CapError::Truncated));
    let mut c = qemu_like_config();
    c[0x41] = 0x98; // common points back to MSI-X
    assert_eq!(pci::parse_virtio_caps(&c), Err(CapError::Loop));
    let mut c = qemu_like_config();
    c[0x51] = 0x20;
    assert_eq!(pci::parse_virtio_caps(&c), Err(CapError::BadPointer(0x20)));
    let mut c = qemu_like_config();
    c[0x61] = 0xfc; // a capability in the last 4 bytes
    c[0xfc] = 0x09;
    assert_eq!(pci::parse_virtio_caps(&c), Err(CapError::NoCommonConfig), "the list ends there: common is never reached");
    let mut c = qemu_like_config();
    c[0x44] = 6; // common config in a BAR that does not exist: skipped
    assert_eq!(pci::parse_virtio_caps(&c), Err(CapError::NoCommonConfig));
    let mut c = qemu_like_config();
    c[0x72] = 0x10; // notify capability too short for the multiplier
    assert_eq!(pci::parse_virtio_caps(&c), Err(CapError::NoNotify));
}

#[test]
fn bars_decode() {
    // 64-bit prefetchable memory BAR, 16 KiB, above 4 GiB.
    assert_eq!(
        pci::decode_bar(0x0000_000c, 0x1, 0xffff_c00c, 0xffff_ffff),
        Some(Bar::Memory { base: 0x1_0000_0000, size: 0x4000, is_64: true, prefetchable: true })
    );
    assert!(pci::bar_is_64(0xfe00_000c));
    // 32-bit memory BAR, 4 KiB.
    assert_eq!(
        pci::decode_bar(0xfebf_1000, 0, 0xffff_f000, 0),
        Some(Bar::Memory { base: 0xfebf_1000, size: 0x1000, is_64: false, prefetchable: false })
    );
    // I/O BAR, 32 ports, upper 16 bits not implemented.
    assert_eq!(pci::decode_bar(0xc041, 0, 0xffe1, 0), Some(Bar::Io { port: 0xc040, size: 32 }));
    assert_eq!(pci::decode_bar(0, 0, 0, 0), None);
}

#[test]
fn negotiation_requires_version_1() {
    assert_eq!(negotiate(VIRTIO_NET_F_MAC, NET_SUPPORTED), Err(NegotiationError::NoVersion1));
    assert_eq!(negotiate(u64::MAX, NET_SUPPORTED), Ok(NET_SUPPORTED));
}

#[test]
fn mock_honours_common_config_offsets() {
    // The kernel may keep the driver behind a concrete type; this only
    // checks the mock honours the offsets the driver uses.
    let mem = MockMemory::new(BASE, 4);
    let dev = MockDevice::new(&mem, MockConfig::default());
    dev.write_common_u32(common::DEVICE_FEATURE_SELECT, 1);
    assert_eq!(dev.read_common_u32(common::DEVICE_FEATURE), 1, "VERSION_1 is bit 32");
    assert_eq!(dev.read_common_u16(common::NUM_QUEUES), 3);
}
