//! The residency device below smoltcp: frames to a peer with a channel up
//! take the channel, everything else the fallback (here an in-memory
//! bridge standing in for netfront → dom0 → netback); a TCP stream
//! survives the channel coming up and going away in the middle.
//!
//! Each guest runs the real device (`residency::Residency`): it writes its
//! advert, xensim's xenstored fires its watch when dom0 (playing the
//! discovery daemon) publishes or withdraws its peer list, its own rounds
//! read the list and drive the channels, and its close loop ends every
//! test, with the other guests running meanwhile.

mod support;

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use channel::{Config, Note};
use discovery::{advert_path, peers_path, Advert, Group, Peer, PeerList};
use residency::switch::{FallbackDevice, FallbackFull, FallbackMeta, FallbackOffloads, MISADDRESSED_PER_CALL, STUCK_AFTER_NS};
use residency::{Detection, Event, Options, Residency, SwitchCounters, CLOSE_TIMEOUT_NS};
use smoltcp::iface::{Config as IfConfig, Interface, SocketSet};
use smoltcp::phy::{Device, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, Ipv4Address};
use support::pattern;
use xen_proto::iface::DomId;
use xen_proto::xenstore::Client;
use xensim::{Domain, DomainConfig, Sim, SimEvtchn, SimGnttab, SimXsRing};
use xenstore_wire::{Access, Permission};

const MS: u64 = 1_000_000;
const GROUP: &str = "lab";

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
                let cut = residency::gso::segment(frame, 1514, usize::from(mss), &mut buf, |piece| {
                    residency::checksum::fill(piece);
                    self.bridge.deliver(self.mac, piece.to_vec());
                });
                assert!(cut, "a GSO packet the bridge cannot cut");
            }
            None => {
                let mut f = frame.to_vec();
                if meta.csum {
                    residency::checksum::fill(&mut f);
                }
                self.bridge.deliver(self.mac, f);
            }
        }
        Ok(())
    }
}

type Res = Residency<BridgePort, SimGnttab, SimEvtchn>;

/// dom0 as the discovery daemon: it publishes each guest's peer list,
/// owned by dom0 and readable by that guest alone.
struct Dom0 {
    xs: Client<SimXsRing>,
}

impl Dom0 {
    fn new(sim: &Sim) -> Dom0 {
        Dom0 { xs: sim.create_domain(0).xenstore_client() }
    }

    fn list(&mut self, domid: DomId, peers: &[DomId]) {
        let (list, _) = PeerList::new(peers.iter().map(|&d| Peer { domid: d, mac: mac(d) }).collect());
        self.publish(domid, list.to_value().as_bytes());
    }

    fn publish(&mut self, domid: DomId, value: &[u8]) {
        let path = peers_path(domid);
        let perms = [Permission::new(0, Access::None), Permission::new(domid, Access::Read)];
        self.xs
            .transaction(|tx| {
                tx.write(&path, value)?;
                tx.set_perms(&path, &perms)
            })
            .unwrap();
    }

    fn unlist(&mut self, domid: DomId) {
        self.xs.rm(&peers_path(domid)).unwrap();
    }
}

/// A guest: its residency device (the switch over a bridge port, and
/// channels) under a smoltcp interface.
struct Node {
    dom: Domain,
    xs: Client<SimXsRing>,
    res: Res,
    iface: Interface,
    sockets: SocketSet<'static>,
    events: Vec<Event>,
}

impl Node {
    /// A guest of group `lab` that has advertised itself and watches its
    /// list.
    fn new(sim: &Sim, bridge: &Bridge, domid: DomId, config: Config) -> Node {
        let dom = sim.create_domain_with(domid, DomainConfig { grant_refs: 512, max_ports: 64, max_pages: 1024 });
        let mut xs = dom.xenstore_client();
        let options = Options {
            me: domid,
            mac: mac(domid),
            channel: config,
            group: Some(Group::new(GROUP).unwrap()),
            ipv4: Some([198, 18, 0, domid as u8]),
        };
        let mut res = Residency::new(bridge.port(mac(domid)), dom.gnttab(), dom.evtchn(), options);
        let advert = res.advertise(&mut xs, 0).unwrap().expect("an advert, with a group");
        let written = Advert::parse(&sim.xs_read(&advert_path(domid)).expect("the advert in xenstore")).unwrap();
        assert_eq!(written, advert);
        assert_eq!((written.group.as_str(), written.mac, written.ipv4), (GROUP, mac(domid), Some([198, 18, 0, domid as u8])));
        let mut iface = Interface::new(IfConfig::new(EthernetAddress(mac(domid)).into()), &mut res, Instant::ZERO);
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(IpAddress::v4(198, 18, 0, domid as u8), 24)).unwrap();
        });
        Node { dom, xs, res, iface, sockets: SocketSet::new(vec![]), events: Vec::new() }
    }

    /// The device's own round: data path always, xenstore when due.
    fn service(&mut self, now: u64) {
        self.res.service(&mut self.xs, now);
        self.events.extend(self.res.take_events());
    }

    fn poll(&mut self, now: u64) {
        self.iface.poll(Instant::from_micros((now / 1000) as i64), &mut self.res, &mut self.sockets);
    }

    fn notes(&self) -> impl Iterator<Item = &Note> {
        self.events.iter().filter_map(|e| match e {
            Event::Channel { note, .. } => Some(note),
            _ => None,
        })
    }

    fn channel_up(&self) -> bool {
        self.notes()
            .filter_map(|n| match n {
                Note::Up { .. } => Some(true),
                Note::Down { was_up: true, .. } => Some(false),
                _ => None,
            })
            .last()
            == Some(true)
    }

    fn counters(&self) -> SwitchCounters {
        self.res.counters()
    }
}

/// The simulated time, lent to a node's close loop: pausing advances it
/// and gives the other guests their rounds.
struct Pause<'a, 'b> {
    clock: &'a mut u64,
    others: Vec<&'a mut &'b mut Node>,
}

impl residency::Clock for Pause<'_, '_> {
    fn now_ns(&mut self) -> u64 {
        *self.clock
    }

    fn pause(&mut self, ns: u64) {
        *self.clock += ns;
        for n in self.others.iter_mut() {
            n.service(*self.clock);
        }
    }
}

/// Each guest's close loop in turn, the others running meanwhile: every
/// channel released, the advert withdrawn.
fn finish(nodes: &mut [&mut Node], clock: &mut u64) {
    for i in 0..nodes.len() {
        let (before, rest) = nodes.split_at_mut(i);
        let (me, after) = rest.split_first_mut().unwrap();
        let mut pause = Pause { clock: &mut *clock, others: before.iter_mut().chain(after.iter_mut()).collect() };
        let released = me.res.close(&mut me.xs, &mut pause);
        me.events.extend(me.res.take_events());
        assert!(released, "dom{} still holds channel resources", me.dom.domid());
        assert!(!me.res.advertised());
        assert_eq!(me.dom.xen().xs_read(&advert_path(me.dom.domid())), None, "the advert is withdrawn");
    }
    for n in nodes.iter() {
        assert!(n.res.manager_ref().is_idle(), "dom{} still holds channel resources", n.dom.domid());
    }
}

/// A 3 MiB TCP stream from dom1 to dom2 that starts on the bridge, moves to
/// the channel when dom0 lists them, and back when it stops.
fn stream_across_switches(config: Config) -> (SwitchCounters, u64) {
    stream_across(config, Bridge::default())
}

fn stream_across(config: Config, bridge: Bridge) -> (SwitchCounters, u64) {
    let sim = Sim::new();
    let mut dom0 = Dom0::new(&sim);
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
    // The TCP bytes the sender's device sends, and sends again, and those
    // the receiver's receives (app=handover's counts).
    a.res.switch().track_tcp(true);
    b.res.switch().track_tcp(true);
    let (mut sent, mut received) = (0usize, Vec::with_capacity(payload.len()));
    let mut clock = 0u64;
    let (mut up_at, mut down_at) = (None, None);
    let (mut bridge_at_up, mut bridge_while_up) = (None, 0);
    while received.len() < payload.len() {
        // Housekeeping (dom0's list, handshakes) runs every 2 ms of this clock.
        clock += MS;
        assert!(clock < 600_000 * MS, "stalled at {} of {} bytes", received.len(), payload.len());
        // A third of the way in, dom0 lists the two as co-resident; two
        // thirds in, it stops (as if one had migrated away).
        if up_at.is_none() && received.len() > payload.len() / 3 {
            dom0.list(1, &[2]);
            dom0.list(2, &[1]);
            up_at = Some(received.len());
        }
        if down_at.is_none() && received.len() > 2 * payload.len() / 3 {
            assert!(a.channel_up() && b.channel_up(), "channel never came up: {:?}", a.events);
            bridge_while_up = *bridge.frames.borrow() - bridge_at_up.unwrap_or(0);
            dom0.list(1, &[]);
            dom0.list(2, &[]);
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
    // Every payload byte counted once on whichever path it took (built in
    // a ring or routed), what went twice on top.
    let tcp = a.res.switch_ref().tcp_sent().expect("tracking");
    assert_eq!(tcp.payload - tcp.retransmitted, payload.len() as u64, "{tcp:?}");
    // Some resent at the switches (56 KiB of 3 MiB in one run), not every
    // frame counted twice.
    assert!(tcp.retransmitted < tcp.payload / 10, "{tcp:?}");
    // The receiver's device saw every byte arrive, from either path; each
    // counts in order at most once (the rest arrived behind a later byte).
    let got = b.res.switch_ref().tcp_received().expect("tracking");
    assert!(got.payload >= payload.len() as u64, "{got:?}");
    assert!(got.payload - got.retransmitted <= payload.len() as u64, "{got:?}");
    let (ca, cb) = (a.counters(), b.counters());
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
    let token = n.res.transmit(Instant::ZERO).expect("a transmit token");
    token.consume(frame.len(), |buf| buf.copy_from_slice(frame));
}

fn receive(n: &mut Node) -> Option<Vec<u8>> {
    let (rx, _tx) = n.res.receive(Instant::ZERO)?;
    Some(rx.consume(|f| f.to_vec()))
}

/// dom1 and dom2 with their channel up, as dom0 lists them; dom0 too.
fn up_pair(sim: &Sim, bridge: &Bridge, config: Config) -> (Node, Node, Dom0, u64) {
    let mut dom0 = Dom0::new(sim);
    let mut a = Node::new(sim, bridge, 1, config);
    let mut b = Node::new(sim, bridge, 2, config);
    let mut clock = 0;
    dom0.list(1, &[2]);
    dom0.list(2, &[1]);
    for _ in 0..10 {
        clock += MS;
        a.service(clock);
        b.service(clock);
    }
    assert!(a.channel_up() && b.channel_up(), "{:?}", a.events);
    (a, b, dom0, clock)
}

#[test]
fn frames_are_routed_by_destination() {
    let sim = Sim::new();
    let bridge = Bridge::default();
    let (mut a, mut b, _dom0, mut clock) = up_pair(&sim, &bridge, Config::default());
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
    let ca = a.counters();
    assert_eq!((ca.tx_channel_frames, ca.tx_fallback_frames), (2, 2), "{ca:?}");
    finish(&mut [&mut a, &mut b, &mut c], &mut clock);
}

#[test]
fn channel_frames_not_from_the_peer_to_us_are_dropped() {
    let sim = Sim::new();
    let bridge = Bridge::default();
    let (mut a, mut b, _dom0, mut clock) = up_pair(&sim, &bridge, Config::default());
    // dom2 puts frames in its ring with a forged source, and to another MAC.
    let ch = b.res.switch().manager().channel(1).unwrap();
    ch.send(&frame_to(mac(1), mac(9), 80)).unwrap();
    ch.send(&frame_to(mac(7), mac(2), 80)).unwrap();
    ch.send(&frame_to(mac(1), mac(2), 80)).unwrap();
    assert_eq!(receive(&mut a).map(|f| f[6..12].to_vec()), Some(mac(2).to_vec()));
    assert_eq!(receive(&mut a), None);
    assert_eq!(a.counters().rx_misaddressed, 2);
    finish(&mut [&mut a, &mut b], &mut clock);
}

#[test]
fn a_flood_of_misaddressed_frames_is_drained_in_bounded_calls() {
    let sim = Sim::new();
    let bridge = Bridge::default();
    let (mut a, mut b, _dom0, mut clock) = up_pair(&sim, &bridge, Config::default());
    let ch = b.res.switch().manager().channel(1).unwrap();
    let flood = 3 * MISADDRESSED_PER_CALL as u64 + 5;
    for _ in 0..flood {
        ch.send(&frame_to(mac(1), mac(9), 60)).unwrap();
    }
    ch.send(&frame_to(mac(1), mac(2), 80)).unwrap();
    // Each call gives up after its budget; the good frame comes after the flood.
    let mut calls = 0;
    let got = loop {
        let before = a.counters().rx_misaddressed;
        let got = receive(&mut a);
        calls += 1;
        assert!(a.counters().rx_misaddressed - before <= MISADDRESSED_PER_CALL as u64);
        if got.is_some() || calls > 10 {
            break got;
        }
    };
    assert_eq!(got.map(|f| f.len()), Some(80));
    assert_eq!(calls, 4, "three calls stop at their budget, the fourth delivers");
    assert_eq!(a.counters().rx_misaddressed, flood);
    finish(&mut [&mut a, &mut b], &mut clock);
}

#[test]
fn a_peer_that_stops_reading_loses_its_channel() {
    let sim = Sim::new();
    let bridge = Bridge::default();
    let (mut a, mut b, _dom0, mut clock) = up_pair(&sim, &bridge, Config { ring_pages: 1, polling: false, ..Config::default() });
    let f = frame_to(mac(2), mac(1), 1514);
    // Fill dom2's view of our ring; dom2 never reads.
    while a.res.transmit(Instant::ZERO).is_some() {
        send(&mut a, &f);
        assert!(a.counters().tx_channel_frames < 100);
    }
    assert!(a.counters().tx_backpressure > 0);
    a.service(clock);
    assert!(a.channel_up(), "one full ring is no reason to close");
    // Still full after the grace period: the channel goes, traffic falls back.
    clock += STUCK_AFTER_NS + MS;
    assert!(a.res.transmit(Instant::ZERO).is_none());
    a.service(clock);
    assert!(a.notes().any(|n| matches!(n, Note::Down { why, .. } if why.contains("stopped consuming"))), "{:?}", a.events);
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
            assert!(b.counters().rx_bad_checksums > 0, "{:?}", b.counters());
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
    let (mut a, mut b, _dom0, mut clock) = up_pair(&sim, &bridge, config);
    assert!(!a.res.switch_ref().wants_polling() && !b.res.switch_ref().wants_polling(), "no channel traffic yet: block");
    send(&mut a, &frame_to(mac(2), mac(1), 100));
    assert!(receive(&mut b).is_some());
    a.service(clock);
    b.service(clock);
    assert!(a.res.switch_ref().wants_polling() && b.res.switch_ref().wants_polling(), "both just moved a channel frame");
    b.service(clock + 150 * US);
    assert!(b.res.switch_ref().wants_polling(), "inside the window");
    b.service(clock + 250 * US);
    assert!(!b.res.switch_ref().wants_polling(), "the window is over: block");
    // Fallback traffic opens no window.
    clock += 300 * US;
    send(&mut b, &frame_to([0xff; 6], mac(2), 60));
    b.service(clock);
    assert!(!b.res.switch_ref().wants_polling());
    finish(&mut [&mut a, &mut b], &mut clock);

    // Without a window, channel traffic never makes the stack poll.
    let sim = Sim::new();
    let bridge = Bridge::default();
    let (mut a, mut b, _dom0, mut clock) = up_pair(&sim, &bridge, Config::default());
    send(&mut a, &frame_to(mac(2), mac(1), 100));
    assert!(receive(&mut b).is_some());
    b.service(clock);
    assert!(!b.res.switch_ref().wants_polling());
    finish(&mut [&mut a, &mut b], &mut clock);
}

/// Rounds of 1 ms for every node.
fn run_for(nodes: &mut [&mut Node], clock: &mut u64, ms: u64) {
    for _ in 0..ms {
        *clock += MS;
        for n in nodes.iter_mut() {
            n.service(*clock);
        }
    }
}

#[test]
fn the_device_follows_the_list_dom0_keeps_for_it() {
    let sim = Sim::new();
    let bridge = Bridge::default();
    let mut dom0 = Dom0::new(&sim);
    let mut a = Node::new(&sim, &bridge, 1, Config::default());
    let mut b = Node::new(&sim, &bridge, 2, Config::default());
    let mut clock = 0;
    run_for(&mut [&mut a, &mut b], &mut clock, 5);
    assert!(a.res.settling(), "no list from dom0 yet: still settling");
    assert!(!a.events.iter().any(|e| matches!(e, Event::Listed(_))), "{:?}", a.events);
    assert_eq!(a.res.detection(), Some(Detection { advertised_ns: 0, listed_ns: None }));

    // dom0 lists them: the watch fires, the list is read, the channel comes up.
    dom0.list(1, &[2]);
    dom0.list(2, &[1]);
    run_for(&mut [&mut a, &mut b], &mut clock, 10);
    let listed: Vec<Vec<DomId>> = a
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Listed(l) => Some(l.peers().iter().map(|p| p.domid).collect()),
            _ => None,
        })
        .collect();
    assert_eq!(listed, [vec![2]], "one list, reported once");
    assert!(a.channel_up() && b.channel_up(), "{:?}", a.events);
    assert_eq!((a.res.channels_up(), a.res.settling()), (1, false));
    // When dom0 listed the peer, to time the setup: at a round after the
    // list was written (5 ms), before the channel was up.
    let listed_at = a.events.iter().find_map(|e| match e {
        Event::Channel { note: Note::Up { peer: 2, .. }, listed_at_ns } => Some(*listed_at_ns),
        _ => None,
    });
    assert!(matches!(listed_at, Some(Some(ns)) if ns > 5 * MS && ns < 15 * MS), "{listed_at:?}");
    // Detection's steps: advertised at 0 (Node::new), listed then.
    assert_eq!(a.res.detection(), Some(Detection { advertised_ns: 0, listed_ns: listed_at.flatten() }));

    // A list that does not parse is reported and ignored.
    dom0.publish(1, b"v2 garbage");
    run_for(&mut [&mut a, &mut b], &mut clock, 4);
    assert!(a.events.iter().any(|e| matches!(e, Event::BadList { value, .. } if value == "v2 garbage")), "{:?}", a.events);
    assert!(a.channel_up(), "a bad list changes nothing");

    // dom0 withdraws the list: no peers, the channel closes; listed
    // again, a new channel.
    dom0.unlist(1);
    run_for(&mut [&mut a, &mut b], &mut clock, 4);
    assert!(!a.channel_up(), "{:?}", a.events);
    assert!(a.notes().any(|n| matches!(n, Note::Down { peer: 2, why, .. } if why.contains("no longer lists"))));
    assert!(a.res.settling(), "no list: settling again");
    dom0.list(1, &[2]);
    run_for(&mut [&mut a, &mut b], &mut clock, 600);
    assert!(a.channel_up() && b.channel_up(), "{:?}", a.events);
    finish(&mut [&mut a, &mut b], &mut clock);
}

#[test]
fn the_close_loop_waits_for_the_peer_to_let_go_but_not_forever() {
    let sim = Sim::new();
    let bridge = Bridge::default();
    let (mut a, mut b, _dom0, mut clock) = up_pair(&sim, &bridge, Config::default());
    // dom2 does not run while dom1 closes: it keeps our pages mapped.
    let start = clock;
    let mut pause = Pause { clock: &mut clock, others: Vec::new() };
    assert!(!a.res.close(&mut a.xs, &mut pause), "released although the peer still maps our pages");
    assert!(clock - start >= CLOSE_TIMEOUT_NS && clock - start < CLOSE_TIMEOUT_NS + 100 * MS, "{} ns", clock - start);
    assert!(!a.res.manager_ref().is_idle());
    a.events.extend(a.res.take_events());
    assert!(a.notes().any(|n| matches!(n, Note::Down { peer: 2, was_up: true, .. })));
    assert!(!a.notes().any(|n| matches!(n, Note::Released { .. })));
    // Once it runs, it sees the close and unmaps; the loop finishes.
    finish(&mut [&mut a, &mut b], &mut clock);
    assert!(a.notes().any(|n| matches!(n, Note::Released { peer: 2 })), "{:?}", a.events);
    assert!(b.notes().any(|n| matches!(n, Note::Down { peer: 1, why, .. } if why.contains("peer closed"))), "{:?}", b.events);
}

#[test]
fn without_a_group_nothing_is_advertised_and_every_frame_takes_the_fallback() {
    let sim = Sim::new();
    let bridge = Bridge::default();
    let dom = sim.create_domain(1);
    let mut xs = dom.xenstore_client();
    let options = Options { me: 1, mac: mac(1), channel: Config::default(), group: None, ipv4: None };
    let mut res = Residency::new(bridge.port(mac(1)), dom.gnttab(), dom.evtchn(), options);
    assert_eq!(res.advertise(&mut xs, 0).unwrap(), None);
    assert_eq!(res.detection(), None);
    assert_eq!(sim.xs_read(&advert_path(1)), None);
    assert!(!res.advertised() && !res.settling());
    let token = res.transmit(Instant::ZERO).unwrap();
    token.consume(60, |buf| buf.copy_from_slice(&frame_to(mac(2), mac(1), 60)));
    res.service(&mut xs, MS);
    assert_eq!((res.counters().tx_fallback_frames, *bridge.frames.borrow()), (1, 1));
    assert!(res.close(&mut xs, &mut Pause { clock: &mut 0, others: Vec::new() }));
}
