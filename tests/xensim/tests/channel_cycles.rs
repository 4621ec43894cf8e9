//! Channel life cycles at scale: two guests set a channel up, move frames
//! both ways, and tear it down, 1,000 times on one simulated machine, with
//! the leak check after every cycle (no grant, mapping, port, page or
//! watch left on either side), and a timing printed.

mod peer;

use std::time::Instant;

use channel::offer::offer_path;
use channel::Config;
use peer::{frame, Guest, MS};
use xensim::Sim;

const CYCLES: usize = 1000;

#[test]
fn a_thousand_setups_and_teardowns_leave_nothing_behind() {
    let sim = Sim::new();
    let config = Config { ring_pages: 4, ..Config::default() };
    let mut a = Guest::new(&sim, 1, config);
    let mut b = Guest::new(&sim, 2, config);
    let mut clock = 0;
    let started = Instant::now();
    for cycle in 0..CYCLES {
        a.list(&[2], clock);
        b.list(&[1], clock);
        let mut rounds = 0;
        while !(a.up(2) && b.up(1)) {
            clock += MS;
            a.service(clock);
            b.service(clock);
            rounds += 1;
            assert!(rounds < 20, "cycle {cycle}: not up: {:?} {:?}", a.notes.last(), b.notes.last());
        }
        for seq in 0..4 {
            let f = frame(1, 2, seq, 100 + 300 * seq as usize);
            a.mgr.channel(2).unwrap().send(&f).unwrap();
            assert_eq!(b.receive(1, clock), Some(f));
            let g = frame(2, 1, seq, 1514 - seq as usize);
            b.mgr.channel(1).unwrap().send(&g).unwrap();
            assert_eq!(a.receive(2, clock), Some(g));
        }
        // Alternate who goes first, and how: dom0 unlisting both, or one
        // side shutting down.
        if cycle % 2 == 0 {
            a.list(&[], clock);
            b.list(&[], clock);
        } else {
            b.mgr.close_all(&mut b.xs, clock);
            a.list(&[], clock);
            b.list(&[], clock);
        }
        let mut rounds = 0;
        while !(a.mgr.is_idle() && b.mgr.is_idle()) {
            clock += MS;
            a.service(clock);
            b.service(clock);
            rounds += 1;
            assert!(rounds < 20, "cycle {cycle}: still draining");
        }
        let leaks = sim.leaks();
        assert!(leaks.is_empty(), "cycle {cycle}: {leaks:#?}");
        for (owner, peer) in [(1, 2), (2, 1)] {
            assert_eq!(sim.xs_read(&offer_path(owner, peer)), None, "cycle {cycle}: an offer left behind");
        }
        a.notes.clear();
        b.notes.clear();
        clock += 600 * MS;
    }
    let took = started.elapsed();
    eprintln!("{CYCLES} cycles in {took:?} ({:?} per cycle)", took / CYCLES as u32);
}
