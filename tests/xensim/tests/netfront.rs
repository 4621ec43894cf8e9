//! netfront against the fake netback on the simulated Xen.

mod support;

use netfront::{Config, Counters, Error, Netfront, Offloads, TxError, TxWatchdog, TX_STALL_NS};
use proptest::collection::vec;
use proptest::prelude::*;
use support::pattern;
use support::vif::{world, Nf, World, MAC, MS, VIF};
use xensim::{Netback, NetbackFault, Sim};

const FE: &str = "/local/domain/1/device/vif/0";
const BE: &str = "/local/domain/0/backend/vif/1/0";

/// Frame `seq`: `len` bytes of the shared pattern, `seq` in the first four.
fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = pattern::bytes(u64::from(seq), len);
    f[..4].copy_from_slice(&seq.to_le_bytes());
    f
}

fn read(sim: &Sim, path: &str) -> Option<String> {
    sim.xs_read(path).map(|v| String::from_utf8(v).unwrap())
}

#[test]
fn handshake_keys_teardown_and_reconnect() {
    let mut w = world();
    let nf = w.connect();
    assert!(nf.is_up());
    assert_eq!(nf.mac(), MAC);
    assert_eq!(nf.backend_id(), 0);
    assert!(w.dom.evtchn().is_open(nf.port()));
    assert!(w.nb.is_connected());
    assert_eq!(w.nb.state(), xen_proto::xenbus::XenbusState::Connected);
    assert_eq!(read(&w.sim, &format!("{FE}/state")).as_deref(), Some("4"));
    assert_eq!(read(&w.sim, &format!("{BE}/state")).as_deref(), Some("4"));
    for (k, v) in [
        ("request-rx-copy", "1"),
        ("feature-rx-notify", "1"),
        ("feature-sg", "1"),
        ("feature-gso-tcpv4", "1"),
    ] {
        assert_eq!(read(&w.sim, &format!("{FE}/{k}")).as_deref(), Some(v), "{k}");
    }
    assert_eq!(read(&w.sim, &format!("{FE}/event-channel")), Some(nf.port().to_string()));
    for k in ["tx-ring-ref", "rx-ring-ref"] {
        let r: u32 = read(&w.sim, &format!("{FE}/{k}")).unwrap().parse().unwrap();
        assert!(r >= 8, "{k} is a real grant ref");
    }
    // Nothing claimed that is not implemented.
    for k in [
        // Checksum offload is on: the key is written only to turn it off.
        "feature-no-csum-offload",
        "feature-gso-tcpv6",
        "feature-ipv6-csum-offload",
        "multi-queue-num-queues",
        "event-channel-tx",
    ] {
        assert_eq!(read(&w.sim, &format!("{FE}/{k}")), None, "{k}");
    }
    assert_eq!(w.nb.frontend_no_csum_offload(), Some(false));
    assert_eq!(w.nb.frontend_rx_notify(), Some(true));
    assert!(w.nb.stats().errors.is_empty(), "{:?}", w.nb.stats().errors);

    // Full rx ring posted: 256 grants plus 2 rings.
    assert_eq!(w.dom.gnttab().granted().len(), 258);

    w.shutdown(nf);
    assert_eq!(read(&w.sim, &format!("{FE}/state")).as_deref(), Some("1"));
    assert_eq!(read(&w.sim, &format!("{FE}/tx-ring-ref")), None);
    assert_eq!(read(&w.sim, &format!("{FE}/event-channel")), None);
    assert!(!w.nb.is_connected());
    w.sim.assert_domain_no_leaks(1);
    w.sim.assert_domain_no_leaks(0);

    // Reconnect on the same vif without offloads, and move a frame each
    // way.
    let mut nf = w.connect_with(Config { offloads: Offloads::NONE, ..Config::default() });
    assert_eq!(w.nb.stats().connects, 2);
    for (k, v) in [("feature-sg", "0"), ("feature-gso-tcpv4", "0"), ("feature-no-csum-offload", "1")] {
        assert_eq!(read(&w.sim, &format!("{FE}/{k}")).as_deref(), Some(v), "{k}");
    }
    assert_eq!(w.nb.frontend_no_csum_offload(), Some(true));
    nf.transmit(&frame(1, 100)).unwrap();
    w.nb.inject_rx(frame(2, 200));
    for _ in 0..3 {
        w.pump(&mut nf);
    }
    assert_eq!(w.nb.take_tx(), vec![frame(1, 100)]);
    assert_eq!(nf.poll_rx(), Some(frame(2, 200)));
    w.shutdown(nf);
    w.finish();
}

/// One round of the traffic below: frames the guest transmits (as many as
/// the ring takes), frames the backend receives for it (while its backlog
/// is short), received frames the guest takes out.
#[derive(Clone, Copy, Debug)]
struct Round {
    tx: u32,
    rx: u32,
    take: usize,
}

fn round() -> impl Strategy<Value = Round> {
    (1..=40u32, 1..=40u32, 1..64usize).prop_map(|(tx, rx, take)| Round { tx, rx, take })
}

proptest! {
    #![proptest_config(support::props::config(8))]

    /// 600 frames each way (more than two wraps of each 256-slot ring),
    /// of the lengths in `lengths` in turn, in the rounds of `rounds` in
    /// turn: every frame arrives whole, in order, counted.
    #[test]
    fn frames_both_directions_across_ring_wraps(
        rounds in vec(round(), 1..=32),
        lengths in vec(60..=1514usize, 1..=64),
    ) {
        const N: u32 = 600;
        let length = |seq: u32| lengths[seq as usize % lengths.len()];
        let mut w = world();
        let mut nf = w.connect();
        let (mut sent, mut injected) = (Vec::new(), Vec::new());
        let (mut got_tx, mut got_rx) = (Vec::new(), Vec::new());
        let (mut next_tx, mut next_rx) = (0u32, 0u32);
        for (n, r) in rounds.iter().cycle().enumerate() {
            if got_tx.len() >= N as usize && got_rx.len() >= N as usize {
                break;
            }
            assert!(n < 20 * N as usize, "no progress: {} sent, {} received", got_tx.len(), got_rx.len());
            for _ in 0..r.tx {
                if next_tx < N {
                    let f = frame(next_tx, length(next_tx));
                    match nf.transmit(&f) {
                        Ok(()) => {
                            sent.push(f);
                            next_tx += 1;
                        }
                        Err(TxError::Full) => break,
                        Err(e) => panic!("transmit: {e}"),
                    }
                }
            }
            for _ in 0..r.rx {
                if next_rx < N && w.nb.rx_backlog() < 300 {
                    let f = frame(N + next_rx, length(next_rx));
                    injected.push(f.clone());
                    w.nb.inject_rx(f);
                    next_rx += 1;
                }
            }
            w.pump(&mut nf);
            got_tx.extend(w.nb.take_tx());
            // Take only some received frames per round, to let the ring
            // fill up and the backend wait for buffers.
            for _ in 0..r.take {
                match nf.poll_rx() {
                    Some(f) => got_rx.push(f),
                    None => break,
                }
            }
        }
        assert_eq!(got_tx.len(), sent.len());
        for (i, (a, b)) in got_tx.iter().zip(&sent).enumerate() {
            assert!(a == b, "tx frame {} differs (len {} vs {})", i, a.len(), b.len());
        }
        assert_eq!(got_rx.len(), injected.len());
        for (i, (a, b)) in got_rx.iter().zip(&injected).enumerate() {
            assert!(a == b, "rx frame {} differs (len {} vs {})", i, a.len(), b.len());
        }
        let c = nf.counters();
        assert_eq!(c.tx_frames, u64::from(N));
        assert_eq!(c.rx_frames, u64::from(N));
        assert_eq!(c.tx_bytes, sent.iter().map(|f| f.len() as u64).sum::<u64>());
        assert_eq!(c.rx_bytes, injected.iter().map(|f| f.len() as u64).sum::<u64>());
        assert_eq!(c.bad_responses.total(), 0);
        assert_eq!(c.rx_drops, Default::default());
        assert_eq!(c.tx_drops, Default::default());
        assert_eq!(nf.tx_in_flight(), 0);
        w.shutdown(nf);
        w.finish();
    }
}

#[test]
fn transmit_rejects_bad_lengths() {
    let mut w = world();
    let mut nf = w.connect();
    assert_eq!(nf.transmit(&[0u8; 1515]), Err(TxError::BadLength(1515)));
    assert_eq!(nf.transmit(&[0u8; 13]), Err(TxError::BadLength(13)));
    nf.transmit(&frame(0, 1514)).unwrap();
    nf.transmit(&frame(1, 14)).unwrap();
    w.pump(&mut nf);
    assert_eq!(w.nb.take_tx(), vec![frame(0, 1514), frame(1, 14)]);
    assert_eq!(nf.counters().tx_drops.bad_length, 2);
    w.shutdown(nf);
    w.finish();
}

#[test]
fn tx_ring_full_then_drains() {
    let mut w = world();
    let mut nf = w.connect_with(Config { rx_buffers: 16, tx_buffers: 8, offloads: Offloads::NONE });
    for i in 0..8 {
        nf.transmit(&frame(i, 64)).unwrap();
    }
    assert!(!nf.can_transmit());
    assert_eq!(nf.transmit(&frame(9, 64)), Err(TxError::Full));
    w.pump(&mut nf);
    assert_eq!(w.nb.take_tx().len(), 8);
    nf.transmit(&frame(9, 64)).unwrap();
    w.shutdown(nf);
    w.finish();
}

/// Sends `n` good frames and receives `n` good ones, checking both.
fn still_works(w: &World, nf: &mut Nf, seq: u32) {
    w.nb.take_tx();
    while nf.poll_rx().is_some() {}
    for i in 0..5 {
        nf.transmit(&frame(seq + i, 100 + i as usize)).unwrap();
        w.nb.inject_rx(frame(seq + 100 + i, 200 + i as usize));
    }
    for _ in 0..4 {
        w.pump(nf);
    }
    let tx: Vec<_> = (0..5).map(|i| frame(seq + i, 100 + i as usize)).collect();
    assert_eq!(w.nb.take_tx(), tx);
    for i in 0..5 {
        assert_eq!(nf.poll_rx(), Some(frame(seq + 100 + i, 200 + i as usize)));
    }
}

/// Takes `nf` down, connects again, checks frames move both ways on the
/// new connection, and ends the test with nothing leaked.
fn reconnect_works_and_finish(mut w: World, nf: Nf) {
    w.shutdown(nf);
    let mut nf = w.connect();
    still_works(&w, &mut nf, 10);
    w.shutdown(nf);
    w.finish();
}

#[test]
fn a_backend_that_stops_answering_is_noticed_and_a_restart_brings_it_back() {
    let mut w = world();
    let mut nf = w.connect();
    still_works(&w, &mut nf, 0);
    // A working backend takes every request (its req_event passes ours)
    // and answers: the watchdog never fires, however much time passes.
    let mut watchdog = TxWatchdog::new(TX_STALL_NS);
    nf.transmit(&frame(10, 60)).unwrap();
    assert!(!nf.tx_progress().taken && nf.tx_progress().outstanding == 1);
    assert_eq!(watchdog.stalled(nf.tx_progress(), 0), None);
    w.pump(&mut nf);
    assert!(nf.tx_progress().taken, "{:?}", nf.tx_progress());
    assert_eq!(watchdog.stalled(nf.tx_progress(), 3 * TX_STALL_NS), None, "answered");
    w.nb.take_tx();

    // The port left masked (issue 14): transmits go untaken, rx still
    // comes in.
    w.nb.make_deaf();
    for i in 0..3 {
        nf.transmit(&frame(20 + i, 60)).unwrap();
    }
    w.nb.inject_rx(frame(30, 80));
    let t0 = 4 * TX_STALL_NS;
    assert_eq!(watchdog.stalled(nf.tx_progress(), t0), None, "starts timing");
    for _ in 0..10 {
        w.pump(&mut nf);
    }
    let p = nf.tx_progress();
    assert_eq!((p.outstanding, p.taken), (3, false));
    assert!(w.nb.take_tx().is_empty());
    assert_eq!(nf.poll_rx(), Some(frame(30, 80)), "rx still works");
    assert_eq!(watchdog.stalled(p, t0 + TX_STALL_NS - 1), None);
    assert_eq!(watchdog.stalled(p, t0 + TX_STALL_NS), Some(TX_STALL_NS));

    let before = nf.counters();
    nf.restart(&mut w.xs, 100 * MS).expect("restart");
    watchdog.restarted(p.answered, t0 + TX_STALL_NS);
    assert_eq!(w.nb.stats().connects, 2);
    assert_eq!(nf.counters().restarts, 1);
    assert!(nf.counters().tx_frames == before.tx_frames && nf.counters().rx_frames >= before.rx_frames, "carried over");
    assert_eq!(nf.tx_progress().outstanding, 0, "the untaken frames are gone");
    w.pump(&mut nf);
    assert!(w.nb.take_tx().is_empty(), "and not sent after all");
    still_works(&w, &mut nf, 40);
    w.shutdown(nf);
    w.finish();
}

fn delta(a: Counters, b: Counters) -> (u64, u64) {
    (b.bad_responses.total() - a.bad_responses.total(), b.tx_frames - a.tx_frames)
}

#[test]
fn tx_misbehaviour_is_counted_and_survived() {
    let mut w = world();
    let mut nf = w.connect();
    still_works(&w, &mut nf, 0);

    // Out-of-range id: counted; the real request stays in flight.
    w.nb.push_fault(NetbackFault::TxId(0xfff0));
    nf.transmit(&frame(10, 80)).unwrap();
    w.pump(&mut nf);
    assert_eq!(nf.counters().bad_responses.tx_id_out_of_range, 1);
    assert_eq!(nf.tx_in_flight(), 1);
    still_works(&w, &mut nf, 20);

    // Duplicate: the second response repeats the first one's id.
    let before = nf.counters();
    nf.transmit(&frame(30, 80)).unwrap();
    w.pump(&mut nf);
    w.nb.push_fault(NetbackFault::TxDuplicate);
    nf.transmit(&frame(31, 80)).unwrap();
    w.pump(&mut nf);
    let after = nf.counters();
    assert_eq!(after.bad_responses.tx_not_outstanding, 1);
    assert_eq!(delta(before, after), (1, 2));
    assert_eq!(nf.tx_in_flight(), 2, "two requests never answered");
    still_works(&w, &mut nf, 40);

    // Error statuses: counted, buffers recycled. NETIF_RSP_NULL answers
    // extra-info slots and carries no id of ours: skipped, so the request
    // it stood for stays in flight.
    for s in [-1i16, -2, 1, 99] {
        w.nb.push_fault(NetbackFault::TxStatus(s));
        nf.transmit(&frame(50, 80)).unwrap();
        w.pump(&mut nf);
    }
    let c = nf.counters();
    assert_eq!(c.tx_drops.backend_error, 1);
    assert_eq!(c.tx_drops.backend_dropped, 1);
    assert_eq!(c.bad_responses.tx_bad_status, 1);
    assert_eq!(c.tx_null_responses, 1);
    assert_eq!(nf.tx_in_flight(), 3);
    still_works(&w, &mut nf, 60);
    assert!(nf.is_up());
    // Teardown revokes the never-answered grants too.
    w.shutdown(nf);
    w.finish();
}

/// The backend flags frame `seq` with `flags` and sends frame `seq + 1`
/// behind it: no frame arrives, and one is counted as dropped for its
/// flags (`what`).
fn two_slots_dropped_for_flags(w: &World, nf: &mut Nf, flags: u16, seq: u32, what: &str) {
    let before = nf.counters().rx_drops;
    w.nb.push_fault(NetbackFault::RxFlags(flags));
    w.nb.inject_rx(frame(seq, 100));
    w.nb.inject_rx(frame(seq + 1, 100));
    w.pump(nf);
    assert_eq!(nf.poll_rx(), None, "{what}");
    let after = nf.counters().rx_drops;
    assert_eq!(after.unsupported_flags, before.unsupported_flags + 1, "{what}");
}

#[test]
fn rx_misbehaviour_is_counted_and_survived() {
    use netfront::wire::{NETRXF_CSUM_BLANK, NETRXF_EXTRA_INFO, NETRXF_MORE_DATA};
    let mut w = world();
    // Single-slot frames of at most 1514 bytes with full checksums.
    let mut nf = w.connect_with(Config { offloads: Offloads::NONE, ..Config::default() });
    still_works(&w, &mut nf, 0);
    type Case = (NetbackFault, fn(&Counters) -> u64);
    let cases: &[Case] = &[
        (NetbackFault::RxId(0x4000), |c| c.bad_responses.rx_id_out_of_range),
        (NetbackFault::RxStatus(3000), |c| c.rx_drops.oversize),
        (NetbackFault::RxStatus(5000), |c| c.rx_drops.outside_page),
        (NetbackFault::RxOffset(4000), |c| c.rx_drops.outside_page),
        (NetbackFault::RxStatus(i16::MAX), |c| c.rx_drops.outside_page),
        (NetbackFault::RxStatus(-1), |c| c.rx_drops.error_status),
        (NetbackFault::RxStatus(0), |c| c.rx_drops.runt),
        (NetbackFault::RxFlags(NETRXF_CSUM_BLANK), |c| c.rx_drops.unsupported_flags),
    ];
    for (i, (fault, count)) in cases.iter().enumerate() {
        let before = count(&nf.counters());
        w.nb.push_fault(*fault);
        w.nb.inject_rx(frame(1000 + i as u32, 120));
        w.pump(&mut nf);
        assert_eq!(nf.poll_rx(), None, "case {i}: bad frame dropped");
        assert_eq!(count(&nf.counters()), before + 1, "case {i} counted");
        still_works(&w, &mut nf, 100 * i as u32 + 2000);
    }

    // Duplicate id: the second response names the first one's id.
    w.nb.inject_rx(frame(1, 100));
    w.pump(&mut nf);
    assert_eq!(nf.poll_rx(), Some(frame(1, 100)));
    w.nb.push_fault(NetbackFault::RxDuplicate);
    w.nb.inject_rx(frame(2, 100));
    w.pump(&mut nf);
    assert_eq!(nf.poll_rx(), None);
    assert_eq!(nf.counters().bad_responses.rx_id_mismatch, 1);
    still_works(&w, &mut nf, 5000);

    // more_data without feature-sg: this slot and its continuation go.
    two_slots_dropped_for_flags(&w, &mut nf, NETRXF_MORE_DATA, 3, "one chain of two slots, dropped");
    still_works(&w, &mut nf, 6000);

    // extra_info without GSO: the next slot (frame 6's) is read as the
    // extra, consumed.
    two_slots_dropped_for_flags(&w, &mut nf, NETRXF_EXTRA_INFO, 5, "the frame and its extra, dropped");
    assert_eq!(nf.counters().rx_extra_slots, 1);
    still_works(&w, &mut nf, 7000);
    assert!(nf.is_up());
    w.shutdown(nf);
    w.finish();
}

#[test]
fn spurious_tx_response_takes_the_device_down_until_reconnect() {
    let mut w = world();
    let mut nf = w.connect();
    w.nb.push_fault(NetbackFault::TxSpurious);
    nf.transmit(&frame(1, 64)).unwrap();
    for _ in 0..3 {
        w.pump(&mut nf);
    }
    // More responses than requests: the ring cannot be trusted any more.
    assert_eq!(nf.counters().bad_responses.ring_overflow, 1);
    assert!(!nf.is_up());
    assert_eq!(nf.transmit(&frame(3, 64)), Err(TxError::Down));
    w.nb.inject_rx(frame(2, 64));
    w.pump(&mut nf);
    assert_eq!(nf.poll_rx(), None);
    // Teardown still releases everything, and a new connection works.
    reconnect_works_and_finish(w, nf);
}

#[test]
fn spurious_rx_response_is_caught_by_the_slot_id_check() {
    // With the rx ring full of posted buffers an extra response cannot
    // overflow it; it lands in the next slot with the wrong id.
    let mut w = world();
    let mut nf = w.connect();
    w.nb.push_fault(NetbackFault::RxSpurious);
    w.nb.inject_rx(frame(2, 64));
    w.pump(&mut nf);
    assert_eq!(nf.poll_rx(), Some(frame(2, 64)));
    assert_eq!(nf.poll_rx(), None);
    assert_eq!(nf.counters().bad_responses.rx_id_mismatch, 1);
    // From here on the backend answers one slot late: every id is wrong,
    // so every frame is dropped (and counted), never misdelivered.
    w.nb.inject_rx(frame(3, 64));
    w.pump(&mut nf);
    assert_eq!(nf.poll_rx(), None);
    assert_eq!(nf.counters().bad_responses.rx_id_mismatch, 2);
    // Transmit is unaffected; a reconnect resynchronises.
    nf.transmit(&frame(4, 64)).unwrap();
    w.pump(&mut nf);
    assert_eq!(w.nb.take_tx(), vec![frame(4, 64)]);
    reconnect_works_and_finish(w, nf);
}

#[test]
fn small_rx_ring_backpressure_uses_refill_notifications() {
    // 8 rx buffers, 200 frames: the backend keeps running out of
    // requests, arms req_event and waits for our refill kick.
    let mut w = world();
    let mut nf = w.connect_with(Config { rx_buffers: 8, tx_buffers: 8, offloads: Offloads::NONE });
    let base = nf.counters();
    for i in 0..200 {
        w.nb.inject_rx(frame(i, 60 + i as usize));
    }
    let mut got = Vec::new();
    for _ in 0..1000 {
        w.pump(&mut nf);
        // Consume a few at a time.
        for _ in 0..3 {
            if let Some(f) = nf.poll_rx() {
                got.push(f);
            }
        }
        if got.len() == 200 {
            break;
        }
    }
    let want: Vec<_> = (0..200).map(|i| frame(i, 60 + i as usize)).collect();
    assert!(got == want, "all 200 frames, in order");
    let kicks = nf.counters().notifications_sent - base.notifications_sent;
    assert!(kicks >= 10, "refills kicked the stalled backend ({kicks})");
    assert!(kicks < 200);
    w.shutdown(nf);
    w.finish();
}

#[test]
fn grant_still_mapped_is_quarantined_not_reused() {
    let mut w = world();
    let mut nf = w.connect_with(Config { rx_buffers: 8, tx_buffers: 4, offloads: Offloads::NONE });
    w.nb.hold_tx_mappings(1);
    nf.transmit(&frame(1, 64)).unwrap();
    w.pump(&mut nf);
    assert_eq!(nf.quarantined(), 1);
    assert!(nf.counters().revoke_busy >= 1);
    // Only 3 buffers usable now.
    for i in 0..3 {
        nf.transmit(&frame(10 + i, 64)).unwrap();
    }
    assert_eq!(nf.transmit(&frame(20, 64)), Err(TxError::Full));
    w.pump(&mut nf);
    assert_eq!(nf.quarantined(), 1, "retried, still busy");
    w.nb.release_held();
    w.pump(&mut nf);
    assert_eq!(nf.quarantined(), 0);
    for i in 0..4 {
        nf.transmit(&frame(30 + i, 64)).unwrap();
    }
    w.pump(&mut nf);
    assert_eq!(w.nb.take_tx().len(), 8);
    w.shutdown(nf);
    w.finish();
}

#[test]
fn backend_that_never_connects_times_out_cleanly() {
    let mut w = world();
    w.nb.set_never_connect(true);
    let r = Netfront::connect(&mut w.xs, w.dom.gnttab(), w.dom.evtchn(), VIF, 50 * MS);
    assert_eq!(r.err(), Some(Error::Xenstore(xen_proto::Error::Timeout)));
    assert_eq!(read(&w.sim, &format!("{FE}/state")).as_deref(), Some("1"));
    assert_eq!(read(&w.sim, &format!("{FE}/tx-ring-ref")), None);
    w.sim.assert_domain_no_leaks(1);
    // Once the backend behaves, the vif connects.
    w.nb.set_never_connect(false);
    let nf = w.connect();
    w.shutdown(nf);
    w.finish();
}

#[test]
fn bad_nodes_are_refused_before_allocating() {
    let mut w = world();
    w.sim.xs_write(&format!("{FE}/mac"), b"00:16:3e:zz:00:01");
    let r = Netfront::connect(&mut w.xs, w.dom.gnttab(), w.dom.evtchn(), VIF, 50 * MS);
    assert_eq!(r.err(), Some(Error::BadNode("mac")));
    w.sim.xs_write(&format!("{FE}/mac"), b"00:16:3e:00:00:01");
    w.sim.xs_write(&format!("{FE}/backend-id"), b"70000");
    let r = Netfront::connect(&mut w.xs, w.dom.gnttab(), w.dom.evtchn(), VIF, 50 * MS);
    assert_eq!(r.err(), Some(Error::BadNode("backend-id")));
    w.sim.xs_write(&format!("{FE}/backend-id"), b"0");
    w.sim.xs_write(&format!("{BE}/feature-rx-copy"), b"0");
    let r = Netfront::connect(&mut w.xs, w.dom.gnttab(), w.dom.evtchn(), VIF, 50 * MS);
    assert_eq!(r.err(), Some(Error::NoRxCopy));
    let r = Netfront::connect_with(
        &mut w.xs,
        w.dom.gnttab(),
        w.dom.evtchn(),
        VIF,
        Config { rx_buffers: 0, tx_buffers: 4, offloads: Offloads::NONE },
        50 * MS,
    );
    assert_eq!(r.err(), Some(Error::BadConfig));
    w.sim.assert_domain_no_leaks(1);
    w.finish();
}

#[test]
fn default_grant_budget_too_small_fails_cleanly() {
    // The default xensim domain has 256 grant refs: a full rx ring plus
    // two rings does not fit. Connecting fails and gives everything back.
    let sim = Sim::new();
    let dom = sim.create_domain(1);
    let nb = Netback::new(&sim, 1, 0, MAC);
    nb.install_hook();
    let mut xs = dom.xenstore_client();
    let r = Netfront::connect(&mut xs, dom.gnttab(), dom.evtchn(), VIF, 50 * MS);
    let e = r.err();
    assert!(matches!(e, Some(Error::Xen(_))), "{e:?}");
    sim.assert_domain_no_leaks(1);
    // A smaller configuration fits.
    let mut nf = Netfront::connect_with(
        &mut xs,
        dom.gnttab(),
        dom.evtchn(),
        VIF,
        Config { rx_buffers: 64, tx_buffers: 64, offloads: Offloads::NONE },
        50 * MS,
    )
    .unwrap();
    nf.transmit(&frame(1, 64)).unwrap();
    nf.shutdown(&mut xs, 50 * MS).unwrap();
    sim.clear_step_hook();
}

#[test]
fn notifications_are_suppressed_while_streaming() {
    let mut w = world();
    let mut nf = w.connect();
    let base = nf.counters();
    let nb_base = w.nb.stats();
    const N: u64 = 4096;
    let mut sent = 0;
    while sent < N {
        // The stack queues up to 32 frames between backend runs.
        for _ in 0..32 {
            nf.transmit(&frame(sent as u32, 1000)).unwrap();
            sent += 1;
        }
        w.pump(&mut nf);
    }
    w.pump(&mut nf);
    assert_eq!(w.nb.take_tx().len() as u64, N);
    let c = nf.counters();
    let tx_kicks = c.notifications_sent - base.notifications_sent;
    assert!(tx_kicks < N / 16, "{tx_kicks} notifications for {N} frames");
    assert!(tx_kicks >= N / 32 - 1);
    let nb = w.nb.stats();
    let back_kicks = nb.notifications_sent - nb_base.notifications_sent;
    assert!(back_kicks < N / 16, "backend sent {back_kicks}");

    // Receive direction: the backend streams, the frontend consumes in
    // batches and reposts.
    let base = nf.counters();
    let nb_base = w.nb.stats();
    let mut got = 0;
    for i in 0..N {
        w.nb.inject_rx(frame(i as u32, 700));
        if i % 64 == 63 {
            w.pump(&mut nf);
            while nf.poll_rx().is_some() {
                got += 1;
            }
        }
    }
    while got < N {
        w.pump(&mut nf);
        while nf.poll_rx().is_some() {
            got += 1;
        }
    }
    let c = nf.counters();
    let rx_events = c.notifications_received - base.notifications_received;
    let refill_kicks = c.notifications_sent - base.notifications_sent;
    let nb = w.nb.stats();
    assert!(rx_events < N / 16, "{rx_events} events for {N} frames");
    assert!(refill_kicks < N / 16, "{refill_kicks} rx refill notifications for {N} frames");
    assert!(nb.notifications_sent - nb_base.notifications_sent < N / 16);
    w.shutdown(nf);
    w.finish();
}

#[test]
fn close_for_power_off_leaves_both_ends_closed() {
    let mut w = world();
    let mut nf = w.connect();
    nf.close(&mut w.xs, 100 * MS).expect("close");
    assert_eq!(read(&w.sim, &format!("{FE}/state")).as_deref(), Some("6"));
    assert_eq!(read(&w.sim, &format!("{BE}/state")).as_deref(), Some("6"));
    assert!(!w.nb.is_connected());
    assert!(!nf.is_up());
    w.sim.assert_domain_no_leaks(1);
    w.sim.assert_domain_no_leaks(0);
    drop(nf);
    w.finish();
}
