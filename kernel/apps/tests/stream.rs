//! `app=stream` against the stream sink, over two smoltcp interfaces: the
//! sink's count and digest (SHA-256, FNV, or the count alone) match what
//! was sent, and the lines, figures and results say so.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use apps::pattern::Fnv64;
use apps::sink::Sink;
use cohort_boot::cmdline::{App, StreamCheck};
use figures::Event;
use sha2::{Digest, Sha256};
use smoltcp::socket::tcp;
use support::{net, pattern_bytes, results_of, run, world_with_sink, Captured, World};

const BYTES: usize = 512 * 1024;

fn stream(check: StreamCheck, bytes: usize, reps: u32) -> (Result<(), String>, Captured, Rc<RefCell<Sink>>) {
    let (mut world, sink) = world_with_sink();
    let net = cohort_boot::cmdline::NetOptions { bytes: bytes as u64, check, reps, ..net() };
    let (result, out) = run(App::Stream, &mut world, net);
    assert!(world.local.device.shut_down, "the device is closed at the end");
    (result, out, sink)
}

/// The one `stream` result: (bytes, check, sent digest, sink bytes, sink
/// digest, match).
fn the_stream(out: &Captured) -> (u64, String, String, u64, String, bool) {
    let results = out.results();
    let streams = results_of(&results, "stream");
    assert_eq!(streams.len(), 1, "{}", out.text());
    match streams[0] {
        Event::Stream { path, bytes, check, sent_digest, sink_bytes, sink_digest, matched, frames, mbit_per_s, seconds } => {
            assert_eq!(path, "fake", "without channels the path is the device's kind");
            assert_eq!(*frames, None, "no paths, no frames");
            assert!(*seconds > 0.0 && *mbit_per_s > 0.0, "{seconds} s, {mbit_per_s} Mbit/s");
            (*bytes, check.clone(), sent_digest.clone(), *sink_bytes, sink_digest.clone(), *matched)
        }
        _ => unreachable!(),
    }
}

fn assert_ended_well(out: &Captured) {
    let results = out.results();
    assert_eq!(
        results.first(),
        Some(&Event::Address { ip: "10.0.0.1".into(), prefix: 24, source: "static".into() }),
        "{}",
        out.text()
    );
    assert_eq!(results.last(), Some(&Event::App { app: "stream".into(), ok: true, error: None }));
}

#[test]
fn a_stream_checked_with_sha256_reaches_the_sink_intact() {
    let (result, out, sink) = stream(StreamCheck::Sha256, BYTES, 1);
    result.unwrap();
    let expected = apps::pattern::hex(&Sha256::digest(pattern_bytes(BYTES)));
    let (bytes, check, sent, sink_bytes, sink_digest, matched) = the_stream(&out);
    assert_eq!((bytes, sink_bytes, check.as_str(), matched), (BYTES as u64, BYTES as u64, "sha256", true));
    assert_eq!((sent.as_str(), sink_digest.as_str()), (expected.as_str(), expected.as_str()));
    // The sink's own count, and the human line.
    let sink = sink.borrow();
    assert_eq!((sink.bytes, sink.streams), (BYTES as u64, 1));
    let lines = out.starting("stream: ");
    assert_eq!(lines.len(), 1, "{}", out.text());
    assert!(lines[0].starts_with(&format!("stream: {BYTES} bytes in ")), "{}", lines[0]);
    assert!(lines[0].ends_with(&format!("over fake; sink received {BYTES} bytes, sha256 {expected} (match)")), "{}", lines[0]);
    assert!(out.figure("net.tcp_stream", "fake") > 0.0);
    assert_ended_well(&out);
}

#[test]
fn a_stream_checked_with_fnv_sends_its_magic_which_the_sink_does_not_count() {
    let (result, out, sink) = stream(StreamCheck::Fnv, BYTES + 5, 1);
    result.unwrap();
    let mut fnv = Fnv64::new();
    fnv.update(&pattern_bytes(BYTES + 5));
    let expected = format!("{:016x}", fnv.finish());
    let (bytes, check, sent, sink_bytes, sink_digest, matched) = the_stream(&out);
    assert_eq!((bytes, sink_bytes, check.as_str(), matched), (BYTES as u64 + 5, BYTES as u64 + 5, "fnv64", true));
    assert_eq!((sent.as_str(), sink_digest.as_str()), (expected.as_str(), expected.as_str()));
    assert_eq!(sink.borrow().bytes, BYTES as u64 + 5, "the 8-byte magic is not counted");
    assert_ended_well(&out);
}

#[test]
fn a_stream_checked_by_count_alone_is_repeated_net_reps_times() {
    let (result, out, sink) = stream(StreamCheck::Count, BYTES, 3);
    result.unwrap();
    let results = out.results();
    let streams = results_of(&results, "stream");
    assert_eq!(streams.len(), 3, "{}", out.text());
    for s in streams {
        let Event::Stream { bytes, sink_bytes, check, sent_digest, sink_digest, matched, .. } = s else { unreachable!() };
        assert_eq!(
            (*bytes, *sink_bytes, check.as_str(), sent_digest.as_str(), sink_digest.as_str(), *matched),
            (BYTES as u64, BYTES as u64, "count", "-", "-", true)
        );
    }
    assert_eq!(out.figures().iter().filter(|f| f.name == "net.tcp_stream").count(), 3);
    // Each repetition says where its time went.
    let cost = out.cost_figures("fake", 3);
    assert!(cost.iter().find(|(n, _)| *n == "net.time_poll").unwrap().1.iter().all(|p| *p > 0.0), "{cost:?}");
    let sink = sink.borrow();
    assert_eq!((sink.bytes, sink.streams), (3 * BYTES as u64, 3));
    assert_ended_well(&out);
}

#[test]
fn a_sink_that_got_other_bytes_fails_the_stream() {
    // A sink that answers a wrong count and digest, whatever it received.
    let mut world = World::plain();
    let socket = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 65536]), tcp::SocketBuffer::new(vec![0; 4096]));
    let handle = world.remote_parts().1.add(socket);
    world.remote.sockets.get_mut::<tcp::Socket>(handle).listen(9).unwrap();
    world.remote_app(move |_, sockets, _| {
        let s = sockets.get_mut::<tcp::Socket>(handle);
        let mut moved = false;
        while s.can_recv() {
            moved |= s.recv(|b| (b.len(), !b.is_empty())).unwrap();
        }
        if s.state() == tcp::State::CloseWait && s.send_queue() == 0 {
            s.send_slice(b"5 deadbeef\n").unwrap();
            s.close();
            moved = true;
        }
        moved
    });
    let net = cohort_boot::cmdline::NetOptions { bytes: 4096, ..net() };
    let (result, out) = run(App::Stream, &mut world, net);
    let error = result.unwrap_err();
    assert!(error.contains("the sink got 5 bytes with sha256 deadbeef; sent 4096"), "{error}");
    let (bytes, _, _, sink_bytes, sink_digest, matched) = the_stream(&out);
    assert_eq!((bytes, sink_bytes, sink_digest.as_str(), matched), (4096, 5, "deadbeef", false));
    assert!(out.starting("stream: ")[0].ends_with("(MISMATCH)"));
    assert_eq!(out.results().last(), Some(&Event::App { app: "stream".into(), ok: false, error: Some(error) }));
}
