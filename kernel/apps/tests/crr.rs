//! `app=crr` against the echo, over two smoltcp interfaces on a simulated
//! clock: every transaction is answered on a connection of its own, each
//! is timed from its connect to the server's FIN, and the clock starts at
//! the first connection the server accepts.

mod support;

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

use apps::crr::SETUP_REFUSALS_MAX;
use apps::echo::Echo;
use cohort_boot::cmdline::{App, NetOptions};
use figures::Event;
use smoltcp::socket::{tcp, Socket};
use support::{net, results_of, run, Captured, World, SECOND, STEP_NS, US};

/// Shared with the remote app: the echo once it is up; the client ports
/// of the connections it saw established.
type Shared<T> = Rc<RefCell<T>>;

/// The world with the echo at the remote end from `from_ns` on.
fn world_with_echo(from_ns: u64) -> (World, Shared<Option<Echo>>, Shared<HashSet<u16>>) {
    let mut world = World::plain();
    let echo = Rc::new(RefCell::new(None));
    let ports = Rc::new(RefCell::new(HashSet::new()));
    let (e, p) = (echo.clone(), ports.clone());
    world.remote_app(move |_, sockets, now| {
        if now < from_ns {
            return false;
        }
        let mut echo = e.borrow_mut();
        if echo.is_none() {
            *echo = Some(Echo::new(sockets, 7).unwrap());
        }
        for (_, socket) in sockets.iter() {
            if let Socket::Tcp(s) = socket {
                if s.state() == tcp::State::Established {
                    p.borrow_mut().extend(s.remote_endpoint().map(|e| e.port));
                }
            }
        }
        echo.as_mut().unwrap().service(sockets)
    });
    (world, echo, ports)
}

/// (transactions, seconds, per second, mean, p50, p99, refused) of each `crr` result.
fn the_crrs(out: &Captured) -> Vec<(u32, f64, f64, f64, f64, f64, u32)> {
    let results = out.results();
    results_of(&results, "crr")
        .into_iter()
        .map(|e| {
            let Event::Crr { path, transactions, seconds, per_second, mean_us, p50_us, p99_us, refused, frames } = e else {
                unreachable!()
            };
            assert_eq!((path.as_str(), *frames), ("fake", None));
            (*transactions, *seconds, *per_second, *mean_us, *p50_us, *p99_us, *refused)
        })
        .collect()
}

#[test]
fn every_transaction_takes_a_connection_of_its_own() {
    let (mut world, echo, ports) = world_with_echo(0);
    let (result, out) = run(App::Crr, &mut world, NetOptions { count: 120, msg: 100, ..net() });
    result.unwrap();
    let crrs = the_crrs(&out);
    assert_eq!(crrs.len(), 1, "{}", out.text());
    let (transactions, seconds, per_second, mean, p50, p99, refused) = crrs[0];
    assert_eq!((transactions, refused), (120, 0));
    assert_eq!(echo.borrow().as_ref().unwrap().tcp_bytes, 120 * 100, "the echo saw every request");
    assert_eq!(ports.borrow().len(), 120, "120 connections from 120 ports");
    // Three exchanges at least (SYN, request, FIN), each a round of the
    // world both ways.
    assert!(p50 >= (6 * STEP_NS / US) as f64 && p99 >= p50 && mean >= p50 / 2.0, "p50 {p50} p99 {p99} mean {mean}");
    let expected = 120.0 / seconds;
    assert!((per_second - expected).abs() / expected < 1e-3, "{per_second} vs {expected}");
    assert_eq!(out.figure("net.tcp_crr", "fake"), (per_second * 1000.0).round() / 1000.0);
    assert_eq!(out.figure("net.tcp_crr_latency_p50", "fake"), p50);
    assert_eq!(out.figure("net.tcp_crr_latency_p99", "fake"), p99);
    assert_eq!(out.figure("net.tcp_crr_latency_mean", "fake"), mean);
    // No socket is left behind: only the echo's (4 TCP, 1 UDP) remain at
    // the remote end, and none at the client.
    assert_eq!(world.local.sockets.iter().count(), 0);
    assert!(world.local.device.shut_down);
    assert_eq!(out.results().last(), Some(&Event::App { app: "crr".into(), ok: true, error: None }));
}

#[test]
fn a_connection_costs_more_than_a_transaction_on_an_open_one() {
    let (mut world, _, _) = world_with_echo(0);
    let (result, out) = run(App::Crr, &mut world, NetOptions { count: 50, ..net() });
    result.unwrap();
    let crr_p50 = the_crrs(&out)[0].4;
    let (mut world, _, _) = world_with_echo(0);
    let (result, out) = run(App::Rr, &mut world, NetOptions { count: 50, ..net() });
    result.unwrap();
    let rr_p50 = out.figure("net.tcp_rr_latency_p50", "fake");
    assert!(crr_p50 > 2.0 * rr_p50, "crr p50 {crr_p50} us, rr p50 {rr_p50} us");
}

#[test]
fn the_clock_starts_when_the_server_first_accepts() {
    // The echo comes up 3 s in: the first connections are refused.
    let (mut world, _, _) = world_with_echo(3 * SECOND);
    let (result, out) = run(App::Crr, &mut world, NetOptions { count: 20, reps: 2, ..net() });
    result.unwrap();
    let crrs = the_crrs(&out);
    assert_eq!(crrs.len(), 2, "{}", out.text());
    for (transactions, seconds, .., refused) in crrs {
        assert_eq!((transactions, refused), (20, 0), "refusals while the peer comes up are not counted");
        assert!(seconds < 0.5, "{seconds} s: not from the first refused connection");
    }
    out.cost_figures("fake", 2);
}

#[test]
fn a_peer_that_never_listens_ends_it_after_the_setup_refusals() {
    let (mut world, _, _) = world_with_echo(u64::MAX);
    let (result, out) = run(App::Crr, &mut world, NetOptions { count: 5, ..net() });
    let error = result.unwrap_err();
    assert_eq!(error, format!("{SETUP_REFUSALS_MAX} connections refused in a row after 0 transactions"));
    assert!(the_crrs(&out).is_empty());
    assert_eq!(world.local.sockets.iter().count(), 0, "the last refused socket is removed");
    assert_eq!(out.results().last(), Some(&Event::App { app: "crr".into(), ok: false, error: Some(error) }));
}
