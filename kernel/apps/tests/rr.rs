//! `app=rr` against the echo, over two smoltcp interfaces on a simulated
//! clock: every transaction completes, each is timed, and the latencies,
//! the histogram, the figures and the result agree.

mod support;

use apps::rr::BUCKETS_US;
use cohort_boot::cmdline::{App, NetOptions};
use figures::Event;
use support::{net, results_of, run, world_with_echo, Captured, STEP_NS, US};

/// (transactions, seconds, per second, mean, p50, p99) of the one `rr` result.
fn the_rr(out: &Captured) -> (u32, f64, f64, f64, f64, f64) {
    let results = out.results();
    let rrs = results_of(&results, "rr");
    assert_eq!(rrs.len(), 1, "{}", out.text());
    let Event::Rr { path, transactions, seconds, per_second, mean_us, p50_us, p99_us, frames } = rrs[0] else { unreachable!() };
    assert_eq!((path.as_str(), *frames), ("fake", None));
    (*transactions, *seconds, *per_second, *mean_us, *p50_us, *p99_us)
}

/// The histogram line's buckets: (upper bound in us, or None: longer; count).
fn histogram(out: &Captured) -> Vec<(Option<u64>, u32)> {
    let lines = out.starting("rr: round trips by bucket:");
    assert_eq!(lines.len(), 1, "{}", out.text());
    lines[0]
        .trim_start_matches("rr: round trips by bucket:")
        .split_whitespace()
        .map(|b| {
            let (bound, n) = b.split_once(':').unwrap();
            let bound = bound.strip_prefix("<=").map(|us| us.trim_end_matches("us").parse().unwrap());
            assert!(bound.is_some() || bound.is_none() && b.starts_with("longer"), "{b}");
            (bound, n.parse().unwrap())
        })
        .collect()
}

#[test]
fn every_transaction_is_timed_and_binned() {
    let (mut world, echo) = world_with_echo();
    let (result, out) = run(App::Rr, &mut world, NetOptions { count: 300, msg: 32, ..net() });
    result.unwrap();
    let (transactions, seconds, per_second, mean, p50, p99) = the_rr(&out);
    assert_eq!(transactions, 300);
    assert_eq!(echo.borrow().tcp_bytes, 300 * 32, "the echo saw every request");
    // A round trip takes a few rounds of the world (10 us each) at least.
    assert!(p50 >= (2 * STEP_NS / US) as f64 && p99 >= p50 && mean >= p50 / 2.0, "p50 {p50} p99 {p99} mean {mean}");
    assert!(p99 < 10_000.0, "no round trip waits for a timer: p99 {p99} us");
    let expected_rate = 300.0 / seconds;
    assert!((per_second - expected_rate).abs() / expected_rate < 1e-3, "{per_second} vs {expected_rate}");
    // Each transaction is in exactly one bucket, consistent with p50.
    let buckets = histogram(&out);
    assert_eq!(buckets.iter().map(|(_, n)| n).sum::<u32>(), 300, "{buckets:?}");
    let below_p50: u32 = buckets.iter().filter(|(b, _)| b.is_some_and(|us| (us as f64) < p50)).map(|(_, n)| n).sum();
    assert!(below_p50 <= 150, "{buckets:?} with p50 {p50}");
    assert!(buckets.iter().all(|(b, _)| b.is_none_or(|us| BUCKETS_US.contains(&us))));
    // The figures say the same as the result.
    assert_eq!(out.figure("net.tcp_rr", "fake"), (per_second * 1000.0).round() / 1000.0);
    assert_eq!(out.figure("net.tcp_rr_latency_p50", "fake"), p50);
    assert_eq!(out.figure("net.tcp_rr_latency_p99", "fake"), p99);
    assert_eq!(out.figure("net.tcp_rr_latency_mean", "fake"), mean);
    let line = out.starting("rr: 300 transactions in ");
    assert_eq!(line.len(), 1, "{}", out.text());
    assert!(line[0].contains("/s over fake; latency mean"), "{}", line[0]);
    assert_eq!(out.results().last(), Some(&Event::App { app: "rr".into(), ok: true, error: None }));
}

#[test]
fn requests_larger_than_a_segment_are_answered_whole() {
    let (mut world, echo) = world_with_echo();
    let (result, out) = run(App::Rr, &mut world, NetOptions { count: 40, msg: 5000, reps: 2, ..net() });
    result.unwrap();
    let results = out.results();
    let rrs = results_of(&results, "rr");
    assert_eq!(rrs.len(), 2, "net.reps=2: {}", out.text());
    assert!(rrs.iter().all(|r| matches!(r, Event::Rr { transactions: 40, .. })));
    assert_eq!(echo.borrow().tcp_bytes, 2 * 40 * 5000);
}

#[test]
fn each_repetition_says_where_its_time_went() {
    let (mut world, _) = world_with_echo();
    let (result, out) = run(App::Rr, &mut world, NetOptions { count: 50, msg: 32, reps: 2, ..net() });
    result.unwrap();
    let cost = out.cost_figures("fake", 2);
    let values = |name: &str| cost.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).unwrap();
    // The simulated stack charges each round to its poll and waits to idle;
    // its device has no service, and the application takes no simulated time.
    assert!(values("net.time_poll").iter().all(|p| *p > 0.0), "{cost:?}");
    assert!(values("net.time_idle").iter().all(|p| *p > 0.0), "{cost:?}");
    assert_eq!(values("net.time_service"), [0.0, 0.0]);
    assert_eq!(values("net.service_calls_per_frame"), [0.0, 0.0]);
    // A round trip is a request and an answer (and ACKs), each taking a few rounds.
    assert!(
        values("net.busy_per_frame").iter().all(|ns| *ns >= STEP_NS as f64 / 2.0 && *ns < 100.0 * STEP_NS as f64),
        "{cost:?}"
    );
}

#[test]
fn a_missing_peer_is_an_error_before_anything_is_sent() {
    let (mut world, echo) = world_with_echo();
    let (result, out) = run(App::Rr, &mut world, NetOptions { peer: None, ..net() });
    assert_eq!(result.unwrap_err(), "this app needs net.peer=A.B.C.D");
    assert_eq!(echo.borrow().tcp_bytes, 0);
    assert!(world.local.device.shut_down);
    assert_eq!(
        out.results().last(),
        Some(&Event::App { app: "rr".into(), ok: false, error: Some("this app needs net.peer=A.B.C.D".into()) })
    );
}
