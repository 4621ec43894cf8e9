//! The client against recordings of a real iperf3 3.12 server (its answers
//! replayed at the recorded times), and against our own server in memory.

mod common;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use common::*;
use iperf3::client::{Client, ClientAction, ClientConfig, ClientFailure, ClientPhase};
use iperf3::proto::Cookie;
use iperf3::server::{Accept, Action, Server, ServerConfig};
use iperf3::{Params, Protocol};

fn cookie() -> Cookie {
    Cookie::parse(COOKIE).unwrap()
}

/// A client-to-server control item.
#[derive(Debug, PartialEq)]
enum Up {
    Cookie,
    State(u8),
    Json(serde_json::Value),
}

fn split_c2s(b: &[u8]) -> Vec<Up> {
    let mut v = Vec::new();
    if b.len() < 37 {
        return v;
    }
    v.push(Up::Cookie);
    let mut i = 37;
    while i < b.len() {
        if b[i] == 0 {
            let n = u32::from_be_bytes(b[i..i + 4].try_into().unwrap()) as usize;
            v.push(Up::Json(serde_json::from_slice(&b[i + 4..i + 4 + n]).unwrap()));
            i += 4 + n;
        } else {
            v.push(Up::State(b[i]));
            i += 1;
        }
    }
    v
}

fn shape(items: &[Up]) -> Vec<String> {
    items
        .iter()
        .map(|u| match u {
            Up::Cookie => "cookie".into(),
            Up::State(s) => format!("state {s}"),
            Up::Json(v) if v.get("streams").is_some() => {
                let mut keys: Vec<&String> = v.as_object().unwrap().keys().filter(|k| *k != "congestion_used").collect();
                keys.sort();
                let ids: Vec<i64> = v["streams"].as_array().unwrap().iter().map(|s| s["id"].as_i64().unwrap()).collect();
                format!("results {keys:?} {ids:?}")
            }
            // Parameters must match exactly, key order included.
            Up::Json(v) => format!("params {v}"),
        })
        .collect()
}

/// The client's replay driver: recorded server answers in, our bytes out.
struct Replay {
    c: Client<u32>,
    up: Vec<u8>,
    /// UDP flow number of each client UDP socket, in creation order.
    udp: Vec<u32>,
    next: u32,
    closed: Vec<u32>,
}

impl Replay {
    fn pump(&mut self, now: u64) {
        let mut buf = vec![0u8; 65536];
        for _ in 0..100 {
            let mut progress = false;
            let n = self.c.send(1, &mut buf, now);
            self.up.extend_from_slice(&buf[..n]);
            progress |= n > 0;
            for h in 2..self.next {
                let n = self.c.send(h, &mut buf, now);
                progress |= n > 0;
                if let Some(_n) = self.c.udp_send(h, &mut buf, now) {
                    progress = true;
                }
            }
            while let Some(a) = self.c.poll(now) {
                progress = true;
                match a {
                    ClientAction::ConnectTcp => {
                        let h = self.next;
                        self.next += 1;
                        self.c.stream_connected(h, now);
                    }
                    ClientAction::OpenUdp => {
                        let h = self.next;
                        self.next += 1;
                        self.udp.push(h);
                        self.c.udp_opened(h, now);
                    }
                    ClientAction::Close(h) | ClientAction::Abort(h) => self.closed.push(h),
                }
            }
            if !progress {
                break;
            }
        }
    }
}

fn replay(name: &str, params: Params) -> (Replay, Vec<WireEvent>) {
    let ev = load_wire(name);
    let mut r = Replay {
        c: Client::new(ClientConfig::new(params, cookie()), 0),
        up: Vec::new(),
        udp: Vec::new(),
        next: 2,
        closed: Vec::new(),
    };
    let start = ev.iter().find(|e| !e.udp && e.conn == 1).unwrap().t;
    r.c.control_connected(1, start);
    r.pump(start);
    for e in &ev {
        let now = e.t;
        if e.kind != "data" || e.dir != "s2c" {
            // Our client acts on its own clock: let it act at the recorded
            // moments the real client did.
            r.pump(now);
            continue;
        }
        if e.udp {
            // The server's datagrams to flow n: our n-th UDP socket.
            if let Some(&h) = r.udp.get(e.conn as usize - 1) {
                r.c.udp_recv(h, &e.bytes, now);
            }
        } else if e.conn == 1 {
            let mut off = 0;
            while off < e.bytes.len() {
                let n = r.c.recv(1, &e.bytes[off..], now);
                assert!(n > 0);
                off += n;
            }
        } else {
            // Reverse data on stream conn n.
            r.c.recv(e.conn, &e.bytes, now);
        }
        r.pump(now);
    }
    (r, ev)
}

fn check(name: &str, params: Params) -> iperf3::Report {
    let (r, ev) = replay(name, params);
    let want = shape(&split_c2s(&control_bytes(&ev, "c2s")));
    let got = shape(&split_c2s(&r.up));
    assert_eq!(got, want, "{name}");
    assert_eq!(r.c.phase(), ClientPhase::Finished, "{name}");
    assert_eq!(r.c.tracked(), 0);
    assert!(r.closed.contains(&1));
    match r.c.outcome() {
        Some(Ok(rep)) => rep.clone(),
        o => panic!("{name}: {o:?}"),
    }
}

#[test]
fn tcp_against_recorded_server() {
    let rep = check("tcp_t1.json", Params::tcp(1));
    // The server's numbers are the recorded ones: 1145503055 bytes in 1.00056 s.
    assert_eq!(rep.server_received(), 1145503055);
    assert!((rep.upload_bps() - 1145503055.0 * 8.0 / 1.00056).abs() < 1.0);
    check("tcp_t1.txt", Params::tcp(1));
    check("tcp_P2.json", Params { parallel: 2, ..Params::tcp(1) });
    check("tcp_l1000.json", Params { len: 1000, ..Params::tcp(1) });
    check("tcp_O1_t1.json", Params { omit_s: 1, ..Params::tcp(1) });
}

#[test]
fn reverse_and_bidir_against_recorded_server() {
    let rep = check("tcp_reverse.json", Params { reverse: true, ..Params::tcp(1) });
    assert!(rep.bytes_received() > 0);
    check("tcp_bidir.json", Params { bidirectional: true, ..Params::tcp(1) });
}

#[test]
fn bytes_and_blocks_end_conditions() {
    // -n 1M: TEST_END once 1 MiB is written; -k 100 -l 1000: after 100 writes.
    check("tcp_n1M.json", Params { time_s: 0, bytes: 1 << 20, ..Params::tcp(0) });
    check("tcp_k100.json", Params { time_s: 0, blocks: 100, len: 1000, ..Params::tcp(0) });
}

#[test]
fn udp_against_recorded_server() {
    let rep = check("udp_b10M.json", Params::udp(1, 10_000_000, 32768));
    assert!(rep.server_received() > 0);
    check("udp_P2_64bit.json", Params { parallel: 2, udp_counters_64bit: true, ..Params::udp(1, 5_000_000, 32768) });
    let rep = check("udp_reverse.json", Params { reverse: true, ..Params::udp(1, 10_000_000, 32768) });
    assert!(rep.bytes_received() > 0);
}

#[test]
fn refusals_from_recorded_server() {
    let (r, _) = replay("busy.json", Params::tcp(1));
    assert_eq!(r.c.outcome(), Some(&Err(ClientFailure::AccessDenied)));
    assert_eq!(r.up.len(), 37);
    assert_eq!(r.c.phase(), ClientPhase::Finished);
    let (r, _) = replay("sctp.json", Params::tcp(1));
    assert_eq!(r.c.outcome(), Some(&Err(ClientFailure::ServerError { i_errno: 202, errno: 93 })));
    let (r, ev) = replay("server_sigint.txt", Params::tcp(5));
    assert_eq!(r.c.outcome(), Some(&Err(ClientFailure::ServerTerminated)));
    // Like iperf3, it still answers IPERF_DONE.
    assert_eq!(shape(&split_c2s(&r.up)), shape(&split_c2s(&control_bytes(&ev, "c2s"))));
    assert_eq!(r.c.tracked(), 0);
}

#[test]
fn params_are_byte_identical_to_iperf3() {
    let p = iperf3::json::write_params(&Params { reverse: true, ..Params::tcp(1) });
    assert_eq!(
        std::str::from_utf8(&p).unwrap(),
        "{\"tcp\":true,\"omit\":0,\"time\":1,\"num\":0,\"blockcount\":0,\"parallel\":1,\"reverse\":true,\"len\":131072,\"pacing_timer\":1000,\"client_version\":\"3.12\"}"
    );
}

// ---------------------------------------------------------------------------
// Our client against our server, over an in-memory network.

#[derive(Default)]
struct Conn {
    c2s: VecDeque<u8>,
    s2c: VecDeque<u8>,
    client_open: bool,
    server_open: bool,
}

struct Net {
    s: Server<u32>,
    c: Client<u32>,
    conns: HashMap<u32, Conn>,
    udp: Vec<u32>,
    next: u32,
    now: u64,
}

fn addr(h: u32) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 2], 20000 + h as u16))
}

impl Net {
    fn new(params: Params) -> Self {
        let mut n = Net {
            s: Server::new(ServerConfig::default()),
            c: Client::new(ClientConfig::new(params, cookie()), 0),
            conns: HashMap::new(),
            udp: Vec::new(),
            next: 1,
            now: 0,
        };
        n.connect();
        n.c.control_connected(1, 0);
        n
    }

    fn connect(&mut self) -> u32 {
        let h = self.next;
        self.next += 1;
        let mut c = Conn { client_open: true, server_open: true, ..Default::default() };
        if self.s.accept(h, self.now) == Accept::Deny {
            c.s2c.push_back(0xff);
            c.server_open = false;
        }
        self.conns.insert(h, c);
        h
    }

    /// One millisecond of network.
    fn step(&mut self) {
        let now = self.now;
        let mut buf = vec![0u8; 65536];
        while let Some(a) = self.c.poll(now) {
            match a {
                ClientAction::ConnectTcp => {
                    let h = self.connect();
                    self.c.stream_connected(h, now);
                }
                ClientAction::OpenUdp => {
                    let h = self.next;
                    self.next += 1;
                    self.udp.push(h);
                    self.c.udp_opened(h, now);
                }
                ClientAction::Close(h) | ClientAction::Abort(h) => {
                    if let Some(c) = self.conns.get_mut(&h) {
                        c.client_open = false;
                    }
                }
            }
        }
        let hs: Vec<u32> = self.conns.keys().copied().collect();
        for h in hs {
            let c = self.conns.get_mut(&h).unwrap();
            if c.client_open {
                let n = self.c.send(h, &mut buf[..16384], now);
                c.c2s.extend(&buf[..n]);
            }
            if c.server_open {
                let data: Vec<u8> = c.c2s.drain(..).collect();
                let mut off = 0;
                while off < data.len() {
                    let n = self.s.recv(h, &data[off..], now);
                    if n == 0 {
                        break;
                    }
                    off += n;
                }
                let n = self.s.send(h, &mut buf[..16384], now);
                c.s2c.extend(&buf[..n]);
            } else if !c.client_open || c.c2s.is_empty() {
                c.c2s.clear();
            }
            let c = self.conns.get_mut(&h).unwrap();
            if c.client_open {
                let data: Vec<u8> = c.s2c.drain(..).collect();
                let mut off = 0;
                while off < data.len() {
                    let n = self.c.recv(h, &data[off..], now);
                    if n == 0 {
                        break;
                    }
                    off += n;
                }
            }
            // Half-closes become full closes once the other side notices.
            let c = self.conns.get_mut(&h).unwrap();
            if !c.client_open && c.server_open && c.c2s.is_empty() {
                c.server_open = false;
                self.s.closed(h, now);
            }
            let c = self.conns.get_mut(&h).unwrap();
            if !c.server_open && c.client_open && c.s2c.is_empty() {
                c.client_open = false;
                self.c.closed(h, now);
            }
        }
        for &h in &self.udp.clone() {
            for _ in 0..64 {
                let Some(n) = self.c.udp_send(h, &mut buf, now) else {
                    break;
                };
                if let Some(r) = self.s.udp_recv(addr(h), &buf[..n], now) {
                    self.c.udp_recv(h, &r, now);
                }
            }
        }
        for _ in 0..256 {
            let Some((to, n)) = self.s.udp_send(&mut buf, now) else {
                break;
            };
            let h = self.udp.iter().copied().find(|h| addr(*h) == to).unwrap();
            self.c.udp_recv(h, &buf[..n], now);
        }
        while let Some(a) = self.s.poll(now) {
            let h = a.handle();
            let c = self.conns.get_mut(&h).unwrap();
            if let Action::Deny(_) = a {
                c.s2c.push_back(0xff);
            }
            c.server_open = false;
        }
        self.now += 1000;
    }

    fn run(&mut self) -> iperf3::Report {
        for _ in 0..10_000 {
            self.step();
            if self.c.phase() == ClientPhase::Finished && self.s.is_idle() {
                break;
            }
        }
        assert_eq!(self.c.phase(), ClientPhase::Finished);
        assert!(self.s.is_idle(), "{:?}", self.s.phase());
        let ev: Vec<_> = std::iter::from_fn(|| self.s.take_event()).collect();
        assert!(ev.iter().any(|e| matches!(e, iperf3::Event::Finished(_))), "{ev:?}");
        match self.c.outcome() {
            Some(Ok(r)) => r.clone(),
            o => panic!("{o:?}"),
        }
    }
}

#[test]
fn loopback_tcp_variants() {
    for p in [
        Params::tcp(1),
        Params { parallel: 4, ..Params::tcp(1) },
        Params { reverse: true, ..Params::tcp(1) },
        Params { bidirectional: true, parallel: 2, ..Params::tcp(1) },
        Params { time_s: 0, bytes: 3_000_000, ..Params::tcp(0) },
        Params { time_s: 0, blocks: 50, len: 1000, ..Params::tcp(0) },
        Params { omit_s: 1, bandwidth: 8_000_000, ..Params::tcp(1) },
    ] {
        let rep = Net::new(p.clone()).run();
        assert_eq!(rep.streams.len() as u32, p.stream_count(), "{p:?}");
        let ids: Vec<u32> = rep.streams.iter().map(|s| s.id).collect();
        assert_eq!(ids[0], 1);
        for s in &rep.streams {
            let server = s.server.as_ref().unwrap();
            // Lossless memory network: the receiver counted what was sent,
            // except bytes still in flight at TEST_END.
            assert!(s.bytes > 0, "{p:?}");
            let diff = (s.bytes as i64 - server.bytes.0).abs();
            assert!(diff <= 2 * 65536, "{p:?}: {} vs {}", s.bytes, server.bytes.0);
        }
        if p.bandwidth > 0 {
            // 8 Mbit/s for 1 s.
            let b = rep.bytes_sent();
            assert!((950_000..1_050_000).contains(&b), "{b}");
        }
        if p.blocks > 0 {
            assert_eq!(rep.bytes_sent(), 50_000);
        }
        if p.bytes > 0 {
            assert!(rep.bytes_sent() >= 3_000_000 && rep.bytes_sent() < 3_000_000 + 131072);
        }
    }
}

#[test]
fn loopback_udp_variants() {
    for p in [
        Params::udp(1, 1_000_000, 1250),
        Params { parallel: 2, udp_counters_64bit: true, ..Params::udp(1, 2_000_000, 1000) },
        Params { reverse: true, ..Params::udp(1, 1_000_000, 1250) },
    ] {
        assert_eq!(p.protocol, Protocol::Udp);
        let rep = Net::new(p.clone()).run();
        for s in &rep.streams {
            let server = s.server.as_ref().unwrap();
            let per_stream = p.bandwidth / 8;
            assert!(s.bytes > per_stream * 9 / 10, "{p:?} {s:?}");
            assert!((s.bytes as i64 - server.bytes.0).abs() <= i64::from(p.len) * 2, "{s:?}");
            assert_eq!(server.errors.0, 0);
        }
    }
}

#[test]
fn loopback_refusals_and_busy() {
    // A test the server refuses: the client gets iperf3's codes.
    let mut n = Net::new(Params { parallel: 100, ..Params::tcp(1) });
    for _ in 0..100 {
        n.step();
    }
    assert_eq!(n.c.outcome(), Some(&Err(ClientFailure::ServerError { i_errno: 6, errno: 0 })));
    assert!(n.s.is_idle());
    // A second client while one runs: ACCESS_DENIED, the first finishes.
    let mut n = Net::new(Params::tcp(1));
    for _ in 0..20 {
        n.step();
    }
    let mut second: Client<u32> = Client::new(ClientConfig::new(Params::tcp(1), cookie()), n.now);
    let h = n.connect();
    second.control_connected(h, n.now);
    let mut buf = [0u8; 64];
    let k = second.send(h, &mut buf, n.now);
    n.conns.get_mut(&h).unwrap().client_open = false; // not driven by Net
    assert_eq!(k, 37);
    let deny: Vec<u8> = n.conns[&h].s2c.iter().copied().collect();
    assert_eq!(second.recv(h, &deny, n.now), 1);
    assert_eq!(second.outcome(), Some(&Err(ClientFailure::AccessDenied)));
    n.run();
}

#[test]
fn client_timeouts_and_closes() {
    // A server that never answers.
    let mut c: Client<u32> = Client::new(ClientConfig::new(Params::tcp(1), cookie()), 0);
    c.control_connected(1, 0);
    let mut buf = [0u8; 64];
    assert_eq!(c.send(1, &mut buf, 0), 37);
    assert_eq!(c.poll(29_000_000), None);
    assert_eq!(c.poll(30_000_000), Some(ClientAction::Close(1)));
    assert_eq!(c.outcome(), Some(&Err(ClientFailure::Timeout(ClientPhase::Cookie))));
    // The control connection drops mid-test.
    let mut c: Client<u32> = Client::new(ClientConfig::new(Params::tcp(1), cookie()), 0);
    c.control_connected(1, 0);
    c.recv(1, &[9, 10], 0);
    while c.send(1, &mut buf, 0) > 0 {}
    assert_eq!(c.poll(0), Some(ClientAction::ConnectTcp));
    c.stream_connected(2, 0);
    c.closed(1, 1);
    assert_eq!(c.poll(1), Some(ClientAction::Close(2)));
    assert_eq!(c.tracked(), 0);
    assert_eq!(c.outcome(), Some(&Err(ClientFailure::ControlClosed(ClientPhase::CreateStreams))));
    // Oversized or broken server results.
    for bad in [vec![0xff, 0xff, 0xff, 0xff], framed("{\"cpu_util_total\":1}")] {
        let mut n = Net::new(Params::tcp(1));
        for _ in 0..1100 {
            n.step();
            if n.c.phase() == ClientPhase::Results {
                break;
            }
        }
        assert_eq!(n.c.phase(), ClientPhase::Results);
        n.c.recv(1, &bad, n.now);
        assert!(matches!(n.c.outcome(), Some(Err(ClientFailure::JsonTooLong(_) | ClientFailure::ResultsMalformed))));
    }
}
