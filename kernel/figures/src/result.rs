//! What a guest reports of its results and events, one per line, for the
//! scripts and the harness that decide whether a run passed:
//!
//! ```text
//! EVENT {"kind":"address","ip":"198.18.0.10","prefix":15,"source":"static"}
//! EVENT {"kind":"stream","path":"channel","bytes":67108864,...,"match":true,"frames":{"channel":48216,"netfront":3,"share":99.994}}
//! EVENT {"kind":"channel_closed","peer":3,"mac":"00:16:3e:c0:01:23","why":"the peer withdrew its offer","was_up":true,"xen_time_ns":81234567890}
//! ```
//!
//! Each line is `EVENT ` and one JSON object whose first key, `kind`,
//! names the event; the other keys follow in the order given below, with
//! no spaces, so a shell script can match `"kind":"channel_released","peer":3`
//! with grep as well as read the object with a JSON parser. The kernel
//! writes them with serde-json-core ([`Event`]'s `Display`: no heap,
//! strings escaped), next to the human-readable line that says the same;
//! the harness reads them with serde_json into an `Event<String>` (see
//! [`event_json_in`]). Numbers with a fraction are given to the
//! thousandth, but for `seconds` (as precise as the clock); an optional
//! value that is unknown is `null`.
//!
//! The Linux reference guests of the Xen lab (`tests/xen/linux-guest`:
//! its init, a shell script, and `netref`, in C) print the same lines,
//! written by hand in the same order, for everything a scenario checks of
//! them: `address`, `listening`, `stream` (netref's `stream-check`), `rr`
//! (netref's), `sink` and `app` (the guest's role ended).
//!
//! # The events
//!
//! | `kind` | keys after `kind` | printed when |
//! |---|---|---|
//! | `address` | `ip` (dotted quad), `prefix`, `source` (`static` or `dhcp`) | the interface has its IPv4 address (`net: address ...`; a Linux reference guest: eth0 is up with it, `linux-guest: eth0 ...`) |
//! | `progress` | `app` (`transfer`, `stream`, `rr`, `maerts`, `crr`, `udp-rr`), `done`, `total`, `unit` (`bytes` or `transactions`) | a measuring client's progress line (every 5 s): bytes echoed or acknowledged, transactions done |
//! | `frames` | `of` (what was measured: `transfer`, `stream`, `rr`, `channel phase`, `netfront phase`, `switching stream`, `mix`, `mix-rr`), `channel`, `netfront`, `share` | the frames a measurement moved, both ways, by path, and the channel's share in percent (on a device with channels: Xen) |
//! | `transfer` | `bytes`, `seconds`, `mbit_per_s`, `sent_sha256`, `received_sha256`, `match`, `frames` | `app=transfer` ended: what went to the echo and came back |
//! | `stream` | `path`, `bytes`, `seconds`, `mbit_per_s`, `check` (`sha256`, `fnv64`, `count`), `sent_digest`, `sink_bytes`, `sink_digest`, `match`, `frames` | a TCP_STREAM ended: what the sink says it received (netref's `stream-check`: path `netfront`, check `sha256`, `match` only when the sink's answer was exactly one line of `bytes` and `sent_digest`; `frames` `null`) |
//! | `rr` | `path`, `transactions`, `seconds`, `per_second`, `mean_us`, `p50_us`, `p99_us`, `frames` | a TCP_RR ended (also netref's `rr`, with its `PATH` and `frames` `null`) |
//! | `netbench` | `reps`, `up_ms`, `stream_channel_mbit`, `stream_netfront_mbit`, `stream_speedup`, `rr_channel_per_s`, `rr_netfront_per_s`, `rr_speedup`, `p50_channel_us`, `p50_netfront_us`, `switch_ms`, `back_ms` | `app=netbench` ended (medians of `reps` runs; `switch_ms` is `null` if the switching stream never resumed) |
//! | `served` | `tcp_bytes`, `udp_packets`, `sink_bytes`, `sink_streams` | `app=echo` was asked to stop |
//! | `channel_up` | `peer` (domid), `mac`, `after_listed_ms`, `xen_time_ns` | the channel to `peer` is up: frames to it take the channel |
//! | `channel_closed` | `peer`, `mac`, `why`, `was_up`, `xen_time_ns` | the channel to `peer` closed (`was_up`: it had been up and frames now take netfront; else it was never set up) |
//! | `channel_refused` | `peer`, `why` | `peer` speaks another layout version: no channel |
//! | `channel_released` | `peer` | a closed channel's last grant is revoked, its pages freed |
//! | `device_closed` | `device` (`netfront`), `clean`, `netfront_closed`, `channels_released`, `grant_refs`, `mapped`, `pages` | the network device was shut down; `clean` when netfront's backend is Closed, every channel released and no grant ref, mapping or page is left |
//! | `resources` | `after` (what was just done: `channel_released`), `grant_refs`, `netfront_refs`, `ports`, `mapped`, `pages`, `heap_used`, `frames` | the guest's live counts: grant refs in use but netfront's (channels), netfront's (its rings, posted receive buffers and transmits in flight: these vary), event-channel ports bound, peer pages mapped, pages granted out, heap bytes and frames allocated (after every `channel_released`, so a scenario can check they stay constant) |
//! | `iperf3` | `role` (`server` or `client`), `ok`, `protocol` (`tcp`, `udp`; `null` if refused before it was known), `streams`, `reverse`, `seconds`, `bytes_sent`, `bytes_received`, `mbit_per_s`, `udp_packets`, `udp_lost`, `i_errno` (iperf3's error number of a refusal, else `null`), `error` (`null` when ok), `frames` | an iperf3 test ended (`app=iperf3`: each test, a refused or busy client too; `app=iperf3-client`: its one test). Bytes are this guest's, counted by it (the client's `bytes_received` is what the server reported receiving); `mbit_per_s` is the bytes received over `seconds` (the client: the server's figure, as iperf3's receiver line; the server: both ways summed); `frames` covers the test (the server: from its parameters to its end) |
//! | `app` | `app` (`echo`, `transfer`, `stream`, `rr`, `netbench`, `iperf3`, `iperf3-client`, `mix`, `maerts`, `crr`, `udp-rr`; a Linux reference guest's role: `linux-serve`, `linux-client`, `linux-check`, `linux-iperf3`), `ok`, `error` (`null` when ok) | the application ended, its device closed: the guest powers off next (a Linux reference guest: its role ended, or failed before it began; `linux-serve` only fails) |
//! | `offloads` | `device` (`netfront`), `tx`, `rx` (each `none` or a comma list of `sg`, `csum`, `gso`) | the network device connected with these offloads (`netfront: offloads ...`) |
//! | `test` | `name`, `ok` | a kernel test (`test=`) passed or failed (`test NAME ... ok`) |
//! | `test_result` | `ok`, `passed`, `failed`, `ignored` | the kernel tests ended (`test result: ...`): the guest powers off next |
//! | `boot_failed` | `what` (`kernel command line`, `kernel test`, ...), `key` (the option or test it is about, or `null`) | the kernel refused to start (`error: ...`): it ends as crashed next |
//! | `booted` | `entry` (`pvh`), `ram_kib`, `tsc_hz`, `heap_kib`, `frames_free`, `timer_hz` | the boot is done (after the human summary); what the command line asks runs next |
//! | `net_device` | `device` (`virtio-net`, `netfront`), `mac`, `link_up` | a network device is up, before its address; netfront again with `link_up` false when netback broke the ring protocol and netfront stopped, or when connecting it again after a stall failed (`netfront_restarted`), and with `link_up` true once a later try connects |
//! | `test_ignored` | `name`, `why` (`isolated`: it ends the kernel, boot with `test=NAME`; or what it needs) | a kernel test not run in this boot (`test NAME ... ignored, ...`) |
//! | `panic` | `file`, `line` (`null`, 0 when unknown) | the kernel panicked (`PANIC at ...`, with the message); it stops next |
//! | `fault` | `vector`, `rip`, `cr2`, `guard` (`null page`, a stack's name, or `null`) | a CPU exception stopped the kernel (after the register dump) |
//! | `listening` | `service` (`iperf3`, `sink`, `echo`), `port` | a Linux reference guest's server listens (`ref.role=serve`: iperf3 -s, then netref's sink and echo, both printed once both listen) |
//! | `sink` | `bytes`, `check` (`sha256` or `count`), `digest` (the SHA-256 in lower-case hex; `null` for `count`) | netref's sink answered a stream (`bytes` without the count-only magic) |
//! | `maerts` | `path`, `bytes` (received), `seconds`, `mbit_per_s`, `check` (`sha256`, `fnv64`, `count`), `digest` (of the bytes received, in hex; `-` for `count`), `source_bytes`, `source_digest` (what the source says it sent), `match`, `frames` | an `app=maerts` repetition ended: the stream the other way, from the source to this client |
//! | `crr` | `path`, `transactions`, `seconds`, `per_second`, `mean_us`, `p50_us`, `p99_us` (each transaction from its connect to the server's FIN), `refused` (connections refused and tried again), `frames` | an `app=crr` repetition ended: one new connection per transaction |
//! | `udp_rr` | `path`, `transactions` (answered), `lost` (unanswered for 100 ms, the next sent), `stale` (answers that came later, dropped), `seconds`, `per_second`, `mean_us`, `p50_us`, `p99_us`, `frames` | an `app=udp-rr` repetition ended |
//! | `guard` | `name` (`boot stack`), `addr` (its first byte) | before `test=stack_overflow_pv` runs into the guard page: a PV guest cannot take that fault (no IST stack), Xen crashes it, and dom0 compares the vCPU's `cr2` with `addr` |
//! | `stopped` | `app` | the platform asked the guest to shut down (`xl shutdown`) while a client ran: it stopped where it was, without its result; `app` (`ok` true) follows |
//! | `busy` | `service` (`sink`, `echo`), `connections` | a Linux reference guest's netref serves as many connections of `service` at once as it may (32): the next waits in the listen backlog until one ends |
//! | `netfront_restarted` | `stalled_ms`, `tx_outstanding`, `ok`, `error` (`null` when ok) | netback took none of netfront's `tx_outstanding` transmits for `stalled_ms` (at least 2000: a netback that no longer hears the guest, issue 14; 0 when trying again after a failed try): netfront disconnected and connected again; frames in flight were lost, TCP sends them again. With `ok` false the device is down until a later try (spaced out, doubling from 2 s to 64 s, as are restarts after which nothing was answered) |
//!
//! `frames` inside `transfer`, `stream`, `rr`, `maerts`, `crr` and `udp_rr` is the object
//! `{"channel":N,"netfront":N,"share":S}` (the same as the `frames` event
//! printed just before), or `null` on a device without channels (virtio).

use core::fmt;
use serde::{Deserialize, Serialize, Serializer};

use crate::round_thousandths;

/// What precedes the JSON object of a result in a line.
pub const EVENT_PREFIX: &str = "EVENT ";

/// The longest JSON object `Display` writes (two SHA-256 digests and a
/// reason fit; a longer event is an error, never a cut line).
pub const EVENT_JSON_MAX: usize = 1024;

fn thousandths<Ser: Serializer>(value: &f64, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
    serializer.serialize_f64(round_thousandths(*value))
}

fn opt_thousandths<Ser: Serializer>(value: &Option<f64>, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
    match value {
        Some(v) => serializer.serialize_some(&round_thousandths(*v)),
        None => serializer.serialize_none(),
    }
}

/// Frames by path over a measurement, both ways.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Frames {
    pub channel: u64,
    pub netfront: u64,
    /// The channel's share, in percent.
    #[serde(serialize_with = "thousandths")]
    pub share: f64,
}

impl Frames {
    /// The counts, and the share they make.
    pub fn new(channel: u64, netfront: u64) -> Frames {
        let share = 100.0 * channel as f64 / (channel + netfront).max(1) as f64;
        Frames { channel, netfront, share }
    }
}

/// Every event's `kind`, in the order of [`Event`]'s variants.
pub const KINDS: [&str; 34] = [
    "address",
    "progress",
    "frames",
    "transfer",
    "stream",
    "rr",
    "netbench",
    "served",
    "channel_up",
    "channel_closed",
    "channel_refused",
    "channel_released",
    "device_closed",
    "resources",
    "iperf3",
    "app",
    "offloads",
    "test",
    "test_result",
    "boot_failed",
    "booted",
    "net_device",
    "test_ignored",
    "panic",
    "fault",
    "listening",
    "sink",
    "maerts",
    "crr",
    "udp_rr",
    "guard",
    "stopped",
    "busy",
    "netfront_restarted",
];

/// One result or event of a guest. `S` is `&str` where it is written (the
/// kernel) and `String` where it is read (the harness). See the module's
/// docs for when each is printed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event<S> {
    Address {
        ip: S,
        prefix: u8,
        source: S,
    },
    Progress {
        app: S,
        done: u64,
        total: u64,
        unit: S,
    },
    Frames {
        of: S,
        channel: u64,
        netfront: u64,
        #[serde(serialize_with = "thousandths")]
        share: f64,
    },
    Transfer {
        bytes: u64,
        seconds: f64,
        #[serde(serialize_with = "thousandths")]
        mbit_per_s: f64,
        sent_sha256: S,
        received_sha256: S,
        #[serde(rename = "match")]
        matched: bool,
        frames: Option<Frames>,
    },
    Stream {
        path: S,
        bytes: u64,
        seconds: f64,
        #[serde(serialize_with = "thousandths")]
        mbit_per_s: f64,
        check: S,
        sent_digest: S,
        sink_bytes: u64,
        sink_digest: S,
        #[serde(rename = "match")]
        matched: bool,
        frames: Option<Frames>,
    },
    Rr {
        path: S,
        transactions: u32,
        seconds: f64,
        #[serde(serialize_with = "thousandths")]
        per_second: f64,
        #[serde(serialize_with = "thousandths")]
        mean_us: f64,
        #[serde(serialize_with = "thousandths")]
        p50_us: f64,
        #[serde(serialize_with = "thousandths")]
        p99_us: f64,
        frames: Option<Frames>,
    },
    Netbench {
        reps: u32,
        #[serde(serialize_with = "thousandths")]
        up_ms: f64,
        #[serde(serialize_with = "thousandths")]
        stream_channel_mbit: f64,
        #[serde(serialize_with = "thousandths")]
        stream_netfront_mbit: f64,
        #[serde(serialize_with = "thousandths")]
        stream_speedup: f64,
        #[serde(serialize_with = "thousandths")]
        rr_channel_per_s: f64,
        #[serde(serialize_with = "thousandths")]
        rr_netfront_per_s: f64,
        #[serde(serialize_with = "thousandths")]
        rr_speedup: f64,
        #[serde(serialize_with = "thousandths")]
        p50_channel_us: f64,
        #[serde(serialize_with = "thousandths")]
        p50_netfront_us: f64,
        #[serde(serialize_with = "opt_thousandths")]
        switch_ms: Option<f64>,
        #[serde(serialize_with = "thousandths")]
        back_ms: f64,
    },
    Served {
        tcp_bytes: u64,
        udp_packets: u64,
        sink_bytes: u64,
        sink_streams: u64,
    },
    ChannelUp {
        peer: u16,
        mac: S,
        #[serde(serialize_with = "thousandths")]
        after_listed_ms: f64,
        xen_time_ns: u64,
    },
    ChannelClosed {
        peer: u16,
        mac: S,
        why: S,
        was_up: bool,
        xen_time_ns: u64,
    },
    ChannelRefused {
        peer: u16,
        why: S,
    },
    ChannelReleased {
        peer: u16,
    },
    DeviceClosed {
        device: S,
        clean: bool,
        netfront_closed: bool,
        channels_released: bool,
        grant_refs: u64,
        mapped: u64,
        pages: u64,
    },
    Resources {
        after: S,
        grant_refs: u64,
        netfront_refs: u64,
        ports: u64,
        mapped: u64,
        pages: u64,
        heap_used: u64,
        frames: u64,
    },
    Iperf3 {
        role: S,
        ok: bool,
        protocol: Option<S>,
        streams: u16,
        reverse: bool,
        seconds: f64,
        bytes_sent: u64,
        bytes_received: u64,
        #[serde(serialize_with = "thousandths")]
        mbit_per_s: f64,
        udp_packets: u64,
        udp_lost: u64,
        i_errno: Option<i32>,
        error: Option<S>,
        frames: Option<Frames>,
    },
    App {
        app: S,
        ok: bool,
        error: Option<S>,
    },
    Offloads {
        device: S,
        tx: S,
        rx: S,
    },
    Test {
        name: S,
        ok: bool,
    },
    TestResult {
        ok: bool,
        passed: u64,
        failed: u64,
        ignored: u64,
    },
    BootFailed {
        what: S,
        key: Option<S>,
    },
    /// The boot finished; what the command line asks runs next.
    Booted {
        entry: S,
        ram_kib: u64,
        tsc_hz: u64,
        heap_kib: u64,
        frames_free: u64,
        timer_hz: u32,
    },
    /// A network device is up (before any address), or netfront stopped
    /// because netback broke the ring protocol (`link_up` false).
    NetDevice {
        device: S,
        mac: S,
        link_up: bool,
    },
    /// A kernel test not run in this boot, and why.
    TestIgnored {
        name: S,
        why: S,
    },
    /// The kernel panicked (the message is on the line before).
    Panic {
        file: Option<S>,
        line: u32,
    },
    /// A CPU exception stopped the kernel; `guard` names the guard page
    /// `cr2` fell in (a stack overflow or a null access).
    Fault {
        vector: u64,
        rip: u64,
        cr2: u64,
        guard: Option<S>,
    },
    /// A Linux reference guest's server listens on `port`.
    Listening {
        service: S,
        port: u16,
    },
    /// netref's sink answered a stream: `digest` is `None` for one that
    /// asked for the count only.
    Sink {
        bytes: u64,
        check: S,
        digest: Option<S>,
    },
    /// A TCP_MAERTS ended: what the client received, and what the source
    /// says it sent.
    Maerts {
        path: S,
        bytes: u64,
        seconds: f64,
        #[serde(serialize_with = "thousandths")]
        mbit_per_s: f64,
        check: S,
        digest: S,
        source_bytes: u64,
        source_digest: S,
        #[serde(rename = "match")]
        matched: bool,
        frames: Option<Frames>,
    },
    /// A TCP_CRR ended: transactions each on a new connection.
    Crr {
        path: S,
        transactions: u32,
        seconds: f64,
        #[serde(serialize_with = "thousandths")]
        per_second: f64,
        #[serde(serialize_with = "thousandths")]
        mean_us: f64,
        #[serde(serialize_with = "thousandths")]
        p50_us: f64,
        #[serde(serialize_with = "thousandths")]
        p99_us: f64,
        refused: u32,
        frames: Option<Frames>,
    },
    /// A UDP_RR ended: `lost` requests went unanswered in time, `stale`
    /// answers came after that.
    UdpRr {
        path: S,
        transactions: u32,
        lost: u32,
        stale: u32,
        seconds: f64,
        #[serde(serialize_with = "thousandths")]
        per_second: f64,
        #[serde(serialize_with = "thousandths")]
        mean_us: f64,
        #[serde(serialize_with = "thousandths")]
        p50_us: f64,
        #[serde(serialize_with = "thousandths")]
        p99_us: f64,
        frames: Option<Frames>,
    },
    /// The guard page `name` starts at `addr`: printed before a test runs
    /// into it where the fault cannot be reported by the guest (a PV
    /// stack overflow), so dom0 can tell where the vCPU stopped.
    Guard {
        name: S,
        addr: u64,
    },
    /// The platform asked the guest to shut down (`xl shutdown`) while
    /// the client `app` ran: it stopped there, closes its device and
    /// powers off.
    Stopped {
        app: S,
    },
    /// A Linux reference guest's server holds as many connections as it
    /// serves at once: the next waits until one ends.
    Busy {
        service: S,
        connections: u32,
    },
    /// netback left `tx_outstanding` transmits unanswered for `stalled_ms`:
    /// netfront disconnected and connected again (`ok`), or failed to
    /// (`error`, and the device stays down).
    NetfrontRestarted {
        stalled_ms: u64,
        tx_outstanding: u32,
        ok: bool,
        error: Option<S>,
    },
}

impl<S: Serialize> Event<S> {
    /// The JSON object, written into `buf`.
    pub fn to_json<'b>(&self, buf: &'b mut [u8]) -> Result<&'b str, serde_json_core::ser::Error> {
        let len = serde_json_core::to_slice(self, buf)?;
        core::str::from_utf8(&buf[..len]).map_err(|_| serde_json_core::ser::Error::BufferFull)
    }
}

/// The whole line, `EVENT {...}`; `fmt::Error` (nothing written) if the
/// object is longer than [`EVENT_JSON_MAX`].
impl<S: Serialize> fmt::Display for Event<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; EVENT_JSON_MAX];
        let json = self.to_json(&mut buf).map_err(|_| fmt::Error)?;
        f.write_str(EVENT_PREFIX)?;
        f.write_str(json)
    }
}

/// The JSON object of a result in a console line, wherever `EVENT {`
/// starts (consoles prefix lines); it runs to the end of the line, so
/// read one object and ignore the rest.
pub fn event_json_in(line: &str) -> Option<&str> {
    let at = line.find("EVENT {")?;
    Some(&line[at + EVENT_PREFIX.len()..])
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::{String, ToString};
    use std::vec::Vec;

    /// How the harness reads a line.
    fn read(line: &str) -> Result<Event<String>, String> {
        let json = event_json_in(line).ok_or("no EVENT object")?;
        let mut objects = serde_json::Deserializer::from_str(json).into_iter::<Event<String>>();
        objects.next().ok_or("nothing after EVENT")?.map_err(|e| e.to_string())
    }

    fn sha(c: char) -> String {
        core::iter::repeat_n(c, 64).collect()
    }

    /// One of each kind, as the kernel writes them.
    fn every_kind<'a>(a: &'a str, b: &'a str) -> Vec<Event<&'a str>> {
        let frames = Some(Frames::new(999, 1));
        std::vec![
            Event::Address { ip: "198.18.0.10", prefix: 15, source: "static" },
            Event::Progress { app: "rr", done: 5123, total: 10_000_000, unit: "transactions" },
            Event::Frames { of: "channel phase", channel: 999, netfront: 1, share: 99.9 },
            Event::Transfer {
                bytes: 16,
                seconds: 0.5,
                mbit_per_s: 0.000256,
                sent_sha256: a,
                received_sha256: b,
                matched: false,
                frames: None
            },
            Event::Stream {
                path: "channel",
                bytes: 1 << 26,
                seconds: 1.25,
                mbit_per_s: 429.4967296,
                check: "sha256",
                sent_digest: a,
                sink_bytes: 1 << 26,
                sink_digest: a,
                matched: true,
                frames,
            },
            Event::Rr {
                path: "netfront",
                transactions: 2000,
                seconds: 0.8,
                per_second: 2500.0,
                mean_us: 400.1234,
                p50_us: 390.0,
                p99_us: 800.0,
                frames
            },
            Event::Netbench {
                reps: 3,
                up_ms: 51.2,
                stream_channel_mbit: 2344.0,
                stream_netfront_mbit: 199.1,
                stream_speedup: 11.77,
                rr_channel_per_s: 10493.0,
                rr_netfront_per_s: 2357.0,
                rr_speedup: 4.45,
                p50_channel_us: 44.0,
                p50_netfront_us: 279.0,
                switch_ms: None,
                back_ms: 25.3,
            },
            Event::Served { tcp_bytes: 1, udp_packets: 2, sink_bytes: 3, sink_streams: 4 },
            Event::ChannelUp { peer: 3, mac: "00:16:3e:c0:01:23", after_listed_ms: 5.6, xen_time_ns: 1 << 40 },
            Event::ChannelClosed {
                peer: 3,
                mac: "00:16:3e:c0:01:23",
                why: "the peer withdrew its offer",
                was_up: true,
                xen_time_ns: 7
            },
            Event::ChannelRefused { peer: 4, why: "layout version 2" },
            Event::ChannelReleased { peer: 3 },
            Event::DeviceClosed {
                device: "netfront",
                clean: true,
                netfront_closed: true,
                channels_released: true,
                grant_refs: 0,
                mapped: 0,
                pages: 0
            },
            Event::Resources {
                after: "channel_released",
                grant_refs: 512,
                netfront_refs: 258,
                ports: 3,
                mapped: 0,
                pages: 0,
                heap_used: 1 << 20,
                frames: 100
            },
            Event::Iperf3 {
                role: "server",
                ok: true,
                protocol: Some("udp"),
                streams: 4,
                reverse: false,
                seconds: 2.000125,
                bytes_sent: 0,
                bytes_received: 262_144_000,
                mbit_per_s: 1048.5,
                udp_packets: 8000,
                udp_lost: 3,
                i_errno: None,
                error: None,
                frames,
            },
            Event::App { app: "stream", ok: false, error: Some("the sink got 3 bytes") },
            Event::Offloads { device: "netfront", tx: "sg,csum,gso", rx: "none" },
            Event::Test { name: "xen_xenstore_watch", ok: true },
            Event::TestResult { ok: false, passed: 40, failed: 1, ignored: 2 },
            Event::BootFailed { what: "kernel command line", key: Some("bad.key") },
            Event::Booted {
                entry: "pvh",
                ram_kib: 32_000,
                tsc_hz: 2_999_999_000,
                heap_kib: 4096,
                frames_free: 7000,
                timer_hz: 100
            },
            Event::NetDevice { device: "virtio-net", mac: "52:54:00:12:34:56", link_up: true },
            Event::TestIgnored { name: "stack_overflow", why: "isolated" },
            Event::Panic { file: Some("kernel/cohort/src/main.rs"), line: 7 },
            Event::Fault { vector: 14, rip: 0x20_1000, cr2: 0, guard: Some("null page") },
            Event::Listening { service: "sink", port: 9 },
            Event::Sink { bytes: 1 << 24, check: "sha256", digest: Some(a) },
            Event::Maerts {
                path: "channel",
                bytes: 1 << 20,
                seconds: 0.5,
                mbit_per_s: 16.777216,
                check: "count",
                digest: "-",
                source_bytes: 1 << 20,
                source_digest: "-",
                matched: true,
                frames,
            },
            Event::Crr {
                path: "netfront",
                transactions: 200,
                seconds: 0.4,
                per_second: 500.0,
                mean_us: 2000.5,
                p50_us: 1900.0,
                p99_us: 4100.0,
                refused: 0,
                frames: None
            },
            Event::UdpRr {
                path: "channel",
                transactions: 2000,
                lost: 3,
                stale: 1,
                seconds: 0.25,
                per_second: 8000.0,
                mean_us: 120.5,
                p50_us: 100.0,
                p99_us: 300.0,
                frames
            },
            Event::Guard { name: "boot stack", addr: 0x21_f000 },
            Event::Stopped { app: "rr" },
            Event::Busy { service: "echo", connections: 32 },
            Event::NetfrontRestarted { stalled_ms: 2003, tx_outstanding: 3, ok: true, error: None },
        ]
    }

    #[test]
    fn lines_are_exact_and_keys_in_order() {
        assert_eq!(
            Event::Address { ip: "198.18.0.10", prefix: 15, source: "static" }.to_string(),
            r#"EVENT {"kind":"address","ip":"198.18.0.10","prefix":15,"source":"static"}"#
        );
        assert_eq!(Event::<&str>::ChannelReleased { peer: 3 }.to_string(), r#"EVENT {"kind":"channel_released","peer":3}"#);
        assert_eq!(
            Event::App { app: "echo", ok: true, error: None::<&str> }.to_string(),
            r#"EVENT {"kind":"app","app":"echo","ok":true,"error":null}"#
        );
        let refused = Event::Iperf3 {
            role: "server",
            ok: false,
            protocol: None,
            streams: 0,
            reverse: false,
            seconds: 0.0,
            bytes_sent: 0,
            bytes_received: 0,
            mbit_per_s: 0.0,
            udp_packets: 0,
            udp_lost: 0,
            i_errno: Some(202),
            error: Some("refused"),
            frames: None,
        };
        assert_eq!(
            refused.to_string(),
            r#"EVENT {"kind":"iperf3","role":"server","ok":false,"protocol":null,"streams":0,"reverse":false,"seconds":0.0,"bytes_sent":0,"bytes_received":0,"mbit_per_s":0.0,"udp_packets":0,"udp_lost":0,"i_errno":202,"error":"refused","frames":null}"#
        );
        let rr = Event::Rr {
            path: "channel",
            transactions: 3,
            seconds: 0.0015,
            per_second: 2000.0,
            mean_us: 1.23456,
            p50_us: 1.0,
            p99_us: 2.0,
            frames: Some(Frames::new(2, 1)),
        };
        assert_eq!(
            rr.to_string(),
            r#"EVENT {"kind":"rr","path":"channel","transactions":3,"seconds":0.0015,"per_second":2000.0,"mean_us":1.235,"p50_us":1.0,"p99_us":2.0,"frames":{"channel":2,"netfront":1,"share":66.667}}"#
        );
        let closed = Event::DeviceClosed {
            device: "netfront",
            clean: true,
            netfront_closed: true,
            channels_released: true,
            grant_refs: 0,
            mapped: 0,
            pages: 0,
        };
        assert_eq!(
            closed.to_string(),
            r#"EVENT {"kind":"device_closed","device":"netfront","clean":true,"netfront_closed":true,"channels_released":true,"grant_refs":0,"mapped":0,"pages":0}"#
        );
    }

    /// The lines the Linux reference guests write by hand (netref.c's
    /// printf formats, the init's printf) are these events' lines, keys in
    /// order.
    #[test]
    fn linux_reference_guests_lines() {
        let a = sha('a');
        let written = [
            (
                r#"EVENT {"kind":"address","ip":"198.18.0.61","prefix":15,"source":"static"}"#,
                Event::Address { ip: "198.18.0.61", prefix: 15, source: "static" },
            ),
            (r#"EVENT {"kind":"listening","service":"iperf3","port":5201}"#, Event::Listening { service: "iperf3", port: 5201 }),
            (
                r#"EVENT {"kind":"sink","bytes":1000,"check":"count","digest":null}"#,
                Event::Sink { bytes: 1000, check: "count", digest: None },
            ),
            (
                r#"EVENT {"kind":"app","app":"linux-check","ok":false,"error":"netref stream-check failed"}"#,
                Event::App { app: "linux-check", ok: false, error: Some("netref stream-check failed") },
            ),
        ];
        for (line, event) in written {
            assert_eq!(event.to_string(), line);
            assert_eq!(read(line).unwrap(), read(&event.to_string()).unwrap());
        }
        let sink = std::format!(r#"EVENT {{"kind":"sink","bytes":16777216,"check":"sha256","digest":"{a}"}}"#);
        assert_eq!(Event::Sink { bytes: 1 << 24, check: "sha256", digest: Some(a.as_str()) }.to_string(), sink);
        // netref's numbers: seconds to the microsecond, the rest to the
        // thousandth, all with a fraction; they read as the schema's.
        let stream = std::format!(
            r#"EVENT {{"kind":"stream","path":"netfront","bytes":64,"seconds":0.000108,"mbit_per_s":4.744,"check":"sha256","sent_digest":"{a}","sink_bytes":0,"sink_digest":"\"q\"\\\u0001\u00ff","match":false,"frames":null}}"#
        );
        match read(&stream).unwrap() {
            Event::Stream { bytes: 64, sink_bytes: 0, sink_digest, matched: false, frames: None, .. } => {
                assert_eq!(sink_digest, "\"q\"\\\u{1}\u{ff}")
            }
            other => panic!("{other:?}"),
        }
        let rr = r#"EVENT {"kind":"rr","path":"linux-to-linux-netfront","transactions":40,"seconds":0.001703,"per_second":23487.962,"mean_us":42.125,"p50_us":12.318,"p99_us":1081.563,"frames":null}"#;
        assert!(matches!(read(rr).unwrap(), Event::Rr { transactions: 40, frames: None, .. }));
    }

    #[test]
    fn resources_line() {
        let r = Event::Resources {
            after: "channel_released",
            grant_refs: 0,
            netfront_refs: 258,
            ports: 2,
            mapped: 0,
            pages: 0,
            heap_used: 70000,
            frames: 41,
        };
        assert_eq!(
            r.to_string(),
            r#"EVENT {"kind":"resources","after":"channel_released","grant_refs":0,"netfront_refs":258,"ports":2,"mapped":0,"pages":0,"heap_used":70000,"frames":41}"#
        );
    }

    #[test]
    fn every_kind_reads_back() {
        let (a, b) = (sha('a'), sha('b'));
        for written in every_kind(&a, &b) {
            let line = std::format!("(d3) {written}");
            assert!(!line.contains('\n') && !line.contains(": "), "{line}");
            let read_back = read(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
            // Floats come back rounded to the thousandth; compare the lines.
            assert_eq!(std::format!("(d3) {read_back}"), line);
        }
    }

    #[test]
    fn the_kind_comes_first_and_names_the_event() {
        let (a, b) = (sha('a'), sha('b'));
        let kinds: Vec<String> = every_kind(&a, &b)
            .iter()
            .map(|e| {
                let line = e.to_string();
                let rest = line.strip_prefix(r#"EVENT {"kind":""#).unwrap();
                String::from(&rest[..rest.find('"').unwrap()])
            })
            .collect();
        assert_eq!(kinds, KINDS);
    }

    #[test]
    fn matching_and_unknowns_read_as_such() {
        let (a, b) = (sha('a'), sha('b'));
        let events = every_kind(&a, &b);
        match read(&events[4].to_string()).unwrap() {
            Event::Stream { matched, frames: Some(f), bytes, sink_bytes, .. } => {
                assert!(matched);
                assert_eq!((bytes, sink_bytes, f.channel, f.netfront, f.share), (1 << 26, 1 << 26, 999, 1, 99.9));
            }
            other => panic!("{other:?}"),
        }
        assert!(events[4].to_string().contains(r#""match":true"#));
        match read(&events[6].to_string()).unwrap() {
            Event::Netbench { switch_ms, back_ms, .. } => assert_eq!((switch_ms, back_ms), (None, 25.3)),
            other => panic!("{other:?}"),
        }
        assert!(events[6].to_string().contains(r#""switch_ms":null"#));
        assert_eq!(
            read(r#"EVENT {"kind":"app","app":"rr","ok":false,"error":"no progress"}"#).unwrap(),
            Event::App { app: String::from("rr"), ok: false, error: Some(String::from("no progress")) }
        );
    }

    #[test]
    fn strings_are_escaped_and_bad_lines_do_not_read() {
        let why = "a \"quoted\" reason\nover two lines";
        let line = Event::ChannelRefused { peer: 1, why }.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert_eq!(read(&line).unwrap(), Event::ChannelRefused { peer: 1, why: String::from(why) });
        assert_eq!(event_json_in("no result here"), None);
        assert!(read(r#"EVENT {"kind":"no_such_kind"}"#).is_err());
        assert!(read(r#"EVENT {"kind":"channel_released"}"#).unwrap_err().contains("missing field"));
        assert!(read(r#"EVENT {"peer":3}"#).is_err(), "no kind");
        assert_eq!(
            Event::<&str>::BootFailed { what: "kernel command line", key: None }.to_string(),
            r#"EVENT {"kind":"boot_failed","what":"kernel command line","key":null}"#
        );
        assert_eq!(
            Event::Test { name: "stack_overflow", ok: true }.to_string(),
            r#"EVENT {"kind":"test","name":"stack_overflow","ok":true}"#
        );
    }

    #[test]
    fn an_event_too_long_for_the_buffer_is_an_error_not_a_cut_line() {
        let long = "x".repeat(EVENT_JSON_MAX);
        let mut out = String::new();
        assert!(fmt::write(&mut out, format_args!("{}", Event::ChannelRefused { peer: 1, why: long.as_str() })).is_err());
        assert_eq!(out, "");
    }
}
