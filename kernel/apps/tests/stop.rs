//! `xl shutdown` while a client runs: the platform's stop ends the client
//! where it is (a long TCP_RR, a stream, a connect to a peer that never
//! answers), the device is closed, and the run ends as stopped, not failed.

mod support;

use std::cell::Cell;
use std::rc::Rc;

use cohort_boot::cmdline::{App, NetOptions};
use figures::Event;
use support::{net, results_of, run_until, world_with_echo, world_with_sink, Captured, World};

const MS: u64 = 1_000_000;

/// The run was stopped: Ok, one `stopped` event for `app`, then `app` ok,
/// and the device closed; no measurement result of `kind`.
fn assert_stopped(world: &World, result: Result<(), String>, out: &Captured, app: &str, kind: &str) {
    assert_eq!(result, Ok(()), "{}", out.text());
    let results = out.results();
    assert_eq!(results_of(&results, "stopped"), [&Event::Stopped { app: app.into() }], "{}", out.text());
    assert!(results_of(&results, kind).is_empty(), "a stopped {kind} reports no result: {}", out.text());
    assert_eq!(results.last(), Some(&Event::App { app: app.into(), ok: true, error: None }));
    assert!(world.local.device.shut_down, "the device is closed");
}

/// Asks to stop once `done()` holds, and notes when it first did.
fn stop_when(world: &World, done: impl Fn() -> bool + 'static) -> (impl FnMut() -> bool, Rc<Cell<Option<u64>>>) {
    let asked = Rc::new(Cell::new(None));
    let (a, clock) = (asked.clone(), world.clock.clone());
    let stop = move || {
        if a.get().is_none() && done() {
            a.set(Some(clock.now()));
        }
        a.get().is_some()
    };
    (stop, asked)
}

#[test]
fn a_long_rr_stops_when_asked() {
    let (mut world, echo) = world_with_echo();
    let e = echo.clone();
    let (mut stop, asked) = stop_when(&world, move || e.borrow().tcp_bytes >= 500);
    let (result, out) = run_until(App::Rr, &mut world, NetOptions { count: 10_000_000, msg: 1, ..net() }, &mut stop);
    assert_stopped(&world, result, &out, "rr", "rr");
    let asked = asked.get().expect("asked to stop");
    assert!(world.clock.now() - asked < 100 * MS, "ended {} ms after the request", (world.clock.now() - asked) / MS);
    assert!(echo.borrow().tcp_bytes < 10_000, "stopped early: {} transactions", echo.borrow().tcp_bytes);
}

#[test]
fn a_stream_of_many_reps_stops_when_asked() {
    let (mut world, sink) = world_with_sink();
    let s = sink.clone();
    let (mut stop, asked) = stop_when(&world, move || s.borrow().bytes >= 1 << 20);
    let net = NetOptions { bytes: 2 << 20, reps: 100, ..net() };
    let (result, out) = run_until(App::Stream, &mut world, net, &mut stop);
    assert_stopped(&world, result, &out, "stream", "stream");
    let asked = asked.get().expect("asked to stop");
    assert!(world.clock.now() - asked < 100 * MS, "ended {} ms after the request", (world.clock.now() - asked) / MS);
    assert!(sink.borrow().bytes < 2 << 20, "stopped inside the first stream: {} bytes", sink.borrow().bytes);
}

#[test]
fn a_client_waiting_for_its_peer_stops_when_asked() {
    // Nothing listens at the remote end: the client is refused and tries
    // again for up to the setup timeout (60 s) unless it is stopped.
    let mut world = World::plain();
    let clock = world.clock.clone();
    let (mut stop, asked) = stop_when(&world, move || clock.now() >= 2_000 * MS);
    let (result, out) = run_until(App::Stream, &mut world, net(), &mut stop);
    assert_stopped(&world, result, &out, "stream", "stream");
    let asked = asked.get().expect("asked to stop");
    assert!(world.clock.now() - asked < 600 * MS, "ended {} ms after the request", (world.clock.now() - asked) / MS);
}

#[test]
fn a_failure_before_the_stop_is_still_a_failure() {
    let mut world = World::plain();
    let clock = world.clock.clone();
    // Asked to stop only long after a client without a peer has failed.
    let (mut stop, _) = stop_when(&world, move || clock.now() >= 3_600_000 * MS);
    let (result, out) = run_until(App::Rr, &mut world, NetOptions { peer: None, ..net() }, &mut stop);
    assert_eq!(result, Err(String::from("this app needs net.peer=A.B.C.D")), "{}", out.text());
    assert!(results_of(&out.results(), "stopped").is_empty());
    let last = out.results().last().cloned();
    assert!(matches!(last, Some(Event::App { ok: false, .. })), "{last:?}");
}
