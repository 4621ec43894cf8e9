//! `app=mix` against the stream sink, over two smoltcp interfaces: N
//! concurrent streams, every byte counted by the sink, the aggregate and
//! the slowest and fastest flow reported per repetition.

mod support;

use cohort_boot::cmdline::{parse, App, NetOptions};
use figures::Event;
use support::{net, run, world_with_sink};

const BYTES: u64 = 256 * 1024;

/// `net.peers` as the command line gives it.
fn peers(list: &str) -> cohort_boot::cmdline::Peers {
    parse(&format!("net.peers={list}")).unwrap().net.peers
}

#[test]
fn concurrent_flows_all_reach_the_sink_and_each_repetition_reports_them() {
    let (mut world, sink) = world_with_sink();
    let net = NetOptions { bytes: BYTES, reps: 2, peers: peers("10.0.0.2,10.0.0.2,10.0.0.2,10.0.0.2"), ..net() };
    let (result, out) = run(App::Mix, &mut world, net);
    result.unwrap();
    // Every byte of the 4 flows (as many as a sink serves at once) of both repetitions, counted.
    let sink = sink.borrow();
    assert_eq!((sink.bytes, sink.streams), (8 * BYTES, 8), "{}", out.text());
    let of = |name: &str| -> Vec<f64> {
        out.figures().into_iter().filter(|f| f.name == name).inspect(|f| assert_eq!(f.path, "fake")).map(|f| f.value).collect()
    };
    let (all, slow, fast) = (of("net.mix_aggregate"), of("net.mix_flow_slowest"), of("net.mix_flow_fastest"));
    assert_eq!((all.len(), slow.len(), fast.len()), (2, 2, 2), "{}", out.text());
    for i in 0..2 {
        assert!(slow[i] > 0.0 && slow[i] <= fast[i], "{slow:?} {fast:?}");
        // Equal flows: the last to end is the slowest, and the aggregate is
        // four of it; no flow is slower than a quarter of the aggregate.
        assert!((all[i] - 4.0 * slow[i]).abs() < 1e-3 * all[i], "{all:?} {slow:?}");
        assert!(all[i] <= 4.0 * fast[i], "{all:?} {fast:?}");
    }
    let lines = out.starting("mix: 4 flows, 1048576 bytes in ");
    assert_eq!(lines.len(), 2, "{}", out.text());
    assert_eq!(out.results().last(), Some(&Event::App { app: "mix".into(), ok: true, error: None }));
}

#[test]
fn without_peers_mix_fails_and_says_why() {
    let (mut world, _) = world_with_sink();
    let (result, out) = run(App::Mix, &mut world, net());
    assert_eq!(result.unwrap_err(), "app=mix needs net.peers=A.B.C.D[,...]");
    assert!(matches!(out.results().last(), Some(Event::App { ok: false, .. })));
}
