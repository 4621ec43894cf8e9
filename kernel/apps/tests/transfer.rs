//! `app=transfer` through the echo, over two smoltcp interfaces: what
//! comes back is what went out (SHA-256 of both directions, and the
//! pattern's own), and a peer that refuses at first is tried again.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use apps::echo::Echo;
use cohort_boot::cmdline::{App, NetOptions};
use figures::Event;
use sha2::{Digest, Sha256};
use support::{net, pattern_bytes, results_of, run, Captured, World, MS};

const BYTES: usize = 384 * 1024 + 3;

/// The echo at the remote end, listening from `from_ns` on.
fn world_with_echo(from_ns: u64) -> (World, Rc<RefCell<Option<Echo>>>) {
    let mut world = World::plain();
    let echo = Rc::new(RefCell::new(None));
    let e = echo.clone();
    world.remote_app(move |_, sockets, now| {
        let mut echo = e.borrow_mut();
        if echo.is_none() && now >= from_ns {
            *echo = Some(Echo::new(sockets, 7).unwrap());
        }
        echo.as_mut().is_some_and(|e| e.service(sockets))
    });
    (world, echo)
}

fn the_transfer(out: &Captured) -> (u64, String, String, bool) {
    let results = out.results();
    let t = results_of(&results, "transfer");
    assert_eq!(t.len(), 1, "{}", out.text());
    let Event::Transfer { bytes, seconds, mbit_per_s, sent_sha256, received_sha256, matched, frames } = t[0] else {
        unreachable!()
    };
    assert!(*seconds > 0.0 && *mbit_per_s > 0.0 && frames.is_none());
    (*bytes, sent_sha256.clone(), received_sha256.clone(), *matched)
}

#[test]
fn what_the_echo_sends_back_is_what_went_out() {
    let (mut world, echo) = world_with_echo(0);
    let (result, out) = run(App::Transfer, &mut world, NetOptions { bytes: BYTES as u64, ..net() });
    result.unwrap();
    let expected = apps::pattern::hex(&Sha256::digest(pattern_bytes(BYTES)));
    assert_eq!(the_transfer(&out), (BYTES as u64, expected.clone(), expected.clone(), true));
    assert_eq!(echo.borrow().as_ref().unwrap().tcp_bytes, BYTES as u64);
    let line = out.starting("transfer: ");
    assert!(line[0].ends_with(&format!("sha256 sent {expected} received {expected} (match)")), "{}", out.text());
    let (_, tx, _, rx) = world.local.device_frames();
    assert!(tx > 0 && rx > 0);
    assert_eq!(
        line[1],
        format!("transfer: fake: tx channel 0 fallback {tx}, rx channel 0 fallback {rx}"),
        "the device's counters"
    );
    assert!(out.figure("net.tcp_echo_throughput", "fake") > 0.0);
    out.cost_figures("fake", 1);
    assert_eq!(out.figure("fake.tx_frames", "fake"), world.local.device_frames().1 as f64);
    assert_eq!(out.results().last(), Some(&Event::App { app: "transfer".into(), ok: true, error: None }));
}

#[test]
fn a_peer_that_refuses_at_first_is_tried_again() {
    // Nobody listens for the first 1.2 s: the connection is refused (a
    // reset) twice or three times, then accepted.
    let (mut world, echo) = world_with_echo(1200 * MS);
    let (result, out) = run(App::Transfer, &mut world, NetOptions { bytes: 64 * 1024, ..net() });
    result.unwrap();
    let (bytes, sent, received, matched) = the_transfer(&out);
    assert_eq!((bytes, matched), (64 * 1024, true));
    assert_eq!(sent, received);
    assert_eq!(echo.borrow().as_ref().unwrap().tcp_bytes, 64 * 1024);
    assert!(world.clock.now() >= 1200 * MS);
}
