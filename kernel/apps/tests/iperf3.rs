//! iperf3 over two smoltcp interfaces: the Cohort client (remote end)
//! measures the Cohort server (local end) — TCP, -R, -P 4, UDP — and a
//! second client is refused while a test runs.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use apps::iperf::{Iperf3Client, Iperf3Server, SERVER_STREAM_SOCKETS};
use apps::Stack;
use iperf3::client::{ClientFailure, Report};
use iperf3::server::{Phase, ServerConfig};
use iperf3::{Event, Params};
use smoltcp::iface::SocketSet;
use smoltcp::socket::{tcp, AnySocket};
use support::{World, LOCAL, MS, SECOND};

type Outcome = Rc<RefCell<Vec<Result<Report, ClientFailure>>>>;

/// Starts one client per entry of `starts` (time, params) at the remote
/// end; runs until all are done and the server is idle again.
fn measure(starts: Vec<(u64, Params)>) -> (Vec<Result<Report, ClientFailure>>, Vec<Event>) {
    let mut world = World::plain();
    let mut server = Iperf3Server::new(world.sockets(), 5201, 24, ServerConfig::default());
    let outcomes: Outcome = Rc::new(RefCell::new(Vec::new()));
    let o = outcomes.clone();
    let n = starts.len();
    let mut clients: Vec<Option<Iperf3Client>> = (0..n).map(|_| None).collect();
    let mut done = vec![false; n];
    let mut reported = vec![false; n];
    world.remote_app(move |iface, sockets, now| {
        let mut moved = false;
        for (i, (at, p)) in starts.iter().enumerate() {
            if clients[i].is_none() && !done[i] && now >= *at {
                let random = [i as u8 * 7 + 1; 36];
                let port = 40000 + 1000 * i as u16;
                clients[i] = Some(Iperf3Client::start(iface, sockets, LOCAL, 5201, p.clone(), &random, port, now).unwrap());
            }
            if let Some(c) = clients[i].as_mut() {
                moved |= c.service(iface, sockets, now);
                if c.done() && !reported[i] {
                    o.borrow_mut().push(c.outcome().unwrap().clone());
                    reported[i] = true;
                }
                if c.done() && c.closed(sockets) {
                    done[i] = true;
                    clients[i].take().unwrap().release(sockets);
                }
            }
        }
        moved
    });
    let mut events = Vec::new();
    loop {
        let now = world.clock.now();
        let moved = server.service(world.sockets(), now);
        events.extend(std::iter::from_fn(|| server.take_event()));
        let changed = world.step();
        if !moved && !changed {
            world.wait();
        }
        if outcomes.borrow().len() == n && server.state().is_idle() {
            break;
        }
        assert!(world.clock.now() < 120 * SECOND, "stuck: server {:?}", server.state().phase());
    }
    let out = outcomes.borrow().clone();
    (out, events)
}

fn report(r: &Result<Report, ClientFailure>) -> &Report {
    r.as_ref().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn tcp_upload_download_and_parallel() {
    for p in [
        Params { bandwidth: 40_000_000, ..Params::tcp(1) },
        Params { reverse: true, bandwidth: 40_000_000, ..Params::tcp(1) },
        Params { parallel: 4, bandwidth: 10_000_000, ..Params::tcp(1) },
    ] {
        let (out, events) = measure(vec![(MS, p.clone())]);
        let r = report(&out[0]);
        assert_eq!(r.streams.len(), usize::from(p.parallel));
        let total = p.bandwidth * u64::from(p.parallel) / 8;
        if p.reverse {
            assert!(r.bytes_received() > total * 8 / 10, "{p:?}: {}", r.bytes_received());
            assert!(r.download_bps() > 0.0);
        } else {
            assert!(r.server_received() > total * 8 / 10, "{p:?}: {}", r.server_received());
            let bps = r.upload_bps();
            assert!(bps > 0.7 * (p.bandwidth * u64::from(p.parallel)) as f64, "{bps}");
        }
        assert!(events.iter().any(|e| matches!(e, Event::Finished(_))), "{events:?}");
    }
}

#[test]
fn udp_with_loss_figures() {
    let p = Params { parallel: 2, ..Params::udp(1, 5_000_000, 1400) };
    let (out, _) = measure(vec![(MS, p)]);
    let r = report(&out[0]);
    for s in &r.streams {
        let srv = s.server.as_ref().unwrap();
        assert!(srv.packets.0 > 400, "{srv:?}");
        assert!(srv.errors.0 >= 0);
    }
}

/// (receive, send) buffer sizes of the connected TCP sockets of `sockets`
/// whose local or remote port is `port`.
fn connected_buffers(sockets: &SocketSet<'static>, port: u16) -> Vec<(usize, usize)> {
    sockets
        .iter()
        .filter_map(|(_, s)| tcp::Socket::downcast(s))
        .filter(|s| s.state() == tcp::State::Established)
        .filter(|s| [s.local_endpoint(), s.remote_endpoint()].iter().flatten().any(|e| e.port == port))
        .map(|s| (s.recv_capacity(), s.send_capacity()))
        .collect()
}

#[test]
fn a_test_gets_128_kib_stream_buffers_from_a_server_that_pools_fewer() {
    const KIB: usize = 1024;
    let mut world = World::plain();
    let mut server = Iperf3Server::new(world.sockets(), 5201, 24, ServerConfig::default());
    // The pool: SERVER_STREAM_SOCKETS large sockets, the rest as before.
    let mut pool: Vec<usize> =
        world.sockets().iter().filter_map(|(_, s)| tcp::Socket::downcast(s)).map(|s| s.recv_capacity()).collect();
    pool.sort();
    let large = SERVER_STREAM_SOCKETS;
    assert_eq!(pool, [vec![64 * KIB; 24 - large], vec![128 * KIB; large]].concat());
    let client_side: Rc<RefCell<Vec<(usize, usize)>>> = Rc::default();
    let seen = client_side.clone();
    let mut client = None;
    world.remote_app(move |iface, sockets, now| {
        let c = client.get_or_insert_with(|| {
            Iperf3Client::start(iface, sockets, LOCAL, 5201, Params::tcp(1), &[5; 36], 41000, now).unwrap()
        });
        let moved = c.service(iface, sockets, now);
        *seen.borrow_mut() = connected_buffers(sockets, 5201);
        moved
    });
    // Until the test runs with its one stream connected at both ends.
    let server_side = loop {
        let now = world.clock.now();
        let moved = server.service(world.sockets(), now);
        let server_side = connected_buffers(world.sockets(), 5201);
        if server.state().phase() == Some(Phase::Running) && server_side.len() == 2 && client_side.borrow().len() == 2 {
            break server_side;
        }
        let changed = world.step();
        if !moved && !changed {
            world.wait();
        }
        assert!(world.clock.now() < 10 * SECOND, "the test never ran: {:?}", server.state().phase());
    };
    // The server's control connection and stream both landed on large sockets.
    assert_eq!(server_side, [(128 * KIB, 128 * KIB); 2]);
    // The client's control connection is small, its one stream large.
    let mut client_side = client_side.borrow().clone();
    client_side.sort();
    assert_eq!(client_side, [(64 * KIB, 64 * KIB), (128 * KIB, 128 * KIB)]);
}

#[test]
fn a_second_client_is_refused_and_the_server_serves_the_next() {
    let (out, events) = measure(vec![
        (MS, Params { bandwidth: 10_000_000, ..Params::tcp(1) }),
        (300 * MS, Params::tcp(1)),
        (3 * SECOND, Params { bandwidth: 10_000_000, ..Params::tcp(1) }),
    ]);
    assert_eq!(out.len(), 3);
    assert_eq!(out.iter().filter(|o| matches!(o, Err(ClientFailure::AccessDenied))).count(), 1, "{out:?}");
    assert_eq!(out.iter().filter(|o| o.is_ok()).count(), 2);
    assert!(events.contains(&Event::Denied));
}

#[test]
fn refused_options_reach_the_client() {
    let (out, _) = measure(vec![(MS, Params { parallel: 40, ..Params::tcp(1) })]);
    assert_eq!(out[0], Err(ClientFailure::ServerError { i_errno: 6, errno: 0 }));
}

#[test]
fn app_iperf3_client_measures_a_server() {
    use cohort_boot::cmdline::App;
    use support::{net, results_of, run};
    let mut world = World::plain();
    let mut server: Option<Iperf3Server> = None;
    world.remote_app(move |_, sockets, now| {
        let s = server.get_or_insert_with(|| Iperf3Server::new(sockets, 5201, 8, ServerConfig::default()));
        s.service(sockets, now)
    });
    // Two tests, one after the other (net.reps), on the same server.
    let net = cohort_boot::cmdline::NetOptions { bytes: 2 << 20, reps: 2, ..net() };
    let (result, out) = run(App::Iperf3Client, &mut world, net);
    assert_eq!(result, Ok(()), "{}", out.text());
    let figures: Vec<f64> =
        out.figures().iter().filter(|f| f.name == "net.iperf3_tcp" && f.path == "fake").map(|f| f.value).collect();
    assert_eq!(figures.len(), 2, "{}", out.text());
    assert!(figures.iter().all(|m| *m > 1.0), "{}", out.text());
    let results = out.results();
    let apps = results_of(&results, "app");
    assert_eq!(apps.len(), 1);
    // Its `iperf3` event: what it sent, what the server says it received.
    let tests = results_of(&results, "iperf3");
    assert_eq!(tests.len(), 2, "{tests:?}");
    for (test, mbit) in tests.iter().zip(&figures) {
        match test {
            figures::Event::Iperf3 {
                role,
                ok: true,
                protocol,
                streams: 1,
                reverse: false,
                bytes_sent,
                bytes_received,
                mbit_per_s,
                i_errno: None,
                ..
            } => {
                assert_eq!((role.as_str(), protocol.as_deref()), ("client", Some("tcp")));
                // The server stops counting at TEST_END: what was in flight
                // then is sent but not received, as with iperf3's own server.
                assert_eq!(*bytes_sent, 2 << 20);
                assert!(*bytes_received > 0 && *bytes_received <= *bytes_sent, "{bytes_received}");
                assert!((mbit_per_s - mbit).abs() < 0.01, "{mbit_per_s} {mbit}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn app_iperf3_client_asks_again_when_refused() {
    // No listener for the first 300 ms (a stock iperf3 -s reopens its
    // listener after a test): the first connection is refused, and the
    // client asks again half a second later.
    use cohort_boot::cmdline::App;
    use support::{net, results_of, run};
    let mut world = World::plain();
    let mut server: Option<Iperf3Server> = None;
    world.remote_app(move |_, sockets, now| {
        if now < 300 * MS {
            return false;
        }
        let s = server.get_or_insert_with(|| Iperf3Server::new(sockets, 5201, 8, ServerConfig::default()));
        s.service(sockets, now)
    });
    let net = cohort_boot::cmdline::NetOptions { bytes: 1 << 20, ..net() };
    let (result, out) = run(App::Iperf3Client, &mut world, net);
    assert_eq!(result, Ok(()), "{}", out.text());
    let results = out.results();
    let tests: Vec<(bool, Option<String>)> = results_of(&results, "iperf3")
        .iter()
        .map(|e| match e {
            figures::Event::Iperf3 { ok, error, .. } => (*ok, error.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    match tests.as_slice() {
        [(false, Some(refused)), (true, None)] => assert!(refused.contains("Connecting"), "{refused}"),
        other => panic!("{other:?}\n{}", out.text()),
    }
}

#[test]
fn app_iperf3_serves_clients_until_asked_to_stop() {
    use cohort_boot::cmdline::App;
    use support::{net, settings, Captured};
    let mut world = World::plain();
    let outcomes: Outcome = Rc::new(RefCell::new(Vec::new()));
    let o = outcomes.clone();
    let mut client: Option<Iperf3Client> = None;
    let mut started = false;
    world.remote_app(move |iface, sockets, now| {
        if !started && now >= 5 * MS {
            started = true;
            let p = Params { reverse: true, bandwidth: 20_000_000, ..Params::tcp(1) };
            client = Some(Iperf3Client::start(iface, sockets, LOCAL, 5201, p, &[3; 36], 45000, now).unwrap());
        }
        let Some(c) = client.as_mut() else {
            return false;
        };
        let moved = c.service(iface, sockets, now);
        if c.done() && c.closed(sockets) {
            o.borrow_mut().push(c.outcome().unwrap().clone());
            client.take().unwrap().release(sockets);
        }
        moved
    });
    let mut out = Captured::default();
    let clock = world.clock.clone();
    let o = outcomes.clone();
    let result = apps::run(App::Iperf3, &mut world, &settings(net()), &clock, &mut out, &mut || !o.borrow().is_empty());
    assert_eq!(result, Ok(()), "{}", out.text());
    let got = outcomes.borrow();
    let r = report(&got[0]);
    assert!(r.bytes_received() > 2_000_000, "{}", r.bytes_received());
    // The server's `iperf3` event counts what it sent: at least what the
    // client received (the rest was in flight at TEST_END).
    let results = out.results();
    match support::results_of(&results, "iperf3").as_slice() {
        [figures::Event::Iperf3 {
            role,
            ok: true,
            protocol,
            reverse: true,
            streams: 1,
            bytes_sent,
            bytes_received: 0,
            error: None,
            ..
        }] => {
            assert_eq!((role.as_str(), protocol.as_deref()), ("server", Some("tcp")));
            assert!(*bytes_sent >= r.bytes_received() && r.bytes_received() > 0, "{bytes_sent}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn app_iperf3_client_runs_what_the_iperf3_keys_ask_for() {
    // `iperf3.` keys as iperf3's -t, -R, -P, -u, -b: each test's event
    // says what ran, with the receiver's byte count, and its BENCH name
    // says which test it was.
    use cohort_boot::cmdline::{App, Iperf3Test, NetOptions};
    use support::{net, results_of, run};
    for (test, name, streams) in [
        (Iperf3Test { time_s: 1, reverse: true, ..Iperf3Test::default() }, "net.iperf3_tcp_reverse", 1),
        (Iperf3Test { time_s: 1, parallel: 4, ..Iperf3Test::default() }, "net.iperf3_tcp_p4", 4),
        (Iperf3Test { time_s: 1, udp: true, bitrate: 4_000_000, ..Iperf3Test::default() }, "net.iperf3_udp", 1),
        (
            Iperf3Test { time_s: 1, udp: true, reverse: true, bitrate: 4_000_000, len: 1000, ..Iperf3Test::default() },
            "net.iperf3_udp_reverse",
            1,
        ),
    ] {
        let mut world = World::plain();
        let mut server: Option<Iperf3Server> = None;
        world.remote_app(move |_, sockets, now| {
            let s = server.get_or_insert_with(|| Iperf3Server::new(sockets, 5201, 16, ServerConfig::default()));
            s.service(sockets, now)
        });
        let (result, out) = run(App::Iperf3Client, &mut world, NetOptions { iperf3: test, ..net() });
        assert_eq!(result, Ok(()), "{test:?}: {}", out.text());
        let figures: Vec<f64> = out.figures().iter().filter(|f| f.name == name).map(|f| f.value).collect();
        assert_eq!(figures.len(), 1, "{name}: {}", out.text());
        let results = out.results();
        match results_of(&results, "iperf3").as_slice() {
            [figures::Event::Iperf3 {
                ok: true,
                protocol,
                streams: s,
                reverse,
                seconds,
                bytes_sent,
                bytes_received,
                mbit_per_s,
                udp_packets,
                udp_lost,
                ..
            }] => {
                let udp = protocol.as_deref() == Some("udp");
                assert_eq!((udp, *s, *reverse), (test.udp, streams, test.reverse), "{name}");
                assert!(*seconds > 0.9 && *seconds < 1.5, "{name}: -t 1 ran {seconds} s");
                assert!(*bytes_received > 0 && *bytes_received <= *bytes_sent, "{name}: {bytes_received} of {bytes_sent}");
                assert!((mbit_per_s - figures[0]).abs() < 0.01, "{name}");
                if udp {
                    // 4 Mbit/s for a second in datagrams of the asked size.
                    let len = if test.len > 0 { test.len } else { 1460 };
                    let expected = 4_000_000 / 8 / u64::from(len);
                    assert!(*udp_packets > expected * 8 / 10 && *udp_packets < expected * 12 / 10, "{name}: {udp_packets}");
                    assert!(*udp_lost <= *udp_packets, "{name}");
                    assert!(*mbit_per_s > 3.0 && *mbit_per_s < 5.0, "{name}: {mbit_per_s}");
                    let loss = *udp_lost as f64 * 100.0 / *udp_packets as f64;
                    assert_eq!(out.figure(&format!("{name}_loss"), "fake"), (loss * 1000.0).round() / 1000.0, "{name}");
                    assert_eq!(out.figures().iter().find(|f| f.name.ends_with("_loss")).map(|f| f.unit.as_str()), Some("%"));
                } else {
                    assert_eq!(*udp_packets, 0, "{name}");
                    assert!(!out.figures().iter().any(|f| f.name.ends_with("_loss")), "{name}");
                }
            }
            other => panic!("{name}: {other:?}\n{}", out.text()),
        }
    }
}

#[test]
fn a_udp_stream_of_net_bytes_ends_with_its_bytes_and_says_its_loss() {
    // As the study runs it: -u -b 2G -n 1 MiB, here over the simulated
    // gigabit wire, which loses nothing (the sender waits for room in its
    // socket's buffer): a loss figure of 0.
    use cohort_boot::cmdline::{App, Iperf3Test, NetOptions};
    use support::{net, results_of, run};
    let mut world = World::plain();
    let mut server: Option<Iperf3Server> = None;
    world.remote_app(move |_, sockets, now| {
        let s = server.get_or_insert_with(|| Iperf3Server::new(sockets, 5201, 16, ServerConfig::default()));
        s.service(sockets, now)
    });
    let test = Iperf3Test { udp: true, bitrate: 2_000_000_000, ..Iperf3Test::default() };
    let (result, out) = run(App::Iperf3Client, &mut world, NetOptions { iperf3: test, bytes: 1 << 20, ..net() });
    assert_eq!(result, Ok(()), "{}", out.text());
    let results = out.results();
    let [figures::Event::Iperf3 { ok: true, bytes_sent, udp_packets, udp_lost, .. }] = results_of(&results, "iperf3").as_slice()
    else {
        panic!("{}", out.text())
    };
    assert!(*bytes_sent >= 1 << 20, "{bytes_sent}");
    assert!(*udp_packets >= (1 << 20) / 1460, "{udp_packets}");
    let loss = out.figure("net.iperf3_udp_loss", "fake");
    assert_eq!((loss, *udp_lost), (0.0, 0));
    assert!(out.figure("net.iperf3_udp", "fake") > 0.0);
}
