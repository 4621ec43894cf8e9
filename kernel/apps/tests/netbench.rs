//! `app=netbench` on a device with two paths: a fast channel (8 Gbit/s, no
//! latency) that comes up 30 ms in, and a slower fallback (1 Gbit/s,
//! 100 us each way). The flow: wait for the channel, measure over it, move
//! a running stream to the fallback, measure over the fallback, let the
//! channel come back; every step shows in the lines, figures and results.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use apps::echo::Echo;
use apps::sink::Sink;
use cohort_boot::cmdline::{App, NetOptions};
use figures::{Event, Frames};
use support::{net, results_of, run, Captured, ChannelState, Wire, World, GIGABIT_NS_PER_BYTE, MS, US};

const BYTES: u64 = 1 << 20;

fn world(state: &Rc<RefCell<ChannelState>>) -> World {
    let fallback = Wire::new(GIGABIT_NS_PER_BYTE, 100 * US);
    let channel = Wire::new(1, 0);
    let mut world = World::with_channel(fallback, channel, state);
    let echo = Rc::new(RefCell::new(Echo::new(world.remote_parts().1, 7).unwrap()));
    let sink = Rc::new(RefCell::new(Sink::new(world.remote_parts().1, 9)));
    world.remote_app(move |_, sockets, _| echo.borrow_mut().service(sockets) | sink.borrow_mut().service(sockets));
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

fn frames_of(out: &Captured, of: &str) -> Frames {
    let results = out.results();
    let found: Vec<Frames> = results
        .iter()
        .filter_map(|e| match e {
            Event::Frames { of: o, channel, netfront, share } if o == of => {
                Some(Frames { channel: *channel, netfront: *netfront, share: *share })
            }
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "frames of {of}: {}", out.text());
    found[0]
}

#[test]
fn netbench_measures_both_paths_and_the_switch_between_them() {
    let state = state();
    let mut world = world(&state);
    let (result, out) = run(App::Netbench, &mut world, NetOptions { bytes: BYTES, count: 100, reps: 2, ..net() });
    result.unwrap_or_else(|e| panic!("{e}\n{}", out.text()));

    // 1. The channel, 30 ms in.
    let up = out.figure("channel.up_after_boot", "channel");
    assert!((30.0..31.0).contains(&up), "{up} ms");

    // 2. and 4. Each phase's frames took its path; every stream arrived.
    assert!(frames_of(&out, "channel phase").share >= 99.0, "{:?}", frames_of(&out, "channel phase"));
    assert_eq!(out.figure("channel.frame_share", "channel"), (frames_of(&out, "channel phase").share * 1000.0).round() / 1000.0);
    let netfront = frames_of(&out, "netfront phase");
    assert_eq!((netfront.channel, netfront.share), (0, 0.0));
    let results = out.results();
    let streams: Vec<(&str, bool, u64)> = results_of(&results, "stream")
        .iter()
        .map(|e| match e {
            Event::Stream { path, matched, sink_bytes, .. } => (path.as_str(), *matched, *sink_bytes),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        streams,
        [
            ("channel", true, BYTES),
            ("channel", true, BYTES),
            ("channel-to-netfront", true, BYTES),
            ("netfront", true, BYTES),
            ("netfront", true, BYTES)
        ]
    );
    let rrs: Vec<(&str, u32)> = results_of(&results, "rr")
        .iter()
        .map(|e| match e {
            Event::Rr { path, transactions, .. } => (path.as_str(), *transactions),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(rrs, [("channel", 100), ("channel", 100), ("netfront", 100), ("netfront", 100)]);

    // 3. The running stream moved: frames on both paths, and it resumed.
    let switching = frames_of(&out, "switching stream");
    assert!(switching.channel > 100 && switching.netfront > 100, "{switching:?}");
    let switch_ms = out.figure("channel.switch_to_netfront", "netfront");
    assert!(switch_ms > 0.0 && switch_ms < 100.0, "{switch_ms} ms");

    // 5. Back 5 ms after the hold was released.
    let back = out.figure("channel.setup_after_release", "channel");
    assert!((5.0..5.1).contains(&back), "{back} ms");
    assert_eq!(state.borrow().holds, [true, false]);

    // The summary: the channel is faster on both counts here.
    let netbench = results_of(&results, "netbench");
    assert_eq!(netbench.len(), 1);
    let Event::Netbench {
        reps, up_ms, stream_speedup, rr_speedup, p50_channel_us, p50_netfront_us, switch_ms: s, back_ms, ..
    } = netbench[0]
    else {
        unreachable!()
    };
    assert_eq!((*reps, *up_ms, *back_ms, *s), (2, up, back, Some(switch_ms)));
    assert!(*stream_speedup > 1.5 && *rr_speedup > 2.0, "{stream_speedup}x, {rr_speedup}x");
    assert!(p50_netfront_us - p50_channel_us >= 200.0, "{p50_channel_us} vs {p50_netfront_us} us: two 100 us hops each way");
    assert_eq!(out.figure("channel.stream_speedup", "channel"), *stream_speedup);
    assert_eq!(out.figure("channel.rr_speedup", "channel"), *rr_speedup);
    let summary = out.starting("netbench: TCP_STREAM channel ");
    assert_eq!(summary.len(), 1);
    assert!(summary[0].ends_with("[medians (min-max) of 2 runs each; virtual clock]"), "{}", summary[0]);
    assert_eq!(out.starting("netbench: TCP_RR round trip over ").len(), 2);
    // The device's figures, by the path their name starts with.
    assert!(out.figure("fake.tx_frames", "fake") > 0.0);
    assert_eq!(results.last(), Some(&Event::App { app: "netbench".into(), ok: true, error: None }));
}

#[test]
fn netbench_needs_channels() {
    let mut world = World::plain();
    let (result, out) = run(App::Netbench, &mut world, net());
    let error = result.unwrap_err();
    assert_eq!(error, "app=netbench needs the shared-memory channel: Xen and net.group");
    assert_eq!(out.results().last(), Some(&Event::App { app: "netbench".into(), ok: false, error: Some(error) }));
}

#[test]
fn a_channel_that_never_comes_up_fails_netbench_after_the_setup_timeout() {
    let state =
        Rc::new(RefCell::new(ChannelState { up_at: None, held: false, back_after_ns: 0, holds: Vec::new(), listed_at: None }));
    let mut world = world(&state);
    let (result, _) = run(App::Netbench, &mut world, net());
    assert_eq!(result.unwrap_err(), "netbench: waiting for the channel: not within 60 s");
    assert!(world.clock.now() > 60_000 * MS);
}
