//! The kernel command line, parsed into typed options.
//!
//! The line is `key=value` words separated by spaces. Anything the kernel
//! does not understand is an error that names the offending key: a guest
//! that silently ignores a typo would run a different experiment than the
//! one its user asked for.

use core::fmt;
use core::net::Ipv4Addr;

/// What the kernel does after boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode<'a> {
    /// Print the boot summary and power off.
    Summary,
    /// Run the in-kernel tests: all non-isolated ones, or the one named.
    Test(TestSelection<'a>),
    /// Run a benchmark and print `BENCH` lines.
    Bench(Bench),
    /// Run a network application until it ends (or forever).
    App(App),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum App {
    /// The services, until `xl shutdown`: TCP and UDP echo on `net.port`,
    /// the stream sink on `net.sink` and the stream source on `net.source`.
    Echo,
    /// Send `net.bytes` to the echo service at `net.peer`:`net.port`,
    /// check what comes back (SHA-256), print the throughput, power off.
    Transfer,
    /// TCP_STREAM: send `net.bytes` to the sink at `net.peer`:`net.sink`,
    /// which answers with the byte count and SHA-256; print the throughput.
    Stream,
    /// TCP_RR: `net.count` request/response transactions of `net.msg`
    /// bytes with the echo at `net.peer`:`net.port`; print the rate and
    /// latency percentiles.
    Rr,
    /// Stream and RR to `net.peer` over the shared-memory channel, then
    /// over netfront, with the channel's setup and switch times.
    Netbench,
    /// The switch under load, both ways: streams to `net.peer`'s sink
    /// (or from its source, or request/response with its echo:
    /// `handover.load`) held on netfront after 1 MiB (or 500
    /// transactions), let back on the channel `handover.hold_ms` later,
    /// ended once back; detection once, then per run the times, the
    /// longest stall, the bytes sent again and the rate.
    Handover,
    /// An iperf3 (3.12 protocol) server on port 5201, or `net.port` when
    /// given, until `xl shutdown`.
    Iperf3,
    /// `net.reps` iperf3 tests to the iperf3 server at `net.peer` (port
    /// 5201, or `net.port`), shaped by the `iperf3.` keys (`-t`, `-n`,
    /// `-P`, `-R`, `-u`, `-b`, `-l`); print the throughput.
    Iperf3Client,
    /// Concurrent TCP streams of `net.bytes` each, one to the sink of each
    /// address of `net.peers` (an address twice: two flows to it); the
    /// aggregate and per-flow throughput (the study's mixtures). With
    /// `mix.rr=on`, TCP_RR flows to the echo instead: `net.count`
    /// transactions of `net.msg` bytes each; the rate and the latency
    /// percentiles, over all flows and per peer.
    Mix,
    /// TCP_MAERTS, the stream the other way: ask the source at
    /// `net.peer`:`net.source` for `net.bytes` and take them; it answers
    /// with the byte count and the `net.check` digest; print the throughput.
    Maerts,
    /// TCP_CRR: `net.count` transactions of `net.msg` bytes with the echo
    /// at `net.peer`:`net.port`, each on a new connection; print the rate
    /// and latency percentiles.
    Crr,
    /// UDP_RR: `net.count` request/response datagrams of `net.msg` bytes
    /// (at most 1472) with the UDP echo at `net.peer`:`net.port`; a
    /// datagram unanswered for 100 ms is lost, counted, and the next goes.
    UdpRr,
}

/// Network settings. Without `net.ip` the address comes from DHCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetOptions {
    pub ip: Option<Ipv4Cidr>,
    pub gateway: Option<[u8; 4]>,
    pub port: u16,
    /// The stream sink's port.
    pub sink: u16,
    /// The stream source's port (MAERTS).
    pub source: u16,
    pub peer: Option<[u8; 4]>,
    pub bytes: u64,
    /// TCP_RR transactions.
    pub count: u32,
    /// TCP_RR request and response size.
    pub msg: u32,
    /// How many times the measuring clients repeat each measurement.
    pub reps: u32,
    /// The netfront offloads to use where netback agrees.
    pub offload: Offload,
    /// TCP congestion control of every socket.
    pub cc: CongestionControl,
    /// What `app=stream` asks the sink to check.
    pub check: StreamCheck,
    /// The test `app=iperf3-client` asks for.
    pub iperf3: Iperf3Test,
    /// `app=mix`'s flows: one peer address each.
    pub peers: Peers,
    /// The `mix.` keys: what `app=mix`'s flows do.
    pub mix: MixOptions,
    /// `handover.hold_ms`: how long `app=handover` keeps its stream on
    /// netfront before it lets the channel come back.
    pub handover_hold_ms: u32,
    /// `handover.load`: what `app=handover` moves while it switches.
    pub handover_load: HandoverLoad,
}

/// `handover.load=`: a stream to the sink (`stream`, the default), from
/// the source (`maerts`), or request/response with the echo (`rr`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HandoverLoad {
    #[default]
    Stream,
    Maerts,
    Rr,
}

/// `handover.hold_ms`'s default: longer than a peer waits before it offers
/// a closed channel again (the channel manager's 500 ms), so that the
/// release times the channel's setup, not that wait.
pub const HANDOVER_HOLD_MS: u32 = 1000;

/// The `mix.` keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MixOptions {
    /// `mix.rr`: TCP_RR flows to the echo instead of streams to the sink.
    pub rr: bool,
}

/// `net.peers`: 1 to `PEERS_MAX` addresses, comma-separated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Peers {
    addrs: [[u8; 4]; PEERS_MAX],
    len: usize,
}

/// `net.peers` at most (a sink serves 4 streams at once: two peers' worth).
pub const PEERS_MAX: usize = 8;

impl Peers {
    pub fn as_slice(&self) -> &[[u8; 4]] {
        &self.addrs[..self.len]
    }
}

/// The `iperf3.` keys: the test `app=iperf3-client` asks the server for,
/// named after iperf3's own options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iperf3Test {
    /// `-t`: seconds; 0 means `-n net.bytes` ends the test instead.
    pub time_s: u32,
    /// `-P`: streams.
    pub parallel: u16,
    /// `-R`: the server sends.
    pub reverse: bool,
    /// `-u`: UDP instead of TCP.
    pub udp: bool,
    /// `-b`: bit/s per stream; 0 means iperf3's default (unlimited for
    /// TCP, 1 Mbit/s for UDP).
    pub bitrate: u64,
    /// `-l`: bytes per write or datagram; 0 means iperf3's default (128 KiB
    /// for TCP, 1460 for UDP).
    pub len: u32,
}

impl Default for Iperf3Test {
    fn default() -> Self {
        Iperf3Test { time_s: 0, parallel: 1, reverse: false, udp: false, bitrate: 0, len: 0 }
    }
}

/// `iperf3.time` at most (an hour: a measurement, not a soak).
pub const IPERF3_TIME_MAX: u32 = 3600;
/// `iperf3.parallel` at most (what Cohort's iperf3 server takes too).
pub const IPERF3_PARALLEL_MAX: u32 = 16;
/// `iperf3.len` at most (iperf3's own limit for TCP blocks).
pub const IPERF3_LEN_MAX: u32 = 1 << 20;
/// `iperf3.bitrate` at most: 100 Gbit/s.
pub const IPERF3_BITRATE_MAX: u64 = 100_000_000_000;

/// `net.check=`: SHA-256 of the data (correctness), or the count alone
/// (throughput: hashing in software would be what is measured).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamCheck {
    Sha256,
    Fnv,
    Count,
}

/// `net.cc=`: smoltcp's congestion control (its CUBIC needs std).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CongestionControl {
    None,
    Reno,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            ip: None,
            gateway: None,
            port: 7,
            sink: 9,
            // chargen's: the service that sends.
            source: 19,
            peer: None,
            bytes: 16 << 20,
            count: 2000,
            msg: 1,
            reps: 1,
            offload: Offload::ALL,
            cc: CongestionControl::None,
            check: StreamCheck::Sha256,
            iperf3: Iperf3Test::default(),
            peers: Peers::default(),
            mix: MixOptions::default(),
            handover_hold_ms: HANDOVER_HOLD_MS,
            handover_load: HandoverLoad::Stream,
        }
    }
}

/// netfront's offloads (`net.offload=`): scatter-gather, checksum offload,
/// TCPv4 segmentation offload (which needs the other two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offload {
    pub sg: bool,
    pub csum: bool,
    pub gso: bool,
}

impl Offload {
    pub const ALL: Offload = Offload { sg: true, csum: true, gso: true };
    pub const NONE: Offload = Offload { sg: false, csum: false, gso: false };
}

pub const NET_REPS_MAX: u32 = 100;

/// The shared-memory channel to co-resident peers (Xen only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelOptions<'a> {
    /// Advertise in this group; without it, no channel is ever made.
    pub group: Option<&'a str>,
    /// Pages of each transmit ring (a power of two, 1 to `CHAN_PAGES_MAX`).
    pub pages: u32,
    /// Receivers poll their rings instead of asking for events.
    pub poll: bool,
    /// Microseconds to keep polling after a frame on a channel before
    /// asking for events and blocking (0: block at once).
    pub spin_us: u32,
    /// The largest IP packet on a channel (the interface's MTU when larger
    /// than netfront's 1500; TCP packets for netfront then go with GSO, or
    /// are cut).
    pub mtu: u32,
}

/// The defaults come from `./run.sh bench` (README, "Benchmarks"): 32 KiB
/// frames in 64-page rings streamed fastest, and a 25 us busy-poll window
/// answered the most transactions.
impl Default for ChannelOptions<'_> {
    fn default() -> Self {
        ChannelOptions { group: None, pages: 64, poll: false, spin_us: SPIN_US_DEFAULT, mtu: 32768 }
    }
}

/// `chan.spin` unless given, and at most.
pub const SPIN_US_DEFAULT: u32 = 25;
pub const SPIN_US_MAX: u32 = 100_000;
/// `chan.pages` at most: the channel's largest ring
/// (`channel::layout::MAX_RING_PAGES`; the kernel checks they agree).
pub const CHAN_PAGES_MAX: u32 = 64;
/// `chan.mtu` at least (Ethernet's) and at most (the channel's largest
/// frame, `channel::ring::MAX_CHANNEL_FRAME`, less its Ethernet header; the
/// kernel checks they agree).
pub const CHAN_MTU_MIN: u32 = 1500;
pub const CHAN_MTU_MAX: u32 = 65_536;

/// `net.count` at most.
pub const NET_COUNT_MAX: u32 = 10_000_000;
/// `net.msg` at most.
pub const NET_MSG_MAX: u32 = 65_536;
/// Longest group name (as `discovery::Group` accepts).
pub const GROUP_MAX: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Cidr {
    pub addr: [u8; 4],
    pub prefix: u8,
}

/// `net.bytes` at most: a transfer is a measurement, not a soak test.
pub const NET_BYTES_MAX: u64 = 1 << 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestSelection<'a> {
    All,
    Named(&'a str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bench {
    /// Boot-time figures: entry → `kernel_main`, memory in use at idle.
    Boot,
    /// Xen primitives: hypercall round trip, grant map/unmap.
    Xen,
    /// Event-channel ping-pong with the peer in `data/peer`: this side
    /// measures, the `EvtchnPong` side answers.
    EvtchnPing,
    EvtchnPong,
}

/// What the guest's clock counts, for the `clock` field of BENCH lines:
/// the harness sets `bench.clock=virtual` when QEMU runs with `-icount`.
pub use figures::Clock as BenchClock;

/// Log verbosity, mirrored onto the `log` crate's filter by the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// Every option the kernel understands, with its default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options<'a> {
    pub mode: Mode<'a>,
    pub log_level: LogLevel,
    /// Periodic timer frequency.
    pub timer_hz: u32,
    pub bench_clock: BenchClock,
    pub net: NetOptions,
    pub chan: ChannelOptions<'a>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            mode: Mode::Summary,
            log_level: LogLevel::Info,
            timer_hz: 100,
            bench_clock: BenchClock::Wall,
            net: NetOptions::default(),
            chan: ChannelOptions::default(),
        }
    }
}

/// The keys `parse` accepts, in the order the error message lists them.
pub const KNOWN_KEYS: &[&str] = &[
    "test",
    "bench",
    "bench.clock",
    "app",
    "log",
    "timer.hz",
    "net.ip",
    "net.gw",
    "net.port",
    "net.sink",
    "net.source",
    "net.peer",
    "net.bytes",
    "net.count",
    "net.msg",
    "net.reps",
    "net.offload",
    "net.cc",
    "net.check",
    "net.group",
    "net.peers",
    "mix.rr",
    "handover.hold_ms",
    "handover.load",
    "iperf3.time",
    "iperf3.parallel",
    "iperf3.reverse",
    "iperf3.udp",
    "iperf3.bitrate",
    "iperf3.len",
    "chan.pages",
    "chan.poll",
    "chan.spin",
    "chan.mtu",
];

pub const TIMER_HZ_MAX: u32 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error<'a> {
    UnknownKey {
        key: &'a str,
    },
    MissingValue {
        key: &'a str,
    },
    BadValue {
        key: &'a str,
        value: &'a str,
        expected: &'static str,
    },
    Duplicate {
        key: &'a str,
    },
    /// `test=`, `bench=` and `app=` each choose what the kernel runs: one
    /// at most.
    ConflictingModes,
}

impl Error<'_> {
    /// The key the error is about, if it is about one.
    pub fn key(&self) -> Option<&str> {
        match *self {
            Error::UnknownKey { key } | Error::MissingValue { key } | Error::BadValue { key, .. } | Error::Duplicate { key } => {
                Some(key)
            }
            Error::ConflictingModes => None,
        }
    }
}

impl fmt::Display for Error<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownKey { key } => {
                write!(f, "unknown option `{key}` (known options:")?;
                for known in KNOWN_KEYS {
                    write!(f, " {known}")?;
                }
                write!(f, ")")
            }
            Error::MissingValue { key } => write!(f, "option `{key}` needs a value: write `{key}=VALUE`"),
            Error::BadValue { key, value, expected } => {
                write!(f, "option `{key}`: bad value `{value}` (expected {expected})")
            }
            Error::Duplicate { key } => write!(f, "option `{key}` is given twice"),
            Error::ConflictingModes => write!(f, "options `test`, `bench` and `app` cannot be combined"),
        }
    }
}

/// Parses a whole command line. Empty input gives the defaults.
pub fn parse(line: &str) -> Result<Options<'_>, Error<'_>> {
    let mut options = Options::default();
    let mut seen = [false; KNOWN_KEYS.len()];
    for word in line.split_ascii_whitespace() {
        let (key, value) = split_option(word, &mut seen)?;
        apply(&mut options, key, value)?;
    }
    Ok(options)
}

/// `key=value`, for a known key not seen before (marked seen now) with a
/// value.
fn split_option<'a>(word: &'a str, seen: &mut [bool; KNOWN_KEYS.len()]) -> Result<(&'a str, &'a str), Error<'a>> {
    let (key, value) = match word.split_once('=') {
        Some(kv) => kv,
        None if KNOWN_KEYS.contains(&word) => return Err(Error::MissingValue { key: word }),
        None => return Err(Error::UnknownKey { key: word }),
    };
    let index = KNOWN_KEYS.iter().position(|k| *k == key).ok_or(Error::UnknownKey { key })?;
    if core::mem::replace(&mut seen[index], true) {
        return Err(Error::Duplicate { key });
    }
    if value.is_empty() {
        return Err(Error::MissingValue { key });
    }
    Ok((key, value))
}

/// Sets the option `key` from `value`.
fn apply<'a>(options: &mut Options<'a>, key: &'a str, value: &'a str) -> Result<(), Error<'a>> {
    match key {
        "test" | "bench" | "app" => set_mode(options, parse_mode(key, value)?)?,
        "bench.clock" => options.bench_clock = parse_bench_clock(key, value)?,
        "log" => options.log_level = parse_log_level(key, value)?,
        "timer.hz" => options.timer_hz = parse_timer_hz(key, value)?,
        "net.group" => options.chan.group = Some(parse_group(key, value)?),
        _ if key.starts_with("net.") => apply_net(&mut options.net, key, value)?,
        _ if key.starts_with("chan.") => apply_chan(&mut options.chan, key, value)?,
        _ if key.starts_with("iperf3.") => apply_iperf3(&mut options.net.iperf3, key, value)?,
        _ if key.starts_with("mix.") => apply_mix(&mut options.net.mix, key, value)?,
        "handover.hold_ms" => options.net.handover_hold_ms = parse_range(key, value, 1, 60_000, "milliseconds from 1 to 60000")?,
        "handover.load" => options.net.handover_load = parse_handover_load(key, value)?,
        _ => unreachable_key(key)?,
    }
    Ok(())
}

/// What `test=`, `bench=` or `app=` asks the kernel to do.
fn parse_mode<'a>(key: &'a str, value: &'a str) -> Result<Mode<'a>, Error<'a>> {
    Ok(match key {
        "test" => Mode::Test(parse_test(key, value)?),
        "bench" => Mode::Bench(parse_bench(key, value)?),
        "app" => Mode::App(parse_app(key, value)?),
        _ => return unreachable_key(key),
    })
}

/// Sets the `net.` option `key` from `value`.
fn apply_net<'a>(net: &mut NetOptions, key: &'a str, value: &'a str) -> Result<(), Error<'a>> {
    match key {
        "net.ip" => net.ip = Some(parse_cidr(key, value)?),
        "net.gw" => net.gateway = Some(parse_ipv4(key, value)?),
        "net.peer" => net.peer = Some(parse_ipv4(key, value)?),
        "net.port" => net.port = parse_port(key, value)?,
        "net.sink" => net.sink = parse_port(key, value)?,
        "net.source" => net.source = parse_port(key, value)?,
        "net.bytes" => net.bytes = parse_net_bytes(key, value)?,
        "net.count" => net.count = parse_range(key, value, 1, NET_COUNT_MAX, "a count from 1 to 10000000")?,
        "net.msg" => net.msg = parse_range(key, value, 1, NET_MSG_MAX, "a size from 1 to 65536 bytes")?,
        "net.reps" => net.reps = parse_range(key, value, 1, NET_REPS_MAX, "a count from 1 to 100")?,
        "net.offload" => net.offload = parse_offload(key, value)?,
        "net.check" => net.check = parse_check(key, value)?,
        "net.cc" => net.cc = parse_cc(key, value)?,
        "net.peers" => net.peers = parse_peers(key, value)?,
        _ => return unreachable_key(key),
    }
    Ok(())
}

/// Sets the `iperf3.` option `key` from `value`.
fn apply_iperf3<'a>(test: &mut Iperf3Test, key: &'a str, value: &'a str) -> Result<(), Error<'a>> {
    match key {
        "iperf3.time" => test.time_s = parse_range(key, value, 1, IPERF3_TIME_MAX, "seconds from 1 to 3600")?,
        "iperf3.parallel" => {
            test.parallel = parse_range(key, value, 1, IPERF3_PARALLEL_MAX, "a stream count from 1 to 16")? as u16
        }
        "iperf3.reverse" => test.reverse = parse_on_off(key, value)?,
        "iperf3.udp" => test.udp = parse_on_off(key, value)?,
        "iperf3.bitrate" => test.bitrate = parse_bitrate(key, value)?,
        "iperf3.len" => test.len = parse_range(key, value, 1, IPERF3_LEN_MAX, "a size from 1 to 1048576 bytes")?,
        _ => return unreachable_key(key),
    }
    Ok(())
}

/// Sets the `mix.` option `key` from `value`.
fn apply_mix<'a>(mix: &mut MixOptions, key: &'a str, value: &'a str) -> Result<(), Error<'a>> {
    match key {
        "mix.rr" => mix.rr = parse_on_off(key, value)?,
        _ => return unreachable_key(key),
    }
    Ok(())
}

/// Bits per second, with iperf3's suffixes K, M, G (powers of 1000).
fn parse_bitrate<'a>(key: &'a str, value: &'a str) -> Result<u64, Error<'a>> {
    let bad = Error::BadValue { key, value, expected: "bit/s from 1 to 100G, with an optional K, M or G suffix" };
    let (digits, scale) = match value.as_bytes().last() {
        Some(b'K' | b'k') => (&value[..value.len() - 1], 1_000),
        Some(b'M' | b'm') => (&value[..value.len() - 1], 1_000_000),
        Some(b'G' | b'g') => (&value[..value.len() - 1], 1_000_000_000),
        _ => (value, 1),
    };
    let n = digits.parse::<u64>().map_err(|_| bad)?;
    match n.checked_mul(scale) {
        Some(bps) if (1..=IPERF3_BITRATE_MAX).contains(&bps) => Ok(bps),
        _ => Err(bad),
    }
}

/// Sets the `chan.` option `key` from `value`.
fn apply_chan<'a>(chan: &mut ChannelOptions<'a>, key: &'a str, value: &'a str) -> Result<(), Error<'a>> {
    match key {
        "chan.pages" => chan.pages = parse_chan_pages(key, value)?,
        "chan.mtu" => chan.mtu = parse_range(key, value, CHAN_MTU_MIN, CHAN_MTU_MAX, "an MTU from 1500 to 65536")?,
        "chan.spin" => chan.spin_us = parse_range(key, value, 0, SPIN_US_MAX, "0 to 100000 microseconds")?,
        "chan.poll" => chan.poll = parse_on_off(key, value)?,
        _ => return unreachable_key(key),
    }
    Ok(())
}

fn parse_bench<'a>(key: &'a str, value: &'a str) -> Result<Bench, Error<'a>> {
    Ok(match value {
        "boot" => Bench::Boot,
        "xen" => Bench::Xen,
        "evtchn_ping" => Bench::EvtchnPing,
        "evtchn_pong" => Bench::EvtchnPong,
        _ => return Err(Error::BadValue { key, value, expected: "`boot`, `xen`, `evtchn_ping` or `evtchn_pong`" }),
    })
}

fn parse_bench_clock<'a>(key: &'a str, value: &'a str) -> Result<BenchClock, Error<'a>> {
    BenchClock::parse(value).ok_or(Error::BadValue { key, value, expected: "`wall` or `virtual`" })
}

fn parse_app<'a>(key: &'a str, value: &'a str) -> Result<App, Error<'a>> {
    Ok(match value {
        "echo" => App::Echo,
        "transfer" => App::Transfer,
        "stream" => App::Stream,
        "rr" => App::Rr,
        "netbench" => App::Netbench,
        "handover" => App::Handover,
        "iperf3" => App::Iperf3,
        "iperf3-client" => App::Iperf3Client,
        "mix" => App::Mix,
        "maerts" => App::Maerts,
        "crr" => App::Crr,
        "udp-rr" => App::UdpRr,
        _ => return Err(Error::BadValue {
            key,
            value,
            expected:
                "`echo`, `transfer`, `stream`, `rr`, `netbench`, `handover`, `iperf3`, `iperf3-client`, `mix`, `maerts`, `crr` or `udp-rr`",
        }),
    })
}

fn parse_check<'a>(key: &'a str, value: &'a str) -> Result<StreamCheck, Error<'a>> {
    Ok(match value {
        "sha256" => StreamCheck::Sha256,
        "fnv" => StreamCheck::Fnv,
        "count" => StreamCheck::Count,
        _ => return Err(Error::BadValue { key, value, expected: "`sha256`, `fnv` or `count`" }),
    })
}

fn parse_handover_load<'a>(key: &'a str, value: &'a str) -> Result<HandoverLoad, Error<'a>> {
    Ok(match value {
        "stream" => HandoverLoad::Stream,
        "maerts" => HandoverLoad::Maerts,
        "rr" => HandoverLoad::Rr,
        _ => return Err(Error::BadValue { key, value, expected: "`stream`, `maerts` or `rr`" }),
    })
}

fn parse_cc<'a>(key: &'a str, value: &'a str) -> Result<CongestionControl, Error<'a>> {
    Ok(match value {
        "none" => CongestionControl::None,
        "reno" => CongestionControl::Reno,
        _ => return Err(Error::BadValue { key, value, expected: "`none` or `reno`" }),
    })
}

fn parse_group<'a>(key: &'a str, value: &'a str) -> Result<&'a str, Error<'a>> {
    let valid = (1..=GROUP_MAX).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !valid {
        return Err(Error::BadValue { key, value, expected: "a group name of 1-32 of A-Z a-z 0-9 . _ -" });
    }
    Ok(value)
}

fn parse_chan_pages<'a>(key: &'a str, value: &'a str) -> Result<u32, Error<'a>> {
    match value.parse::<u32>() {
        Ok(n) if n.is_power_of_two() && n <= CHAN_PAGES_MAX => Ok(n),
        _ => Err(Error::BadValue { key, value, expected: "1, 2, 4, 8, 16, 32 or 64" }),
    }
}

fn parse_on_off<'a>(key: &'a str, value: &'a str) -> Result<bool, Error<'a>> {
    match value {
        "on" | "1" => Ok(true),
        "off" | "0" => Ok(false),
        _ => Err(Error::BadValue { key, value, expected: "`on` or `off`" }),
    }
}

fn parse_net_bytes<'a>(key: &'a str, value: &'a str) -> Result<u64, Error<'a>> {
    match value.parse::<u64>() {
        Ok(n) if (1..=NET_BYTES_MAX).contains(&n) => Ok(n),
        _ => Err(Error::BadValue { key, value, expected: "a byte count from 1 to 2^30" }),
    }
}

/// `all`, `none`, or a comma-separated list of `sg`, `csum`, `gso` (GSO
/// needs the other two).
fn parse_offload<'a>(key: &'a str, value: &'a str) -> Result<Offload, Error<'a>> {
    let bad = Error::BadValue { key, value, expected: "`all`, `none`, or a list of `sg`, `csum`, `gso` (gso needs sg,csum)" };
    match value {
        "all" => return Ok(Offload::ALL),
        "none" => return Ok(Offload::NONE),
        _ => {}
    }
    let mut o = Offload::NONE;
    for part in value.split(',') {
        let flag = match part {
            "sg" => &mut o.sg,
            "csum" => &mut o.csum,
            "gso" => &mut o.gso,
            _ => return Err(bad),
        };
        if core::mem::replace(flag, true) {
            return Err(bad);
        }
    }
    if o.gso && !(o.sg && o.csum) {
        return Err(bad);
    }
    Ok(o)
}

fn set_mode<'a>(options: &mut Options<'a>, mode: Mode<'a>) -> Result<(), Error<'a>> {
    if options.mode != Mode::Summary {
        return Err(Error::ConflictingModes);
    }
    options.mode = mode;
    Ok(())
}

fn parse_port<'a>(key: &'a str, value: &'a str) -> Result<u16, Error<'a>> {
    match value.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(Error::BadValue { key, value, expected: "a port from 1 to 65535" }),
    }
}

fn parse_range<'a>(key: &'a str, value: &'a str, min: u32, max: u32, expected: &'static str) -> Result<u32, Error<'a>> {
    match value.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Error::BadValue { key, value, expected }),
    }
}

/// `a.b.c.d`, four decimal octets (core's parser: no sign, no leading
/// zero, which inet_aton would read as octal).
fn parse_ipv4<'a>(key: &'a str, value: &'a str) -> Result<[u8; 4], Error<'a>> {
    match value.parse::<Ipv4Addr>() {
        Ok(addr) => Ok(addr.octets()),
        Err(_) => Err(Error::BadValue { key, value, expected: "an IPv4 address a.b.c.d" }),
    }
}

fn parse_peers<'a>(key: &'a str, value: &'a str) -> Result<Peers, Error<'a>> {
    let mut peers = Peers::default();
    for part in value.split(',') {
        let slot = peers.addrs.get_mut(peers.len).ok_or(Error::BadValue {
            key,
            value,
            expected: "1 to 8 IPv4 addresses, a.b.c.d,e.f.g.h",
        })?;
        *slot = parse_ipv4(key, part).map_err(|_| Error::BadValue {
            key,
            value,
            expected: "1 to 8 IPv4 addresses, a.b.c.d,e.f.g.h",
        })?;
        peers.len += 1;
    }
    Ok(peers)
}

fn parse_cidr<'a>(key: &'a str, value: &'a str) -> Result<Ipv4Cidr, Error<'a>> {
    let bad = Error::BadValue { key, value, expected: "an IPv4 address with prefix length, a.b.c.d/n" };
    let (addr, prefix) = value.split_once('/').ok_or(bad)?;
    let addr = parse_ipv4(key, addr).map_err(|_| bad)?;
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    match prefix.parse::<u8>() {
        Ok(prefix) if prefix <= 32 => Ok(Ipv4Cidr { addr, prefix }),
        _ => Err(bad),
    }
}

// KNOWN_KEYS and the matches in `apply`, `parse_mode`, `apply_net` and
// `apply_chan` must list the same keys; a key in one but not the others is
// reported rather than panicking.
fn unreachable_key<T>(key: &str) -> Result<T, Error<'_>> {
    Err(Error::UnknownKey { key })
}

fn parse_test<'a>(key: &'a str, value: &'a str) -> Result<TestSelection<'a>, Error<'a>> {
    if value == "all" {
        return Ok(TestSelection::All);
    }
    let valid = value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return Err(Error::BadValue { key, value, expected: "`all` or a test name of [a-z0-9_]" });
    }
    Ok(TestSelection::Named(value))
}

fn parse_log_level<'a>(key: &'a str, value: &'a str) -> Result<LogLevel, Error<'a>> {
    Ok(match value {
        "error" => LogLevel::Error,
        "warn" => LogLevel::Warn,
        "info" => LogLevel::Info,
        "debug" => LogLevel::Debug,
        "trace" => LogLevel::Trace,
        _ => return Err(Error::BadValue { key, value, expected: "one of error, warn, info, debug, trace" }),
    })
}

fn parse_timer_hz<'a>(key: &'a str, value: &'a str) -> Result<u32, Error<'a>> {
    const EXPECTED: &str = "an integer from 1 to 10000";
    match value.parse::<u32>() {
        Ok(hz) if (1..=TIMER_HZ_MAX).contains(&hz) => Ok(hz),
        _ => Err(Error::BadValue { key, value, expected: EXPECTED }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn empty_line_gives_defaults() {
        assert_eq!(parse(""), Ok(Options::default()));
        assert_eq!(parse("   \t "), Ok(Options::default()));
    }

    #[test]
    fn parses_every_option() {
        let o = parse("test=all log=debug timer.hz=250 bench.clock=virtual").unwrap();
        assert_eq!(o.bench_clock, BenchClock::Virtual);
        assert_eq!(o.mode, Mode::Test(TestSelection::All));
        assert_eq!(o.log_level, LogLevel::Debug);
        assert_eq!(o.timer_hz, 250);
        assert_eq!(parse("test=heap_alloc").unwrap().mode, Mode::Test(TestSelection::Named("heap_alloc")));
        assert_eq!(parse("bench=boot").unwrap().mode, Mode::Bench(Bench::Boot));
        assert_eq!(parse("bench=evtchn_pong").unwrap().mode, Mode::Bench(Bench::EvtchnPong));
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse("log=info bad.key=1").unwrap_err();
        assert_eq!(err, Error::UnknownKey { key: "bad.key" });
        let text = err.to_string();
        assert!(text.contains("`bad.key`"), "{text}");
        assert!(text.contains("timer.hz"), "message lists the known keys: {text}");
    }

    #[test]
    fn bare_word_is_unknown_or_missing_value() {
        assert_eq!(parse("quiet"), Err(Error::UnknownKey { key: "quiet" }));
        assert_eq!(parse("log"), Err(Error::MissingValue { key: "log" }));
        assert_eq!(parse("log="), Err(Error::MissingValue { key: "log" }));
    }

    #[test]
    fn malformed_values_name_key_and_value() {
        for (line, key, value) in [
            ("timer.hz=abc", "timer.hz", "abc"),
            ("timer.hz=0", "timer.hz", "0"),
            ("timer.hz=10001", "timer.hz", "10001"),
            ("timer.hz=-5", "timer.hz", "-5"),
            ("timer.hz=99999999999999999999", "timer.hz", "99999999999999999999"),
            ("log=loud", "log", "loud"),
            ("bench=everything", "bench", "everything"),
            ("test=Heap", "test", "Heap"),
            ("test=a/b", "test", "a/b"),
        ] {
            match parse(line) {
                Err(Error::BadValue { key: k, value: v, .. }) => {
                    assert_eq!((k, v), (key, value), "{line}");
                }
                other => panic!("{line}: expected BadValue, got {other:?}"),
            }
        }
        assert_eq!(parse("timer.hz=10000").unwrap().timer_hz, 10_000);
        assert_eq!(parse("timer.hz=1").unwrap().timer_hz, 1);
    }

    #[test]
    fn parses_network_options() {
        let o = parse("app=echo net.ip=198.18.0.10/15 net.gw=198.18.0.1 net.port=7007").unwrap();
        assert_eq!(o.mode, Mode::App(App::Echo));
        assert_eq!(o.net.ip, Some(Ipv4Cidr { addr: [198, 18, 0, 10], prefix: 15 }));
        assert_eq!(o.net.gateway, Some([198, 18, 0, 1]));
        assert_eq!(o.net.port, 7007);
        let o = parse("app=transfer net.peer=198.18.0.11 net.bytes=1024").unwrap();
        assert_eq!((o.net.peer, o.net.bytes), (Some([198, 18, 0, 11]), 1024));
        assert_eq!(parse("").unwrap().net, NetOptions::default());
        let o = parse("app=netbench net.group=lab-1 chan.pages=4 chan.poll=on chan.spin=50 chan.mtu=9000 net.count=10 net.msg=64 net.sink=19")
            .unwrap();
        assert_eq!(o.mode, Mode::App(App::Netbench));
        assert_eq!(o.chan, ChannelOptions { group: Some("lab-1"), pages: 4, poll: true, spin_us: 50, mtu: 9000 });
        assert_eq!((o.net.count, o.net.msg, o.net.sink), (10, 64, 19));
        assert_eq!(parse("app=stream").unwrap().mode, Mode::App(App::Stream));
        assert_eq!(parse("app=rr").unwrap().mode, Mode::App(App::Rr));
        assert_eq!(parse("app=handover").unwrap().mode, Mode::App(App::Handover));
        assert_eq!(parse("app=iperf3").unwrap().mode, Mode::App(App::Iperf3));
        assert_eq!(parse("app=iperf3-client").unwrap().mode, Mode::App(App::Iperf3Client));
        assert_eq!(parse("").unwrap().chan, ChannelOptions::default());
        assert_eq!(parse("net.reps=5").unwrap().net.reps, 5);
        assert_eq!(parse("").unwrap().net.offload, Offload::ALL);
        assert_eq!(parse("net.offload=none").unwrap().net.offload, Offload::NONE);
        assert_eq!(parse("net.offload=csum,sg").unwrap().net.offload, Offload { sg: true, csum: true, gso: false });
        assert_eq!(parse("net.offload=gso,sg,csum").unwrap().net.offload, Offload::ALL);
        assert_eq!(parse("net.cc=reno").unwrap().net.cc, CongestionControl::Reno);
        assert_eq!(parse("net.check=count").unwrap().net.check, StreamCheck::Count);
        assert_eq!(parse("").unwrap().net.cc, CongestionControl::None);
    }

    #[test]
    fn malformed_addresses_are_rejected() {
        for line in [
            "net.ip=198.18.0.10",
            "net.ip=198.18.0.10/33",
            "net.ip=198.18.0/15",
            "net.ip=198.18.0.256/15",
            "net.ip=198.18.0.1.2/15",
            "net.ip=+198.18.0.1/15",
            "net.ip=198.18.0.1/+8",
            "net.ip=198.18.0.1/",
            "net.gw=a.b.c.d",
            "net.peer=1..2.3",
            "net.peer=1.2.3",
            "net.peer=1.2.3.4.",
            "net.peer=1.2.3.-4",
            "net.gw=1.2.3.0004",
            "net.gw=198.018.0.1",
            "net.port=0",
            "net.port=65536",
            "net.bytes=0",
            "net.bytes=2000000000",
            "app=ftp",
            "net.group=a/b",
            "net.group=123456789012345678901234567890123",
            "chan.pages=3",
            "chan.pages=128",
            "chan.pages=0",
            "chan.poll=yes",
            "chan.spin=100001",
            "chan.spin=-1",
            "chan.mtu=1499",
            "chan.mtu=65537",
            "net.count=0",
            "net.msg=65537",
            "net.sink=0",
            "net.source=65536",
            "net.reps=0",
            "net.reps=101",
            "net.offload=gso",
            "net.offload=sg,gso",
            "net.offload=sg,sg",
            "net.offload=tso",
            "net.offload=sg,",
            "net.cc=bbr",
            "net.cc=cubic",
            "net.check=md5",
        ] {
            let key = line.split('=').next().unwrap();
            match parse(line) {
                Err(Error::BadValue { key: k, .. }) => assert_eq!(k, key, "{line}"),
                other => panic!("{line}: expected BadValue, got {other:?}"),
            }
        }
        assert_eq!(parse("app=echo test=all"), Err(Error::ConflictingModes));
    }

    #[test]
    fn addresses_and_their_messages() {
        assert_eq!(parse("net.peer=0.0.0.0").unwrap().net.peer, Some([0, 0, 0, 0]));
        assert_eq!(parse("net.gw=255.255.255.255").unwrap().net.gateway, Some([255; 4]));
        assert_eq!(parse("net.ip=10.0.0.1/0").unwrap().net.ip, Some(Ipv4Cidr { addr: [10, 0, 0, 1], prefix: 0 }));
        assert_eq!(parse("net.ip=10.0.0.1/32").unwrap().net.ip, Some(Ipv4Cidr { addr: [10, 0, 0, 1], prefix: 32 }));
        assert_eq!(
            parse("net.peer=1.2.3").unwrap_err().to_string(),
            "option `net.peer`: bad value `1.2.3` (expected an IPv4 address a.b.c.d)"
        );
        assert_eq!(
            parse("net.ip=1.2.3.256/8").unwrap_err().to_string(),
            "option `net.ip`: bad value `1.2.3.256/8` (expected an IPv4 address with prefix length, a.b.c.d/n)"
        );
    }

    #[test]
    fn iperf3_keys_shape_the_client_test() {
        let o = parse("app=iperf3-client iperf3.time=2 iperf3.parallel=4 iperf3.reverse=on").unwrap();
        let t = o.net.iperf3;
        assert_eq!((t.time_s, t.parallel, t.reverse, t.udp), (2, 4, true, false));
        let t = parse("iperf3.udp=1 iperf3.bitrate=10M iperf3.len=1400").unwrap().net.iperf3;
        assert_eq!((t.udp, t.bitrate, t.len), (true, 10_000_000, 1400));
        assert_eq!(parse("iperf3.bitrate=1500").unwrap().net.iperf3.bitrate, 1500);
        assert_eq!(parse("iperf3.bitrate=2g").unwrap().net.iperf3.bitrate, 2_000_000_000);
        assert_eq!(parse("").unwrap().net.iperf3, Iperf3Test::default());
        for (line, key) in [
            ("iperf3.time=0", "iperf3.time"),
            ("iperf3.time=3601", "iperf3.time"),
            ("iperf3.parallel=0", "iperf3.parallel"),
            ("iperf3.parallel=17", "iperf3.parallel"),
            ("iperf3.reverse=yes", "iperf3.reverse"),
            ("iperf3.bitrate=0", "iperf3.bitrate"),
            ("iperf3.bitrate=M", "iperf3.bitrate"),
            ("iperf3.bitrate=101G", "iperf3.bitrate"),
            ("iperf3.bitrate=99999999999999999G", "iperf3.bitrate"),
            ("iperf3.len=0", "iperf3.len"),
            ("iperf3.len=1048577", "iperf3.len"),
        ] {
            assert!(matches!(parse(line), Err(Error::BadValue { key: k, .. }) if k == key), "{line}: {:?}", parse(line));
        }
    }

    #[test]
    fn channel_limits_and_their_messages_agree() {
        let mut pages = std::vec::Vec::new();
        let mut n = 1;
        while n <= CHAN_PAGES_MAX {
            assert_eq!(parse(&std::format!("chan.pages={n}")).unwrap().chan.pages, n);
            pages.push(n.to_string());
            n *= 2;
        }
        let listed = std::format!("{} or {}", pages[..pages.len() - 1].join(", "), pages[pages.len() - 1]);
        let too_many = std::format!("chan.pages={n}");
        let err = parse(&too_many).unwrap_err();
        assert!(matches!(err, Error::BadValue { expected, .. } if expected == listed), "{err:?}");
        // The error names the value; the kernel's console shows the message.
        let mtu = |v: u32| parse(&std::format!("chan.mtu={v}")).map(|o| o.chan.mtu).map_err(|e| e.to_string());
        assert_eq!((mtu(CHAN_MTU_MIN), mtu(CHAN_MTU_MAX)), (Ok(CHAN_MTU_MIN), Ok(CHAN_MTU_MAX)));
        let expected = std::format!("(expected an MTU from {CHAN_MTU_MIN} to {CHAN_MTU_MAX})");
        assert!(mtu(CHAN_MTU_MAX + 1).unwrap_err().ends_with(&expected));
        assert!(mtu(CHAN_MTU_MIN - 1).unwrap_err().ends_with(&expected));
    }

    #[test]
    fn duplicates_and_conflicts_are_rejected() {
        assert_eq!(parse("log=info log=warn"), Err(Error::Duplicate { key: "log" }));
        assert_eq!(parse("test=all bench=boot"), Err(Error::ConflictingModes));
        assert_eq!(Error::ConflictingModes.key(), None);
        assert_eq!(Error::Duplicate { key: "log" }.key(), Some("log"));
    }

    #[test]
    fn maerts_and_crr_are_apps_and_the_source_has_a_port() {
        let o = parse("app=maerts net.source=1919").unwrap();
        assert_eq!((o.mode, o.net.source), (Mode::App(App::Maerts), 1919));
        assert_eq!(parse("app=crr").unwrap().mode, Mode::App(App::Crr));
        assert_eq!(parse("app=udp-rr").unwrap().mode, Mode::App(App::UdpRr));
        assert_eq!(parse("").unwrap().net.source, 19);
        assert!(matches!(parse("app=tcp_crr"), Err(Error::BadValue { key: "app", .. })));
    }

    #[test]
    fn mix_peers_are_one_to_eight_addresses() {
        let o = parse("app=mix net.peers=10.0.0.2,10.0.0.3,10.0.0.2").unwrap();
        assert_eq!(o.mode, Mode::App(App::Mix));
        assert_eq!(o.net.peers.as_slice(), [[10, 0, 0, 2], [10, 0, 0, 3], [10, 0, 0, 2]]);
        assert_eq!(parse("").unwrap().net.peers.as_slice(), [] as [[u8; 4]; 0]);
        let nine = ["1.2.3.4"; 9].join(",");
        for bad in [nine.as_str(), "1.2.3.4,", "1.2.3", ",1.2.3.4"] {
            let line = std::format!("net.peers={bad}");
            assert!(matches!(parse(&line), Err(Error::BadValue { key: "net.peers", .. })), "{bad}");
        }
        let eight = ["1.2.3.4"; 8].join(",");
        assert_eq!(parse(&std::format!("net.peers={eight}")).unwrap().net.peers.as_slice().len(), PEERS_MAX);
    }

    #[test]
    fn mix_rr_is_on_or_off() {
        assert!(parse("app=mix mix.rr=on").unwrap().net.mix.rr);
        assert!(parse("mix.rr=1").unwrap().net.mix.rr);
        assert!(!parse("mix.rr=off").unwrap().net.mix.rr);
        assert!(!parse("").unwrap().net.mix.rr);
        assert!(matches!(parse("mix.rr=yes"), Err(Error::BadValue { key: "mix.rr", .. })));
        assert_eq!(parse("mix.stream=on"), Err(Error::UnknownKey { key: "mix.stream" }));
    }

    #[test]
    fn handover_hold_ms_is_a_bounded_duration() {
        assert_eq!(parse("").unwrap().net.handover_hold_ms, HANDOVER_HOLD_MS);
        assert_eq!(parse("app=handover handover.hold_ms=50").unwrap().net.handover_hold_ms, 50);
        for bad in ["handover.hold_ms=0", "handover.hold_ms=60001", "handover.hold_ms=1s"] {
            assert!(matches!(parse(bad), Err(Error::BadValue { key: "handover.hold_ms", .. })), "{bad}");
        }
    }

    #[test]
    fn handover_load_is_stream_maerts_or_rr() {
        assert_eq!(parse("").unwrap().net.handover_load, HandoverLoad::Stream);
        for (value, load) in [("stream", HandoverLoad::Stream), ("maerts", HandoverLoad::Maerts), ("rr", HandoverLoad::Rr)] {
            assert_eq!(parse(&std::format!("app=handover handover.load={value}")).unwrap().net.handover_load, load);
        }
        assert!(matches!(parse("handover.load=udp"), Err(Error::BadValue { key: "handover.load", .. })));
    }

    #[test]
    fn every_known_key_is_handled() {
        // A key listed in KNOWN_KEYS but missing from `parse` would come back
        // as UnknownKey; a bad value proves the key reached its own parser.
        for key in KNOWN_KEYS {
            let line = std::format!("{key}=%");
            match parse(&line) {
                Err(Error::BadValue { key: k, .. }) => assert_eq!(k, *key),
                other => panic!("{key}: {other:?}"),
            }
        }
    }
}
