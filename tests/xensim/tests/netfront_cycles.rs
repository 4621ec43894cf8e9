//! netfront life cycles at scale: a guest connects to its (fake) netback,
//! moves frames both ways, and closes, 1,000 times on one simulated
//! machine, with the leak check after every cycle (no grant, mapping, port,
//! page or watch left in the guest or in dom0, no ring key left in
//! xenstore), the grants of a connected device the same every cycle, and a
//! timing printed.

mod support;

use std::time::Instant;

use netfront::Config;
use support::pattern;
use support::vif::{world, MS};

const CYCLES: usize = 1000;
const FE: &str = "/local/domain/1/device/vif/0";

fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = pattern::bytes(u64::from(seq), len);
    f[..4].copy_from_slice(&seq.to_le_bytes());
    f
}

#[test]
fn a_thousand_connects_and_closes_leave_nothing_behind() {
    let mut w = world();
    let mut granted = None;
    let started = Instant::now();
    for cycle in 0..CYCLES {
        let mut nf = w.connect_with(Config::default());
        assert!(nf.is_up(), "cycle {cycle}: not up");
        // The full rx ring posted and both rings: the same every cycle.
        let now = w.dom.gnttab().granted().len();
        assert_eq!(*granted.get_or_insert(now), now, "cycle {cycle}: grants of a connected device");
        for i in 0..4u32 {
            let seq = cycle as u32 * 8 + i;
            nf.transmit(&frame(seq, 60 + 400 * i as usize)).unwrap();
            w.nb.inject_rx(frame(seq + 4, 1514 - i as usize));
        }
        let mut rx = Vec::new();
        for _ in 0..10 {
            w.pump(&mut nf);
            while let Some(f) = nf.poll_rx() {
                rx.push(f);
            }
            if rx.len() == 4 {
                break;
            }
        }
        let tx = w.nb.take_tx();
        let base = cycle as u32 * 8;
        assert_eq!(tx, (0..4).map(|i| frame(base + i, 60 + 400 * i as usize)).collect::<Vec<_>>(), "cycle {cycle}: tx");
        assert_eq!(rx, (0..4).map(|i| frame(base + 4 + i, 1514 - i as usize)).collect::<Vec<_>>(), "cycle {cycle}: rx");
        // Alternate how it ends: a disconnect the guest may reconnect
        // from, or the power-off close (both ends Closed).
        if cycle % 2 == 0 {
            w.shutdown(nf);
        } else {
            nf.close(&mut w.xs, 100 * MS).unwrap_or_else(|e| panic!("cycle {cycle}: close: {e:?}"));
            assert!(!nf.is_up());
            assert!(nf.into_handles().is_ok(), "cycle {cycle}: everything released");
        }
        let leaks = w.sim.leaks();
        assert!(leaks.is_empty(), "cycle {cycle}: {leaks:#?}");
        for key in ["tx-ring-ref", "rx-ring-ref", "event-channel"] {
            assert_eq!(w.sim.xs_read(&format!("{FE}/{key}")), None, "cycle {cycle}: {key} left behind");
        }
        assert!(!w.nb.is_connected(), "cycle {cycle}: the backend still connected");
    }
    assert_eq!(w.nb.stats().connects, CYCLES as u64);
    assert!(w.nb.stats().errors.is_empty(), "{:?}", w.nb.stats().errors);
    let took = started.elapsed();
    eprintln!("{CYCLES} cycles in {took:?} ({:?} per cycle)", took / CYCLES as u32);
    w.finish();
}
