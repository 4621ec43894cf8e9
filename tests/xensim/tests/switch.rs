//! The switch below smoltcp: frames to a peer with a channel up take the
//! channel, everything else the fallback (here an in-memory bridge standing
//! in for netfront → dom0 → netback); a TCP stream survives the channel
//! coming up and going away in the middle.

mod support;

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use channel::switch::{FallbackDevice, FallbackFull, FallbackMeta, FallbackOffloads, Switch, STUCK_AFTER_NS};
use channel::{Config, Manager, Note};
use discovery::{Peer, PeerList};
use smoltcp::iface::{Config as IfConfig, Interface, SocketSet};
use smoltcp::phy::{Device, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, Ipv4Address};
use support::pattern;
use xen_proto::iface::DomId;
use xen_proto::xenstore::Client;
use xensim::{Domain, DomainConfig, Sim, SimEvtchn, SimGnttab, SimXsRing};

const MS: u64 = 1_000_000;

fn mac(domid: DomId) -> [u8; 6] {
    [0x00, 0x16, 0x3e, 0xc0, 0x00, domid as u8]
}

/// A learning-free bridge: unicast to the port with that MAC, broadcast to
/// every other port.
type Queues = HashMap<[u8; 6], VecDeque<Vec<u8>>>;

#[derive(Clone, Default)]
struct Bridge {
    queues: Rc<RefCell<Queues>>,
    frames: Rc<RefCell<u64>>,
    /// Its ports complete checksums and cut large TCP packets, as netfront
    /// with netback's offloads does (dom0 does the work).
    offloads: bool,
}

struct BridgePort {
    bridge: Bridge,
    mac: [u8; 6],
}

impl Bridge {
    fn port(&self, mac: [u8; 6]) -> BridgePort {
        self.queues.borrow_mut().entry(mac).or_default();
        BridgePort { bridge: self.clone(), mac }
    }

    fn deliver(&self, from: [u8; 6], frame: Vec<u8>) {
        assert!(frame.len() <= 1514, "a {}-byte frame on the bridge", frame.len());
        *self.frames.borrow_mut() += 1;
        let dst: [u8; 6] = frame[..6].try_into().unwrap();
        let mut q = self.queues.borrow_mut();
        if dst[0] & 1 == 1 {
            for (_, queue) in q.iter_mut().filter(|(m, _)| **m != from) {
                queue.push_back(frame.clone());
            }
        } else if let Some(queue) = q.get_mut(&dst) {
            queue.push_back(frame);
        }
    }
}

impl FallbackDevice for BridgePort {
    fn max_frame(&self) -> usize {
        1514
    }

    fn offloads(&self) -> FallbackOffloads {
        if self.bridge.offloads {
            FallbackOffloads { csum: true, gso_max: Some(0xffff) }
        } else {
            FallbackOffloads::default()
        }
    }

    fn has_rx(&mut self) -> bool {
        self.bridge.queues.borrow().get(&self.mac).is_some_and(|q| !q.is_empty())
    }

    fn receive_into(&mut self, frame: &mut Vec<u8>) -> Option<bool> {
        *frame = self.bridge.queues.borrow_mut().get_mut(&self.mac)?.pop_front()?;
        Some(false)
    }

    fn can_send(&mut self) -> bool {
        true
    }

    fn send(&mut self, frame: &[u8], meta: FallbackMeta) -> Result<(), FallbackFull> {
        if !self.bridge.offloads {
            assert_eq!(meta, FallbackMeta::default(), "the bridge offloads nothing");
            self.bridge.deliver(self.mac, frame.to_vec());
            return Ok(());
        }
        match meta.gso_size {
            Some(mss) => {
                assert!(meta.csum, "GSO comes with checksum offload");
                let mut buf = Vec::new();
                let cut = channel::gso::segment(frame, 1514, usize::from(mss), &mut buf, |piece| {
                    channel::checksum::fill(piece);
                    self.bridge.deliver(self.mac, piece.to_vec());
                });
                assert!(cut, "a GSO packet the bridge cannot cut");
            }
            None => {
                let mut f = frame.to_vec();
                if meta.csum {
                    channel::checksum::fill(&mut f);
                }
                self.bridge.deliver(self.mac, f);
            }
        }
        Ok(())
    }
}

type Sw = Switch<BridgePort, SimGnttab, SimEvtchn>;

struct Node {
    dom: Domain,
    xs: Client<SimXsRing>,
    sw: Sw,
    iface: Interface,
    sockets: SocketSet<'static>,
    notes: Vec<Note>,
}

impl Node {
    fn new(sim: &Sim, bridge: &Bridge, domid: DomId, config: Config) -> Node {
        let dom = sim.create_domain_with(domid, DomainConfig { grant_refs: 512, max_ports: 64, max_pages: 1024 });
        let xs = dom.xenstore_client();
        let mgr = Manager::new(dom.gnttab(), dom.evtchn(), domid, config);
        let mut sw = Switch::new(bridge.port(mac(domid)), mgr, mac(domid), true);
        let mut iface = Interface::new(IfConfig::new(EthernetAddress(mac(domid)).into()), &mut sw, Instant::ZERO);
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(IpAddress::v4(198, 18, 0, domid as u8), 24)).unwrap();
        });
        Node { dom, xs, sw, iface, sockets: SocketSet::new(vec![]), notes: Vec::new() }
    }

    fn list(&mut self, peers: &[DomId], now: u64) {
        let (list, _) = PeerList::new(peers.iter().map(|&d| Peer { domid: d, mac: mac(d) }).collect());
        self.sw.manager().set_peers(&mut self.xs, &list, now);
    }

    fn service(&mut self, now: u64) {
        let mut fired = Vec::new();
        while let Ok(Some(ev)) = self.xs.next_watch_event() {
            fired.push(ev.path);
        }
        self.sw.service(&mut self.xs, &fired, now);
        self.notes.extend(self.sw.manager().take_notes());
    }

    fn poll(&mut self, now: u64) {
        self.iface.poll(Instant::from_micros((now / 1000) as i64), &mut self.sw, &mut self.sockets);
    }

    fn channel_up(&self) -> bool {
        self.notes.iter().rev().find_map(|n| match n {
            Note::Up { .. } => Some(true),
            Note::Down { was_up: true, .. } => Some(false),
            _ => None,
        }) == Some(true)
    }

    fn shutdown(&mut self, now: u64) {
        self.sw.manager().close_all(&mut self.xs, now);
    }
}

fn finish(nodes: &mut [&mut Node], clock: &mut u64) {
    for n in nodes.iter_mut() {
        n.shutdown(*clock);
    }
    for _ in 0..5 {
        *clock += MS;
        for n in nodes.iter_mut() {
            n.service(*clock);
            n.shutdown(*clock);
        }
    }
    for n in nodes.iter() {
        assert!(n.sw.manager_ref().is_idle(), "dom{} still holds channel resources", n.dom.domid());
    }
}

/// A 3 MiB TCP stream from dom1 to dom2 that starts on the bridge, moves to
/// the channel when dom0 lists them, and back when it stops.
fn stream_across_switches(config: Config) -> (channel::SwitchCounters, u64) {
    stream_across(config, Bridge::default())
}

fn stream_across(config: Config, bridge: Bridge) -> (channel::SwitchCounters, u64) {
    let sim = Sim::new();
    let mut a = Node::new(&sim, &bridge, 1, config);
    let mut b = Node::new(&sim, &bridge, 2, config);
    let rx = |n| tcp::SocketBuffer::new(vec![0; n]);
    let server = b.sockets.add(tcp::Socket::new(rx(65536), rx(65536)));
    b.sockets.get_mut::<tcp::Socket>(server).listen(5001).unwrap();
    let client = a.sockets.add(tcp::Socket::new(rx(65536), rx(65536)));
    a.sockets
        .get_mut::<tcp::Socket>(client)
        .connect(a.iface.context(), (IpAddress::Ipv4(Ipv4Address::new(198, 18, 0, 2)), 5001), 49152)
        .unwrap();

    let payload = pattern::bytes(1, 3 << 20);
    let (mut sent, mut received) = (0usize, Vec::with_capacity(payload.len()));
    let mut clock = 0u64;
    let (mut up_at, mut down_at) = (None, None);
    let (mut bridge_at_up, mut bridge_while_up) = (None, 0);
    while received.len() < payload.len() {
        clock += MS / 10;
        assert!(clock < 600_000 * MS, "stalled at {} of {} bytes", received.len(), payload.len());
        // A third of the way in, dom0 lists the two as co-resident; two
        // thirds in, it stops (as if one had migrated away).
        if up_at.is_none() && received.len() > payload.len() / 3 {
            a.list(&[2], clock);
            b.list(&[1], clock);
            up_at = Some(received.len());
        }
        if down_at.is_none() && received.len() > 2 * payload.len() / 3 {
            assert!(a.channel_up() && b.channel_up(), "channel never came up: {:?}", a.notes);
            bridge_while_up = *bridge.frames.borrow() - bridge_at_up.unwrap_or(0);
            a.list(&[], clock);
            b.list(&[], clock);
            down_at = Some(received.len());
        }
        a.service(clock);
        b.service(clock);
        // Counted from the moment both ends have the channel up: the
        // window already in flight when dom0 listed them took the bridge.
        if up_at.is_some() && down_at.is_none() && bridge_at_up.is_none() && a.channel_up() && b.channel_up() {
            bridge_at_up = Some(*bridge.frames.borrow());
        }
        let s = a.sockets.get_mut::<tcp::Socket>(client);
        if s.can_send() && sent < payload.len() {
            sent += s.send_slice(&payload[sent..]).unwrap();
        }
        a.poll(clock);
        b.poll(clock);
        let s = b.sockets.get_mut::<tcp::Socket>(server);
        while s.can_recv() {
            s.recv(|buf| {
                received.extend_from_slice(buf);
                (buf.len(), ())
            })
            .unwrap();
        }
        a.poll(clock);
    }
    assert!(received == payload, "the stream arrived altered");
    let (ca, cb) = (a.sw.counters(), b.sw.counters());
    assert!(ca.tx_in_place > ca.tx_channel_frames * 9 / 10, "frames not built in place: {ca:?}");
    assert!(cb.rx_channel_frames > 0 && cb.tx_channel_frames > 0, "{cb:?}");
    assert!(ca.tx_fallback_bytes > 1 << 20, "the stream should use the fallback before and after: {ca:?}");
    // While the channel was up, next to nothing crossed the bridge.
    assert!(
        bridge_while_up * 1514 * 20 < ca.tx_channel_bytes,
        "{bridge_while_up} frames on the bridge while the channel was up: {ca:?}"
    );
    finish(&mut [&mut a, &mut b], &mut clock);
    (ca, bridge_while_up)
}

#[test]
fn a_tcp_stream_moves_to_the_channel_and_back_without_loss() {
    let (ca, _) = stream_across_switches(Config { ring_pages: 4, ..Config::default() });
    assert!(ca.tx_channel_frames > 500, "few frames took the channel: {ca:?}");
    assert_eq!(ca.tx_segmented, 0, "standard frames need no cutting");
}

#[test]
fn a_fallback_with_gso_cuts_large_packets_itself() {
    // 9000-byte channel frames; the bridge takes 64 KiB TCP packets and
    // cuts them (netfront's GSO): the switch cuts nothing.
    let bridge = Bridge { offloads: true, ..Bridge::default() };
    let (ca, _) = stream_across(Config { ring_pages: 16, max_frame: 9014, ..Config::default() }, bridge);
    assert!(ca.tx_gso > 100, "large packets went to the fallback whole: {ca:?}");
    assert_eq!(ca.tx_segmented, 0, "{ca:?}");
    assert!(ca.tx_fallback_bytes / ca.tx_fallback_frames.max(1) > 2000, "{ca:?}");
}

#[test]
fn large_channel_frames_are_cut_for_the_fallback() {
    // 9000-byte IP packets on the channel; the bridge carries 1514 at most
    // (it panics on more), so TCP frames for it are cut by the switch.
    let (ca, _) = stream_across_switches(Config { ring_pages: 16, max_frame: 9014, ..Config::default() });
    assert!(ca.tx_segmented > 100, "large frames were not cut for the fallback: {ca:?}");
    assert!(ca.tx_channel_bytes / ca.tx_channel_frames.max(1) > 4000, "the channel carried small frames: {ca:?}");
}


fn frame_to(dst: [u8; 6], src: [u8; 6], len: usize) -> Vec<u8> {
    let mut f = vec![0x5a; len];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f
}

fn send(n: &mut Node, frame: &[u8]) {
    let token = n.sw.transmit(Instant::ZERO).expect("a transmit token");
    token.consume(frame.len(), |buf| buf.copy_from_slice(frame));
}

fn receive(n: &mut Node) -> Option<Vec<u8>> {
    let (rx, _tx) = n.sw.receive(Instant::ZERO)?;
    Some(rx.consume(|f| f.to_vec()))
}

fn up_pair(sim: &Sim, bridge: &Bridge, config: Config) -> (Node, Node, u64) {
    let mut a = Node::new(sim, bridge, 1, config);
    let mut b = Node::new(sim, bridge, 2, config);
    let mut clock = 0;
    a.list(&[2], clock);
    b.list(&[1], clock);
    for _ in 0..10 {
        clock += MS;
        a.service(clock);
        b.service(clock);
    }
    assert!(a.channel_up() && b.channel_up());
    (a, b, clock)
}

#[test]
fn frames_are_routed_by_destination() {
    let sim = Sim::new();
    let bridge = Bridge::default();
    let (mut a, mut b, mut clock) = up_pair(&sim, &bridge, Config::default());
    let mut c = Node::new(&sim, &bridge, 3, Config::default());
    // To the peer: the channel.
    let f = frame_to(mac(2), mac(1), 100);
    send(&mut a, &f);
    assert_eq!(*bridge.frames.borrow(), 0);
    assert_eq!(receive(&mut b), Some(f));
    // Broadcast (ARP) and a guest without a channel: the bridge. The
    // second follows a channel frame, so it is first built in the peer's
    // ring and must be moved, not published there.
    let bcast = frame_to([0xff; 6], mac(1), 60);
    send(&mut a, &frame_to(mac(2), mac(1), 100));
    send(&mut a, &frame_to(mac(3), mac(1), 200));
    send(&mut a, &bcast);
    assert_eq!(*bridge.frames.borrow(), 2);
    // dom2 gets the channel frame and the broadcast (in either order), not
    // the frame for dom3.
    let mut got: Vec<Vec<u8>> = std::iter::from_fn(|| receive(&mut b)).collect();
    got.sort_by_key(Vec::len);
    assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), [60, 100], "dom2 received {got:?}");
    assert_eq!(got[0], bcast, "broadcast via the bridge");
    assert_eq!(receive(&mut c).map(|f| f.len()), Some(200));
    assert_eq!(receive(&mut c), Some(bcast));
    let ca = a.sw.counters();
    assert_eq!((ca.tx_channel_frames, ca.tx_fallback_frames), (2, 2), "{ca:?}");
    finish(&mut [&mut a, &mut b, &mut c], &mut clock);
}

#[test]
fn channel_frames_not_from_the_peer_to_us_are_dropped() {
    let sim = Sim::new();
    let bridge = Bridge::default();
    let (mut a, mut b, mut clock) = up_pair(&sim, &bridge, Config::default());
    // dom2 puts frames in its ring with a forged source, and to another MAC.
    let ch = b.sw.manager().channel(1).unwrap();
    ch.send(&frame_to(mac(1), mac(9), 80)).unwrap();
    ch.send(&frame_to(mac(7), mac(2), 80)).unwrap();
    ch.send(&frame_to(mac(1), mac(2), 80)).unwrap();
    assert_eq!(receive(&mut a).map(|f| f[6..12].to_vec()), Some(mac(2).to_vec()));
    assert_eq!(receive(&mut a), None);
    assert_eq!(a.sw.counters().rx_misaddressed, 2);
    finish(&mut [&mut a, &mut b], &mut clock);
}

#[test]
fn a_peer_that_stops_reading_loses_its_channel() {
    let sim = Sim::new();
    let bridge = Bridge::default();
    let (mut a, mut b, mut clock) = up_pair(&sim, &bridge, Config { ring_pages: 1, polling: false, ..Config::default() });
    let f = frame_to(mac(2), mac(1), 1514);
    // Fill dom2's view of our ring; dom2 never reads.
    while a.sw.transmit(Instant::ZERO).is_some() {
        send(&mut a, &f);
        assert!(a.sw.counters().tx_channel_frames < 100);
    }
    assert!(a.sw.counters().tx_backpressure > 0);
    a.service(clock);
    assert!(a.channel_up(), "one full ring is no reason to close");
    // Still full after the grace period: the channel goes, traffic falls back.
    clock += STUCK_AFTER_NS + MS;
    assert!(a.sw.transmit(Instant::ZERO).is_none());
    a.service(clock);
    assert!(
        a.notes.iter().any(|n| matches!(n, Note::Down { why, .. } if why.contains("stopped consuming"))),
        "{:?}",
        a.notes
    );
    send(&mut a, &f);
    assert_eq!(*bridge.frames.borrow(), 1, "the frame after the close took the bridge");
    finish(&mut [&mut a, &mut b], &mut clock);
}

#[test]
fn fallback_frames_with_bad_checksums_never_reach_the_stack() {
    let sim = Sim::new();
    let bridge = Bridge::default();
    let mut a = Node::new(&sim, &bridge, 1, Config::default());
    let mut b = Node::new(&sim, &bridge, 2, Config::default());
    let mut clock = 0;
    // A UDP datagram from dom1 to dom2 over the bridge: checksummed by
    // dom1's switch, checked by dom2's.
    let udp = |n: &mut Node| {
        let rx = smoltcp::socket::udp::PacketBuffer::new(vec![smoltcp::socket::udp::PacketMetadata::EMPTY; 4], vec![0; 4096]);
        let tx = smoltcp::socket::udp::PacketBuffer::new(vec![smoltcp::socket::udp::PacketMetadata::EMPTY; 4], vec![0; 4096]);
        let h = n.sockets.add(smoltcp::socket::udp::Socket::new(rx, tx));
        n.sockets.get_mut::<smoltcp::socket::udp::Socket>(h).bind(5000).unwrap();
        h
    };
    let (ha, hb) = (udp(&mut a), udp(&mut b));
    let to_b = (IpAddress::v4(198, 18, 0, 2), 5000);
    for round in 0..2 {
        a.sockets.get_mut::<smoltcp::socket::udp::Socket>(ha).send_slice(b"checked", to_b).unwrap();
        for _ in 0..20 {
            clock += MS;
            a.poll(clock);
            if round == 1 {
                // Flip a payload bit of every IPv4 frame on the wire.
                for q in bridge.queues.borrow_mut().values_mut() {
                    for f in q.iter_mut().filter(|f| f.len() > 42 && f[12..14] == [0x08, 0x00]) {
                        let last = f.len() - 1;
                        f[last] ^= 1;
                    }
                }
            }
            b.poll(clock);
        }
        let got = b.sockets.get_mut::<smoltcp::socket::udp::Socket>(hb).recv().map(|(d, _)| d.to_vec());
        if round == 0 {
            assert_eq!(got.as_deref(), Ok(&b"checked"[..]), "an intact datagram arrives");
        } else {
            assert!(got.is_err(), "a corrupted datagram reached the socket: {got:?}");
            assert!(b.sw.counters().rx_bad_checksums > 0, "{:?}", b.sw.counters());
        }
    }
    finish(&mut [&mut a, &mut b], &mut clock);
}

#[test]
fn receivers_keep_polling_for_the_spin_window_after_channel_frames() {
    const US: u64 = 1000;
    let sim = Sim::new();
    let bridge = Bridge::default();
    let config = Config { spin_ns: 200 * US, ..Config::default() };
    let (mut a, mut b, mut clock) = up_pair(&sim, &bridge, config);
    assert!(!a.sw.wants_polling() && !b.sw.wants_polling(), "no channel traffic yet: block");
    send(&mut a, &frame_to(mac(2), mac(1), 100));
    assert!(receive(&mut b).is_some());
    a.service(clock);
    b.service(clock);
    assert!(a.sw.wants_polling() && b.sw.wants_polling(), "both just moved a channel frame");
    b.service(clock + 150 * US);
    assert!(b.sw.wants_polling(), "inside the window");
    b.service(clock + 250 * US);
    assert!(!b.sw.wants_polling(), "the window is over: block");
    // Fallback traffic opens no window.
    clock += 300 * US;
    send(&mut b, &frame_to([0xff; 6], mac(2), 60));
    b.service(clock);
    assert!(!b.sw.wants_polling());
    finish(&mut [&mut a, &mut b], &mut clock);

    // Without a window, channel traffic never makes the stack poll.
    let sim = Sim::new();
    let bridge = Bridge::default();
    let (mut a, mut b, mut clock) = up_pair(&sim, &bridge, Config::default());
    send(&mut a, &frame_to(mac(2), mac(1), 100));
    assert!(receive(&mut b).is_some());
    b.service(clock);
    assert!(!b.sw.wants_polling());
    finish(&mut [&mut a, &mut b], &mut clock);
}
