//! The two JSON documents of the protocol: the client's parameters and the
//! results both sides exchange. Parsing goes through serde-json-core after a
//! bounded pre-scan (nesting depth), so hostile input can't recurse deeply.

use alloc::vec;
use alloc::vec::Vec;
use serde::de::{self, IgnoredAny};
use serde::{Deserialize, Serialize, Serializer};

use crate::proto::{self, ierr};

/// Deepest nesting accepted in any received JSON document. The parameters are
/// flat (depth 1), results are 3 deep, `server_output_json` needs about 6.
pub const MAX_JSON_DEPTH: usize = 12;

/// Why a JSON document was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonError {
    /// Not JSON, wrong types, missing required keys, or nested too deep.
    Malformed,
    /// A number is out of range for its field.
    OutOfRange,
}

/// Checks that `bytes` is one complete, valid JSON document (RFC 8259
/// syntax, UTF-8) nested at most `MAX_JSON_DEPTH` deep, before serde sees it.
/// serde-json-core skips unknown values loosely and recurses per level; this
/// single iterative pass makes both safe. It runs once over the slice.
pub fn prescan(bytes: &[u8]) -> Result<(), JsonError> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum S {
        Value,
        ValueOrClose,
        Key,
        KeyOrClose,
        Colon,
        CommaOrClose,
        Done,
    }
    const E: JsonError = JsonError::Malformed;
    if core::str::from_utf8(bytes).is_err() {
        return Err(E);
    }
    // Bit k of `objects`: level k+1 is an object (else an array).
    let mut objects: u32 = 0;
    let mut depth = 0usize;
    let mut s = S::Value;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
            continue;
        }
        let mut closed = false;
        match s {
            S::Done => return Err(E),
            S::Value | S::ValueOrClose => match c {
                b']' if s == S::ValueOrClose => closed = true,
                b'{' | b'[' => {
                    if depth >= MAX_JSON_DEPTH {
                        return Err(E);
                    }
                    if c == b'{' {
                        objects |= 1 << depth;
                        s = S::KeyOrClose;
                    } else {
                        objects &= !(1 << depth);
                        s = S::ValueOrClose;
                    }
                    depth += 1;
                    i += 1;
                    continue;
                }
                b'"' => i = skip_string(bytes, i)?,
                b't' => i = skip_literal(bytes, i, b"true")?,
                b'f' => i = skip_literal(bytes, i, b"false")?,
                b'n' => i = skip_literal(bytes, i, b"null")?,
                b'-' | b'0'..=b'9' => i = skip_number(bytes, i)?,
                _ => return Err(E),
            },
            S::Key | S::KeyOrClose => match c {
                b'}' if s == S::KeyOrClose => closed = true,
                b'"' => {
                    i = skip_string(bytes, i)?;
                    s = S::Colon;
                    continue;
                }
                _ => return Err(E),
            },
            S::Colon => {
                if c != b':' {
                    return Err(E);
                }
                s = S::Value;
                i += 1;
                continue;
            }
            S::CommaOrClose => {
                let obj = depth > 0 && objects & (1 << (depth - 1)) != 0;
                match c {
                    b',' => {
                        s = if obj { S::Key } else { S::Value };
                        i += 1;
                        continue;
                    }
                    b'}' if obj => closed = true,
                    b']' if !obj => closed = true,
                    _ => return Err(E),
                }
            }
        }
        if closed {
            depth = depth.checked_sub(1).ok_or(E)?;
            i += 1;
        }
        // A value (scalar or container) just ended.
        s = if depth == 0 { S::Done } else { S::CommaOrClose };
    }
    if s == S::Done {
        Ok(())
    } else {
        Err(E)
    }
}

fn skip_literal(b: &[u8], i: usize, lit: &[u8]) -> Result<usize, JsonError> {
    if b.get(i..i + lit.len()) == Some(lit) {
        Ok(i + lit.len())
    } else {
        Err(JsonError::Malformed)
    }
}

fn skip_string(b: &[u8], mut i: usize) -> Result<usize, JsonError> {
    i += 1; // opening quote
    while i < b.len() {
        match b[i] {
            b'"' => return Ok(i + 1),
            b'\\' => match b.get(i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                Some(b'u') => {
                    let hex = b.get(i + 2..i + 6).ok_or(JsonError::Malformed)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return Err(JsonError::Malformed);
                    }
                    i += 6;
                }
                _ => return Err(JsonError::Malformed),
            },
            0..=0x1f => return Err(JsonError::Malformed),
            _ => i += 1,
        }
    }
    Err(JsonError::Malformed)
}

fn skip_number(b: &[u8], mut i: usize) -> Result<usize, JsonError> {
    let digits = |b: &[u8], mut i: usize| -> Result<usize, JsonError> {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            Err(JsonError::Malformed)
        } else {
            Ok(i)
        }
    };
    if b[i] == b'-' {
        i += 1;
    }
    if b.get(i) == Some(&b'0') {
        i += 1;
    } else {
        i = digits(b, i)?;
    }
    if b.get(i) == Some(&b'.') {
        i = digits(b, i + 1)?;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(b, i)?;
    }
    Ok(i)
}

/// An integer as iperf3 3.12 writes it: via cJSON's double, with -1 printed
/// as `18446744073709551615`. Any value >= 2^63 reads as -1; fractions are
/// truncated (cJSON's `valueint`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if !v.is_finite() {
            return Err(de::Error::custom("number"));
        }
        const TWO_63: f64 = 9_223_372_036_854_775_808.0;
        if v >= TWO_63 {
            return Ok(Int(-1));
        }
        if v < -TWO_63 {
            return Err(de::Error::custom("number"));
        }
        Ok(Int(v as i64))
    }
}

impl Serialize for Int {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

/// A finite double (`null`, NaN and infinities are refused).
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd)]
pub struct Num(pub f64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if v.is_finite() {
            Ok(Num(v))
        } else {
            Err(de::Error::custom("number"))
        }
    }
}

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = if self.0.is_finite() { self.0 } else { 0.0 };
        // cJSON prints integral doubles without a fraction; so do we.
        if v == (v as i64) as f64 && v.abs() < 1e15 {
            s.serialize_i64(v as i64)
        } else {
            s.serialize_f64(v)
        }
    }
}

/// Transport of a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// TCP data streams.
    Tcp,
    /// UDP data streams.
    Udp,
}

/// What the client asked for, checked and typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// `-O` seconds: stats are reset at its end.
    pub omit_s: u32,
    /// `-t` seconds (0 when `-n`/`-k` end the test).
    pub time_s: u32,
    /// `-n` bytes, 0 = unused.
    pub bytes: u64,
    /// `-k` blocks, 0 = unused.
    pub blocks: u64,
    /// `-P`: streams per direction.
    pub parallel: u16,
    /// `-R`: the server sends.
    pub reverse: bool,
    /// `--bidir`: both directions.
    pub bidirectional: bool,
    /// `-l`: block / datagram size.
    pub len: u32,
    /// `-b`: bit/s per stream, 0 = unlimited (TCP).
    pub bandwidth: u64,
    /// `--pacing-timer` µs.
    pub pacing_timer_us: u32,
    /// `-b R/N`: datagrams per burst, 0 = none.
    pub burst: u32,
    /// `--get-server-output`.
    pub get_server_output: bool,
    /// `--udp-counters-64bit`.
    pub udp_counters_64bit: bool,
    /// `--repeating-payload`.
    pub repeating_payload: bool,
}

impl Params {
    /// A TCP test of `time_s` seconds with iperf3's defaults.
    pub fn tcp(time_s: u32) -> Self {
        Params {
            protocol: Protocol::Tcp,
            omit_s: 0,
            time_s,
            bytes: 0,
            blocks: 0,
            parallel: 1,
            reverse: false,
            bidirectional: false,
            len: proto::DEFAULT_TCP_LEN,
            bandwidth: 0,
            pacing_timer_us: 1000,
            burst: 0,
            get_server_output: false,
            udp_counters_64bit: false,
            repeating_payload: false,
        }
    }

    /// A UDP test of `time_s` seconds at `bandwidth` bit/s per stream.
    pub fn udp(time_s: u32, bandwidth: u64, len: u32) -> Self {
        Params { protocol: Protocol::Udp, bandwidth, len, ..Params::tcp(time_s) }
    }

    /// Number of data streams the test opens.
    pub fn stream_count(&self) -> u32 {
        u32::from(self.parallel) * if self.bidirectional { 2 } else { 1 }
    }
}

/// The parameters as they appear on the wire. Flags count when their key is
/// present, whatever the value (as iperf3 reads them). Unknown keys (title,
/// window, congestion, newer clients' `mptcp`, ...) are skipped.
#[derive(Deserialize, Default)]
struct WireParams {
    // `tcp` needs no field: absent `udp` and `sctp` mean TCP.
    udp: Option<IgnoredAny>,
    sctp: Option<IgnoredAny>,
    omit: Option<Int>,
    time: Option<Int>,
    num: Option<Int>,
    blockcount: Option<Int>,
    parallel: Option<Int>,
    reverse: Option<IgnoredAny>,
    bidirectional: Option<IgnoredAny>,
    len: Option<Int>,
    bandwidth: Option<Int>,
    pacing_timer: Option<Int>,
    burst: Option<Int>,
    get_server_output: Option<IgnoredAny>,
    udp_counters_64bit: Option<IgnoredAny>,
    repeating_payload: Option<IgnoredAny>,
}

/// Why a parameter set is refused, with the `(i_errno, errno)` pair sent
/// after SERVER_ERROR so that the iperf3 client prints its own message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// iperf3 `i_errno`.
    pub i_errno: i32,
    /// errno (Linux numbering).
    pub errno: i32,
}

impl Refusal {
    const fn new(i_errno: i32, errno: i32) -> Self {
        Refusal { i_errno, errno }
    }
}

/// Server-side limits applied to the parameters.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Streams per direction.
    pub max_parallel: u16,
    /// Largest TCP block size.
    pub max_tcp_len: u32,
    /// Total of all streams' `-b`, 0 = unlimited.
    pub max_total_rate: u64,
    /// Whether UDP tests are accepted.
    pub udp: bool,
    /// Whether `--bidir` is accepted.
    pub bidirectional: bool,
    /// Longest `-t` + `-O`, in seconds.
    pub max_time_s: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_parallel: 16,
            max_tcp_len: proto::MAX_TCP_LEN,
            max_total_rate: 0,
            udp: true,
            bidirectional: true,
            max_time_s: 86_400,
        }
    }
}

fn non_neg(v: Option<Int>, default: i64) -> Result<u64, Refusal> {
    let v = v.map_or(default, |i| i.0);
    u64::try_from(v).map_err(|_| Refusal::new(ierr::IERECVPARAMS, proto::errno::EINVAL))
}

/// Parses and checks the parameters JSON. `Err(None)` means the document is
/// not valid JSON of the expected shape; `Err(Some(r))` means a well-formed
/// request the server refuses with `r`.
pub fn parse_params(bytes: &[u8], limits: &Limits) -> Result<Params, Option<Refusal>> {
    prescan(bytes).map_err(|_| None)?;
    let (w, _): (WireParams, usize) = serde_json_core::from_slice(bytes).map_err(|_| None)?;
    // Protocol: iperf3 takes the last of tcp, udp, sctp present.
    let protocol = if w.sctp.is_some() {
        // What a Linux iperf3 3.12 built with SCTP but without kernel
        // support answers (fixture `sctp`): IESTREAMLISTEN, EPROTONOSUPPORT.
        return Err(Some(Refusal::new(ierr::IESTREAMLISTEN, proto::errno::EPROTONOSUPPORT)));
    } else if w.udp.is_some() {
        Protocol::Udp
    } else {
        // Absent means TCP, as in iperf3 3.12.
        Protocol::Tcp
    };
    let bad = Refusal::new(ierr::IERECVPARAMS, proto::errno::EINVAL);
    let omit = non_neg(w.omit, 0)?;
    let time = non_neg(w.time, 10)?;
    let num = non_neg(w.num, 0)?;
    let blocks = non_neg(w.blockcount, 0)?;
    let parallel = non_neg(w.parallel, 1)?;
    let reverse = w.reverse.is_some();
    let bidirectional = w.bidirectional.is_some();
    if reverse && bidirectional {
        return Err(Some(Refusal::new(ierr::IEREVERSEBIDIR, 0)));
    }
    if bidirectional && !limits.bidirectional {
        return Err(Some(Refusal::new(ierr::IEUNIMP, 0)));
    }
    if protocol == Protocol::Udp && !limits.udp {
        return Err(Some(Refusal::new(ierr::IEUNIMP, 0)));
    }
    if parallel == 0 || parallel > u64::from(limits.max_parallel.min(proto::MAX_STREAMS)) {
        return Err(Some(Refusal::new(ierr::IENUMSTREAMS, 0)));
    }
    let default_len = match protocol {
        Protocol::Tcp => proto::DEFAULT_TCP_LEN,
        Protocol::Udp => proto::DEFAULT_UDP_LEN,
    };
    let len = non_neg(w.len, i64::from(default_len))?;
    match protocol {
        Protocol::Tcp => {
            if len == 0 || len > u64::from(limits.max_tcp_len) {
                return Err(Some(Refusal::new(ierr::IEBLOCKSIZE, 0)));
            }
        }
        Protocol::Udp => {
            if !(u64::from(proto::MIN_UDP_LEN)..=u64::from(proto::MAX_UDP_LEN)).contains(&len) {
                return Err(Some(Refusal::new(ierr::IEUDPBLOCKSIZE, 0)));
            }
        }
    }
    let default_rate = match protocol {
        Protocol::Tcp => 0,
        Protocol::Udp => proto::DEFAULT_UDP_RATE as i64,
    };
    let bandwidth = non_neg(w.bandwidth, default_rate)?;
    let streams = parallel * if bidirectional { 2 } else { 1 };
    if limits.max_total_rate != 0 && (bandwidth == 0 || bandwidth.saturating_mul(streams) > limits.max_total_rate) {
        return Err(Some(Refusal::new(ierr::IETOTALRATE, 0)));
    }
    if omit.saturating_add(time) > u64::from(limits.max_time_s) {
        return Err(Some(Refusal::new(ierr::IEOMIT, 0)));
    }
    let pacing = non_neg(w.pacing_timer, 1000)?;
    let burst = non_neg(w.burst, 0)?;
    Ok(Params {
        protocol,
        omit_s: u32::try_from(omit).map_err(|_| bad)?,
        time_s: u32::try_from(time).map_err(|_| bad)?,
        bytes: num,
        blocks,
        parallel: u16::try_from(parallel).map_err(|_| bad)?,
        reverse,
        bidirectional,
        len: u32::try_from(len).map_err(|_| bad)?,
        bandwidth,
        pacing_timer_us: u32::try_from(pacing).unwrap_or(u32::MAX).max(1),
        burst: u32::try_from(burst).unwrap_or(u32::MAX),
        get_server_output: w.get_server_output.is_some(),
        udp_counters_64bit: w.udp_counters_64bit.is_some(),
        repeating_payload: w.repeating_payload.is_some(),
    })
}

/// The parameters JSON in the key order iperf3 3.12 sends.
#[derive(Serialize)]
struct WireParamsOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    udp: Option<bool>,
    omit: u32,
    time: u32,
    num: u64,
    blockcount: u64,
    parallel: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    reverse: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bidirectional: Option<bool>,
    len: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    bandwidth: Option<u64>,
    pacing_timer: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    burst: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    get_server_output: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    udp_counters_64bit: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repeating_payload: Option<u8>,
    client_version: &'static str,
}

/// Serialises the parameters as an iperf3 3.12 client would.
pub fn write_params(p: &Params) -> Vec<u8> {
    let w = WireParamsOut {
        tcp: (p.protocol == Protocol::Tcp).then_some(true),
        udp: (p.protocol == Protocol::Udp).then_some(true),
        omit: p.omit_s,
        time: p.time_s,
        num: p.bytes,
        blockcount: p.blocks,
        parallel: p.parallel,
        reverse: p.reverse.then_some(true),
        bidirectional: p.bidirectional.then_some(true),
        len: p.len,
        bandwidth: (p.bandwidth != 0).then_some(p.bandwidth),
        pacing_timer: p.pacing_timer_us,
        burst: (p.burst != 0).then_some(p.burst),
        get_server_output: p.get_server_output.then_some(1),
        udp_counters_64bit: p.udp_counters_64bit.then_some(1),
        repeating_payload: p.repeating_payload.then_some(1),
        client_version: "3.12",
    };
    to_vec(&w, 512)
}

/// One stream in a results document, from the writer's point of view.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamResult {
    /// Stream id (1, 3, 4, 5, ...).
    pub id: Int,
    /// Bytes sent (sender) or received (receiver), after omit.
    pub bytes: Int,
    /// TCP retransmits, -1 if unknown or receiver.
    pub retransmits: Int,
    /// UDP jitter in seconds (receiver).
    pub jitter: Num,
    /// UDP datagrams lost (receiver).
    pub errors: Int,
    /// UDP datagrams sent (sender) or highest sequence seen (receiver).
    pub packets: Int,
    /// Always 0 when present.
    #[serde(default)]
    pub start_time: Num,
    /// Stream duration in seconds.
    #[serde(default)]
    pub end_time: Num,
}

/// A results document. Keys iperf3 may add and this crate does not use
/// (`congestion_used`, `server_output_text`, `server_output_json`, ...) are
/// skipped when reading and not written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// CPU use of the whole test, percent.
    pub cpu_util_total: Num,
    /// User-mode part, percent.
    pub cpu_util_user: Num,
    /// Kernel-mode part, percent.
    pub cpu_util_system: Num,
    /// -1: this side only received; 0: sent, no retransmit counter; 1: has one.
    pub sender_has_retransmits: Int,
    /// Per stream.
    pub streams: Vec<StreamResult>,
}

/// Parses a results document; `max_streams` bounds `streams[]`.
pub fn parse_results(bytes: &[u8], max_streams: usize) -> Result<Results, JsonError> {
    prescan(bytes)?;
    let (r, _): (Results, usize) = serde_json_core::from_slice(bytes).map_err(|_| JsonError::Malformed)?;
    if r.streams.len() > max_streams {
        return Err(JsonError::OutOfRange);
    }
    for s in &r.streams {
        if s.id.0 <= 0 || s.id.0 > i64::from(i32::MAX) || s.bytes.0 < -1 {
            return Err(JsonError::OutOfRange);
        }
    }
    Ok(r)
}

/// Serialises a results document.
pub fn write_results(r: &Results) -> Vec<u8> {
    to_vec(r, 256 + 192 * r.streams.len())
}

fn to_vec<T: Serialize>(v: &T, mut cap: usize) -> Vec<u8> {
    // Sizes are estimates; grow a bounded number of times if one is short.
    for _ in 0..4 {
        let mut buf = vec![0u8; cap];
        if let Ok(n) = serde_json_core::to_slice(v, &mut buf) {
            buf.truncate(n);
            return buf;
        }
        cap *= 4;
    }
    Vec::new()
}
