//! `app=handover` on a device with two paths: a fast channel (no latency)
//! that comes up 30 ms in and 5 ms after a hold is released, and a slower
//! fallback (1 Gbit/s, 100 us each way). Each run (a stream, a MAERTS or
//! request/response) is held on the fallback and let back; every switch
//! shows in the figures, and the device's count of TCP bytes adds up.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use apps::echo::Echo;
use apps::handover::{BYTE_MARKS, TRANSACTION_MARKS};
use apps::sink::Sink;
use apps::source::Source;
use cohort_boot::cmdline::{App, HandoverLoad, NetOptions};
use figures::Event;
use support::{net, results_of, run, ChannelState, Wire, World, GIGABIT_NS_PER_BYTE, MS, US};

/// The most a stream may send; it ends once both switches are timed.
const BYTES: u64 = 64 << 20;
/// On the fallback this long: 2.5 MB at its 1 Gbit/s.
const HOLD_MS: u32 = 20;
/// What the stream sends before its bytes: the FNV check's magic.
const MAGIC: u64 = 8;
const PATH: &str = "channel+netfront";

fn options(bytes: u64, reps: u32) -> NetOptions {
    NetOptions { bytes, reps, handover_hold_ms: HOLD_MS, ..net() }
}

/// The remote end serves the sink (port 9), the source (19) and the echo (7).
fn world(state: &Rc<RefCell<ChannelState>>) -> World {
    let fallback = Wire::new(GIGABIT_NS_PER_BYTE, 100 * US);
    let channel = Wire::new(1, 0);
    let mut world = World::with_channel(fallback, channel, state);
    let sockets = world.remote_parts().1;
    let mut sink = Sink::new(sockets, 9);
    let mut source = Source::new(sockets, 19);
    let mut echo = Echo::new(sockets, 7).unwrap();
    world.remote_app(move |_, sockets, _| {
        let a = sink.service(sockets);
        let b = source.service(sockets);
        echo.service(sockets) | a | b
    });
    world
}

fn state() -> Rc<RefCell<ChannelState>> {
    Rc::new(RefCell::new(ChannelState {
        up_at: Some(30 * MS),
        held: false,
        back_after_ns: 5 * MS,
        holds: Vec::new(),
        listed_at: Some(20 * MS),
    }))
}

/// Every value of figure `name` over the handover's path, in order.
fn values(out: &support::Captured, name: &str) -> Vec<f64> {
    out.figures().into_iter().filter(|f| f.name == name && f.path == PATH).map(|f| f.value).collect()
}

#[test]
fn handover_times_both_switches_and_counts_what_tcp_sent_again() {
    let state = state();
    let mut world = world(&state);
    let (result, out) = run(App::Handover, &mut world, options(BYTES, 2));
    result.unwrap_or_else(|e| panic!("{e}\n{}", out.text()));

    let detect = out.figure("handover.detect", "channel");
    assert!((30.0..31.0).contains(&detect), "{detect} ms");
    // The device advertised at 5 ms (ADVERTISED_AT) and was listed at 20.
    assert!((out.figure("handover.detect_advert", "channel") - (detect - 5.0)).abs() < 1e-9);
    assert_eq!(out.figure("handover.advert_listed", "channel"), 15.0);
    assert!((out.figure("handover.listed_up", "channel") - (detect - 20.0)).abs() < 1e-9);
    assert_eq!(state.borrow().holds, [true, false, true, false]);

    let (to_netfront, back, to_channel) =
        (values(&out, "handover.to_netfront"), values(&out, "handover.channel_back"), values(&out, "handover.to_channel"));
    assert_eq!((to_netfront.len(), back.len(), to_channel.len()), (2, 2, 2));
    for i in 0..2 {
        // 256 KiB at 1 Gbit/s take 2.1 ms, less what the channel carried
        // before the hold and was acknowledged after it (a window's worth).
        assert!((1.0..f64::from(HOLD_MS)).contains(&to_netfront[i]), "{to_netfront:?}");
        // The channel is up 5 ms after the release; the stream moves on it
        // after that, and 256 KiB over it take no time here.
        assert!((5.0..5.1).contains(&back[i]), "{back:?}");
        assert!(to_channel[i] > back[i] && to_channel[i] < back[i] + 10.0, "{to_channel:?} after {back:?}");
    }

    // Each stream ended once both switches were timed, whole (the sink's
    // FNV check), over both paths: past the hold and 20 ms on the
    // fallback, far short of the most it could send.
    let results = out.results();
    let mut sent = Vec::new();
    for e in results_of(&results, "stream") {
        let Event::Stream { path, matched, sink_bytes, bytes, frames, .. } = e else { unreachable!() };
        assert_eq!((path.as_str(), *matched, sink_bytes), (PATH, true, bytes));
        assert!(*sink_bytes > BYTE_MARKS.hold_after + (2 << 20) && *sink_bytes < BYTES / 4, "{sink_bytes}");
        let f = frames.expect("frames by path");
        assert!(f.channel > 100 && f.netfront > 100, "{f:?}");
        sent.push(*sink_bytes);
    }
    assert_eq!(sent.len(), 2);
    // Every byte of each stream counted once, and what was sent again on top.
    let (payload, again) = (values(&out, "handover.payload_sent"), values(&out, "handover.retransmitted"));
    assert_eq!((payload.len(), again.len()), (2, 2));
    for i in 0..2 {
        assert_eq!(payload[i] - again[i], (sent[i] + MAGIC) as f64, "{payload:?} {again:?}");
        // Not every frame counted twice.
        assert!(again[i] < payload[i] / 10.0, "{payload:?} {again:?}");
    }
    let rates = values(&out, "net.tcp_stream");
    assert!(rates.len() == 2 && rates.iter().all(|r| *r > 0.0), "{rates:?}");
    // Nothing but the sink's answers came back: no payload twice.
    assert_eq!(values(&out, "handover.received_out_of_order"), [0.0, 0.0]);
    // Data in flight keeps a stream going across a switch; some time passes.
    stalls_within_the_hold(&out, 2, 0.001);
    assert_eq!(results.last(), Some(&Event::App { app: "handover".into(), ok: true, error: None }));
}

/// The longest time without progress after the hold: at least
/// `least_ms`, and shorter than the hold; after the release, shorter than
/// the time until the run resumed on the channel.
fn stalls_within_the_hold(out: &support::Captured, runs: usize, least_ms: f64) {
    let (netfront, channel) = (values(out, "handover.stall_to_netfront"), values(out, "handover.stall_to_channel"));
    assert_eq!((netfront.len(), channel.len()), (runs, runs));
    assert!(netfront.iter().all(|s| (least_ms..f64::from(HOLD_MS)).contains(s)), "{netfront:?}");
    let to_channel = values(out, "handover.to_channel");
    assert!(channel.iter().zip(&to_channel).all(|(s, t)| *s > 0.0 && s < t), "{channel:?} {to_channel:?}");
}

/// The three switch times of each of `runs` runs, in order.
fn times_are_in_order(out: &support::Captured, runs: usize) {
    let (to_netfront, back, to_channel) =
        (values(out, "handover.to_netfront"), values(out, "handover.channel_back"), values(out, "handover.to_channel"));
    assert_eq!((to_netfront.len(), back.len(), to_channel.len()), (runs, runs, runs));
    for i in 0..runs {
        assert!(to_netfront[i] > 0.0 && to_netfront[i] < f64::from(HOLD_MS), "{to_netfront:?}");
        assert!((5.0..5.1).contains(&back[i]), "{back:?}");
        assert!(to_channel[i] > back[i] && to_channel[i] < back[i] + 10.0, "{to_channel:?} after {back:?}");
    }
}

#[test]
fn handover_of_a_maerts_switches_what_comes_in_and_counts_it() {
    let state = state();
    let mut world = world(&state);
    let bytes = 32 << 20;
    let options = NetOptions { handover_load: HandoverLoad::Maerts, ..options(bytes, 1) };
    let (result, out) = run(App::Handover, &mut world, options);
    result.unwrap_or_else(|e| panic!("{e}\n{}", out.text()));
    assert_eq!(state.borrow().holds, [true, false]);
    times_are_in_order(&out, 1);
    stalls_within_the_hold(&out, 1, 0.001);
    // A MAERTS runs to its end: every byte, FNV-checked against the source.
    let results = out.results();
    let m = results_of(&results, "maerts");
    let [Event::Maerts { path, bytes: got, matched, frames, .. }] = m[..] else { panic!("{m:?}") };
    assert_eq!((path.as_str(), *got, *matched), (PATH, bytes, true));
    let f = frames.expect("frames by path");
    assert!(f.channel > 100 && f.netfront > 100, "{f:?}");
    // Received: the stream and the source's closing line, each byte once
    // (this fallback loses frames, it duplicates none); what the hold
    // lost on the channel came again later, behind newer bytes.
    let (payload, late) = (values(&out, "handover.payload_received"), values(&out, "handover.received_out_of_order"));
    assert!(payload[0] > bytes as f64 && payload[0] < (bytes + 100) as f64, "{payload:?}");
    assert!(late[0] > 0.0 && late[0] < payload[0] / 10.0, "{late:?} of {payload:?}");
    assert_eq!(values(&out, "net.tcp_maerts").len(), 1);
    assert_eq!(results.last(), Some(&Event::App { app: "handover".into(), ok: true, error: None }));
}

#[test]
fn handover_of_request_response_switches_between_transactions() {
    let state = state();
    let mut world = world(&state);
    let count = 1_000_000;
    let options = NetOptions { handover_load: HandoverLoad::Rr, count, msg: 64, ..options(BYTES, 2) };
    let (result, out) = run(App::Handover, &mut world, options);
    result.unwrap_or_else(|e| panic!("{e}\n{}", out.text()));
    assert_eq!(state.borrow().holds, [true, false, true, false]);
    times_are_in_order(&out, 2);
    // A transaction over the fallback takes its round trip, 200 us.
    stalls_within_the_hold(&out, 2, 0.2);
    // Each run ended once back on the channel, far short of its count.
    let results = out.results();
    let rr = results_of(&results, "rr");
    assert_eq!(rr.len(), 2);
    let (sent, received) = (values(&out, "handover.payload_sent"), values(&out, "handover.payload_received"));
    let (sent_again, received_late) = (values(&out, "handover.retransmitted"), values(&out, "handover.received_out_of_order"));
    for (i, e) in rr.iter().enumerate() {
        let Event::Rr { path, transactions, frames, .. } = e else { unreachable!() };
        assert_eq!(path, PATH);
        assert!(u64::from(*transactions) > TRANSACTION_MARKS.least() && *transactions < count / 10, "{transactions}");
        let f = frames.expect("frames by path");
        assert!(f.channel > 100 && f.netfront > 100, "{f:?}");
        // Each request of 64 bytes once, and any sent again on top; each
        // response arrived (one at a time: none behind a later one).
        let moved = f64::from(*transactions) * 64.0;
        assert_eq!((sent[i] - sent_again[i], received[i], received_late[i]), (moved, moved, 0.0));
    }
    assert_eq!(values(&out, "net.tcp_rr").len(), 2);
    assert_eq!(results.last(), Some(&Event::App { app: "handover".into(), ok: true, error: None }));
}

#[test]
fn handover_refuses_a_stream_too_short_to_switch_twice() {
    let state = state();
    let mut world = world(&state);
    let least = BYTE_MARKS.least();
    let (result, _) = run(App::Handover, &mut world, options(least - 1, 1));
    assert_eq!(result.unwrap_err(), format!("app=handover needs net.bytes of at least {least}"));
    assert!(state.borrow().holds.is_empty());
    assert_eq!(least, BYTE_MARKS.hold_after + 2 * BYTE_MARKS.resumed_after);
    let short_rr = NetOptions { handover_load: HandoverLoad::Rr, count: 599, ..options(BYTES, 1) };
    let (result, _) = run(App::Handover, &mut world, short_rr);
    assert_eq!(result.unwrap_err(), "app=handover needs net.count of at least 600");
}

#[test]
fn handover_needs_channels() {
    let mut world = World::plain();
    let (result, _) = run(App::Handover, &mut world, net());
    assert_eq!(result.unwrap_err(), "app=handover needs the shared-memory channel: Xen and net.group");
}

#[test]
fn a_channel_that_never_comes_back_fails_the_stream_not_the_guest() {
    // Back 10 s after the release: the stream of 4 MiB ends first.
    let state = Rc::new(RefCell::new(ChannelState {
        up_at: Some(30 * MS),
        held: false,
        back_after_ns: 10_000 * MS,
        holds: Vec::new(),
        listed_at: Some(20 * MS),
    }));
    let mut world = world(&state);
    let (result, out) = run(App::Handover, &mut world, options(4 << 20, 1));
    assert_eq!(
        result.unwrap_err(),
        format!("handover: the stream ended before the channel came back, at net.bytes={}; give more", 4 << 20)
    );
    // Released once, not again; no figure of the stream printed.
    assert_eq!(state.borrow().holds, [true, false]);
    assert!(values(&out, "handover.to_netfront").is_empty());
}
