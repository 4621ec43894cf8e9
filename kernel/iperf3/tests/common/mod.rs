//! Shared test helpers: the wire recordings and a server driver.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use iperf3::server::{Accept, Action, Server};
use iperf3::Micros;

/// One line of a `.wire.jsonl` recording.
#[derive(Clone, Debug)]
pub struct WireEvent {
    pub t: Micros,
    pub udp: bool,
    /// TCP conn or UDP flow.
    pub conn: u32,
    /// `open`, `eof`, `error`, `closed`, or `data`.
    pub kind: String,
    /// c2s, s2c or empty.
    pub dir: String,
    /// Bytes, padded with zeros to the recorded length when truncated.
    pub bytes: Vec<u8>,
}

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

pub fn load_wire(name: &str) -> Vec<WireEvent> {
    let text = std::fs::read_to_string(fixture_path(&format!("{name}.wire.jsonl"))).unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(proto) = v.get("proto").and_then(|p| p.as_str()) else {
            continue;
        };
        let udp = proto == "udp";
        let conn = v.get(if udp { "flow" } else { "conn" }).and_then(|c| c.as_u64()).unwrap() as u32;
        let t = (v["t"].as_f64().unwrap() * 1e6) as Micros;
        let dir = v.get("dir").and_then(|d| d.as_str()).unwrap_or("").to_string();
        if let Some(ev) = v.get("event").and_then(|e| e.as_str()) {
            out.push(WireEvent { t, udp, conn, kind: ev.to_string(), dir, bytes: Vec::new() });
            continue;
        }
        let mut bytes = unhex(v["hex"].as_str().unwrap());
        let len = v["len"].as_u64().unwrap() as usize;
        if bytes.len() < len {
            bytes.resize(len, 0);
        }
        out.push(WireEvent { t, udp, conn, kind: "data".into(), dir, bytes });
    }
    out
}

/// The control connection's bytes in one direction, concatenated.
pub fn control_bytes(events: &[WireEvent], dir: &str) -> Vec<u8> {
    events
        .iter()
        .filter(|e| !e.udp && e.conn == 1 && e.kind == "data" && e.dir == dir)
        .flat_map(|e| e.bytes.iter().copied())
        .collect()
}

/// A control-stream item, as the peer reading it would split it.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    State(i8),
    Error(i32, i32),
    Json(serde_json::Value),
}

/// Splits a server-to-client control stream into items. JSON follows the
/// EXCHANGE_RESULTS byte (the server's results).
pub fn split_s2c(b: &[u8]) -> Vec<Item> {
    let mut items = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let s = b[i] as i8;
        i += 1;
        items.push(Item::State(s));
        if s == -2 {
            let a = i32::from_be_bytes(b[i..i + 4].try_into().unwrap());
            let e = i32::from_be_bytes(b[i + 4..i + 8].try_into().unwrap());
            items.push(Item::Error(a, e));
            i += 8;
        } else if s == 13 && i + 4 <= b.len() {
            let n = u32::from_be_bytes(b[i..i + 4].try_into().unwrap()) as usize;
            let v = serde_json::from_slice(&b[i + 4..i + 4 + n]).unwrap();
            items.push(Item::Json(v));
            i += 4 + n;
        }
    }
    items
}

pub fn udp_addr(flow: u32) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 40000 + flow as u16))
}

/// A server plus what it asked the driver to do.
pub struct Driver {
    pub server: Server<u32>,
    /// Bytes the server sent per TCP handle.
    pub sent: std::collections::HashMap<u32, Vec<u8>>,
    pub actions: Vec<Action<u32>>,
    pub accepts: Vec<(u32, Accept)>,
    pub udp_replies: Vec<(SocketAddr, [u8; 4])>,
    /// Handles the driver reported closed.
    pub closed: Vec<u32>,
}

impl Driver {
    pub fn new(server: Server<u32>) -> Self {
        Driver {
            server,
            sent: Default::default(),
            actions: Vec::new(),
            accepts: Vec::new(),
            udp_replies: Vec::new(),
            closed: Vec::new(),
        }
    }

    pub fn accept(&mut self, h: u32, now: Micros) -> Accept {
        let a = self.server.accept(h, now);
        self.accepts.push((h, a));
        a
    }

    /// Feeds all of `data`, as a socket would over several polls.
    pub fn recv(&mut self, h: u32, data: &[u8], now: Micros) {
        let mut off = 0;
        for _ in 0..=data.len() + 1 {
            if off >= data.len() {
                break;
            }
            let n = self.server.recv(h, &data[off..], now);
            assert!(n <= data.len() - off, "consumed more than given");
            if n == 0 {
                break;
            }
            off += n;
        }
        assert_eq!(off, data.len(), "server left bytes unconsumed");
        self.pump(now);
    }

    /// Control output and actions.
    pub fn pump(&mut self, now: Micros) {
        for _ in 0..1000 {
            let mut progress = false;
            let handles: Vec<u32> = (0..64).collect();
            for h in handles {
                if !self.server.is_control(h) {
                    continue;
                }
                let mut buf = [0u8; 4096];
                let n = self.server.send(h, &mut buf, now);
                if n > 0 {
                    self.sent.entry(h).or_default().extend_from_slice(&buf[..n]);
                    progress = true;
                }
            }
            while let Some(a) = self.server.poll(now) {
                self.actions.push(a);
                progress = true;
            }
            if !progress {
                break;
            }
        }
    }

    pub fn udp(&mut self, from: SocketAddr, data: &[u8], now: Micros) {
        if let Some(r) = self.server.udp_recv(from, data, now) {
            self.udp_replies.push((from, r));
        }
        self.pump(now);
    }

    pub fn closed(&mut self, h: u32, now: Micros) {
        self.server.closed(h, now);
        self.closed.push(h);
        self.pump(now);
    }

    pub fn sent_to(&self, h: u32) -> Vec<u8> {
        self.sent.get(&h).cloned().unwrap_or_default()
    }

    pub fn events(&mut self) -> Vec<iperf3::Event> {
        std::iter::from_fn(|| self.server.take_event()).collect()
    }
}

pub const COOKIE: &[u8; 37] = b"abcdefghijklmnopqrstuvwxyz234567abcd\0";

pub fn framed(json: &str) -> Vec<u8> {
    let mut v = (json.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(json.as_bytes());
    v
}

/// A 3.12 client's TCP parameters; keys in `extra` (",\"k\":v,...")
/// replace or extend the defaults.
pub fn tcp_params(extra: &str) -> String {
    let base = "{\"tcp\":true,\"omit\":0,\"time\":1,\"num\":0,\"blockcount\":0,\"parallel\":1,\"len\":131072,\"pacing_timer\":1000,\"client_version\":\"3.12\"}";
    let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(base).unwrap();
    let more: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&format!("{{{}}}", extra.trim_start_matches(','))).unwrap();
    v.extend(more);
    serde_json::to_string(&v).unwrap()
}

/// Control connection 1 through cookie and parameters; returns what the
/// server answered.
pub fn handshake(d: &mut Driver, params: &str, now: Micros) -> Vec<u8> {
    assert_eq!(d.accept(1, now), Accept::Control);
    d.recv(1, COOKIE, now);
    d.recv(1, &framed(params), now);
    d.sent_to(1)
}

/// Connects TCP data streams with handles `first..first+n`.
pub fn connect_tcp(d: &mut Driver, first: u32, n: u32, now: Micros) {
    for h in first..first + n {
        assert_eq!(d.accept(h, now), Accept::Stream);
        d.recv(h, COOKIE, now);
    }
}

pub fn client_results(ids: &[u32], bytes: u64) -> String {
    let streams: Vec<String> = ids
        .iter()
        .map(|i| format!("{{\"id\":{i},\"bytes\":{bytes},\"retransmits\":0,\"jitter\":0,\"errors\":0,\"packets\":0,\"start_time\":0,\"end_time\":1}}"))
        .collect();
    format!(
        "{{\"cpu_util_total\":1.5,\"cpu_util_user\":0.5,\"cpu_util_system\":1,\"sender_has_retransmits\":1,\"streams\":[{}]}}",
        streams.join(",")
    )
}

/// Every handle in `handles` got exactly one closing action, or none if the
/// driver reported it closed (after which it must get none).
pub fn assert_all_closed(d: &Driver, handles: &[u32]) {
    for h in handles {
        let n = d.actions.iter().filter(|a| matches!(a, Action::Close(x) | Action::Abort(x) | Action::Deny(x) if x == h)).count();
        let reported = d.closed.contains(h);
        if reported {
            // An action before the report is fine; none after it.
            assert!(n <= 1, "handle {h}: {:?}", d.actions);
        } else {
            assert_eq!(n, 1, "handle {h}: {:?}", d.actions);
        }
    }
    assert!(d.server.is_idle(), "{:?}", d.server.phase());
    assert_eq!(d.server.tracked(), 0);
}

pub fn server_error(i_errno: i32, errno: i32) -> Vec<u8> {
    let mut v = vec![0xfe];
    v.extend_from_slice(&i_errno.to_be_bytes());
    v.extend_from_slice(&errno.to_be_bytes());
    v
}
