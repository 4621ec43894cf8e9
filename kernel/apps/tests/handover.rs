//! `app=handover` on a device with two paths: a fast channel (no latency)
//! that comes up 30 ms in and 5 ms after a hold is released, and a slower
//! fallback (1 Gbit/s, 100 us each way). Each stream is held on the
//! fallback at a third and let back at two thirds; every switch shows in
//! the figures, and the device's count of TCP bytes adds up.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use apps::handover::RESUMED_AFTER_BYTES;
use apps::sink::Sink;
use cohort_boot::cmdline::{App, NetOptions};
use figures::Event;
use support::{net, results_of, run, ChannelState, Wire, World, GIGABIT_NS_PER_BYTE, MS, US};

const BYTES: u64 = 4 << 20;
/// What the stream sends before its bytes: the FNV check's magic.
const MAGIC: u64 = 8;
const PATH: &str = "channel+netfront";

fn world(state: &Rc<RefCell<ChannelState>>) -> World {
    let fallback = Wire::new(GIGABIT_NS_PER_BYTE, 100 * US);
    let channel = Wire::new(1, 0);
    let mut world = World::with_channel(fallback, channel, state);
    let sink = Rc::new(RefCell::new(Sink::new(world.remote_parts().1, 9)));
    world.remote_app(move |_, sockets, _| sink.borrow_mut().service(sockets));
    world
}

fn state() -> Rc<RefCell<ChannelState>> {
    Rc::new(RefCell::new(ChannelState { up_at: Some(30 * MS), held: false, back_after_ns: 5 * MS, holds: Vec::new() }))
}

/// Every value of figure `name` over the handover's path, in order.
fn values(out: &support::Captured, name: &str) -> Vec<f64> {
    out.figures().into_iter().filter(|f| f.name == name && f.path == PATH).map(|f| f.value).collect()
}

#[test]
fn handover_times_both_switches_and_counts_what_tcp_sent_again() {
    let state = state();
    let mut world = world(&state);
    let (result, out) = run(App::Handover, &mut world, NetOptions { bytes: BYTES, reps: 2, ..net() });
    result.unwrap_or_else(|e| panic!("{e}\n{}", out.text()));

    let detect = out.figure("handover.detect", "channel");
    assert!((30.0..31.0).contains(&detect), "{detect} ms");
    assert_eq!(state.borrow().holds, [true, false, true, false]);

    let (to_netfront, back, to_channel) =
        (values(&out, "handover.to_netfront"), values(&out, "handover.channel_back"), values(&out, "handover.to_channel"));
    assert_eq!((to_netfront.len(), back.len(), to_channel.len()), (2, 2, 2));
    for i in 0..2 {
        // 256 KiB at 1 Gbit/s take 2.1 ms, less what the channel carried
        // before the hold and was acknowledged after it (a window's worth).
        assert!((1.0..50.0).contains(&to_netfront[i]), "{to_netfront:?}");
        // The channel is up 5 ms after the release; the stream moves on it
        // after that, and 256 KiB over it take no time here.
        assert!((5.0..5.1).contains(&back[i]), "{back:?}");
        assert!(to_channel[i] > back[i] && to_channel[i] < back[i] + 10.0, "{to_channel:?} after {back:?}");
    }
    // Every byte of each stream counted once, and what was sent again on top.
    let (payload, again) = (values(&out, "handover.payload_sent"), values(&out, "handover.retransmitted"));
    assert_eq!(payload.len(), 2);
    for (p, a) in payload.iter().zip(&again) {
        assert_eq!(p - a, (BYTES + MAGIC) as f64, "{payload:?} {again:?}");
        // Not every frame counted twice.
        assert!(*a < p / 10.0, "{payload:?} {again:?}");
    }
    let rates = values(&out, "net.tcp_stream");
    assert!(rates.len() == 2 && rates.iter().all(|r| *r > 0.0), "{rates:?}");

    // Both streams arrived whole (the sink's FNV check), over both paths.
    let results = out.results();
    for e in results_of(&results, "stream") {
        let Event::Stream { path, matched, sink_bytes, frames, .. } = e else { unreachable!() };
        assert_eq!((path.as_str(), *matched, *sink_bytes), (PATH, true, BYTES));
        let f = frames.expect("frames by path");
        assert!(f.channel > 100 && f.netfront > 100, "{f:?}");
    }
    assert_eq!(results.last(), Some(&Event::App { app: "handover".into(), ok: true, error: None }));
}

#[test]
fn handover_refuses_a_stream_too_short_to_switch_twice() {
    let state = state();
    let mut world = world(&state);
    let (result, _) = run(App::Handover, &mut world, NetOptions { bytes: 6 * RESUMED_AFTER_BYTES - 1, ..net() });
    assert_eq!(result.unwrap_err(), format!("app=handover needs net.bytes of at least {}", 6 * RESUMED_AFTER_BYTES));
    assert!(state.borrow().holds.is_empty());
}

#[test]
fn handover_needs_channels() {
    let mut world = World::plain();
    let (result, _) = run(App::Handover, &mut world, net());
    assert_eq!(result.unwrap_err(), "app=handover needs the shared-memory channel: Xen and net.group");
}

#[test]
fn a_channel_that_never_comes_back_fails_the_stream_not_the_guest() {
    // Back after 10 s: the stream (about 40 ms on the fallback) ends first.
    let state =
        Rc::new(RefCell::new(ChannelState { up_at: Some(30 * MS), held: false, back_after_ns: 10_000 * MS, holds: Vec::new() }));
    let mut world = world(&state);
    let (result, out) = run(App::Handover, &mut world, NetOptions { bytes: BYTES, reps: 1, ..net() });
    assert_eq!(
        result.unwrap_err(),
        format!("handover: the stream of {BYTES} bytes ended before the channel came back; give a larger net.bytes")
    );
    // Released at two thirds, not again; no figure of the stream printed.
    assert_eq!(state.borrow().holds, [true, false]);
    assert!(values(&out, "handover.to_netfront").is_empty());
}
