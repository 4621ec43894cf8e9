//! Properties: whatever bytes a peer sends, in whatever chunks and order,
//! the server never panics, never closes a connection twice, and once the
//! peers are gone and the timers have run it holds no state.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;

use common::*;
use iperf3::server::{Accept, Action, Server, ServerConfig};
use proptest::prelude::*;

/// Pieces a fuzzed peer builds its bytes from: valid protocol fragments mixed
/// with noise, so deep phases are reached.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(COOKIE.to_vec()),
        Just(framed(&tcp_params(""))),
        Just(framed(&tcp_params(",\"parallel\":2"))),
        Just(framed(&tcp_params(",\"reverse\":true"))),
        Just(framed("{\"udp\":true,\"time\":1,\"parallel\":1,\"len\":100,\"bandwidth\":1000000}")),
        Just(framed(&client_results(&[1], 10))),
        Just(framed(&client_results(&[1, 3], 10))),
        (0u8..20).prop_map(|b| vec![b]),
        Just(vec![0xff]),
        Just(vec![0xfe]),
        any::<u32>().prop_map(|n| n.to_be_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Accept(u32),
    Recv(u32, Vec<u8>),
    Send(u32),
    Closed(u32),
    Udp(u8, Vec<u8>),
    UdpSend,
    Poll,
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let h = 1u32..6;
    prop_oneof![
        h.clone().prop_map(Op::Accept),
        (h.clone(), piece()).prop_map(|(h, b)| Op::Recv(h, b)),
        (h.clone(), proptest::collection::vec(piece(), 1..4)).prop_map(|(h, v)| Op::Recv(h, v.concat())),
        h.clone().prop_map(Op::Send),
        h.prop_map(Op::Closed),
        (0u8..3, piece()).prop_map(|(p, b)| Op::Udp(p, b)),
        Just(Op::UdpSend),
        Just(Op::Poll),
        (0u64..5_000_000).prop_map(Op::Wait),
    ]
}

/// Runs `ops` as a driver would, checking invariants on the way; then all
/// peers go away and time passes: the server must be empty.
fn run(ops: &[Op]) {
    let mut s: Server<u32> = Server::new(ServerConfig::default());
    let mut now = 0u64;
    // Handle -> open (as far as the driver knows).
    let mut open: HashMap<u32, bool> = HashMap::new();
    let mut buf = vec![0u8; 70_000];
    let handle_action = |s: &mut Server<u32>, open: &mut HashMap<u32, bool>, now: u64| {
        for _ in 0..100 {
            let Some(a) = s.poll(now) else { break };
            let h = match a {
                Action::Close(h) | Action::Abort(h) | Action::Deny(h) => h,
            };
            assert_eq!(open.get(&h), Some(&true), "action on a closed handle: {a:?}");
            open.insert(h, false);
        }
    };
    for op in ops {
        match op {
            Op::Accept(h) => {
                if open.get(h) == Some(&true) {
                    continue; // the driver never re-accepts a live handle
                }
                match s.accept(*h, now) {
                    Accept::Deny => {
                        open.insert(*h, false);
                    }
                    _ => {
                        open.insert(*h, true);
                    }
                }
            }
            Op::Recv(h, b) => {
                if open.get(h) != Some(&true) {
                    continue;
                }
                let mut off = 0;
                for _ in 0..=b.len() {
                    let n = s.recv(*h, &b[off..], now);
                    assert!(n <= b.len() - off);
                    off += n;
                    if n == 0 || off == b.len() {
                        break;
                    }
                }
            }
            Op::Send(h) => {
                let n = s.send(*h, &mut buf[..5000], now);
                assert!(n <= 5000);
            }
            Op::Closed(h) => {
                if open.get(h) == Some(&true) {
                    s.closed(*h, now);
                    open.insert(*h, false);
                }
            }
            Op::Udp(p, b) => {
                let from = SocketAddr::from(([10, 0, 0, 1], 1000 + u16::from(*p)));
                if let Some(r) = s.udp_recv(from, b, now) {
                    assert_eq!(&r, b"6789");
                }
            }
            Op::UdpSend => {
                if let Some((_, n)) = s.udp_send(&mut buf, now) {
                    assert!(n <= buf.len());
                }
            }
            Op::Poll => handle_action(&mut s, &mut open, now),
            Op::Wait(d) => now += d,
        }
        // Bounded state: control + at most 128 streams + pending.
        assert!(s.tracked() <= 1 + 128 + 8);
    }
    // Peers vanish; the driver keeps polling as time passes.
    for (h, o) in open.clone() {
        if o {
            s.closed(h, now);
            open.insert(h, false);
        }
    }
    for _ in 0..4 {
        now += 4_000_000_000;
        while s.send(1, &mut buf, now) > 0 {}
        handle_action(&mut s, &mut open, now);
    }
    assert!(s.is_idle(), "phase {:?}", s.phase());
    assert_eq!(s.tracked(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn random_peers_never_panic_or_leak(ops in proptest::collection::vec(op(), 0..40)) {
        run(&ops);
    }

    #[test]
    fn valid_prefix_then_random(kind in 0usize..3, k in 0usize..14,
                                ops in proptest::collection::vec(op(), 0..30)) {
        // A real session brought to a random point, then anything.
        let params = match kind {
            0 => tcp_params(",\"parallel\":2"),
            1 => tcp_params(",\"parallel\":2,\"reverse\":true"),
            _ => "{\"udp\":true,\"time\":1,\"parallel\":2,\"len\":100}".to_string(),
        };
        let mut script = vec![
            Op::Accept(1),
            Op::Recv(1, COOKIE.to_vec()),
            Op::Recv(1, framed(&params)),
        ];
        if kind == 2 {
            script.push(Op::Udp(0, b"9876".to_vec()));
            script.push(Op::Udp(1, b"9876".to_vec()));
        } else {
            script.extend([Op::Accept(2), Op::Recv(2, COOKIE.to_vec()),
                           Op::Accept(3), Op::Recv(3, COOKIE.to_vec())]);
        }
        script.extend([
            Op::Recv(2, vec![0; 1000]),
            Op::Udp(0, vec![0; 100]),
            Op::Wait(1_000_000),
            Op::Send(2),
            Op::UdpSend,
            Op::Recv(1, vec![4]),
            Op::Recv(1, framed(&client_results(&[1, 3], 10))),
            Op::Recv(1, vec![16]),
        ]);
        script.truncate(k);
        script.extend(ops);
        run(&script);
    }

    #[test]
    fn random_control_bytes(pre in proptest::collection::vec(piece(), 0..6),
                            noise in proptest::collection::vec(any::<u8>(), 0..300),
                            cut in 1usize..50) {
        // One control connection: fragments then noise, in chunks of `cut`.
        let bytes: Vec<u8> = pre.concat().into_iter().chain(noise).collect();
        let mut ops = vec![Op::Accept(1)];
        ops.extend(bytes.chunks(cut).map(|c| Op::Recv(1, c.to_vec())));
        ops.push(Op::Poll);
        run(&ops);
    }

    #[test]
    fn json_check_agrees_with_serde_json(s in "[ \\[\\]{}\",:0-9a-z.eE+\\-\\\\]{0,40}") {
        let ours = iperf3::json::prescan(s.as_bytes()).is_ok();
        let theirs = serde_json::from_str::<serde_json::Value>(&s).is_ok();
        prop_assert_eq!(ours, theirs, "{:?}", s);
    }

    #[test]
    fn json_parsers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = iperf3::json::parse_params(&b, &Default::default());
        let _ = iperf3::json::parse_results(&b, 128);
    }

    #[test]
    fn chunking_does_not_matter(cuts in proptest::collection::vec(1usize..40, 1..20)) {
        // A whole -P 2 exchange split at arbitrary points gives the same
        // answers as one read per message.
        let stream: Vec<u8> = [
            COOKIE.to_vec(),
            framed(&tcp_params(",\"parallel\":2")),
        ].concat();
        let mut d = Driver::new(Server::new(ServerConfig::default()));
        d.accept(1, 0);
        let mut off = 0;
        for c in cuts.iter().cycle() {
            if off >= stream.len() { break; }
            let end = (off + c).min(stream.len());
            d.recv(1, &stream[off..end], 0);
            off = end;
        }
        prop_assert_eq!(d.sent_to(1), vec![9, 10]);
    }
}

#[test]
fn prescan_depth_and_examples() {
    use iperf3::json::prescan;
    let ok = |s: &str| prescan(s.as_bytes()).is_ok();
    assert!(ok("{\"a\":[1,-2.5e3,true,false,null,\"x\\u00e9\\n\"],\"b\":{}}"));
    assert!(ok(&format!("{}{}", "[".repeat(12), "]".repeat(12))));
    assert!(!ok(&format!("{}{}", "[".repeat(13), "]".repeat(13))));
    for bad in [
        "",
        "{",
        "{\"a\"}",
        "{\"a\":}",
        "[1,]",
        "{\"a\":1,}",
        "01",
        "1.",
        "-",
        "\"\\x\"",
        "{\"a\":1}}",
        "tru",
        "[1 2]",
        "{1:2}",
        "\"\u{1}\"",
    ] {
        assert!(!ok(bad), "{bad:?}");
    }
    assert!(prescan(&[b'"', 0xff, b'"']).is_err());
}

mod client_props {
    use super::*;
    use iperf3::client::{Client, ClientAction, ClientConfig, ClientPhase};
    use iperf3::proto::Cookie;
    use iperf3::Params;

    /// What a server might say: valid answers mixed with noise.
    fn answer() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (0u8..20).prop_map(|b| vec![b]),
            Just(vec![9]),
            Just(vec![10]),
            Just(vec![1, 2]),
            Just(vec![13]),
            Just(vec![14]),
            Just(vec![0xff]),
            Just(vec![0xfe, 0, 0, 0, 6, 0, 0, 0, 0]),
            Just(framed(&client_results(&[1], 10))),
            Just(framed(&client_results(&[1, 3], 10))),
            any::<u32>().prop_map(|n| n.to_be_bytes().to_vec()),
            proptest::collection::vec(any::<u8>(), 0..64),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, .. ProptestConfig::default() })]

        #[test]
        fn random_servers_never_panic_or_leak(
            udp in any::<bool>(),
            k in 0usize..12,
            tail in proptest::collection::vec((answer(), 0u64..2_000_000, 0u8..4), 0..30),
        ) {
            // A well-behaved server cut at a random point, then anything.
            let mut answers: Vec<(Vec<u8>, u64, u8)> = vec![
                (vec![9], 0, 0), (vec![10], 0, 0),
                (vec![], 0, 1), (vec![], 0, 5), (vec![], 0, 1), (vec![], 0, 5), (vec![], 0, 1),
                (vec![1, 2], 0, 0), (vec![], 500_000, 1), (vec![13], 600_000, 0),
                (framed(&client_results(&[1, 3], 10)), 0, 0), (vec![14], 0, 0),
            ];
            answers.truncate(k);
            answers.extend(tail);
            let p = if udp { Params { parallel: 2, ..Params::udp(1, 1_000_000, 100) } }
                    else { Params { parallel: 2, ..Params::tcp(1) } };
            let mut c: Client<u32> =
                Client::new(ClientConfig::new(p, Cookie::parse(COOKIE).unwrap()), 0);
            c.control_connected(1, 0);
            let mut now = 0;
            let mut next = 2;
            let mut open = vec![1u32];
            let mut buf = vec![0u8; 200_000];
            let act = |c: &mut Client<u32>, open: &mut Vec<u32>, next: &mut u32, now| {
                for _ in 0..50 {
                    match c.poll(now) {
                        None => break,
                        Some(ClientAction::ConnectTcp) => {
                            c.stream_connected(*next, now);
                            open.push(*next);
                            *next += 1;
                        }
                        Some(ClientAction::OpenUdp) => {
                            c.udp_opened(*next, now);
                            open.push(*next);
                            *next += 1;
                        }
                        Some(ClientAction::Close(h) | ClientAction::Abort(h)) => {
                            let i = open.iter().position(|x| *x == h);
                            prop_assert!(i.is_some(), "closing unknown {}", h);
                            open.remove(i.unwrap());
                        }
                    }
                }
                Ok(())
            };
            for (bytes, dt, what) in answers {
                now += dt;
                match what {
                    0 => {
                        let n = c.recv(1, &bytes, now);
                        prop_assert!(n <= bytes.len());
                    }
                    1 => {
                        for h in 1..next {
                            c.send(h, &mut buf[..1000], now);
                            let _ = c.udp_send(h, &mut buf, now);
                        }
                    }
                    5 => {
                        for h in 2..next {
                            c.udp_recv(h, b"6789", now);
                        }
                    }
                    2 => {
                        let h = 2 + (now as u32 % 3);
                        c.recv(h, &bytes, now);
                        c.udp_recv(h, &bytes, now);
                        c.udp_recv(h, b"6789", now);
                    }
                    _ => {
                        if let Some(&h) = open.last() {
                            if h != 1 || bytes.len() % 7 == 0 {
                                c.closed(h, now);
                                open.pop();
                            }
                        }
                    }
                }
                act(&mut c, &mut open, &mut next, now)?;
            }
            // The server goes away; time passes.
            for h in open.clone() {
                c.closed(h, now);
            }
            open.clear();
            for _ in 0..3 {
                now += 100_000_000;
                while c.send(1, &mut buf, now) > 0 {}
                act(&mut c, &mut open, &mut next, now)?;
            }
            prop_assert_eq!(c.phase(), ClientPhase::Finished);
            prop_assert_eq!(c.tracked(), 0);
            prop_assert!(c.outcome().is_some());
        }
    }
}
