//! `app=maerts` against the stream source, over two smoltcp interfaces:
//! the bytes that come back are the pattern the source says it sent, the
//! lines, figures and results say so; a source that lies or stops short
//! fails the measurement, and a bad request is reset by the source.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use apps::pattern::Fnv64;
use apps::source::{Request, Source, REQUEST_LEN};
use apps::Stack;
use cohort_boot::cmdline::{App, NetOptions, StreamCheck};
use figures::Event;
use sha2::{Digest, Sha256};
use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, Ipv4Address};
use support::{net, pattern_bytes, results_of, run, Captured, World, REMOTE};

const BYTES: usize = 512 * 1024;

fn world_with_source() -> (World, Rc<RefCell<Source>>) {
    let mut world = World::plain();
    let source = Rc::new(RefCell::new(Source::new(world.remote_parts().1, 19)));
    let s = source.clone();
    world.remote_app(move |_, sockets, _| s.borrow_mut().service(sockets));
    (world, source)
}

/// The `maerts` results: (bytes, check, digest, source bytes, source digest, match).
fn the_maerts(out: &Captured) -> Vec<(u64, String, String, u64, String, bool)> {
    let results = out.results();
    results_of(&results, "maerts")
        .into_iter()
        .map(|e| match e {
            Event::Maerts { path, bytes, seconds, mbit_per_s, check, digest, source_bytes, source_digest, matched, frames } => {
                assert_eq!((path.as_str(), *frames), ("fake", None));
                assert!(*seconds > 0.0 && *mbit_per_s > 0.0, "{seconds} s, {mbit_per_s} Mbit/s");
                let expected = *bytes as f64 * 8.0 / seconds / 1e6;
                assert!((mbit_per_s - expected).abs() < 1e-3 + expected * 1e-6, "{mbit_per_s} vs {expected}");
                (*bytes, check.clone(), digest.clone(), *source_bytes, source_digest.clone(), *matched)
            }
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn the_source_sends_what_was_asked_checked_with_sha256() {
    let (mut world, source) = world_with_source();
    let (result, out) = run(App::Maerts, &mut world, NetOptions { bytes: BYTES as u64, ..net() });
    result.unwrap();
    let expected = apps::pattern::hex(&Sha256::digest(pattern_bytes(BYTES)));
    let got = the_maerts(&out);
    assert_eq!(got, [(BYTES as u64, "sha256".into(), expected.clone(), BYTES as u64, expected.clone(), true)]);
    let source = source.borrow();
    assert_eq!((source.bytes, source.streams, source.refused), (BYTES as u64, 1, 0));
    let lines = out.starting("maerts: ");
    assert_eq!(lines.len(), 1, "{}", out.text());
    assert!(lines[0].ends_with(&format!("over fake; the source sent {BYTES} bytes, sha256 {expected} (match)")), "{}", lines[0]);
    assert!(out.figure("net.tcp_maerts", "fake") > 0.0);
    assert!(world.local.device.shut_down);
    assert_eq!(out.results().last(), Some(&Event::App { app: "maerts".into(), ok: true, error: None }));
}

#[test]
fn each_repetition_is_a_stream_and_the_cheaper_checks_hold() {
    for (check, name) in [(StreamCheck::Fnv, "fnv64"), (StreamCheck::Count, "count")] {
        let (mut world, source) = world_with_source();
        let bytes = 100_001;
        let (result, out) = run(App::Maerts, &mut world, NetOptions { bytes, check, reps: 3, ..net() });
        result.unwrap();
        let got = the_maerts(&out);
        assert_eq!(got.len(), 3, "{}", out.text());
        let digest = match check {
            StreamCheck::Fnv => {
                let mut h = Fnv64::new();
                h.update(&pattern_bytes(bytes as usize));
                format!("{:016x}", h.finish())
            }
            _ => "-".into(),
        };
        for g in got {
            assert_eq!(g, (bytes, name.into(), digest.clone(), bytes, digest.clone(), true));
        }
        assert_eq!((source.borrow().bytes, source.borrow().streams), (3 * bytes, 3));
        assert_eq!(out.figures().iter().filter(|f| f.name == "net.tcp_maerts").count(), 3);
        out.cost_figures("fake", 3);
    }
}

/// A source that sends `send` bytes of zeros, then `line` (if any), then closes.
fn liar(send: usize, line: Option<&'static str>) -> World {
    let mut world = World::plain();
    let h = {
        let sockets = world.remote_parts().1;
        let s = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 4096]), tcp::SocketBuffer::new(vec![0; 1 << 20]));
        let h = sockets.add(s);
        sockets.get_mut::<tcp::Socket>(h).listen(19).unwrap();
        h
    };
    let mut head = Vec::new();
    let mut answered = false;
    world.remote_app(move |_, sockets, _| {
        let s = sockets.get_mut::<tcp::Socket>(h);
        let mut buf = [0u8; REQUEST_LEN];
        if let Ok(n) = s.recv_slice(&mut buf[..REQUEST_LEN - head.len()]) {
            head.extend_from_slice(&buf[..n]);
        }
        if head.len() == REQUEST_LEN && !answered && s.can_send() {
            answered = true;
            s.send_slice(&vec![0; send]).unwrap();
            if let Some(line) = line {
                s.send_slice(line.as_bytes()).unwrap();
            }
            s.close();
            return true;
        }
        false
    });
    world
}

#[test]
fn a_source_that_lies_or_stops_short_fails_the_measurement() {
    let net = NetOptions { bytes: 1000, check: StreamCheck::Count, ..net() };
    // The right count of bytes, but it claims another.
    let (result, out) = run(App::Maerts, &mut liar(1000, Some("999 -\n")), net);
    assert_eq!(result.unwrap_err(), "received 1000 bytes with count -; the source says 999 with -");
    assert!(!the_maerts(&out)[0].5);
    // Closed before all the bytes.
    let (result, _) = run(App::Maerts, &mut liar(600, None), net);
    assert!(result.unwrap_err().contains("connection closed after 600 of 1000 bytes"));
    // More than asked and a line: the extra bytes are no line.
    let (result, _) = run(App::Maerts, &mut liar(1200, Some("1000 -\n")), net);
    assert!(result.unwrap_err().contains("more than 1000 bytes and a line"));
}

#[test]
fn the_source_resets_a_bad_request_and_serves_the_next() {
    let (mut world, source) = world_with_source();
    let mut bad = Request { bytes: 10, kind: apps::pattern::CheckKind::Count }.to_bytes();
    bad[6] = b'?';
    let remote = (IpAddress::Ipv4(Ipv4Address::from(REMOTE)), 19);
    let h = {
        let (iface, sockets) = world.parts();
        let mut s = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 4096]), tcp::SocketBuffer::new(vec![0; 4096]));
        s.connect(iface.context(), remote, 50000).unwrap();
        sockets.add(s)
    };
    let mut sent = false;
    for _ in 0..10_000 {
        world.step();
        let s = world.sockets().get_mut::<tcp::Socket>(h);
        if !sent && s.may_send() {
            sent = s.send_slice(&bad).unwrap() == REQUEST_LEN;
        }
        if sent && !s.is_open() {
            break;
        }
    }
    let s = world.sockets().get_mut::<tcp::Socket>(h);
    assert!(sent && !s.is_open(), "the source reset the connection: {}", s.state());
    assert_eq!((source.borrow().refused, source.borrow().streams, source.borrow().bytes), (1, 0, 0));
    // The next, good, request is served.
    let (result, out) = run(App::Maerts, &mut world, NetOptions { bytes: 5000, check: StreamCheck::Count, ..net() });
    result.unwrap();
    assert!(the_maerts(&out)[0].5);
    assert_eq!((source.borrow().refused, source.borrow().streams), (1, 1));
}
