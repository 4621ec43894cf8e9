//! The server against hand-made clients: refusals, every disconnect, busy,
//! -R, -P 4, -u, timers.

mod common;

use common::*;
use iperf3::json::{Limits, Refusal};
use iperf3::server::{Accept, Action, Role, Server, ServerConfig, ACCESS_DENIED};
use iperf3::{Event, Failure, Phase};

fn server() -> Driver {
    Driver::new(Server::new(ServerConfig::default()))
}

fn failed(d: &mut Driver) -> Vec<Failure> {
    d.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Failed(f) => Some(f),
            _ => None,
        })
        .collect()
}

/// A full TCP test; returns the driver after IPERF_DONE.
fn full_tcp(d: &mut Driver, params: &str, streams: u32, t0: u64) {
    let before = d.sent_to(1).len();
    handshake(d, params, t0);
    connect_tcp(d, 2, streams, t0 + 10);
    let mut buf = vec![0u8; 1000];
    for h in 2..2 + streams {
        match d.server.stream_role(h).unwrap() {
            Role::Receive => d.recv(h, &[7u8; 5000], t0 + 500_000),
            Role::Send => {
                assert_eq!(d.server.send(h, &mut buf, t0 + 500_000), 1000);
            }
        }
    }
    d.recv(1, &[4], t0 + 1_000_010);
    let ids: Vec<u32> = (0..streams as usize).map(iperf3::server::stream_id).collect();
    d.recv(1, &framed(&client_results(&ids, 5000)), t0 + 1_000_020);
    d.recv(1, &[16], t0 + 1_000_030);
    let out = d.sent_to(1)[before..].to_vec();
    assert_eq!(&out[..4], &[9, 10, 1, 2]);
    assert_eq!(out[4], 13);
    assert_eq!(*out.last().unwrap(), 14);
}

#[test]
fn normal_test_and_ready_for_the_next() {
    let mut d = server();
    full_tcp(&mut d, &tcp_params(""), 1, 0);
    assert_all_closed(&d, &[1, 2]);
    let ev = d.events();
    let Some(Event::Finished(s)) = ev.iter().find(|e| matches!(e, Event::Finished(_))) else { panic!("{ev:?}") };
    assert_eq!(s.bytes_received, 5000);
    assert_eq!(s.duration_us, 1_000_000);
    assert_eq!(s.client.streams[0].bytes.0, 5000);
    // Same handles again: a new test.
    d.actions.clear();
    d.sent.clear();
    full_tcp(&mut d, &tcp_params(""), 1, 5_000_000);
    assert_all_closed(&d, &[1, 2]);
}

#[test]
fn results_json_has_every_key_iperf3_needs() {
    let mut d = server();
    d.server.set_cpu_util(12.5, 2.5, 10.0);
    full_tcp(&mut d, &tcp_params(",\"parallel\":4"), 4, 0);
    let out = d.sent_to(1);
    let items = split_s2c(&out);
    let Item::Json(v) = &items[5] else { panic!("{items:?}") };
    for k in ["cpu_util_total", "cpu_util_user", "cpu_util_system", "sender_has_retransmits", "streams"] {
        assert!(v.get(k).is_some(), "{k}");
    }
    assert_eq!(v["cpu_util_total"], 12.5);
    let ids: Vec<i64> = v["streams"].as_array().unwrap().iter().map(|s| s["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [1, 3, 4, 5]);
    for s in v["streams"].as_array().unwrap() {
        for k in ["id", "bytes", "retransmits", "jitter", "errors", "packets", "start_time", "end_time"] {
            assert!(s.get(k).is_some(), "{k}");
        }
        assert_eq!(s["bytes"], 5000);
        assert_eq!(s["retransmits"], -1);
        assert_eq!(s["end_time"], 1);
    }
}

#[test]
fn parallel_4_starts_only_when_all_connected() {
    let mut d = server();
    handshake(&mut d, &tcp_params(",\"parallel\":4"), 0);
    connect_tcp(&mut d, 2, 3, 10);
    assert_eq!(d.sent_to(1), [9, 10]);
    assert_eq!(d.server.phase(), Some(Phase::CreateStreams));
    // A stream's cookie split over three reads.
    assert_eq!(d.accept(5, 20), Accept::Stream);
    d.recv(5, &COOKIE[..1], 20);
    d.recv(5, &COOKIE[1..30], 20);
    assert_eq!(d.sent_to(1), [9, 10]);
    d.recv(5, &COOKIE[30..], 20);
    assert_eq!(d.sent_to(1), [9, 10, 1, 2]);
    // A fifth connection is not a stream any more.
    assert_eq!(d.accept(6, 30), Accept::Deny);
}

#[test]
fn reverse_server_sends_and_paces() {
    let mut d = server();
    handshake(&mut d, &tcp_params(",\"reverse\":true,\"bandwidth\":8000000"), 0);
    connect_tcp(&mut d, 2, 1, 0);
    assert_eq!(d.server.stream_role(2), Some(Role::Send));
    let mut buf = vec![0u8; 200_000];
    // 8 Mbit/s = 1 MB/s: in 1 s about 1 MB, in 1 KB steps of time.
    let mut total = 0;
    for ms in 0..1000u64 {
        total += d.server.send(2, &mut buf[..10_000], ms * 1000);
    }
    assert!((990_000..=1_010_000).contains(&total), "{total}");
    assert_eq!(&buf[..10], b"0123456789");
    // Received bytes on a sending stream are not counted.
    d.recv(2, &[1; 100], 1_000_000);
    d.recv(1, &[4], 1_000_000);
    d.recv(1, &framed(&client_results(&[1], 5000)), 1_000_010);
    let items = split_s2c(&d.sent_to(1));
    let Item::Json(v) = &items[5] else { panic!() };
    assert_eq!(v["sender_has_retransmits"], 0);
    assert_eq!(v["streams"][0]["bytes"], total as u64);
    d.closed(1, 1_000_020);
    assert_all_closed(&d, &[1, 2]);
    assert!(d.events().iter().any(|e| matches!(e, Event::Finished(_))));
}

#[test]
fn udp_test_with_loss_and_reverse_pacing() {
    use std::net::SocketAddr;
    let mut d = server();
    let p = "{\"udp\":true,\"omit\":0,\"time\":1,\"num\":0,\"blockcount\":0,\"parallel\":2,\"len\":1250,\"bandwidth\":1000000,\"pacing_timer\":1000,\"client_version\":\"3.12\"}";
    handshake(&mut d, p, 0);
    let a: SocketAddr = "10.0.0.2:40001".parse().unwrap();
    let b: SocketAddr = "10.0.0.2:40002".parse().unwrap();
    // TCP connections are not streams in a UDP test.
    assert_eq!(d.accept(9, 0), Accept::Deny);
    d.udp(a, b"9876", 0);
    d.udp(a, b"9876", 0); // a repeat is not a second stream
    assert_eq!(d.sent_to(1), [9, 10]);
    d.udp(b, b"9876", 0);
    assert_eq!(d.udp_replies, [(a, *b"6789"), (b, *b"6789")]);
    assert_eq!(d.sent_to(1), [9, 10, 1, 2]);
    // Stream a: seq 1, 2, 5, 4 (3 lost, 4 late): errors end at 1.
    for (i, seq) in [1u32, 2, 5, 4].iter().enumerate() {
        let mut dg = vec![0u8; 1250];
        let t = 1000 * (i as u64 + 1);
        dg[0..4].copy_from_slice(&0u32.to_be_bytes());
        dg[4..8].copy_from_slice(&(t as u32).to_be_bytes());
        dg[8..12].copy_from_slice(&seq.to_be_bytes());
        d.udp(a, &dg, t + 500);
    }
    // Unknown peers and truncated datagrams are not counted.
    d.udp("10.0.0.3:1".parse().unwrap(), &[0; 1250], 6000);
    d.udp(b, &[0; 5], 6000);
    d.recv(1, &[4], 1_000_000);
    d.recv(1, &framed(&client_results(&[1, 3], 5000)), 1_000_010);
    let items = split_s2c(&d.sent_to(1));
    let Item::Json(v) = &items[5] else { panic!() };
    assert_eq!(v["streams"][0]["bytes"], 5000);
    assert_eq!(v["streams"][0]["packets"], 5);
    assert_eq!(v["streams"][0]["errors"], 1);
    assert_eq!(v["streams"][0]["jitter"], 0);
    assert_eq!(v["streams"][1]["bytes"], 0);
    d.recv(1, &[16], 1_000_020);
    assert_all_closed(&d, &[1]);

    // Reverse: 1 Mbit/s of 1250-byte datagrams = 100 per second per stream.
    let mut d = server();
    let p = p.replace("\"parallel\":2", "\"parallel\":1,\"reverse\":true,\"udp_counters_64bit\":1");
    handshake(&mut d, &p, 0);
    d.udp(a, b"9876", 0);
    let mut buf = [0u8; 2000];
    let mut n = 0;
    let mut last = 0;
    for ms in 0..1000u64 {
        while let Some((to, len)) = d.server.udp_send(&mut buf, ms * 1000) {
            assert_eq!((to, len), (a, 1250));
            last = u64::from_be_bytes(buf[8..16].try_into().unwrap());
            n += 1;
            assert!(n < 1000);
        }
    }
    assert!((99..=101).contains(&n), "{n}");
    assert_eq!(last, n);
    // A buffer shorter than the datagram gets nothing.
    assert_eq!(d.server.udp_send(&mut buf[..100], 5_000_000), None);
}

#[test]
fn cookie_of_the_wrong_length() {
    // Short cookie, then the client goes away.
    let mut d = server();
    d.accept(1, 0);
    d.recv(1, &COOKIE[..20], 0);
    d.closed(1, 1);
    assert!(d.sent_to(1).is_empty());
    assert_all_closed(&d, &[1]);
    assert_eq!(failed(&mut d), [Failure::ControlClosed(Phase::Cookie)]);

    // NUL too early (a 10-character cookie), or none at byte 37.
    let mut early = *COOKIE;
    early[10] = 0;
    let mut late = *COOKIE;
    late[36] = b'x';
    for bad in [early, late] {
        let mut d = server();
        d.accept(1, 0);
        d.recv(1, &bad, 0);
        d.recv(1, b"more bytes are discarded", 0);
        assert_eq!(d.sent_to(1), server_error(106, 22));
        assert_all_closed(&d, &[1]);
        assert_eq!(failed(&mut d), [Failure::BadCookie]);
    }

    // A data stream with a foreign or short cookie is denied; the test goes on.
    let mut d = server();
    handshake(&mut d, &tcp_params(""), 0);
    assert_eq!(d.accept(2, 0), Accept::Stream);
    d.recv(2, &early, 0);
    assert_eq!(d.actions, [Action::Deny(2)]);
    assert_eq!(d.accept(3, 0), Accept::Stream);
    d.recv(3, &COOKIE[..5], 0);
    d.closed(3, 0);
    assert_eq!(d.server.tracked(), 1);
    connect_tcp(&mut d, 4, 1, 0);
    assert_eq!(d.sent_to(1), [9, 10, 1, 2]);
}

#[test]
fn oversized_json() {
    for len in [8193u32, 0x7fff_ffff, u32::MAX, 0] {
        let mut d = server();
        d.accept(1, 0);
        d.recv(1, COOKIE, 0);
        d.recv(1, &len.to_be_bytes(), 0);
        let mut want = vec![9];
        want.extend(server_error(114, 90));
        assert_eq!(d.sent_to(1), want, "{len}");
        assert_all_closed(&d, &[1]);
        assert_eq!(failed(&mut d), [Failure::JsonTooLong(len)]);
    }
    // Results are capped too.
    let mut d = server();
    handshake(&mut d, &tcp_params(""), 0);
    connect_tcp(&mut d, 2, 1, 0);
    d.recv(1, &[4], 10);
    d.recv(1, &(65537u32).to_be_bytes(), 10);
    assert!(d.sent_to(1).ends_with(&server_error(117, 90)));
    assert_all_closed(&d, &[1, 2]);
}

#[test]
fn truncated_json() {
    // The length promises more than arrives, then the client closes.
    let mut d = server();
    d.accept(1, 0);
    d.recv(1, COOKIE, 0);
    let full = framed(&tcp_params(""));
    d.recv(1, &full[..60], 0);
    d.closed(1, 0);
    assert_eq!(d.sent_to(1), [9]);
    assert_all_closed(&d, &[1]);
    assert_eq!(failed(&mut d), [Failure::ControlClosed(Phase::Params)]);
    // A document cut short inside the announced length.
    let mut d = server();
    let mut out = handshake(&mut d, "{\"tcp\":true,\"time\":1,", 0);
    assert_eq!(out.remove(0), 9);
    assert_eq!(out, server_error(114, 22));
    assert_all_closed(&d, &[1]);
}

#[test]
fn malformed_json() {
    let deep = format!("{{\"tcp\":true,\"x\":{}{}}}", "[".repeat(100), "]".repeat(100));
    for bad in [
        "not json at all",
        "[1,2,3]",
        "{\"tcp\":true,\"parallel\":\"four\"}",
        "{\"tcp\":true,\"time\":1e999}",
        "{\"tcp\":true} trailing",
        "{\"tcp\":true,\"title\":\"unterminated}",
        "{\"tcp\":tru}",
        "\u{0}\u{0}\u{0}",
        &deep,
    ] {
        let mut d = server();
        let out = handshake(&mut d, bad, 0);
        let mut want = vec![9];
        want.extend(server_error(114, 22));
        assert_eq!(out, want, "{bad}");
        assert_all_closed(&d, &[1]);
        assert_eq!(failed(&mut d), [Failure::ParamsMalformed], "{bad}");
    }
    // Malformed client results.
    for bad in [
        "{}".to_string(),
        "{\"cpu_util_total\":1,\"cpu_util_user\":1,\"cpu_util_system\":1,\"sender_has_retransmits\":1}".into(),
        client_results(&[7], 10), // a stream we don't have
        client_results(&[1], 10).replace("\"bytes\":10", "\"bytes\":\"x\""),
        client_results(&[1], 10).replace("\"jitter\":0,", ""), // required key
    ] {
        let mut d = server();
        handshake(&mut d, &tcp_params(""), 0);
        connect_tcp(&mut d, 2, 1, 0);
        d.recv(1, &[4], 10);
        d.recv(1, &framed(&bad), 10);
        assert!(d.sent_to(1).ends_with(&server_error(117, 22)), "{bad}");
        assert_all_closed(&d, &[1, 2]);
        assert_eq!(failed(&mut d), [Failure::ResultsMalformed]);
    }
}

#[test]
fn unknown_and_ignored_parameters_are_accepted() {
    // iperf3 skips keys it does not know (newer clients send mptcp,
    // skip_rx_copy), and the server may ignore socket options.
    for extra in [
        ",\"mptcp\":true,\"skip_rx_copy\":true",
        ",\"future\":{\"nested\":[1,2,{\"a\":\"b\\\"c\"}]},\"n\":null",
        ",\"window\":262144,\"MSS\":1400,\"nodelay\":true,\"TOS\":16,\"flowlabel\":3",
        ",\"title\":\"my \\u00e9 title\",\"extra_data\":\"x\",\"congestion\":\"reno\",\"zerocopy\":1",
        ",\"authtoken\":\"abc\",\"server_affinity\":1,\"fqrate\":2000000,\"dont_fragment\":1",
    ] {
        let mut d = server();
        assert_eq!(handshake(&mut d, &tcp_params(extra), 0), [9, 10], "{extra}");
    }
    // The catalogue's UDP parameter set (every option at once) is accepted.
    let p = "{\"udp\":true,\"omit\":1,\"time\":1,\"num\":0,\"blockcount\":0,\"parallel\":2,\"reverse\":true,\"window\":262144,\"len\":1200,\"bandwidth\":1000000,\"fqrate\":2000000,\"pacing_timer\":500,\"burst\":10,\"TOS\":16,\"title\":\"mytitle\",\"extra_data\":\"foo\",\"get_server_output\":1,\"udp_counters_64bit\":1,\"repeating_payload\":1,\"dont_fragment\":1,\"client_version\":\"3.12\"}";
    let mut d = server();
    assert_eq!(handshake(&mut d, p, 0), [9, 10]);
    let got = d.server.params().unwrap();
    assert!(got.reverse && got.udp_counters_64bit && got.get_server_output);
    assert_eq!((got.parallel, got.len, got.bandwidth, got.burst, got.omit_s), (2, 1200, 1_000_000, 10, 1));
}

#[test]
fn refusals_use_iperf3_error_codes() {
    let cases: &[(&str, Limits, i32, i32)] = &[
        (",\"parallel\":0", Limits::default(), 6, 0),
        (",\"parallel\":17", Limits::default(), 6, 0),
        (",\"parallel\":-3", Limits::default(), 114, 22),
        (",\"len\":2000000", Limits::default(), 7, 0),
        (",\"len\":0", Limits::default(), 7, 0),
        (",\"time\":-1", Limits::default(), 114, 22),
        (",\"time\":100000", Limits::default(), 12, 0),
        (",\"reverse\":true,\"bidirectional\":true", Limits::default(), 25, 0),
        (",\"bidirectional\":true", Limits { bidirectional: false, ..Limits::default() }, 13, 0),
        (",\"bandwidth\":10000000", Limits { max_total_rate: 1_000_000, ..Limits::default() }, 27, 0),
        (",\"sctp\":true", Limits::default(), 202, 93),
    ];
    for (extra, limits, i, e) in cases {
        let mut d = Driver::new(Server::new(ServerConfig { limits: *limits, ..Default::default() }));
        let mut out = handshake(&mut d, &tcp_params(extra), 0);
        assert_eq!(out.remove(0), 9);
        assert_eq!(out, server_error(*i, *e), "{extra}");
        assert_all_closed(&d, &[1]);
        assert_eq!(failed(&mut d), [Failure::Refused(Refusal { i_errno: *i, errno: *e })]);
    }
    // UDP: datagram size bounds, or UDP switched off.
    for (p, limits, i) in [
        ("{\"udp\":true,\"len\":8}", Limits::default(), 20),
        ("{\"udp\":true,\"len\":65508}", Limits::default(), 20),
        ("{\"udp\":true}", Limits { udp: false, ..Limits::default() }, 13),
    ] {
        let mut d = Driver::new(Server::new(ServerConfig { limits, ..Default::default() }));
        let out = handshake(&mut d, p, 0);
        assert_eq!(out[1..], server_error(i, 0));
    }
}

#[test]
fn unexpected_control_messages() {
    // Anything but TEST_END / CLIENT_TERMINATE during the test.
    for b in [0u8, 3, 9, 13, 16, 0xff, 0xfe] {
        let mut d = server();
        handshake(&mut d, &tcp_params(""), 0);
        connect_tcp(&mut d, 2, 1, 0);
        d.recv(1, &[b], 10);
        assert!(d.sent_to(1).ends_with(&server_error(110, 0)), "{b}");
        assert_all_closed(&d, &[1, 2]);
    }
    // TEST_END before the streams are up.
    let mut d = server();
    handshake(&mut d, &tcp_params(""), 0);
    d.recv(1, &[4], 10);
    assert_eq!(d.sent_to(1)[2..], server_error(110, 0));
    assert_all_closed(&d, &[1]);
    // A stray TEST_START is ignored, as iperf3 does.
    let mut d = server();
    handshake(&mut d, &tcp_params(""), 0);
    connect_tcp(&mut d, 2, 1, 0);
    d.recv(1, &[1, 4], 10);
    assert_eq!(d.server.phase(), Some(Phase::Results));
}

/// Brings a test to `phase` (streams on handles 2..6 for -P 4).
fn to_phase(phase: Phase) -> Driver {
    let mut d = server();
    d.accept(1, 0);
    if phase == Phase::Cookie {
        d.recv(1, &COOKIE[..3], 0);
        return d;
    }
    d.recv(1, COOKIE, 0);
    if phase == Phase::Params {
        d.recv(1, &framed(&tcp_params(""))[..10], 0);
        return d;
    }
    d.recv(1, &framed(&tcp_params(",\"parallel\":4")), 0);
    if phase == Phase::CreateStreams {
        connect_tcp(&mut d, 2, 2, 0);
        assert_eq!(d.accept(4, 0), Accept::Stream);
        d.recv(4, &COOKIE[..7], 0);
        return d;
    }
    connect_tcp(&mut d, 2, 4, 0);
    d.recv(2, &[0; 100], 10);
    if phase == Phase::Running {
        return d;
    }
    d.recv(1, &[4], 20);
    if phase == Phase::Results {
        d.recv(1, &framed(&client_results(&[1, 3, 4, 5], 1))[..50], 20);
        return d;
    }
    d.recv(1, &framed(&client_results(&[1, 3, 4, 5], 1)), 20);
    assert_eq!(phase, Phase::Done);
    d
}

const PHASES: [Phase; 6] = [Phase::Cookie, Phase::Params, Phase::CreateStreams, Phase::Running, Phase::Results, Phase::Done];

#[test]
fn client_disconnects_in_every_phase() {
    for phase in PHASES {
        let mut d = to_phase(phase);
        assert_eq!(d.server.phase(), Some(phase));
        let streams: Vec<u32> = (2..6).filter(|h| d.accepts.iter().any(|(x, _)| x == h)).collect();
        d.closed(1, 30);
        let mut all = vec![1];
        all.extend(&streams);
        assert_all_closed(&d, &all);
        let ev = d.events();
        if phase == Phase::Done {
            assert!(ev.iter().any(|e| matches!(e, Event::Finished(_))), "{ev:?}");
        } else {
            assert!(ev.contains(&Event::Failed(Failure::ControlClosed(phase))), "{phase:?} {ev:?}");
        }
        // Ready for the next client.
        d.actions.clear();
        d.sent.clear();
        full_tcp(&mut d, &tcp_params(""), 1, 100);
        assert_all_closed(&d, &[1, 2]);
    }
}

#[test]
fn client_terminates_in_every_phase_after_params() {
    for phase in [Phase::CreateStreams, Phase::Running, Phase::Done] {
        let mut d = to_phase(phase);
        d.recv(1, &[12], 30);
        d.closed(1, 30);
        assert!(d.server.is_idle(), "{phase:?}");
        assert!(d.events().contains(&Event::Failed(Failure::ClientTerminated)));
    }
}

#[test]
fn data_stream_closing_early_does_not_end_the_test() {
    let mut d = to_phase(Phase::Running);
    d.closed(3, 15);
    assert_eq!(d.server.phase(), Some(Phase::Running));
    d.recv(1, &[4], 20);
    d.recv(1, &framed(&client_results(&[1, 3, 4, 5], 1)), 20);
    d.recv(1, &[16], 20);
    // Stream 3 was reported closed by the driver: no action needed for it.
    for h in [1, 2, 4, 5] {
        assert!(d.actions.contains(&Action::Close(h)), "{h}");
    }
    assert!(!d.actions.contains(&Action::Close(3)) || d.actions.iter().filter(|a| **a == Action::Close(3)).count() == 1);
    assert!(d.server.is_idle());
}

#[test]
fn busy_in_every_phase() {
    for phase in PHASES {
        let mut d = to_phase(phase);
        let tracked = d.server.tracked();
        if phase == Phase::CreateStreams {
            // It may be a stream: it is denied once its cookie is wrong.
            assert_eq!(d.accept(50, 1), Accept::Stream);
            d.recv(50, b"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\0", 1);
            assert!(d.actions.contains(&Action::Deny(50)));
        } else {
            assert_eq!(d.accept(50, 1), Accept::Deny, "{phase:?}");
        }
        assert_eq!(d.server.tracked(), tracked);
        assert_eq!(d.server.phase(), Some(phase));
        assert!(d.events().contains(&Event::Denied));
    }
    assert_eq!(ACCESS_DENIED, 0xff);
}

#[test]
fn pending_connections_are_bounded() {
    let mut d = to_phase(Phase::CreateStreams);
    // 4 expected, 2 connected, 1 pending: at most 2 missing + 4 extra pending.
    let mut accepted = 0;
    for h in 10..30 {
        if d.accept(h, 1) == Accept::Stream {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 5);
}

#[test]
fn timers_end_every_phase() {
    let cfg = ServerConfig::default();
    for phase in PHASES {
        let mut d = to_phase(phase);
        let deadline = d.server.next_deadline().unwrap();
        assert!(deadline > 30);
        let late = if phase == Phase::Running {
            // -t 1 + 40 s grace.
            assert_eq!(deadline, 41_000_000);
            deadline
        } else {
            deadline.max(cfg.setup_timeout)
        };
        d.pump(late);
        // Flush the last control bytes, then everything is closed.
        d.pump(late);
        let streams: Vec<u32> = (2..6).filter(|h| d.accepts.iter().any(|(x, _)| x == h)).collect();
        let mut all = vec![1];
        all.extend(&streams);
        assert_all_closed(&d, &all);
        let ev = d.events();
        assert!(ev.contains(&Event::Failed(Failure::Timeout(phase))), "{phase:?} {ev:?}");
        if phase == Phase::CreateStreams {
            assert!(d.sent_to(1).ends_with(&server_error(200, 110)));
        }
    }
    // No data for idle_timeout while running.
    let mut d = to_phase(Phase::Running);
    d.pump(10 + cfg.idle_timeout);
    assert!(d.server.is_idle());
    // A peer that never reads: the closing control connection is reset.
    let mut s: Server<u32> = Server::new(ServerConfig::default());
    s.accept(1, 0);
    assert_eq!(s.recv(1, &[b'x'; 37], 0), 37);
    assert_eq!(s.phase(), Some(Phase::Closing));
    assert_eq!(s.poll(1), None);
    assert_eq!(s.poll(cfg.setup_timeout + 1), Some(Action::Abort(1)));
    assert!(s.is_idle());
}

#[test]
fn pending_cookie_times_out() {
    // Connections that never finish their cookie go with the phase timer.
    let mut d = to_phase(Phase::CreateStreams);
    let cfg = ServerConfig::default();
    assert_eq!(d.accept(9, cfg.setup_timeout - 1), Accept::Stream);
    d.pump(cfg.setup_timeout + 1);
    assert!(d.actions.contains(&Action::Abort(4)));
    assert!(d.actions.contains(&Action::Abort(9)));
    assert_all_closed(&d, &[1, 2, 3, 4, 9]);
    // Once all streams are up, stragglers are denied.
    let mut d = server();
    handshake(&mut d, &tcp_params(",\"parallel\":2"), 0);
    connect_tcp(&mut d, 2, 1, 0);
    assert_eq!(d.accept(7, 0), Accept::Stream);
    connect_tcp(&mut d, 3, 1, 0);
    assert_eq!(d.actions, [Action::Deny(7)]);
    assert_eq!(d.server.phase(), Some(Phase::Running));
}

#[test]
fn unknown_handles_are_harmless() {
    let mut d = server();
    assert_eq!(d.server.recv(77, b"abc", 0), 3);
    assert_eq!(d.server.send(77, &mut [0; 10], 0), 0);
    d.server.closed(77, 0);
    assert_eq!(d.server.udp_recv("1.2.3.4:5".parse().unwrap(), b"9876", 0), None);
    assert!(d.server.is_idle());
    let mut d = to_phase(Phase::Running);
    assert_eq!(d.server.recv(77, b"abc", 0), 3);
    assert_eq!(d.server.send(77, &mut [0; 10], 0), 0);
    d.server.closed(77, 0);
    assert_eq!(d.server.phase(), Some(Phase::Running));
}
