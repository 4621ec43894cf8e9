//! `app=handover` on a device with two paths: a fast channel (no latency)
//! that comes up 30 ms in and 5 ms after a hold is released, and a slower
//! fallback (1 Gbit/s, 100 us each way). Each stream is held on the
//! fallback at a third and let back at two thirds; every switch shows in
//! the figures, and the device's count of TCP bytes adds up.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use apps::handover::{HOLD_AFTER_BYTES, MIN_BYTES, RESUMED_AFTER_BYTES};
use apps::sink::Sink;
use cohort_boot::cmdline::{App, NetOptions};
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

fn world(state: &Rc<RefCell<ChannelState>>) -> World {
    let fallback = Wire::new(GIGABIT_NS_PER_BYTE, 100 * US);
    let channel = Wire::new(1, 0);
    let mut world = World::with_channel(fallback, channel, state);
    let sink = Rc::new(RefCell::new(Sink::new(world.remote_parts().1, 9)));
    world.remote_app(move |_, sockets, _| sink.borrow_mut().service(sockets));
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
        assert!(*sink_bytes > HOLD_AFTER_BYTES + (2 << 20) && *sink_bytes < BYTES / 4, "{sink_bytes}");
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
    assert_eq!(results.last(), Some(&Event::App { app: "handover".into(), ok: true, error: None }));
}

#[test]
fn handover_refuses_a_stream_too_short_to_switch_twice() {
    let state = state();
    let mut world = world(&state);
    let (result, _) = run(App::Handover, &mut world, options(MIN_BYTES - 1, 1));
    assert_eq!(result.unwrap_err(), format!("app=handover needs net.bytes of at least {MIN_BYTES}"));
    assert!(state.borrow().holds.is_empty());
    assert_eq!(MIN_BYTES, HOLD_AFTER_BYTES + 2 * RESUMED_AFTER_BYTES);
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
