//! Issue 14's reproducers: a co-resident peer that tries to exhaust the
//! guest's grants and pages, and one that tries to keep it busy in its
//! receive path. Each must leave the guest bounded, running, and able to
//! reach the network through netfront.

mod peer;

use std::cell::Cell;
use std::rc::Rc;

use channel::layout::State;
use channel::{Config, Note};
use netfront::Netfront;
use peer::{frame, held, spied_guest, Guest, Hostile, Read, MS};
use xen_proto::iface::EventChannels;
use xen_proto::iface::SharedPage;
use xensim::{DomainConfig, Netback, Sim};

/// Reproducer 1. dom2 publishes a valid offer whose control page says
/// Closed, maps every offer dom1 makes and never unmaps. dom1 closes each
/// channel at once; its grants cannot be revoked while dom2 maps them.
/// dom1 must not offer again while a channel to dom2 drains, must shun
/// dom2 once it holds our pages past the deadline, must stay within its
/// caps however long this goes on, and netfront must still work.
#[test]
fn a_peer_that_maps_our_grants_and_never_unmaps() {
    let sim = Sim::new();
    let config = Config::default();
    // Room for netfront's full rings (258 refs, 514 pages) and a few
    // channels: what a leak of a channel's worth per cycle eats in ~20
    // cycles.
    let limits = DomainConfig { grant_refs: 600, max_ports: 64, max_pages: 1024 };
    let mut victim = Guest::on(sim.create_domain_with(1, limits), sim.domain(1).gnttab(), config);
    let mut hostile = Hostile::new(&sim, 2, 1, 1, State::Closed);
    let mut clock = 0;
    victim.list(&[2], clock);
    let per_channel = config.ring_pages as usize + 1;
    let mut most = (0, 0);
    // 60 s of the guest's life, serviced every 10 ms: long enough for
    // ~120 offer cycles at the old 500 ms re-offer pace.
    for _ in 0..6000 {
        clock += 10 * MS;
        hostile.map_victim();
        victim.service(clock);
        let (refs, pages) = held(&sim, 1);
        most = (most.0.max(refs), most.1.max(pages));
    }
    let offers = victim.offers_to(2);
    let failed: Vec<&Note> = victim.notes.iter().filter(|n| matches!(n, Note::Failed { .. })).collect();
    eprintln!(
        "after 60 s: {offers} offers to dom2, dom2 maps {} of our pages, most grant refs held {}, most pages held {}, {} failures (first: {:?})",
        hostile.mapped(),
        most.0,
        most.1,
        failed.len(),
        failed.first()
    );
    // Bounded: one channel's worth, the one dom2 holds on to.
    assert!(most.0 <= per_channel && most.1 <= per_channel, "dom1 held up to {most:?} refs/pages for dom2 ({offers} offers)");
    assert_eq!(offers, 1, "no new offer while a channel to dom2 drains");
    assert!(victim.mgr.is_shunned(2), "dom2 kept our pages mapped past the deadline: shunned; notes {:?}", victim.notes);
    assert!(
        victim.notes.iter().any(|n| matches!(n, Note::Failed { peer: 2, why } if why.contains("shunned"))),
        "the shunning is logged: {:?}",
        victim.notes
    );
    assert_eq!(victim.mgr.pending_count(), 0, "a shunned peer is not waited for");

    // Netfront in the same domain, through its own backend in dom0, works.
    let nb = Netback::new(&sim, 1, 0, peer::mac(1));
    nb.install_hook();
    let mut nf = Netfront::connect(&mut victim.xs, victim.dom.gnttab(), victim.dom.evtchn(), "device/vif/0", 100 * MS)
        .expect("netfront connects next to a hostile channel peer");
    let out = frame(1, 9, 1, 600);
    nf.transmit(&out).expect("netfront sends");
    nb.inject_rx(frame(9, 1, 2, 700));
    for _ in 0..3 {
        victim.dom.evtchn().wait(MS);
        nf.handle_event();
    }
    assert_eq!(nb.take_tx(), vec![out]);
    assert_eq!(nf.poll_rx(), Some(frame(9, 1, 2, 700)));
    nf.shutdown(&mut victim.xs, 100 * MS).expect("netfront shuts down");
    assert!(nf.into_handles().is_ok());
    sim.clear_step_hook();

    // dom0 stops listing dom2 and lists it again: dom2 still maps our
    // pages, so it gets nothing.
    victim.list(&[], clock);
    victim.list(&[2], clock);
    for _ in 0..200 {
        clock += 10 * MS;
        hostile.map_victim();
        victim.service(clock);
    }
    assert_eq!(victim.offers_to(2), 1, "no offer while our pages are still mapped by dom2");
    // dom2 lets go: the drain finishes, everything comes back.
    hostile.unmap_all();
    for _ in 0..200 {
        clock += 10 * MS;
        victim.service(clock);
    }
    assert!(victim.notes.contains(&Note::Released { peer: 2 }), "{:?}", victim.notes);
    assert_eq!(victim.mgr.grants_held(), 0);
    // Listed again once more: shunned once, it waits the backoff first.
    assert_eq!(victim.mgr.strikes(2), 1);
    let backoff = channel::Manager::<xensim::SimGnttab, xensim::SimEvtchn>::shun_backoff_ns(1);
    victim.list(&[], clock);
    victim.list(&[2], clock);
    let relisted = clock;
    let offers = victim.offers_to(2);
    while victim.offers_to(2) == offers {
        clock += 10 * MS;
        victim.service(clock);
        assert!(clock - relisted < 2 * backoff, "no offer after the backoff");
    }
    assert!(clock - relisted >= backoff, "offered {} ms after relisting", (clock - relisted) / MS);
    for _ in 0..10 {
        clock += 10 * MS;
        victim.service(clock);
    }
    victim.list(&[], clock);
    victim.shutdown(&mut clock);
    hostile.shutdown();
}

/// How the hostile peer of reproducer 2 republishes: before each read of
/// its producer index, it writes a pad record over the whole ring (from
/// wherever its index is to the end) and moves its index past it.
fn republish_pads(sim: &Sim, hostile: &Hostile, budget: u32, count: Rc<Cell<u32>>) -> impl FnMut(Read) + 'static {
    let control = sim.granted_page(hostile.id(), hostile.control_ref).unwrap();
    let ring = sim.granted_page(hostile.id(), hostile.ring_refs[0]).unwrap();
    let size = hostile.ring_size() as u32;
    move |r| {
        if r != Read::Control(channel::layout::TX_PROD) || count.get() >= budget {
            return;
        }
        let prod = control.read_u32(channel::layout::TX_PROD);
        let at = prod % size;
        ring.write_bytes(at as usize, &channel::ring::header((size - at) as usize - 8, channel::ring::KIND_PAD));
        control.write_u32(channel::layout::TX_PROD, prod.wrapping_add(size - at));
        count.set(count.get() + 1);
    }
}

/// Reproducer 2. dom2 (on another CPU, as far as dom1 can tell) keeps
/// republishing a ring-sized pad record. Every receive call must return
/// within its budget, the channel must close as a violation, and dom1
/// must keep serving another peer.
#[test]
fn a_peer_that_republishes_pads() {
    let sim = Sim::new();
    let config = Config { ring_pages: 1, ..Config::default() };
    let (mut victim, spy) = spied_guest(&sim, 1, config);
    let mut hostile = Hostile::new(&sim, 2, 1, 1, State::Connected);
    let mut friend = Guest::new(&sim, 3, config);
    let mut clock = 0;
    victim.list(&[2, 3], clock);
    friend.list(&[1], clock);
    for _ in 0..20 {
        clock += MS;
        victim.service(clock);
        friend.service(clock);
    }
    assert!(victim.up(2) && victim.up(3) && friend.up(1), "{:?}", victim.notes);

    let count = Rc::new(Cell::new(0));
    // Without a bound on the guest's side, the peer stops by itself after
    // this many, so the test ends either way.
    const PEER_GIVES_UP_AFTER: u32 = 1_000_000;
    spy.set_hook(republish_pads(&sim, &hostile, PEER_GIVES_UP_AFTER, count.clone()));
    let mut most = 0;
    let mut calls = 0;
    while victim.mgr.channel(2).is_some_and(|c| c.is_attached()) && calls < 100 {
        let before = count.get();
        assert_eq!(victim.receive(2, clock), None, "a pad is no frame");
        most = most.max(count.get() - before);
        calls += 1;
    }
    spy.clear_hook();
    eprintln!("{calls} receive calls; the most pad records one call went through: {most}");
    assert!(most <= 2, "one receive call went through {most} pad records");
    assert!(victim.mgr.channel(2).is_none(), "the channel is closed as a violation");
    assert!(victim.mgr.is_shunned(2));
    assert!(
        victim.notes.iter().any(|n| matches!(n, Note::Down { peer: 2, why, .. } if why.contains("ring protocol"))),
        "{:?}",
        victim.notes
    );

    // dom1 keeps serving dom3.
    for seq in 0..50 {
        let f = frame(3, 1, seq, 100 + seq as usize);
        friend.mgr.channel(1).unwrap().send(&f).unwrap();
        assert_eq!(victim.receive(3, clock), Some(f));
        let g = frame(1, 3, seq, 60);
        victim.mgr.channel(3).unwrap().send(&g).unwrap();
        assert_eq!(friend.receive(1, clock), Some(g));
    }
    clock += MS;
    victim.service(clock);
    victim.list(&[], clock);
    friend.list(&[], clock);
    for _ in 0..5 {
        clock += MS;
        victim.service(clock);
        friend.service(clock);
    }
    victim.shutdown(&mut clock);
    friend.shutdown(&mut clock);
    hostile.shutdown();
}
