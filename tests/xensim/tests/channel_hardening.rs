//! Linux netfront's hardening rules for an untrusted backend
//! (`drivers/net/xen-netfront.c`, since Linux 5.16), as tests of the
//! channel against an untrusted peer, one per rule:
//!
//! 1. read each index the peer owns once, into a local, and use that;
//! 2. validate every length and kind before using it;
//! 3. never read what the peer shared twice (copy once, use the copy);
//! 4. bad input puts the channel in an error state: nothing more is read
//!    or sent, and it is closed.
//!
//! The guest's mappings of the peer's pages go through a spy that logs
//! every read and lets the peer act just before it, as a peer on another
//! CPU could.

mod peer;

use std::cell::Cell;
use std::rc::Rc;

use channel::layout::{self, State};
use channel::ring::{self, Violation};
use channel::{Config, Note, SendError};
use peer::{frame, spied_guest, Guest, Hostile, Read, Spy, SpyGnttab, MS};
use xen_proto::iface::SharedPage;
use xensim::{Sim, SimPage};

struct World {
    sim: Sim,
    g: Guest<SpyGnttab>,
    spy: Spy,
    h: Hostile,
    /// The peer's producer index.
    prod: u32,
    clock: u64,
}

impl World {
    fn new() -> World {
        let sim = Sim::new();
        let (mut g, spy) = spied_guest(&sim, 1, Config { ring_pages: 1, ..Config::default() });
        let h = Hostile::new(&sim, 2, 1, 1, State::Connected);
        let mut clock = 0;
        g.list(&[2], clock);
        for _ in 0..3 {
            clock += MS;
            g.service(clock);
        }
        assert!(g.up(2), "{:?}", g.notes);
        spy.take();
        World { sim, g, spy, h, prod: 0, clock }
    }

    /// A writable view of the peer's control page (for hooks).
    fn control(&self) -> SimPage {
        self.sim.granted_page(2, self.h.control_ref).unwrap()
    }

    fn ring(&self) -> SimPage {
        self.sim.granted_page(2, self.h.ring_refs[0]).unwrap()
    }

    /// The peer publishes `f` properly (the guest consumed everything).
    fn publish(&mut self, f: &[u8]) {
        let size = self.h.ring_size();
        let p = ring::place(self.prod, self.prod, size, f.len(), ring::ETH_FRAME).unwrap();
        let r = self.ring();
        if let Some(at) = p.pad_at {
            r.write_bytes(at, &ring::header(size - at - ring::HEADER, ring::KIND_PAD));
        }
        r.write_bytes(p.record_at, &ring::header(f.len(), ring::KIND_FRAME));
        r.write_bytes(p.record_at + ring::HEADER, f);
        self.prod = p.new_prod;
        self.control().write_u32(layout::TX_PROD, self.prod);
    }

    fn recv(&mut self) -> Result<Option<Vec<u8>>, Violation> {
        let mut out = Vec::new();
        let ch = self.g.mgr.channel(2).expect("channel");
        ch.recv_into(&mut out).map(|got| got.then_some(out))
    }

    fn finish(mut self) {
        self.spy.clear_hook();
        self.h.unmap_all();
        self.g.list(&[], self.clock);
        self.g.shutdown(&mut self.clock);
        self.h.shutdown();
    }
}

/// Rule 1. The peer moves its producer index to garbage right after each
/// read we make of anything: the guest reads the index once per receive
/// and uses what it read. Same for the consumer index on the send side.
#[test]
fn rule_1_each_index_is_read_once() {
    let mut w = World::new();
    let control = w.control();
    let reads = Rc::new(Cell::new(0u32));
    let r = reads.clone();
    let good = Rc::new(Cell::new(0u32));
    let g2 = good.clone();
    w.spy.set_hook(move |read| {
        if read == Read::Control(layout::TX_PROD) {
            r.set(r.get() + 1);
            // The index is good when read...
            control.write_u32(layout::TX_PROD, g2.get());
        } else {
            // ...and garbage as soon as the guest looks at anything else.
            control.write_u32(layout::TX_PROD, g2.get().wrapping_add(5 * 4096 + 4));
        }
    });
    for seq in 0..40 {
        let f = frame(2, 1, seq, 60 + 37 * seq as usize);
        w.publish(&f);
        good.set(w.prod);
        reads.set(0);
        assert_eq!(w.recv(), Ok(Some(f)), "frame {seq}");
        assert_eq!(reads.get(), 1, "the producer index is read once per receive");
        reads.set(0);
        assert_eq!(w.recv(), Ok(None));
        assert_eq!(reads.get(), 1);
    }
    w.spy.clear_hook();
    w.control().write_u32(layout::TX_PROD, w.prod);

    // Sending: the peer's consumer index, read at most once per frame, and
    // only when the one read last leaves no room (the peer consumes
    // everything at once: one read per ring's worth of frames).
    let control = w.control();
    let reads = Rc::new(Cell::new(0u32));
    let r = reads.clone();
    w.spy.set_hook(move |read| {
        if read == Read::Control(layout::RX_CONS) {
            r.set(r.get() + 1);
        }
    });
    let mut our_prod = 0u32;
    let mut total = 0;
    for seq in 0..80 {
        control.write_u32(layout::RX_CONS, our_prod);
        reads.set(0);
        let f = frame(1, 2, seq, 100);
        w.g.mgr.channel(2).unwrap().send(&f).unwrap();
        our_prod = our_prod.wrapping_add(ring::record_len(100) as u32);
        assert!(reads.get() <= 1, "the consumer index is read at most once per send");
        total += reads.get();
    }
    // 80 frames of 108 bytes through a 4 KiB ring: about two ringfuls.
    assert!((1..=3).contains(&total), "{total} reads for 80 sends");
    w.finish();
}

/// Rule 2. Every record header a peer can write, at the start and near
/// the end of the ring, with as much published as the record needs or
/// less: what is delivered is exactly what the rules allow, everything
/// else is a violation; nothing is read past what was published or past
/// the ring.
#[test]
fn rule_2_every_length_and_kind_is_validated() {
    let size = 4096usize;
    let lens = [0u32, 1, 8, 13, 14, 15, 100, 1513, 1514, 1515, 4000, 4080, 4088, 4096, 65535, u32::MAX];
    let kinds = [0u32, ring::KIND_FRAME, ring::KIND_PAD, 3, u32::MAX];
    let mut cases = 0;
    let (mut frames, mut pads, mut violations) = (0, 0, 0);
    for at in [0usize, 2048, 4000, 4088] {
        for &len in &lens {
            for &kind in &kinds {
                for short in [false, true] {
                    let mut w = World::new();
                    // Move both indices to `at` with frames the guest takes.
                    let mut off = 0;
                    while off < at {
                        let record = (at - off).min(1024);
                        let f = frame(2, 1, off as u32, record - ring::HEADER);
                        w.publish(&f);
                        assert_eq!(w.recv(), Ok(Some(f)));
                        off += record;
                    }
                    let tail = size - at;
                    let record = if kind == ring::KIND_PAD { tail } else { ring::record_len(len.min(1 << 20) as usize) };
                    let published = if short { record.saturating_sub(8).max(8) } else { record }.min(size);
                    w.ring().write_bytes(at, &{
                        let mut h = [0u8; 8];
                        h[..4].copy_from_slice(&len.to_le_bytes());
                        h[4..].copy_from_slice(&kind.to_le_bytes());
                        h
                    });
                    w.prod = w.prod.wrapping_add(published as u32);
                    w.control().write_u32(layout::TX_PROD, w.prod);
                    w.spy.take();
                    let got = w.recv();
                    let n = len as usize;
                    let frame_ok = kind == ring::KIND_FRAME
                        && (ring::MIN_FRAME..=ring::ETH_FRAME).contains(&n)
                        && ring::record_len(n) <= tail
                        && ring::record_len(n) <= published;
                    let pad_ok = kind == ring::KIND_PAD && at != 0 && n + ring::HEADER == tail && tail <= published;
                    match got {
                        Ok(Some(f)) => {
                            assert!(frame_ok && f.len() == n, "at {at} len {len} kind {kind} short {short}");
                            frames += 1;
                        }
                        Ok(None) => {
                            assert!(pad_ok, "at {at} len {len} kind {kind} short {short}: taken as a pad");
                            pads += 1;
                        }
                        Err(v) => {
                            violations += 1;
                            assert!(!frame_ok && !pad_ok, "at {at} len {len} kind {kind} short {short}: {v:?}");
                            assert!(matches!(v, Violation::Length(_) | Violation::Kind(_)), "{v:?}");
                        }
                    }
                    // Nothing read outside what was published.
                    for r in w.spy.take() {
                        if let Read::Ring(off, n) = r {
                            assert!(off >= at && off + n <= at + published.max(8), "read {off}+{n} outside {at}+{published}");
                        }
                    }
                    cases += 1;
                    w.finish();
                }
            }
        }
    }
    assert_eq!(cases, 4 * 16 * 5 * 2);
    assert!(frames > 0 && pads > 0 && violations > 0, "{frames} frames, {pads} pads, {violations} violations");
}

/// Rule 3. Each byte of a record is read once: the header (whose length
/// is then used, whatever the peer writes over it later) and the frame,
/// copied out in one read; the copy is what the guest gets.
#[test]
fn rule_3_shared_data_is_read_once() {
    let mut w = World::new();
    for seq in 0..30u32 {
        let len = 14 + (seq as usize * 97) % 1500;
        let f = frame(2, 1, seq, len);
        let at = w.prod as usize % 4096;
        let at = if ring::record_len(len) > 4096 - at { 0 } else { at };
        w.publish(&f);
        // When the guest reads the frame bytes, the peer has just changed
        // the header under it: a huge length, another kind.
        let rv = w.ring();
        w.spy.set_hook(move |read| {
            if let Read::Ring(off, _) = read {
                if off == at + ring::HEADER {
                    rv.write_bytes(at, &ring::header(60000, 9));
                }
            }
        });
        w.spy.take();
        assert_eq!(w.recv(), Ok(Some(f)), "frame {seq}: the length read first, the bytes read once");
        let ring_reads: Vec<(usize, usize)> =
            w.spy.take().into_iter().filter_map(|r| if let Read::Ring(o, n) = r { Some((o, n)) } else { None }).collect();
        // A pad header maybe, then the header and the frame, each once.
        let mut seen = vec![false; 4096];
        for &(o, n) in &ring_reads {
            for b in &mut seen[o..o + n] {
                assert!(!*b, "byte {o} of the ring read twice in one receive: {ring_reads:?}");
                *b = true;
            }
        }
        assert!(ring_reads.contains(&(at, ring::HEADER)) && ring_reads.contains(&(at + ring::HEADER, len)), "{ring_reads:?}");
        w.spy.clear_hook();
    }
    w.finish();
}

/// Rule 4. After bad input the channel reads and sends nothing more, says
/// what was wrong every time it is asked, is not up, and the manager
/// closes it and shuns the peer at its next round, even if the data path
/// never reported it.
#[test]
fn rule_4_bad_input_is_an_error_state() {
    let mut w = World::new();
    let f = frame(2, 1, 0, 100);
    w.publish(&f);
    assert_eq!(w.recv(), Ok(Some(f)));
    // A record of an unknown kind.
    let at = w.prod as usize % 4096;
    w.ring().write_bytes(at, &ring::header(100, 7));
    w.prod = w.prod.wrapping_add(ring::record_len(100) as u32);
    w.control().write_u32(layout::TX_PROD, w.prod);
    assert_eq!(w.recv(), Err(Violation::Kind(7)));
    w.spy.take();
    // The peer repairs everything: too late.
    w.publish(&frame(2, 1, 1, 100));
    for _ in 0..3 {
        assert_eq!(w.recv(), Err(Violation::Kind(7)), "the same error, every time");
    }
    let ch = w.g.mgr.channel(2).unwrap();
    assert!(!ch.is_up() && !ch.is_attached());
    assert_eq!(ch.violation(), Some(Violation::Kind(7)));
    assert_eq!(ch.send(&frame(1, 2, 0, 100)), Err(SendError::Down));
    assert!(!ch.can_send(100));
    assert!(!ch.arm_rx());
    assert_eq!(w.spy.take(), vec![], "nothing of the peer's read after the violation");
    // Not reported by a data path: the manager's next round closes it.
    w.clock += MS;
    w.g.service(w.clock);
    assert!(w.g.mgr.channel(2).is_none());
    assert!(w.g.mgr.is_shunned(2));
    assert!(w.g.notes.iter().any(|n| matches!(n, Note::Down { peer: 2, why, .. } if why.contains("Kind(7)"))), "{:?}", w.g.notes);
    for _ in 0..50 {
        w.clock += 10 * MS;
        w.g.service(w.clock);
    }
    assert_eq!(w.spy.take(), vec![], "a shunned peer's pages are not read");
    // The receive path too: a consumer index that is impossible breaks
    // the channel on the send side the same way (a fresh channel), once
    // the sender reads it (when what it read last leaves no room).
    w.finish();
    let mut w = World::new();
    w.control().write_u32(layout::RX_CONS, 4096 + 8);
    let ch = w.g.mgr.channel(2).unwrap();
    let mut sent = 0;
    let stopped = loop {
        match ch.send(&frame(1, 2, sent, 100)) {
            Ok(()) => sent += 1,
            other => break other,
        }
        assert!(sent <= 4096 / 100, "{sent} frames into a 4 KiB ring");
    };
    assert_eq!(stopped, Err(SendError::Violation));
    w.spy.take();
    assert!(matches!(ch.violation(), Some(Violation::Index { .. })));
    let mut out = Vec::new();
    assert!(ch.recv_into(&mut out).is_err());
    assert_eq!(ch.send(&frame(1, 2, 1, 100)), Err(SendError::Down));
    assert_eq!(w.spy.take(), vec![]);
    w.finish();
}
