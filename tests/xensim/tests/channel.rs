//! The shared-memory channel on the simulated Xen: handshake through
//! xenstore, frames in both directions across every wrap, notification
//! suppression, hostile peers, teardown order. Every test ends with the
//! leak assertion (dropping the `Sim`).

mod support;

use std::cell::Cell;

use channel::layout;
use channel::offer::{offer_path, Offer};
use channel::{Config, Manager, Note, SendError};
use discovery::{Peer, PeerList};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use support::pattern;
use xen_proto::iface::{DomId, SharedPage};
use xen_proto::xenstore::Client;
use xensim::{Domain, DomainConfig, Sim, SimEvtchn, SimGnttab, SimXsRing, Xen};

const MS: u64 = 1_000_000;

type Mgr = Manager<SimGnttab, SimEvtchn>;

fn mac(domid: DomId) -> [u8; 6] {
    [0x00, 0x16, 0x3e, 0xc0, 0x00, domid as u8]
}

struct Guest {
    dom: Domain,
    xs: Client<SimXsRing>,
    mgr: Mgr,
    notes: Vec<Note>,
}

impl Guest {
    fn new(sim: &Sim, domid: DomId, config: Config) -> Guest {
        let dom = sim.create_domain_with(domid, DomainConfig { grant_refs: 512, max_ports: 64, max_pages: 1024 });
        let xs = dom.xenstore_client();
        let mgr = Manager::new(dom.gnttab(), dom.evtchn(), domid, config);
        Guest { dom, xs, mgr, notes: Vec::new() }
    }

    fn id(&self) -> DomId {
        self.dom.domid()
    }

    fn list(&mut self, peers: &[DomId], now: u64) {
        let (list, _) = PeerList::new(peers.iter().map(|&d| Peer { domid: d, mac: mac(d) }).collect());
        self.mgr.set_peers(&mut self.xs, &list, now);
        self.notes.extend(self.mgr.take_notes());
    }

    fn service(&mut self, now: u64) {
        let mut fired = Vec::new();
        while let Ok(Some(ev)) = self.xs.next_watch_event() {
            if ev.token == channel::manager::WATCH_TOKEN {
                fired.push(ev.path);
            }
        }
        self.mgr.service(&mut self.xs, &fired, now);
        self.notes.extend(self.mgr.take_notes());
    }

    fn up(&self, peer: DomId) -> bool {
        self.notes.iter().rev().find_map(|n| match n {
            Note::Up { peer: p, .. } if *p == peer => Some(true),
            Note::Down { peer: p, was_up: true, .. } if *p == peer => Some(false),
            _ => None,
        }) == Some(true)
    }

    fn shutdown(&mut self, now: u64) {
        self.mgr.close_all(&mut self.xs, now);
    }
}

/// Services every guest in turn, `rounds` times, 1 ms of clock apart.
fn pump(guests: &mut [&mut Guest], clock: &mut u64, rounds: usize) {
    for _ in 0..rounds {
        *clock += MS;
        for g in guests.iter_mut() {
            g.service(*clock);
        }
    }
}

/// Two guests listed to each other, pumped until both channels are up.
fn pair(sim: &Sim, config: Config) -> (Guest, Guest, u64) {
    let mut a = Guest::new(sim, 1, config);
    let mut b = Guest::new(sim, 2, config);
    let mut clock = 0;
    a.list(&[2], clock);
    b.list(&[1], clock);
    for _ in 0..20 {
        pump(&mut [&mut a, &mut b], &mut clock, 1);
        if a.up(2) && b.up(1) {
            return (a, b, clock);
        }
    }
    panic!("channel not up: a {:?}, b {:?}", a.notes, b.notes);
}

fn close_pair(a: &mut Guest, b: &mut Guest, clock: &mut u64) {
    a.shutdown(*clock);
    b.shutdown(*clock);
    for _ in 0..5 {
        pump(&mut [&mut *a, &mut *b], clock, 1);
        a.mgr.close_all(&mut a.xs, *clock);
        b.mgr.close_all(&mut b.xs, *clock);
    }
    assert!(a.mgr.is_idle() && b.mgr.is_idle(), "channels still draining");
}

/// A frame of `len` bytes from `from` to `to`: the MACs, then the shared
/// pattern for `seq`.
fn frame(from: DomId, to: DomId, seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&mac(to));
    f[6..12].copy_from_slice(&mac(from));
    pattern::fill(&mut f[12..], u64::from(seq));
    f
}

fn send(g: &mut Guest, peer: DomId, f: &[u8]) -> Result<(), SendError> {
    g.mgr.channel(peer).expect("channel").send(f)
}

fn recv(g: &mut Guest, peer: DomId) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    g.mgr.channel(peer).expect("channel").recv_into(&mut out).expect("no violation").then_some(out)
}

#[test]
fn handshake_brings_both_sides_up_and_offers_are_private() {
    let sim = Sim::new();
    let mut c = Guest::new(&sim, 3, Config::default());
    let (mut a, mut b, mut clock) = pair(&sim, Config::default());
    // Each side offered to the other, readable by that peer only.
    for (owner, peer) in [(1, 2), (2, 1)] {
        let path = offer_path(owner, peer);
        let value = sim.xs_read(&path).expect("offer written");
        let offer = Offer::parse(&value).expect("offer parses");
        assert_eq!(offer.version, layout::LAYOUT_VERSION);
        // The lower domid names the event channel, the higher binds it.
        assert_eq!(offer.event_channel.is_some(), owner < peer);
        assert!(c.xs.read(&path).is_err(), "a third domain must not read {path}");
    }
    assert!(a.notes.contains(&Note::Offered { peer: 2 }));
    assert!(c.mgr.is_idle());
    close_pair(&mut a, &mut b, &mut clock);
    c.shutdown(clock);
    // Our offers are gone with the channels.
    assert_eq!(sim.xs_read(&offer_path(1, 2)), None);
    assert_eq!(sim.xs_read(&offer_path(2, 1)), None);
}

/// One step of the traffic below: a frame of `len` bytes from a to b
/// (`a_sends`) or from b to a; then, at times (`lag`), a number of rounds
/// in which each side receives at most one frame.
#[derive(Clone, Copy, Debug)]
struct Step {
    len: usize,
    a_sends: bool,
    lag: Option<usize>,
}

fn step() -> impl Strategy<Value = Step> {
    (14..=1514usize, any::<bool>(), proptest::option::weighted(1.0 / 3.0, 0..=4usize)).prop_map(|(len, a_sends, lag)| Step {
        len,
        a_sends,
        lag,
    })
}

/// Up to 400 frames both ways through one page per direction (tens of
/// times round the ring; over all 64 cases some 12 000 frames and every
/// pad length), the receivers lagging behind: every frame arrives whole
/// and in order, and the counters agree. Over all cases the senders must
/// have found the ring full at times.
#[test]
fn random_frames_both_ways_across_every_wrap() {
    let full = Cell::new(0u32);
    let config = ProptestConfig { source_file: Some(file!()), ..support::props::config(64) };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&vec(step(), 1..=400), |steps| {
        let sim = Sim::new();
        let (mut a, mut b, mut clock) = pair(&sim, Config { ring_pages: 1, polling: false, ..Config::default() });
        let (mut sent_ab, mut sent_ba) = (Vec::new(), Vec::new());
        let (mut got_ab, mut got_ba) = (0usize, 0usize);
        for (seq, s) in steps.iter().enumerate() {
            let (from, to, sent) = if s.a_sends { (&mut a, 2, &mut sent_ab) } else { (&mut b, 1, &mut sent_ba) };
            let f = frame(from.id(), to, seq as u32, s.len);
            match send(from, to, &f) {
                Ok(()) => sent.push(f),
                Err(SendError::Full) => full.set(full.get() + 1),
                Err(e) => panic!("send: {e:?}"),
            }
            for _ in 0..s.lag.unwrap_or(0) {
                if let Some(f) = recv(&mut b, 1) {
                    assert!(f == sent_ab[got_ab], "frame {} a->b", got_ab);
                    got_ab += 1;
                }
                if let Some(f) = recv(&mut a, 2) {
                    assert!(f == sent_ba[got_ba], "frame {} b->a", got_ba);
                    got_ba += 1;
                }
            }
        }
        while let Some(f) = recv(&mut b, 1) {
            assert!(f == sent_ab[got_ab], "frame {} a->b", got_ab);
            got_ab += 1;
        }
        while let Some(f) = recv(&mut a, 2) {
            assert!(f == sent_ba[got_ba], "frame {} b->a", got_ba);
            got_ba += 1;
        }
        assert_eq!((got_ab, got_ba), (sent_ab.len(), sent_ba.len()));
        let c = a.mgr.channel(2).unwrap().counters();
        assert_eq!(c.tx_frames as usize, sent_ab.len());
        assert_eq!(c.rx_frames as usize, sent_ba.len());
        close_pair(&mut a, &mut b, &mut clock);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(full.get() > 0, "the test should fill the ring at times");
}

/// The frames above differ from one another, and not only in their first
/// bytes: a shift by a page shows.
#[test]
fn frames_carry_distinct_payloads() {
    let f = frame(1, 2, 7, 9000);
    assert_eq!(f, frame(1, 2, 7, 9000));
    assert_ne!(f[12..], frame(1, 2, 8, 9000)[12..]);
    assert_ne!(f[12..4108], f[4108..8204]);
    assert!(f[12..].iter().any(|&b| b != f[12]));
}

#[test]
fn every_frame_length_at_every_ring_offset() {
    let sim = Sim::new();
    let (mut a, mut b, mut clock) = pair(&sim, Config { ring_pages: 1, polling: false, ..Config::default() });
    // Walk the producer index over every 8-byte offset of the ring with
    // each length class around a record-size boundary, draining each time.
    let mut seq = 0;
    for len in [14, 15, 16, 17, 23, 24, 25, 1505, 1512, 1513, 1514] {
        for _ in 0..(4096 / 8 + 3) {
            let f = frame(1, 2, seq, len);
            send(&mut a, 2, &f).expect("room after draining");
            assert_eq!(recv(&mut b, 1).as_deref(), Some(&f[..]), "len {len} seq {seq}");
            // Step the index by one 8-byte slot with a minimal frame.
            let step = frame(1, 2, seq + 1, 14);
            send(&mut a, 2, &step).expect("room");
            assert_eq!(recv(&mut b, 1).as_deref(), Some(&step[..]));
            seq += 2;
        }
    }
    for bad in [13, 1515, 9000] {
        assert_eq!(send(&mut a, 2, &vec![0; bad]), Err(SendError::BadLength));
    }
    close_pair(&mut a, &mut b, &mut clock);
}

#[test]
fn a_streaming_sender_raises_few_events() {
    let sim = Sim::new();
    let (mut a, mut b, mut clock) = pair(&sim, Config { ring_pages: 16, polling: false, ..Config::default() });
    let before = a.mgr.channel(2).unwrap().counters().notifications_sent;
    // The receiver drains in bursts and arms its event only when idle.
    let mut frames = 0;
    for burst in 0..200u32 {
        for i in 0..20 {
            send(&mut a, 2, &frame(1, 2, burst * 20 + i, 1514)).expect("room");
            frames += 1;
        }
        while recv(&mut b, 1).is_some() {}
        assert!(!b.mgr.channel(1).unwrap().arm_rx(), "nothing pending after draining");
    }
    let sent = a.mgr.channel(2).unwrap().counters().notifications_sent - before;
    // At most one per burst (the receiver armed once per burst).
    assert!(sent <= 200, "{sent} notifications for {frames} frames");
    assert!(sent >= 100, "an armed receiver must be notified ({sent})");
    // In polling mode the receiver never asks.
    close_pair(&mut a, &mut b, &mut clock);
    let sim = Sim::new();
    let (mut a, mut b, mut clock) = pair(&sim, Config { ring_pages: 16, polling: true, ..Config::default() });
    let before = a.mgr.channel(2).unwrap().counters().notifications_sent;
    for i in 0..500 {
        send(&mut a, 2, &frame(1, 2, i, 600)).unwrap();
        recv(&mut b, 1).unwrap();
        assert!(!b.mgr.channel(1).unwrap().arm_rx());
    }
    assert_eq!(a.mgr.channel(2).unwrap().counters().notifications_sent, before);
    close_pair(&mut a, &mut b, &mut clock);
}

#[test]
fn a_full_ring_asks_for_space_and_gets_it() {
    let sim = Sim::new();
    let (mut a, mut b, mut clock) = pair(&sim, Config { ring_pages: 1, polling: false, ..Config::default() });
    let mut n = 0;
    while send(&mut a, 2, &frame(1, 2, n, 1514)).is_ok() {
        n += 1;
    }
    assert!(n >= 2);
    let notified = b.mgr.channel(1).unwrap().counters().notifications_sent;
    // Draining one record gives the sender its space event.
    recv(&mut b, 1).unwrap();
    assert!(b.mgr.channel(1).unwrap().counters().notifications_sent > notified, "space event not sent");
    assert!(a.mgr.channel(2).unwrap().take_event());
    send(&mut a, 2, &frame(1, 2, n, 1514)).expect("room after the space event");
    close_pair(&mut a, &mut b, &mut clock);
}

/// The control page `owner` granted to `peer` (through its offer), as a
/// writable view: the test plays `owner` turned hostile.
fn control_page(xen: &Xen, owner: DomId, peer: DomId) -> xensim::SimPage {
    let offer = Offer::parse(&xen.xs_read(&offer_path(owner, peer)).expect("offer")).expect("parses");
    xen.granted_page(owner, offer.control_ref).expect("granted")
}

fn ring_page(xen: &Xen, owner: DomId, peer: DomId, index: usize) -> xensim::SimPage {
    let control = control_page(xen, owner, peer);
    let gref = control.read_u32(layout::GREFS_AT + 4 * index);
    xen.granted_page(owner, gref).expect("ring page granted")
}

/// What `a` (dom1) does with a channel whose peer (dom2) wrote garbage:
/// it closes it, says why, shuns the peer, and gives everything back.
fn assert_shunned(a: &mut Guest, b: &mut Guest, clock: &mut u64, why: &str) {
    let down = a.notes.iter().find_map(|n| match n {
        Note::Down { peer: 2, why, .. } => Some(why.clone()),
        _ => None,
    });
    assert!(down.as_deref().is_some_and(|w| w.contains(why)), "expected a close for `{why}`, notes {:?}", a.notes);
    assert!(a.mgr.channel(2).is_none());
    // Shunned: no new offer while dom0 still lists the peer.
    pump(&mut [&mut *a, &mut *b], clock, 1000);
    assert!(a.mgr.channel(2).is_none(), "re-offered to a shunned peer");
    close_pair(a, b, clock);
}

/// Runs the receive path of `a` the way the switch does, turning a ring
/// violation into `Manager::fail`.
fn a_receives(a: &mut Guest, clock: u64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match a.mgr.channel(2)?.recv_into(&mut out) {
        Ok(true) => Some(out),
        Ok(false) => None,
        Err(v) => {
            a.mgr.fail(2, &format!("the peer broke the ring protocol: {v:?}"), clock);
            a.notes.extend(a.mgr.take_notes());
            None
        }
    }
}

#[test]
fn hostile_producer_index_closes_the_channel() {
    for bogus in [4096 + 8, 5, u32::MAX - 7] {
        let sim = Sim::new();
        let (mut a, mut b, mut clock) = pair(&sim, Config { ring_pages: 1, polling: false, ..Config::default() });
        send(&mut b, 1, &frame(2, 1, 0, 100)).unwrap();
        control_page(&sim, 2, 1).write_u32(layout::TX_PROD, bogus);
        assert_eq!(a_receives(&mut a, clock), None);
        assert_shunned(&mut a, &mut b, &mut clock, "ring protocol");
    }
}

#[test]
fn hostile_record_lengths_and_kinds_close_the_channel() {
    // (len, kind) written over the first record's header.
    for (len, kind) in [(0u32, 1u32), (13, 1), (1515, 1), (u32::MAX, 1), (4000, 1), (100, 2), (16, 9)] {
        let sim = Sim::new();
        let (mut a, mut b, mut clock) = pair(&sim, Config { ring_pages: 1, polling: false, ..Config::default() });
        send(&mut b, 1, &frame(2, 1, 0, 200)).unwrap();
        let ring = ring_page(&sim, 2, 1, 0);
        ring.write_u32(0, len);
        ring.write_u32(4, kind);
        assert_eq!(a_receives(&mut a, clock), None, "len {len} kind {kind}");
        assert_shunned(&mut a, &mut b, &mut clock, "ring protocol");
    }
}

#[test]
fn hostile_consumer_index_stops_the_sender() {
    let sim = Sim::new();
    let (mut a, mut b, mut clock) = pair(&sim, Config { ring_pages: 1, polling: false, ..Config::default() });
    // dom2 claims to have consumed more of dom1's ring than dom1 will
    // have produced when it reads this.
    control_page(&sim, 2, 1).write_u32(layout::RX_CONS, 3 * 4096);
    // The sender reads the index again only when what it last read leaves
    // no room: by the time a page of frames is out, it has, and stops.
    let mut sent = 0;
    let stopped = loop {
        match send(&mut a, 2, &frame(1, 2, 0, 100)) {
            Ok(()) => sent += 1,
            other => break other,
        }
        assert!(sent <= 4096 / 100, "{sent} frames into a 4 KiB ring");
    };
    assert_eq!(stopped, Err(SendError::Violation), "after {sent} frames");
    a.mgr.fail(2, "the peer published an impossible consumer index", clock);
    a.notes.extend(a.mgr.take_notes());
    assert_shunned(&mut a, &mut b, &mut clock, "consumer index");
}

#[test]
fn hostile_state_closes_the_channel() {
    let sim = Sim::new();
    let (mut a, mut b, mut clock) = pair(&sim, Config::default());
    control_page(&sim, 2, 1).write_u32(layout::STATE_AT, 77);
    a.service(clock);
    assert_shunned(&mut a, &mut b, &mut clock, "unknown state");
}

#[test]
fn a_control_page_that_contradicts_the_offer_is_refused() {
    let sim = Sim::new();
    let mut a = Guest::new(&sim, 1, Config::default());
    let mut b = Guest::new(&sim, 2, Config::default());
    let mut clock = 0;
    b.list(&[1], clock);
    // dom2's control page says another nonce than its offer.
    control_page(&sim, 2, 1).write_u32(layout::NONCE_AT, 999);
    a.list(&[2], clock);
    pump(&mut [&mut a, &mut b], &mut clock, 5);
    assert!(!a.up(2) && a.mgr.channel(2).is_none(), "attached to a lying peer: {:?}", a.notes);
    assert!(
        a.notes.iter().any(|n| matches!(n, Note::Down { peer: 2, why, .. } if why.contains("nonce differs"))),
        "{:?}",
        a.notes
    );
    close_pair(&mut a, &mut b, &mut clock);
}

#[test]
fn a_garbage_offer_is_refused() {
    let sim = Sim::new();
    let mut a = Guest::new(&sim, 1, Config::default());
    let mut b = Guest::new(&sim, 2, Config::default());
    let mut clock = 0;
    // dom2 "offers" garbage, readable by dom1.
    b.xs.write(&offer_path(2, 1), b"version=1 nonce=1 control-ref=9 ring-pages=3 event-channel=-").unwrap();
    b.xs.set_perms(&offer_path(2, 1), &[perm(2, "n"), perm(1, "r")]).unwrap();
    a.list(&[2], clock);
    pump(&mut [&mut a], &mut clock, 3);
    assert!(
        a.notes.iter().any(|n| matches!(n, Note::Down { peer: 2, why, was_up: false, .. } if why.contains("bad offer"))),
        "{:?}",
        a.notes
    );
    assert!(a.mgr.channel(2).is_none(), "channel to a peer with a bad offer: {:?}", a.notes);
    b.xs.rm(&offer_path(2, 1)).unwrap();
    close_pair(&mut a, &mut b, &mut clock);
}

fn perm(domid: DomId, access: &str) -> xenstore_wire::Permission {
    xenstore_wire::Permission::parse(format!("{access}{domid}").as_bytes()).unwrap()
}

#[test]
fn another_layout_version_is_refused_cleanly() {
    let sim = Sim::new();
    let mut a = Guest::new(&sim, 1, Config::default());
    let mut b = Guest::new(&sim, 2, Config::default());
    let mut clock = 0;
    b.xs.write(&offer_path(2, 1), b"version=2 something=new").unwrap();
    b.xs.set_perms(&offer_path(2, 1), &[perm(2, "n"), perm(1, "r")]).unwrap();
    a.list(&[2], clock);
    pump(&mut [&mut a], &mut clock, 3);
    assert!(a.notes.iter().any(|n| matches!(n, Note::Refused { peer: 2, why } if why.contains("version 2"))), "{:?}", a.notes);
    assert!(a.mgr.channel(2).is_none());
    // dom1 withdrew its own offer too, so the peer sees no half channel.
    assert_eq!(sim.xs_read(&offer_path(1, 2)), None);
    b.xs.rm(&offer_path(2, 1)).unwrap();
    close_pair(&mut a, &mut b, &mut clock);
}

#[test]
fn unlisted_peers_get_nothing() {
    let sim = Sim::new();
    let mut a = Guest::new(&sim, 1, Config::default());
    let mut c = Guest::new(&sim, 3, Config::default());
    let mut clock = 0;
    // dom3 lists dom1 (as if it were in its group), but dom1's list is empty.
    c.list(&[1], clock);
    a.list(&[], clock);
    pump(&mut [&mut a, &mut c], &mut clock, 20);
    assert!(!c.up(1));
    assert!(a.mgr.is_idle(), "dom1 must not offer or attach to an unlisted peer");
    close_pair(&mut a, &mut c, &mut clock);
}

#[test]
fn a_peer_that_closes_is_followed_and_offered_again() {
    let sim = Sim::new();
    let (mut a, mut b, mut clock) = pair(&sim, Config::default());
    // dom2 drops dom1 (say, it left the group) and comes back.
    b.list(&[], clock);
    pump(&mut [&mut a, &mut b], &mut clock, 5);
    assert!(!a.up(2), "dom1 must follow dom2's close: {:?}", a.notes);
    b.list(&[1], clock);
    pump(&mut [&mut a, &mut b], &mut clock, 1000);
    assert!(a.up(2) && b.up(1), "channel back: a {:?} b {:?}", a.notes, b.notes);
    send(&mut a, 2, &frame(1, 2, 0, 100)).unwrap();
    assert!(recv(&mut b, 1).is_some());
    close_pair(&mut a, &mut b, &mut clock);
}

#[test]
fn teardown_unmaps_before_revoking_and_waits_for_the_peer() {
    let sim = Sim::new();
    let (mut a, mut b, mut clock) = pair(&sim, Config::default());
    // dom1 closes first: dom2 still maps dom1's pages, so dom1's grants
    // cannot be revoked yet; dom1 has already unmapped dom2's.
    a.mgr.fail(2, "test", clock);
    a.notes.extend(a.mgr.take_notes());
    assert!(!a.mgr.is_idle(), "revocation must wait while the peer maps our pages");
    assert!(!sim.leaks().iter().any(|l| l.starts_with("dom1: mapping")), "dom1 unmapped the peer first");
    // dom2 notices (our state says Closed), closes and unmaps; dom1's
    // grants then go.
    pump(&mut [&mut a, &mut b], &mut clock, 3);
    assert!(b.notes.iter().any(|n| matches!(n, Note::Down { peer: 1, .. })), "{:?}", b.notes);
    assert!(a.notes.contains(&Note::Released { peer: 2 }), "{:?}", a.notes);
    close_pair(&mut a, &mut b, &mut clock);
}

#[test]
fn a_destroyed_peer_is_noticed_and_everything_is_given_back() {
    let sim = Sim::new();
    let (mut a, b, mut clock) = pair(&sim, Config::default());
    send(&mut a, 2, &frame(1, 2, 0, 100)).unwrap();
    drop(b);
    sim.destroy_domain(2);
    // Its offer vanished with its home directory: the watch fires.
    pump(&mut [&mut a], &mut clock, 2);
    assert!(a.notes.iter().any(|n| matches!(n, Note::Down { peer: 2, .. })), "{:?}", a.notes);
    a.list(&[], clock);
    pump(&mut [&mut a], &mut clock, 2);
    assert!(a.mgr.is_idle(), "grants of a dead peer's mappings are revocable");
    a.shutdown(clock);
}

#[test]
fn frames_are_no_larger_than_the_receiver_accepts() {
    let sim = Sim::new();
    let mut a = Guest::new(&sim, 1, Config { ring_pages: 16, max_frame: 9014, ..Config::default() });
    let mut b = Guest::new(&sim, 2, Config::default());
    let mut clock = 0;
    a.list(&[2], clock);
    b.list(&[1], clock);
    pump(&mut [&mut a, &mut b], &mut clock, 10);
    assert!(a.up(2) && b.up(1));
    // dom2 accepts standard frames only: dom1 sends no more.
    assert_eq!(a.mgr.channel(2).unwrap().send_limit(), 1514);
    assert_eq!(send(&mut a, 2, &frame(1, 2, 0, 4000)), Err(SendError::BadLength));
    send(&mut a, 2, &frame(1, 2, 1, 1514)).unwrap();
    assert_eq!(recv(&mut b, 1).map(|f| f.len()), Some(1514));
    // A dom2 that writes a record larger than dom1 accepts breaks the ring.
    let ch = b.mgr.channel(1).unwrap();
    assert_eq!(ch.send_limit(), 1514);
    close_pair(&mut a, &mut b, &mut clock);
}

#[test]
fn a_ring_too_small_for_two_large_frames_is_refused() {
    let sim = Sim::new();
    let dom = sim.create_domain(1);
    let bad = Config { ring_pages: 2, max_frame: 9014, ..Config::default() };
    let offered = channel::Channel::offer(dom.gnttab(), dom.evtchn(), 1, 2, bad, 1);
    assert!(matches!(offered, Err(channel::ChannelError::BadConfig)));
}

#[test]
fn holding_peers_on_the_fallback_closes_their_channels_until_released() {
    let sim = Sim::new();
    let (mut a, mut b, mut clock) = pair(&sim, Config::default());
    a.mgr.hold(true, clock);
    a.notes.extend(a.mgr.take_notes());
    pump(&mut [&mut a, &mut b], &mut clock, 1000);
    assert!(!a.up(2) && !b.up(1), "held: no channel either way");
    assert_eq!(a.mgr.pending_count(), 0, "a held peer is not waited for");
    assert!(a.mgr.channel(2).is_none());
    a.mgr.hold(false, clock);
    pump(&mut [&mut a, &mut b], &mut clock, 1000);
    assert!(a.up(2) && b.up(1), "released: the channel is back: {:?}", a.notes);
    close_pair(&mut a, &mut b, &mut clock);
}
