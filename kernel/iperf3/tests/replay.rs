//! The server against recordings of a real iperf3 3.12 client: the client's
//! bytes are fed in the chunks and order they were recorded, and what the
//! server answers is compared, item by item, with what the real iperf3 3.12
//! server answered.

mod common;

use common::*;
use iperf3::server::{Accept, Action, Role, Server, ServerConfig};
use iperf3::{Event, Failure};

fn replay(name: &str) -> (Driver, Vec<WireEvent>) {
    let ev = load_wire(name);
    let mut d = Driver::new(Server::new(ServerConfig::default()));
    for e in &ev {
        let now = e.t;
        if e.udp {
            if e.kind == "data" && e.dir == "c2s" {
                d.udp(udp_addr(e.conn), &e.bytes, now);
            }
        } else {
            match (e.kind.as_str(), e.dir.as_str()) {
                ("open", _) => {
                    d.accept(e.conn, now);
                }
                ("data", "c2s") => d.recv(e.conn, &e.bytes, now),
                ("eof", "c2s") => d.closed(e.conn, now),
                _ => {}
            }
        }
        drive_senders(&mut d, now);
    }
    (d, ev)
}

/// What a driver does between events: let sending streams send.
fn drive_senders(d: &mut Driver, now: u64) {
    let mut buf = vec![0u8; 65536];
    for h in 2..16u32 {
        if d.server.stream_role(h) == Some(Role::Send) {
            let n = d.server.send(h, &mut buf, now);
            d.sent.entry(h).or_default().extend_from_slice(&buf[..n]);
        }
    }
    for _ in 0..8 {
        if d.server.udp_send(&mut buf, now).is_none() {
            break;
        }
    }
    d.pump(now);
}

/// Item sequence with JSON reduced to what must match: the key set (minus
/// optional keys) and the stream ids.
fn shape(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .map(|i| match i {
            Item::State(s) => format!("state {s}"),
            Item::Error(a, e) => format!("error {a} {e}"),
            Item::Json(v) => {
                let o = v.as_object().unwrap();
                let mut keys: Vec<&str> = o
                    .keys()
                    .map(|k| k.as_str())
                    .filter(|k| !matches!(*k, "congestion_used" | "server_output_text" | "server_output_json"))
                    .collect();
                keys.sort();
                let ids: Vec<i64> = o["streams"].as_array().unwrap().iter().map(|s| s["id"].as_i64().unwrap()).collect();
                let mut skeys: Vec<String> = o["streams"][0].as_object().unwrap().keys().cloned().collect();
                skeys.sort();
                format!("json {keys:?} ids {ids:?} stream keys {skeys:?}")
            }
        })
        .collect()
}

/// Everything the server was handed is closed or forgotten.
fn assert_clean(d: &Driver, ev: &[WireEvent]) {
    assert!(d.server.is_idle(), "server not idle: {:?}", d.server.phase());
    assert_eq!(d.server.tracked(), 0);
    for (h, a) in &d.accepts {
        if *a == Accept::Deny {
            continue;
        }
        let acted = d.actions.iter().any(|x| matches!(x, Action::Close(y) | Action::Abort(y) | Action::Deny(y) if y == h));
        let closed = ev.iter().any(|e| !e.udp && e.conn == *h && e.kind == "eof" && e.dir == "c2s");
        assert!(acted || closed, "handle {h} left open");
    }
}

fn check_normal(name: &str) -> Driver {
    let (mut d, ev) = replay(name);
    let want = shape(&split_s2c(&control_bytes(&ev, "s2c")));
    let got = shape(&split_s2c(&d.sent_to(1)));
    assert_eq!(got, want, "{name}: control answers differ");
    assert_clean(&d, &ev);
    let events = d.events();
    assert!(events.iter().any(|e| matches!(e, Event::Finished(_))), "{name}: {events:?}");
    d
}

fn server_results(d: &Driver) -> serde_json::Value {
    split_s2c(&d.sent_to(1))
        .into_iter()
        .find_map(|i| match i {
            Item::Json(v) => Some(v),
            _ => None,
        })
        .unwrap()
}

#[test]
fn tcp_t1() {
    let d = check_normal("tcp_t1.json");
    let r = server_results(&d);
    // The server only received: no retransmit counter, -1 as 3.12 reads it.
    assert_eq!(r["sender_has_retransmits"], -1);
    assert!(r["streams"][0]["bytes"].as_u64().unwrap() > 0);
    check_normal("tcp_t1.txt");
}

#[test]
fn tcp_reverse() {
    let d = check_normal("tcp_reverse.json");
    let r = server_results(&d);
    assert_eq!(r["sender_has_retransmits"], 0);
    let sent = d.sent_to(2).len() as u64;
    assert!(sent > 0);
    assert_eq!(r["streams"][0]["bytes"].as_u64().unwrap(), sent);
}

#[test]
fn tcp_parallel_2() {
    check_normal("tcp_P2.json");
}

#[test]
fn tcp_bidir() {
    let d = check_normal("tcp_bidir.json");
    // First stream: the client sends (we receive); second: we send.
    let r = server_results(&d);
    assert_eq!(r["sender_has_retransmits"], 0);
    assert!(r["streams"][0]["bytes"].as_u64().unwrap() > 0);
    assert_eq!(r["streams"][1]["bytes"].as_u64().unwrap(), d.sent_to(3).len() as u64);
}

#[test]
fn tcp_end_conditions_and_sizes() {
    for n in ["tcp_n1M.json", "tcp_k100.json", "tcp_l1000.json", "tcp_gso_srvtxt.json", "tcp_gso_srvjson.json"] {
        check_normal(n);
    }
}

#[test]
fn tcp_omit() {
    let d = check_normal("tcp_O1_t1.json");
    let r = server_results(&d);
    // Measurement starts after the 1 s omit. In this recording TEST_END came
    // 2.6 s after TEST_RUNNING, and the real server said 1.6 s as well.
    let ev = load_wire("tcp_O1_t1.json");
    let real = split_s2c(&control_bytes(&ev, "s2c"))
        .into_iter()
        .find_map(|i| match i {
            Item::Json(v) => Some(v),
            _ => None,
        })
        .unwrap();
    let end = r["streams"][0]["end_time"].as_f64().unwrap();
    let real_end = real["streams"][0]["end_time"].as_f64().unwrap();
    assert!((end - real_end).abs() < 0.05, "{end} vs {real_end}");
}

#[test]
fn udp_b10m() {
    let (d, ev) = replay("udp_b10M.json");
    let want = shape(&split_s2c(&control_bytes(&ev, "s2c")));
    assert_eq!(shape(&split_s2c(&d.sent_to(1))), want);
    assert_eq!(d.udp_replies.len(), 1);
    assert_eq!(&d.udp_replies[0].1, b"6789");
    // Every datagram is in the recording, so our count matches the real
    // server's exactly.
    let real = split_s2c(&control_bytes(&ev, "s2c"))
        .into_iter()
        .find_map(|i| match i {
            Item::Json(v) => Some(v),
            _ => None,
        })
        .unwrap();
    let ours = server_results(&d);
    assert_eq!(ours["streams"][0]["bytes"], real["streams"][0]["bytes"]);
    assert_eq!(ours["streams"][0]["packets"], real["streams"][0]["packets"]);
    assert_eq!(ours["streams"][0]["errors"], real["streams"][0]["errors"]);
    assert_clean(&d, &ev);
}

#[test]
fn udp_reverse() {
    let d = check_normal("udp_reverse.json");
    let r = server_results(&d);
    assert!(r["streams"][0]["packets"].as_u64().unwrap() > 0);
}

#[test]
fn udp_parallel_64bit_counters() {
    let (d, ev) = replay("udp_P2_64bit.json");
    assert_eq!(d.udp_replies.len(), 2);
    let real = split_s2c(&control_bytes(&ev, "s2c"));
    assert_eq!(shape(&split_s2c(&d.sent_to(1))), shape(&real));
    let ours = server_results(&d);
    let real = real
        .into_iter()
        .find_map(|i| match i {
            Item::Json(v) => Some(v),
            _ => None,
        })
        .unwrap();
    for k in 0..2 {
        assert_eq!(ours["streams"][k]["packets"], real["streams"][k]["packets"]);
        assert_eq!(ours["streams"][k]["bytes"], real["streams"][k]["bytes"]);
    }
    assert_clean(&d, &ev);
}

#[test]
fn sctp_refused_like_iperf3() {
    for n in ["sctp.json", "sctp.txt"] {
        let (mut d, ev) = replay(n);
        // Byte for byte what the real server sent: 09, fe, 202, 93.
        assert_eq!(d.sent_to(1), control_bytes(&ev, "s2c"));
        assert_clean(&d, &ev);
        let events = d.events();
        assert!(events.contains(&Event::Failed(Failure::Refused(iperf3::json::Refusal { i_errno: 202, errno: 93 }))));
    }
}

#[test]
fn client_terminate() {
    let (mut d, ev) = replay("client_sigint.txt");
    assert_eq!(d.sent_to(1), control_bytes(&ev, "s2c"));
    assert_clean(&d, &ev);
    assert!(d.events().contains(&Event::Failed(Failure::ClientTerminated)));
}

#[test]
fn busy_server_denies_second_client() {
    let first = load_wire("busy.json.first");
    let second = load_wire("busy.json");
    let mut d = Driver::new(Server::new(ServerConfig::default()));
    // Run the first client's test until TEST_RUNNING, then the second client
    // connects (its handle 101) and must get exactly what iperf3 sent it.
    let mut ran = false;
    for e in &first {
        if !e.udp && e.kind == "data" && e.dir == "c2s" {
            if e.conn == 1 {
                d.recv(1, &e.bytes, e.t);
            } else {
                d.recv(e.conn, &e.bytes, e.t);
            }
        } else if !e.udp && e.kind == "open" {
            d.accept(e.conn, e.t);
        }
        if !ran && d.server.phase() == Some(iperf3::Phase::Running) {
            ran = true;
            let now = e.t;
            for s in &second {
                if s.kind == "open" {
                    assert_eq!(d.accept(101, now), Accept::Deny);
                }
            }
            // The driver writes the one byte and closes; nothing is kept.
            assert_eq!(control_bytes(&second, "s2c"), vec![iperf3::server::ACCESS_DENIED]);
            assert_eq!(d.server.tracked(), 2);
            // The second client's cookie arrives anyway: discarded.
            assert_eq!(d.server.recv(101, &control_bytes(&second, "c2s"), now), 37);
        }
        if !e.udp && e.kind == "eof" && e.dir == "c2s" {
            d.closed(e.conn, e.t);
        }
    }
    assert!(ran);
    assert_clean(&d, &first);
    let ev = d.events();
    assert!(ev.contains(&Event::Denied));
    assert!(ev.iter().any(|e| matches!(e, Event::Finished(_))));
}

#[test]
fn recorded_documents_parse() {
    // Both sides' results of every recording parse, including 3.12's
    // 18446744073709551615 for -1, and server_output_{text,json}.
    for n in [
        "tcp_t1.json",
        "tcp_reverse.json",
        "tcp_P2.json",
        "tcp_bidir.json",
        "udp_b10M.json",
        "udp_reverse.json",
        "udp_P2_64bit.json",
        "tcp_gso_srvtxt.json",
        "tcp_gso_srvjson.json",
    ] {
        let ev = load_wire(n);
        for dir in ["c2s", "s2c"] {
            let b = control_bytes(&ev, dir);
            // Find every length-prefixed '{' document.
            let mut found = 0;
            let mut i = 0;
            while i + 5 <= b.len() {
                let len = u32::from_be_bytes(b[i..i + 4].try_into().unwrap()) as usize;
                if b[i + 4] == b'{' && i + 4 + len <= b.len() && len > 2 {
                    let doc = &b[i + 4..i + 4 + len];
                    if doc.windows(9).any(|w| w == b"\"streams\"") {
                        let r = iperf3::json::parse_results(doc, 128)
                            .unwrap_or_else(|e| panic!("{n} {dir}: {e:?} {}", String::from_utf8_lossy(doc)));
                        assert!(!r.streams.is_empty());
                        if dir == "s2c" && !n.contains("reverse") && !n.contains("bidir") {
                            assert_eq!(r.sender_has_retransmits.0, -1);
                        }
                    } else {
                        iperf3::json::parse_params(doc, &Default::default()).unwrap();
                    }
                    found += 1;
                    i += 4 + len;
                } else {
                    i += 1;
                }
            }
            assert!(found >= 1, "{n} {dir}");
        }
    }
}
