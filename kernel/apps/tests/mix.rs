//! `app=mix` against the stream sink, over two smoltcp interfaces: N
//! concurrent streams, every byte counted by the sink, the aggregate and
//! the slowest and fastest flow reported per repetition. With `mix.rr=on`,
//! TCP_RR flows to two peer addresses at the remote end, one of them
//! answering late (or never): the latencies pooled and per peer.

mod support;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use apps::echo::Echo;
use cohort_boot::cmdline::{parse, App, MixOptions, NetOptions};
use figures::{Event, Figure};
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, IpCidr, IpListenEndpoint};
use support::{net, run, run_until, world_with_sink, Captured, World, MS};

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

/// The second peer address, at the remote end too.
const OTHER: [u8; 4] = [10, 0, 0, 3];
const COUNT: u32 = 200;
const MSG: u32 = 64;
/// How late the other peer answers.
const LATE_NS: u64 = 2 * MS;

/// Answers due, and when.
type Pending = VecDeque<(u64, Vec<u8>)>;

/// The other peer: listening sockets bound to [`OTHER`]:7, which answer
/// what they receive `late_ns` later, or never (`None`).
struct LateEcho {
    sockets: Vec<(SocketHandle, Pending)>,
    late_ns: Option<u64>,
}

impl LateEcho {
    fn service(&mut self, sockets: &mut SocketSet<'static>, now: u64) -> bool {
        let mut moved = false;
        for (handle, pending) in &mut self.sockets {
            let socket = sockets.get_mut::<tcp::Socket>(*handle);
            if !socket.is_open() {
                pending.clear();
                let at = IpListenEndpoint { addr: Some(IpAddress::v4(OTHER[0], OTHER[1], OTHER[2], OTHER[3])), port: 7 };
                socket.listen(at).unwrap();
                continue;
            }
            let Some(late_ns) = self.late_ns else { continue };
            while socket.can_recv() {
                let got = socket.recv(|b| (b.len(), b.to_vec())).unwrap();
                pending.push_back((now + late_ns, got));
                moved = true;
            }
            while pending.front().is_some_and(|(due, _)| *due <= now) {
                let (_, bytes) = pending.pop_front().unwrap();
                assert_eq!(socket.send_slice(&bytes), Ok(bytes.len()));
                moved = true;
            }
            if socket.state() == tcp::State::CloseWait && pending.is_empty() {
                socket.close();
            }
        }
        moved
    }
}

/// The echo at the remote end (10.0.0.2) and [`LateEcho`] at its
/// [`OTHER`] (whose sockets come first, so they take its connections).
fn world_with_two_peers(late_ns: Option<u64>) -> (World, Rc<RefCell<Echo>>) {
    let mut world = World::plain();
    let (iface, sockets) = world.remote_parts();
    iface.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::v4(OTHER[0], OTHER[1], OTHER[2], OTHER[3]), 24)).unwrap());
    let buffer = || tcp::SocketBuffer::new(vec![0; 4096]);
    let handles = (0..2).map(|_| (sockets.add(tcp::Socket::new(buffer(), buffer())), VecDeque::new())).collect();
    let late = Rc::new(RefCell::new(LateEcho { sockets: handles, late_ns }));
    let echo = Rc::new(RefCell::new(Echo::new(sockets, 7).unwrap()));
    let (l, e) = (late.clone(), echo.clone());
    world.remote_app(move |_, sockets, now| l.borrow_mut().service(sockets, now));
    world.remote_app(move |_, sockets, _| e.borrow_mut().service(sockets));
    (world, echo)
}

fn mix_rr(list: &str, reps: u32) -> NetOptions {
    NetOptions { count: COUNT, msg: MSG, reps, peers: peers(list), mix: MixOptions { rr: true }, ..net() }
}

/// The values of the figures named `name` over `path`, each in `unit`.
fn values(out: &Captured, name: &str, path: &str, unit: &str) -> Vec<f64> {
    let found: Vec<Figure<String>> = out.figures().into_iter().filter(|f| f.name == name && f.path == path).collect();
    for f in &found {
        assert_eq!((f.unit.as_str(), f.clock.as_str()), (unit, "virtual"), "{f:?}");
    }
    found.iter().map(|f| f.value).collect()
}

#[test]
fn rr_flows_to_two_peers_report_pooled_and_per_peer_latencies_each_repetition() {
    let (mut world, echo) = world_with_two_peers(Some(LATE_NS));
    let (result, out) = run(App::Mix, &mut world, mix_rr("10.0.0.2,10.0.0.3,10.0.0.2", 2));
    result.unwrap_or_else(|e| panic!("{e}\n{}", out.text()));
    // Two flows to the echo, in both repetitions, every transaction echoed.
    assert_eq!(echo.borrow().tcp_bytes, 2 * 2 * u64::from(COUNT * MSG), "{}", out.text());
    assert!(out.figures().iter().all(|f| f.name.starts_with("net.mix_rr_")), "no stream figures: {}", out.text());
    let all = values(&out, "net.mix_rr_aggregate", "fake", "transactions/s");
    let slowest = values(&out, "net.mix_rr_flow_slowest", "fake", "transactions/s");
    let p50 = values(&out, "net.mix_rr_latency_p50", "fake", "us");
    let p99 = values(&out, "net.mix_rr_latency_p99", "fake", "us");
    let fast = values(&out, "net.mix_rr_peer_latency_p50", "peer-10.0.0.2", "us");
    let late = values(&out, "net.mix_rr_peer_latency_p50", "peer-10.0.0.3", "us");
    let late99 = values(&out, "net.mix_rr_peer_latency_p99", "peer-10.0.0.3", "us");
    let paths: Vec<String> = out.figures().into_iter().map(|f| f.path).collect();
    assert!(paths.iter().all(|p| ["fake", "peer-10.0.0.2", "peer-10.0.0.3"].contains(&p.as_str())), "{paths:?}");
    assert_eq!(out.figures().len(), 2 * 8, "{}", out.text());
    let counts = [all.len(), slowest.len(), p50.len(), p99.len(), fast.len(), late.len(), late99.len()];
    assert_eq!(counts, [2; 7], "one of each per repetition:\n{}", out.text());
    let late_us = (LATE_NS / 1000) as f64;
    for i in 0..2 {
        assert!(p50[i] > 0.0 && p50[i] <= p99[i], "{p50:?} {p99:?}");
        assert!(slowest[i] > 0.0 && all[i] > slowest[i], "{all:?} {slowest:?}");
        // The late peer's flow is the slowest: COUNT round trips of at
        // least LATE_NS each.
        assert!(slowest[i] <= 1e9 / LATE_NS as f64, "{slowest:?}");
        // Per peer: the late one's every answer, the echo's none, that late.
        assert!(late[i] >= late_us && late[i] <= late99[i], "{late:?} {late99:?}");
        assert!(fast[i] < late_us, "{fast:?}");
        // Pooled over all three flows: a third of the transactions late.
        assert!(p50[i] < late_us && p99[i] >= late_us, "{p50:?} {p99:?}");
    }
    let lines = out.starting(&format!("mix-rr: 3 flows, {} transactions in ", 3 * COUNT));
    assert_eq!(lines.len(), 2, "{}", out.text());
    assert_eq!(out.starting("mix-rr: 2 flows to 10.0.0.2: ").len(), 2, "{}", out.text());
    assert_eq!(out.starting("mix-rr: 1 flows to 10.0.0.3: ").len(), 2, "{}", out.text());
    assert_eq!(out.results().last(), Some(&Event::App { app: "mix".into(), ok: true, error: None }));
}

#[test]
fn an_rr_flow_to_a_peer_that_never_answers_ends_in_the_stall_error() {
    let (mut world, echo) = world_with_two_peers(None);
    let (result, out) = run(App::Mix, &mut world, mix_rr("10.0.0.2,10.0.0.3", 1));
    assert_eq!(result, Err(String::from("mix-rr: no progress for 120 s (1 of 2 flows done)")), "{}", out.text());
    // The other flow finished; the run gave up a stall timeout later.
    assert_eq!(echo.borrow().tcp_bytes, u64::from(COUNT * MSG));
    assert!(world.clock.now() < 130_000 * MS, "ended at {} ms", world.clock.now() / MS);
    assert!(out.figures().is_empty(), "no figures of a failed repetition: {}", out.text());
    assert!(matches!(out.results().last(), Some(Event::App { ok: false, .. })));
}

#[test]
fn rr_flows_stop_when_asked() {
    let (mut world, echo) = world_with_two_peers(Some(LATE_NS));
    let (e, clock) = (echo.clone(), world.clock.clone());
    let asked = Rc::new(std::cell::Cell::new(None));
    let a = asked.clone();
    let mut stop = move || {
        if a.get().is_none() && e.borrow().tcp_bytes >= 500 {
            a.set(Some(clock.now()));
        }
        a.get().is_some()
    };
    let net = NetOptions { count: 10_000_000, ..mix_rr("10.0.0.2,10.0.0.3", 1) };
    let (result, out) = run_until(App::Mix, &mut world, net, &mut stop);
    assert_eq!(result, Ok(()), "{}", out.text());
    assert_eq!(out.results().last(), Some(&Event::App { app: "mix".into(), ok: true, error: None }));
    assert!(out.results().contains(&Event::Stopped { app: "mix".into() }), "{}", out.text());
    assert!(out.figures().is_empty(), "{}", out.text());
    let asked = asked.get().expect("asked to stop");
    assert!(world.clock.now() - asked < 100 * MS, "ended {} ms after the request", (world.clock.now() - asked) / MS);
    assert!(echo.borrow().tcp_bytes < 10_000, "stopped early: {} bytes echoed", echo.borrow().tcp_bytes);
}
