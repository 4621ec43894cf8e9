//! The study's matrix: every point is one workload on one path with one
//! factor set to one value, everything else at the default (each factor is
//! varied alone). A point is one client guest that repeats its measurement
//! `reps` times against one server guest (tests/xen/scenarios/cohort-study.sh).

use serde::{Deserialize, Serialize};

/// What the client measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// TCP_STREAM into the server's sink (`app=stream`, count only).
    Stream,
    /// TCP_RR with the server's echo (`app=rr`).
    Rr,
    /// Concurrent streams to several servers' sinks (`app=mix`).
    Mix,
    /// TCP_MAERTS from the server's source (`app=maerts`, count only).
    Maerts,
    /// TCP_CRR with the server's echo, a connection each (`app=crr`).
    Crr,
    /// UDP_RR with the server's UDP echo (`app=udp-rr`).
    #[serde(rename = "udp-rr")]
    UdpRr,
    /// A UDP stream faster than netfront carries, into an iperf3 server
    /// (`app=iperf3-client iperf3.udp=on`, the server `app=iperf3`): the
    /// rate received and the datagrams lost.
    #[serde(rename = "udp-stream")]
    UdpStream,
    /// Concurrent TCP request/response flows to several servers' echoes
    /// (`app=mix mix.rr=on`): question 1's latency under the mixture.
    #[serde(rename = "mix-rr")]
    MixRr,
    /// One scan of dom0's discovery daemon against fake domains
    /// (`cohort-discoveryd --once`): question 2's cost in dom0.
    Discoveryd,
    /// Detection and the switch under load, both ways (`app=handover`, a
    /// client boot a repetition): question 2's switching cost.
    Handover,
}

impl Workload {
    /// The figure every repetition of this workload prints (the client's
    /// `BENCH` line), and its unit.
    pub fn main_figure(self) -> (&'static str, &'static str) {
        match self {
            Workload::Stream => ("net.tcp_stream", "Mbit/s"),
            Workload::Rr => ("net.tcp_rr", "transactions/s"),
            Workload::Mix => ("net.mix_aggregate", "Mbit/s"),
            Workload::Maerts => ("net.tcp_maerts", "Mbit/s"),
            Workload::Crr => ("net.tcp_crr", "transactions/s"),
            Workload::UdpRr => ("net.udp_rr", "transactions/s"),
            Workload::UdpStream => ("net.iperf3_udp", "Mbit/s"),
            Workload::MixRr => ("net.mix_rr_aggregate", "transactions/s"),
            Workload::Discoveryd => ("discoveryd.scan", "us"),
            Workload::Handover => ("handover.to_netfront", "ms"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Workload::Stream => "stream",
            Workload::Rr => "rr",
            Workload::Mix => "mix",
            Workload::Maerts => "maerts",
            Workload::Crr => "crr",
            Workload::UdpRr => "udp-rr",
            Workload::UdpStream => "udp-stream",
            Workload::MixRr => "mix-rr",
            Workload::Discoveryd => "discoveryd",
            Workload::Handover => "handover",
        }
    }
}

/// The factor whose points are Linux reference guests (question 3).
pub const BASELINE: &str = "baseline";

/// The figure every repetition of `factor`'s `workload` points prints: the
/// workload's, but a Linux client's stream is Debian's iperf3 (netref has
/// no stream of its own; tests/xen/linux-guest/init).
pub fn main_figure(factor: &str, workload: Workload) -> (&'static str, &'static str) {
    match (factor, workload) {
        (BASELINE, Workload::Stream) => ("net.iperf3_tcp", "Mbit/s"),
        _ => workload.main_figure(),
    }
}

/// The path the point's frames must take; the client's figures name the
/// path they took, and a point whose figures name another has failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Path {
    Channel,
    Netfront,
    /// Some frames over a channel, some over netfront (a mixture).
    #[serde(rename = "channel+netfront")]
    Both,
    /// No guest's frames: work in dom0, labelled `domains-N`.
    Dom0,
}

impl Path {
    /// Whether a figure's `path` label is this path. The guest labels a
    /// measurement `channel` when netfront carried under 1% of its frames
    /// or no more than a few broadcasts (an ARP refresh, which only
    /// netfront carries), and `channel+netfront` otherwise: a mixture's
    /// label may be either, both say the channel carried frames.
    pub fn accepts(self, label: &str) -> bool {
        match self {
            Path::Both => label == "channel+netfront" || label == "channel",
            Path::Dom0 => label.strip_prefix("domains-").is_some_and(|n| n.parse::<u32>().is_ok()),
            _ => label == self.as_str(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Path::Channel => "channel",
            Path::Netfront => "netfront",
            Path::Both => "channel+netfront",
            Path::Dom0 => "dom0",
        }
    }
}

/// How much each repetition moves, and how many there are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale {
    /// Measured repetitions per point (a warm-up one more runs first).
    pub reps: u32,
    pub stream_bytes: u64,
    pub rr_count: u32,
    /// TCP_CRR's transactions (each is a connection: dearer than RR's).
    pub crr_count: u32,
    /// Bytes of each of question 1's concurrent flows.
    pub flow_bytes: u64,
    /// The most each switching stream (question 2's handover) may send: it
    /// ends once both switches are timed (about 1 s of it on netfront).
    pub handover_bytes: u64,
    /// Seconds a point's client may take, in dom0.
    pub point_timeout: u64,
}

/// `./run.sh study --quick`: the same questions, short transfers, fewer
/// factor values; its figures are not comparable with a full run's.
pub const QUICK: Scale = Scale {
    reps: 5,
    stream_bytes: 1 << 20,
    rr_count: 200,
    crr_count: 100,
    flow_bytes: 1 << 20,
    handover_bytes: 1 << 30,
    point_timeout: 300,
};
pub const FULL: Scale = Scale {
    reps: 5,
    stream_bytes: 16 << 20,
    rr_count: 2000,
    crr_count: 1000,
    flow_bytes: 4 << 20,
    handover_bytes: 1 << 30,
    point_timeout: 1200,
};

/// Question 2's switches under each load: (the point's value, its
/// `handover.load`; none: the default, a stream to the server's sink).
pub const HANDOVER_LOADS: [(&str, &str); 3] =
    [("channel-netfront", ""), ("channel-netfront-maerts", "maerts"), ("channel-netfront-rr", "rr")];
/// A switching MAERTS's bytes: it runs to its end, so no more than about
/// 1 s on netfront (some 100 MB in this lab) and a margin need.
const HANDOVER_MAERTS_BYTES: u64 = 256 << 20;
/// The most transactions a switching request/response may make: it ends
/// once back on the channel (some 4000 of them in 1 s on netfront).
const HANDOVER_RR_COUNT: u32 = 1_000_000;

/// Question 1's flows from the one client, and its servers' addresses
/// (cohort-study.sh: server K is 198.18.0.(40+K)): a co-resident one in
/// the client's group, a remote one in another.
pub const FLOWS: usize = 4;
const LOCAL_SERVER: &str = "198.18.0.40";
const REMOTE_SERVER: &str = "198.18.0.41";
/// Question 1's other remote peers, reached over netfront only: dom0
/// itself (its xenbr0 address; netref serves in dom0) and the Linux
/// reference guest (cohort-study.sh's `linux:` server).
pub const DOM0_PEER: &str = "198.18.0.1";
pub const LINUX_PEER: &str = "198.18.0.50";
/// The Cohort iperf3 server of the baseline (cohort-study.sh's srv0).
const COHORT_IPERF3: &str = "198.18.0.40";
/// The local fraction at which question 1 tries the other remote peers.
pub const OTHER_PEERS_LOCAL: usize = 2;
/// The plan's server field of a point measured in dom0, with no guest.
pub const DOM0_WORK: &str = "dom0:discoveryd-cost";

/// One point of the matrix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Point {
    /// `q2/residency=on/stream`: unique, the key `--resume` skips by.
    pub id: String,
    pub question: u8,
    pub factor: &'static str,
    pub value: String,
    /// Which of a comparison's sides (question 1: `residency on`, `residency
    /// off`); empty for a plain sweep.
    pub series: &'static str,
    pub workload: Workload,
    pub path: Path,
    /// The server's options after `app=echo`.
    pub server: String,
    /// The client's options (app, group, factor), without `net.peer`.
    pub client: String,
    /// Extra lines of both guests' xl configs.
    pub xl: String,
}

/// Question 3's `workload` factor, in its order: the TCP stream each way,
/// request/response on one connection and a connection each, UDP
/// request/response and the UDP stream.
pub const WORKLOADS: [Workload; 6] = [
    Workload::Stream,
    Workload::Maerts,
    Workload::Rr,
    Workload::Crr,
    Workload::UdpRr,
    Workload::UdpStream,
];

/// The UDP stream's sending rate (iperf3's `-b`): above what netfront
/// carries in the lab (TCP: some 400 Mbit/s). Over the channel about 40%
/// of the datagrams are lost at this rate too (README, a quick run).
pub const UDP_BITRATE: &str = "1G";

/// The `placement` factor's values and the xl lines that make them (the
/// lab has 2 pCPUs; dom0 has a vCPU on each unless pinned).
pub const PLACEMENTS: [(&str, &str); 4] = [
    ("spread", ""),
    ("same-pcpu", "cpus = \"1\""),
    ("different-pcpus", "cpus = \"0\";;cpus = \"1\""),
    ("with-dom0", "dom0-cpus=1 cpus = \"1\""),
];

/// The `memory` factor's values (MiB of each guest, full matrix only).
pub const MEMORY_MIB: [u32; 4] = [16, 32, 64, 128];

/// The group of the channel points (client and server co-resident).
const GROUP: &str = "study";

/// A point builder: the factor's value as options of both guests.
struct Sweep<'a> {
    question: u8,
    factor: &'static str,
    scale: &'a Scale,
}

impl Sweep<'_> {
    /// `both`: options for server and client; `xl`: config lines of both.
    fn point(&self, value: &str, workload: Workload, path: Path, both: &str, xl: &str) -> Point {
        let (server_group, client_group) = match path {
            Path::Channel => (GROUP, Some(GROUP)),
            // The same server as the channel points; the client in no group.
            Path::Netfront | Path::Both | Path::Dom0 => (GROUP, None),
        };
        self.custom(value, workload, path, &format!("net.group={server_group}"), client_group, both, xl)
    }

    #[allow(clippy::too_many_arguments)]
    fn custom(
        &self,
        value: &str,
        workload: Workload,
        path: Path,
        server: &str,
        client_group: Option<&str>,
        both: &str,
        xl: &str,
    ) -> Point {
        let s = self.scale;
        // One warm-up repetition first: it may start before the channel is
        // up; the harness drops it.
        let reps = s.reps + 1;
        let app = match workload {
            Workload::Stream => format!("app=stream net.check=count net.bytes={} net.reps={reps}", s.stream_bytes),
            Workload::Rr => format!("app=rr net.count={} net.reps={reps}", s.rr_count),
            Workload::Mix => format!("app=mix net.bytes={} net.reps={reps}", s.flow_bytes),
            Workload::MixRr => format!("app=mix mix.rr=on net.count={} net.reps={reps}", s.rr_count),
            // cohort-study.sh runs these in dom0: `DOMAINS REPS`.
            Workload::Discoveryd => format!("{value} {reps}"),
            // Detection happens once a boot: a boot a repetition
            // (cohort-study.sh's `boots=N`), one stream each.
            Workload::Handover => format!("boots={reps} app=handover net.bytes={} net.reps=1", s.handover_bytes),
            Workload::Maerts => format!("app=maerts net.check=count net.bytes={} net.reps={reps}", s.stream_bytes),
            Workload::Crr => format!("app=crr net.count={} net.reps={reps}", s.crr_count),
            Workload::UdpRr => format!("app=udp-rr net.count={} net.reps={reps}", s.rr_count),
            Workload::UdpStream => format!(
                "app=iperf3-client iperf3.udp=on iperf3.bitrate={UDP_BITRATE} net.bytes={} net.reps={reps}",
                s.stream_bytes
            ),
        };
        let group = client_group.map(|g| format!(" net.group={g}")).unwrap_or_default();
        let both = if both.is_empty() { String::new() } else { format!(" {both}") };
        Point {
            id: format!("q{}/{}={}/{}/{}", self.question, self.factor, value, workload.as_str(), path.as_str()),
            question: self.question,
            factor: self.factor,
            value: value.to_string(),
            series: "",
            workload,
            path,
            server: format!("{server}{both}"),
            client: format!("{app}{group}{both}"),
            xl: xl.to_string(),
        }
    }
}

/// The points of a run, in the order they run (points sharing a server
/// follow each other, so the scenario keeps it).
pub fn matrix(quick: bool) -> Vec<Point> {
    let scale = if quick { &QUICK } else { &FULL };
    let mut points = Vec::new();

    // Question 2: the same remote peer (group "far", so dom0 lists it but
    // it is no one's co-resident peer), from a client with the residency
    // layer on (group "near": advertised, listed, watching) and off (no
    // group). Both take netfront.
    // TCP to netfront goes as GSO packets: without a group as large as
    // netfront takes (64 KiB), in a group no larger than a channel frame
    // (the switch builds them in place), and none when that frame is no
    // larger than Ethernet's. So `on-mtu65521` (64 KiB frames) differs from
    // `off` by the layer alone; `on` is the default (32 KiB), `on-mtu1500`
    // a group without GSO.
    let q2 = Sweep { question: 2, factor: "residency", scale };
    for workload in [Workload::Stream, Workload::Rr] {
        for (value, group, both) in [
            ("off", None, ""),
            ("on-mtu65521", Some("near"), "chan.mtu=65521"),
            ("on", Some("near"), ""),
            ("on-mtu1500", Some("near"), "chan.mtu=1500"),
        ] {
            let mut p = q2.custom(value, workload, Path::Netfront, "net.group=far", group, "", "");
            if !both.is_empty() {
                p.client = format!("{} {both}", p.client);
            }
            points.push(p);
        }
    }
    // Question 2's cost in dom0: one discoveryd scan against 1 to 32 fake
    // domains (cohort-study.sh writes them; no guest runs).
    let discoveryd = Sweep { question: 2, factor: "discoveryd", scale };
    let domains: &[u32] = if quick { &[1, 8, 32] } else { &[1, 2, 4, 8, 16, 32] };
    for n in domains {
        let mut p = discoveryd.custom(&n.to_string(), Workload::Discoveryd, Path::Dom0, DOM0_WORK, None, "", "");
        p.id = format!("q2/discoveryd={n}/discoveryd");
        points.push(p);
    }

    // Question 2's switching cost: detection from the client's boot, and
    // a stream to the co-resident server moved to netfront and back; in
    // the full matrix also a stream from it (MAERTS) and request/response.
    let handover = Sweep { question: 2, factor: "handover", scale };
    let loads: &[(&str, &str)] = if quick { &HANDOVER_LOADS[..1] } else { &HANDOVER_LOADS };
    for (value, load) in loads {
        let mut p = handover.custom(value, Workload::Handover, Path::Both, &format!("net.group={GROUP}"), Some(GROUP), "", "");
        p.id = format!("q2/handover={value}/handover");
        if !load.is_empty() {
            // The run's length: a MAERTS runs to its end (its source sends
            // all it was asked for), request/response ends once back.
            let length = match *load {
                "maerts" => format!("net.bytes={HANDOVER_MAERTS_BYTES}"),
                _ => format!("net.count={HANDOVER_RR_COUNT}"),
            };
            let boots = scale.reps + 1;
            p.client = format!("boots={boots} app=handover handover.load={load} {length} net.reps=1 net.group={GROUP}");
        }
        points.push(p);
    }

    // Question 1: FLOWS concurrent streams from one client, `local` of them
    // to a co-resident server (group "study"), the rest to a remote one
    // (group "far"), with the client in group "study" (residency on: the
    // local flows take the channel) and in none (off: all take netfront).
    let q1 = Sweep { question: 1, factor: "local", scale };
    let locals: &[usize] = if quick { &[0, 2, 4] } else { &[0, 1, 2, 3, 4] };
    // The same mixtures again with request/response flows (the servers'
    // echo): the latency under each mixture.
    for workload in [Workload::Mix, Workload::MixRr] {
        // CI's quick run checks the RR report at one mixture.
        let locals = if quick && workload == Workload::MixRr { &[2][..] } else { locals };
        for &local in locals {
            let peers: Vec<&str> = (0..FLOWS).map(|i| if i < local { LOCAL_SERVER } else { REMOTE_SERVER }).collect();
            let peers = format!("net.peers={}", peers.join(","));
            let value = format!("{}%", 100 * local / FLOWS);
            for (series, group) in [("residency on", Some(GROUP)), ("residency off", None)] {
                let path = match (group, local) {
                    (None, _) | (_, 0) => Path::Netfront,
                    _ => Path::Both,
                };
                let servers = format!("net.group={GROUP};net.group=far");
                let mut p = q1.custom(&value, workload, path, &servers, group, "", "");
                p.client = format!("{} {peers}", p.client);
                p.series = series;
                let side = if group.is_some() { "on" } else { "off" };
                p.id = format!("q1/local={value}/{side}/{}", workload.as_str());
                points.push(p);
            }
        }
    }

    // Question 1 with dom0 and the Linux reference as the remote peer, at
    // half local (CI's quick run: dom0 only, it needs no Linux guest).
    let remote = Sweep { question: 1, factor: "remote", scale };
    let others: &[(&str, &str, &str)] =
        if quick { &[("dom0", "dom0", DOM0_PEER)] } else { &[("dom0", "dom0", DOM0_PEER), ("linux", "linux:", LINUX_PEER)] };
    for &(value, server, addr) in others {
        for workload in [Workload::Mix, Workload::MixRr] {
            let peers: Vec<&str> = (0..FLOWS).map(|i| if i < OTHER_PEERS_LOCAL { LOCAL_SERVER } else { addr }).collect();
            for (series, group) in [("residency on", Some(GROUP)), ("residency off", None)] {
                let path = if group.is_some() { Path::Both } else { Path::Netfront };
                let servers = format!("net.group={GROUP};{server}");
                let mut p = remote.custom(value, workload, path, &servers, group, "", "");
                p.client = format!("{} net.peers={}", p.client, peers.join(","));
                p.series = series;
                let side = if group.is_some() { "on" } else { "off" };
                p.id = format!("q1/remote={value}/{side}/{}", workload.as_str());
                points.push(p);
            }
        }
    }

    // Question 3: one factor at a time from the defaults (channel MTU
    // 32768 in 64-page rings, events after a 25 us spin, message 1 byte).
    let msg = Sweep { question: 3, factor: "msg", scale };
    let sizes: &[u32] = if quick { &[1, 1024] } else { &[1, 64, 1024, 16384, 65536] };
    for path in [Path::Channel, Path::Netfront] {
        for size in sizes {
            points.push(msg.point(&size.to_string(), Workload::Rr, path, &format!("net.msg={size}"), ""));
        }
    }
    // The workloads at the defaults, over each path: the TCP stream each
    // way (the client sends; MAERTS: it receives), transactions on one
    // connection against a connection each (CRR), UDP request/response,
    // and a UDP stream into an iperf3 server (the servers' `app=echo`
    // serves the rest). One workload's two paths follow each other, so
    // the iperf3 server starts once.
    let workload = Sweep { question: 3, factor: "workload", scale };
    for w in WORKLOADS {
        for path in [Path::Channel, Path::Netfront] {
            let mut p = workload.point(w.as_str(), w, path, "", "");
            if w == Workload::UdpStream {
                p.server = format!("app=iperf3 {}", p.server);
            }
            points.push(p);
        }
    }
    let notify = Sweep { question: 3, factor: "notify", scale };
    let modes: &[(&str, &str)] = if quick {
        &[("events", "chan.spin=0"), ("spin25us", "chan.spin=25")]
    } else {
        &[
            ("events", "chan.spin=0"),
            ("spin25us", "chan.spin=25"),
            ("spin100us", "chan.spin=100"),
            ("spin1ms", "chan.spin=1000"),
            ("poll", "chan.poll=on"),
        ]
    };
    let workloads: &[Workload] = if quick { &[Workload::Rr] } else { &[Workload::Rr, Workload::Stream] };
    for &workload in workloads {
        for (value, options) in modes {
            points.push(notify.point(value, workload, Path::Channel, options, ""));
        }
    }
    if !quick {
        let mtu = Sweep { question: 3, factor: "mtu", scale };
        // Rings must hold two frames: small MTUs in fewer pages are fine,
        // 1500 and 9000 as `./run.sh bench` measures them.
        for (value, options) in [
            ("1500", "chan.mtu=1500 chan.pages=16"),
            ("9000", "chan.mtu=9000 chan.pages=32"),
            ("16384", "chan.mtu=16384"),
            ("32768", "chan.mtu=32768"),
            ("65521", "chan.mtu=65521"),
        ] {
            points.push(mtu.point(value, Workload::Stream, Path::Channel, options, ""));
        }
        // 32 pages are the fewest that hold 32 KiB frames.
        let pages = Sweep { question: 3, factor: "pages", scale };
        for n in [32, 64] {
            points.push(pages.point(&n.to_string(), Workload::Stream, Path::Channel, &format!("chan.pages={n}"), ""));
        }
        // vCPUs where Xen puts them, both guests on one pCPU, each on its
        // own, and both on the pCPU dom0's vCPUs are pinned to
        // (cohort-study.sh's XL grammar: `SERVER;;CLIENT`, `dom0-cpus=N`).
        let placement = Sweep { question: 3, factor: "placement", scale };
        for workload in [Workload::Stream, Workload::Rr] {
            for (value, xl) in PLACEMENTS {
                points.push(placement.point(value, workload, Path::Channel, "", xl));
            }
        }
        // 1 to 7 co-resident servers, one concurrent stream to each.
        let peers = Sweep { question: 3, factor: "peers", scale };
        for n in [1, 2, 4, 7] {
            let servers: Vec<String> = (0..n).map(|_| format!("net.group={GROUP}")).collect();
            let addrs: Vec<String> = (0..n).map(|k| format!("198.18.0.{}", 40 + k)).collect();
            let mut p = peers.custom(&n.to_string(), Workload::Mix, Path::Both, &servers.join(";"), Some(GROUP), "", "");
            p.client = format!("{} net.peers={}", p.client, addrs.join(","));
            points.push(p);
        }
        // The guest type (issue 17): server and client both PVH or both
        // PV, the same image, over each path.
        let guest = Sweep { question: 3, factor: "type", scale };
        for value in ["pvh", "pv"] {
            for workload in [Workload::Stream, Workload::Rr] {
                for path in [Path::Channel, Path::Netfront] {
                    points.push(guest.point(value, workload, path, "", &format!("type = \"{value}\"")));
                }
            }
        }
        // Guest memory in MiB, server and client both (cohort_cfg's default
        // is 32; the heap is a quarter of it, the apps' buffers fixed). At 8
        // the heap (about 1.5 MiB) is short of the servers' socket buffers.
        let memory = Sweep { question: 3, factor: "memory", scale };
        for mib in MEMORY_MIB {
            for workload in [Workload::Stream, Workload::Rr] {
                for path in [Path::Channel, Path::Netfront] {
                    points.push(memory.point(&mib.to_string(), workload, path, "", &format!("memory = {mib}")));
                }
            }
        }
        points.extend(baseline(scale));
    }
    points
}

/// Question 3's `baseline`: Linux reference guests (Debian's kernel as
/// PVH, like the Cohort guests; netref, tests/xen/linux-guest/) over
/// netfront, a Linux client against a Linux server (cohort-study.sh's
/// `linux:` fields): the TCP stream with the client's TSO/GSO on and off
/// (iperf3 -n, as many bytes as the study's streams) and 1-byte RR (netref
/// rr, as many transactions). A client runs both of its role's parts, so
/// the part a point does not measure is kept short.
///
/// Then iperf3 across the two systems, TCP stream of as many bytes, with
/// Cohort's own iperf3 (issue 15): a Linux client's `iperf3 -c` against a
/// Cohort server (`app=iperf3`, the first server), and a Cohort client
/// (`app=iperf3-client`) against the Linux server's `iperf3 -s`.
fn baseline(s: &Scale) -> Vec<Point> {
    let reps = s.reps + 1;
    let stream = format!("linux:stream ref.bytes={} ref.count=20 ref.reps={reps}", s.stream_bytes);
    let linux_iperf3 =
        format!("linux:iperf3 ref.role=iperf3 ref.peer={COHORT_IPERF3} ref.iperf=-n,{} ref.reps={reps}", s.stream_bytes);
    let cohort_iperf3 = format!("app=iperf3-client net.peer={LINUX_PEER} net.bytes={} net.reps={reps}", s.stream_bytes);
    [
        ("linux-gso", Workload::Stream, "linux:", stream.clone()),
        ("linux-nogso", Workload::Stream, "linux:", format!("{stream} ref.gso=off")),
        ("linux", Workload::Rr, "linux:", format!("linux:rr ref.bytes={} ref.count={} ref.reps={reps}", 1 << 20, s.rr_count)),
        ("cohort-to-linux", Workload::Stream, "linux:", cohort_iperf3),
        ("linux-to-cohort", Workload::Stream, "app=iperf3", linux_iperf3),
    ]
    .into_iter()
    .map(|(value, workload, server, client)| Point {
        id: format!("q3/{BASELINE}={value}/{}/{}", workload.as_str(), Path::Netfront.as_str()),
        question: 3,
        factor: BASELINE,
        value: value.into(),
        series: "",
        workload,
        path: Path::Netfront,
        server: server.into(),
        client,
        xl: String::new(),
    })
    .collect()
}

/// The factors a matrix varies, in its order.
pub fn factors(points: &[Point]) -> Vec<&'static str> {
    let mut f: Vec<&'static str> = Vec::new();
    for p in points {
        if !f.contains(&p.factor) {
            f.push(p.factor);
        }
    }
    f
}

/// The scenario's plan: one point a line, `ID SERVER CLIENT XL`, tab-separated.
pub fn plan(points: &[Point]) -> String {
    points.iter().map(|p| format!("{}\t{}\t{}\t{}\n", p.id, p.server, p.client, p.xl)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_plans_have_four_fields() {
        for quick in [true, false] {
            let points = matrix(quick);
            let ids: HashSet<_> = points.iter().map(|p| p.id.as_str()).collect();
            assert_eq!(ids.len(), points.len());
            for line in plan(&points).lines() {
                assert_eq!(line.split('\t').count(), 4, "{line}");
                assert!(!line.contains('\n'));
            }
        }
    }

    #[test]
    fn question_2_compares_the_same_peer_with_the_layer_on_and_off() {
        let points = matrix(true);
        let q2: Vec<_> = points.iter().filter(|p| p.factor == "residency").collect();
        assert_eq!(q2.len(), 8);
        for p in &q2 {
            assert_eq!(p.server, "net.group=far");
            assert_eq!(p.path, Path::Netfront);
            assert_eq!(p.client.contains("net.group=near"), p.value != "off", "{}", p.client);
            assert_eq!(p.client.contains("chan.mtu=1500"), p.value == "on-mtu1500", "{}", p.client);
            // 65521 + 14 = 65535: GSO packets as large as without a group.
            assert_eq!(p.client.contains("chan.mtu=65521"), p.value == "on-mtu65521", "{}", p.client);
        }
    }

    #[test]
    fn question_1_mixes_local_and_remote_flows_with_residency_on_and_off() {
        let full = matrix(false);
        let q1: Vec<_> = full.iter().filter(|p| p.question == 1 && p.factor == "local").collect();
        assert_eq!(q1.len(), 20, "five mixtures, residency on and off, streams and RR");
        for workload in [Workload::Mix, Workload::MixRr] {
            assert_eq!(q1.iter().filter(|p| p.workload == workload).count(), 10, "{workload:?}");
        }
        for p in &q1 {
            let local: usize = p.value.trim_end_matches('%').parse::<usize>().unwrap() * FLOWS / 100;
            assert_eq!(p.client.matches(LOCAL_SERVER).count(), local, "{}", p.client);
            assert_eq!(p.client.matches(REMOTE_SERVER).count(), FLOWS - local, "{}", p.client);
            assert_eq!(p.client.contains("net.group=study"), p.series == "residency on");
            assert_eq!(p.server, "net.group=study;net.group=far");
        }
        let quick_rr: Vec<String> =
            matrix(true).into_iter().filter(|p| p.workload == Workload::MixRr && p.factor == "local").map(|p| p.id).collect();
        assert_eq!(quick_rr, ["q1/local=50%/on/mix-rr", "q1/local=50%/off/mix-rr"]);
        let rr = q1.iter().find(|p| p.id == "q1/local=25%/off/mix-rr").unwrap();
        assert!(rr.client.starts_with(&format!("app=mix mix.rr=on net.count={} ", FULL.rr_count)), "{}", rr.client);
        assert_eq!(rr.path, Path::Netfront);
        let on_half = q1.iter().find(|p| p.id == "q1/local=50%/on/mix").unwrap();
        assert_eq!(on_half.path, Path::Both);
        assert!(Path::Both.accepts("channel") && Path::Both.accepts("channel+netfront") && !Path::Both.accepts("netfront"));
        assert!(Path::Netfront.accepts("netfront") && !Path::Netfront.accepts("channel+netfront"));
        assert_eq!(q1.iter().find(|p| p.id == "q1/local=100%/off/mix").unwrap().path, Path::Netfront);
    }

    #[test]
    fn placement_pins_the_guests_together_apart_and_with_dom0() {
        let full = matrix(false);
        let p: Vec<(&str, Workload, &str)> =
            full.iter().filter(|p| p.factor == "placement").map(|p| (p.value.as_str(), p.workload, p.xl.as_str())).collect();
        let mut want = Vec::new();
        for w in [Workload::Stream, Workload::Rr] {
            want.extend([
                ("spread", w, ""),
                ("same-pcpu", w, "cpus = \"1\""),
                ("different-pcpus", w, "cpus = \"0\";;cpus = \"1\""),
                ("with-dom0", w, "dom0-cpus=1 cpus = \"1\""),
            ]);
        }
        assert_eq!(p, want);
        assert!(matrix(true).iter().all(|p| p.factor != "placement"), "full matrix only");
    }

    #[test]
    fn question_2_times_the_switch_over_a_boot_a_repetition() {
        for (quick, scale) in [(true, &QUICK), (false, &FULL)] {
            let points = matrix(quick);
            let h: Vec<&Point> = points.iter().filter(|p| p.factor == "handover").collect();
            assert_eq!(h.len(), if quick { 1 } else { 3 });
            let p = h[0];
            assert_eq!((p.question, p.workload, p.path), (2, Workload::Handover, Path::Both));
            assert_eq!(p.server, "net.group=study");
            let boots = scale.reps + 1;
            assert_eq!(
                p.client,
                format!("boots={boots} app=handover net.bytes={} net.reps=1 net.group=study", scale.handover_bytes)
            );
            // Room for a second on netfront at over a Gbit/s.
            assert!(scale.handover_bytes >= 1 << 30);
            if !quick {
                assert_eq!(
                    (h[1].id.as_str(), h[1].client.as_str()),
                    (
                        "q2/handover=channel-netfront-maerts/handover",
                        "boots=6 app=handover handover.load=maerts net.bytes=268435456 net.reps=1 net.group=study"
                    )
                );
                assert_eq!(
                    (h[2].id.as_str(), h[2].client.as_str()),
                    (
                        "q2/handover=channel-netfront-rr/handover",
                        "boots=6 app=handover handover.load=rr net.count=1000000 net.reps=1 net.group=study"
                    )
                );
                assert!(h
                    .iter()
                    .all(|p| (p.question, p.workload, p.server.as_str()) == (2, Workload::Handover, "net.group=study")));
            }
        }
    }

    #[test]
    fn question_1_has_dom0_and_linux_as_remote_peers_at_half_local() {
        for (quick, kinds) in [(true, &["dom0"][..]), (false, &["dom0", "linux"][..])] {
            let points = matrix(quick);
            let r: Vec<&Point> = points.iter().filter(|p| p.factor == "remote").collect();
            assert_eq!(r.len(), kinds.len() * 4, "stream and RR mixtures, on and off");
            for p in &r {
                assert!(kinds.contains(&p.value.as_str()), "{}", p.id);
                let (server, addr) = if p.value == "dom0" { ("dom0", DOM0_PEER) } else { ("linux:", LINUX_PEER) };
                assert_eq!(p.server, format!("net.group={GROUP};{server}"));
                let peers = p.client.split(" net.peers=").nth(1).unwrap();
                assert_eq!(peers, [LOCAL_SERVER, LOCAL_SERVER, addr, addr].join(","), "{}", p.id);
                assert_eq!(p.client.contains("net.group=study"), p.series == "residency on");
                assert_eq!(p.path, if p.series == "residency on" { Path::Both } else { Path::Netfront });
            }
            // One server set per peer kind: the scenario starts it once.
            for kind in kinds {
                let at: Vec<usize> =
                    points.iter().enumerate().filter(|(_, p)| p.factor == "remote" && p.value == *kind).map(|(i, _)| i).collect();
                assert_eq!(at, (at[0]..at[0] + 4).collect::<Vec<_>>(), "{kind}");
            }
        }
    }

    #[test]
    fn the_workload_factor_has_each_tcp_workload_over_each_path_quick_and_full() {
        for (quick, scale) in [(true, &QUICK), (false, &FULL)] {
            let points = matrix(quick);
            let w: Vec<&Point> = points.iter().filter(|p| p.factor == "workload").collect();
            assert_eq!(w.len(), 12);
            for path in [Path::Channel, Path::Netfront] {
                let ids: Vec<&str> = w.iter().filter(|p| p.path == path).map(|p| p.id.as_str()).collect();
                let expected: Vec<String> =
                    WORKLOADS.iter().map(|w| format!("q3/workload={0}/{0}/{1}", w.as_str(), path.as_str())).collect();
                assert_eq!(ids, expected);
            }
            let maerts = w.iter().find(|p| p.workload == Workload::Maerts).unwrap();
            assert!(maerts.client.starts_with(&format!("app=maerts net.check=count net.bytes={} ", scale.stream_bytes)));
            let crr = w.iter().find(|p| p.workload == Workload::Crr).unwrap();
            assert!(crr.client.starts_with(&format!("app=crr net.count={} ", scale.crr_count)), "{}", crr.client);
            assert_eq!(crr.server, "net.group=study", "the echo and source of app=echo serve both");
            let udp_rr = w.iter().find(|p| p.workload == Workload::UdpRr).unwrap();
            assert!(udp_rr.client.starts_with(&format!("app=udp-rr net.count={} ", scale.rr_count)), "{}", udp_rr.client);
            for udp in w.iter().filter(|p| p.workload == Workload::UdpStream) {
                assert_eq!(udp.server, "app=iperf3 net.group=study", "an iperf3 server instead of the echo");
                assert!(udp.client.starts_with("app=iperf3-client iperf3.udp=on iperf3.bitrate=1G net.bytes="), "{}", udp.client);
            }
            // The iperf3 points follow each other: one server start.
            let at: Vec<usize> = points
                .iter()
                .enumerate()
                .filter(|(_, p)| p.factor == "workload" && p.server.starts_with("app="))
                .map(|(i, _)| i)
                .collect();
            assert_eq!(at.len(), 2);
            assert_eq!(at[1], at[0] + 1);
        }
    }

    #[test]
    fn discoveryd_points_run_in_dom0_with_a_warm_up_and_the_reps() {
        for (quick, scale, counts) in [(true, &QUICK, &[1, 8, 32][..]), (false, &FULL, &[1, 2, 4, 8, 16, 32][..])] {
            let points = matrix(quick);
            let d: Vec<&Point> = points.iter().filter(|p| p.factor == "discoveryd").collect();
            assert_eq!(d.iter().map(|p| p.value.parse::<u32>().unwrap()).collect::<Vec<_>>(), counts);
            for p in d {
                assert_eq!((p.question, p.workload, p.path), (2, Workload::Discoveryd, Path::Dom0));
                assert_eq!(p.server, DOM0_WORK);
                assert_eq!(p.client, format!("{} {}", p.value, scale.reps + 1));
            }
        }
        assert!(Path::Dom0.accepts("domains-32") && !Path::Dom0.accepts("domains-") && !Path::Dom0.accepts("netfront"));
    }

    #[test]
    fn the_peers_factor_streams_to_each_of_up_to_seven_co_resident_servers() {
        let full = matrix(false);
        let seven = full.iter().find(|p| p.id == "q3/peers=7/mix/channel+netfront").unwrap();
        assert_eq!(seven.server.split(';').count(), 7);
        assert!(seven.server.split(';').all(|s| s == "net.group=study"));
        assert!(seven
            .client
            .ends_with("net.peers=198.18.0.40,198.18.0.41,198.18.0.42,198.18.0.43,198.18.0.44,198.18.0.45,198.18.0.46"));
        assert!(seven.client.contains("net.group=study"));
    }

    #[test]
    fn the_type_factor_runs_both_guests_pvh_and_pv_over_each_path() {
        let full = matrix(false);
        let t: Vec<&Point> = full.iter().filter(|p| p.factor == "type").collect();
        assert_eq!(t.len(), 8);
        for value in ["pvh", "pv"] {
            for workload in [Workload::Stream, Workload::Rr] {
                for path in [Path::Channel, Path::Netfront] {
                    let p = t.iter().find(|p| p.value == value && p.workload == workload && p.path == path).unwrap();
                    // The xl line reaches both guests (cohort-study.sh).
                    assert_eq!(p.xl, format!("type = \"{value}\""), "{}", p.id);
                }
            }
        }
        // One value's points follow each other: its servers boot once.
        let values: Vec<&str> = t.iter().map(|p| p.value.as_str()).collect();
        assert_eq!(values, ["pvh", "pvh", "pvh", "pvh", "pv", "pv", "pv", "pv"]);
        assert!(!factors(&matrix(true)).contains(&"type"));
    }

    #[test]
    fn the_memory_factor_sizes_both_guests_in_the_full_matrix_only() {
        let full = matrix(false);
        let m: Vec<&Point> = full.iter().filter(|p| p.factor == "memory").collect();
        assert_eq!(m.len(), MEMORY_MIB.len() * 4);
        for mib in MEMORY_MIB {
            for workload in [Workload::Stream, Workload::Rr] {
                for path in [Path::Channel, Path::Netfront] {
                    let id = format!("q3/memory={mib}/{}/{}", workload.as_str(), path.as_str());
                    let p = m.iter().find(|p| p.id == id).unwrap_or_else(|| panic!("{id}"));
                    // The xl line reaches both guests and replaces cohort_cfg's.
                    assert_eq!(p.xl, format!("memory = {mib}"), "{id}");
                    assert_eq!(p.server, "net.group=study", "{id}");
                }
            }
        }
        // One value's points follow each other: its servers boot once.
        let values: Vec<&str> = m.iter().map(|p| p.value.as_str()).collect();
        let mut runs = values.clone();
        runs.dedup();
        assert_eq!(runs, ["16", "32", "64", "128"]);
        assert!(MEMORY_MIB.contains(&32), "the default is in the sweep");
        assert!(!factors(&matrix(true)).contains(&"memory"), "not in the quick matrix (CI)");
    }

    #[test]
    fn the_baseline_factor_runs_linux_guests_in_the_full_matrix_only() {
        let full = matrix(false);
        let b: Vec<&Point> = full.iter().filter(|p| p.factor == BASELINE).collect();
        let ids: Vec<&str> = b.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "q3/baseline=linux-gso/stream/netfront",
                "q3/baseline=linux-nogso/stream/netfront",
                "q3/baseline=linux/rr/netfront",
                "q3/baseline=cohort-to-linux/stream/netfront",
                "q3/baseline=linux-to-cohort/stream/netfront"
            ]
        );
        for p in &b[..3] {
            // cohort-study.sh: a Linux server, then a Linux client.
            assert_eq!((p.server.as_str(), p.path, p.question), ("linux:", Path::Netfront, 3), "{}", p.id);
            assert!(p.client.starts_with(&format!("linux:{} ", p.workload.as_str())), "{}", p.client);
            assert!(!p.client.contains("net."), "no Cohort options: {}", p.client);
            assert_eq!(p.client.contains("ref.gso=off"), p.value == "linux-nogso", "{}", p.client);
        }
        // iperf3 across: a Cohort client of the Linux server (its own
        // net.peer: cohort-study.sh adds none), a Linux client of Cohort's.
        assert_eq!(b[3].server, "linux:");
        assert_eq!(b[3].client, format!("app=iperf3-client net.peer={LINUX_PEER} net.bytes={} net.reps=6", FULL.stream_bytes));
        assert_eq!(b[4].server, "app=iperf3");
        assert_eq!(
            b[4].client,
            format!("linux:iperf3 ref.role=iperf3 ref.peer=198.18.0.40 ref.iperf=-n,{} ref.reps=6", FULL.stream_bytes)
        );
        assert!(b[0].client.contains(&format!("ref.bytes={} ", FULL.stream_bytes)), "{}", b[0].client);
        assert!(b[2].client.contains(&format!("ref.count={} ", FULL.rr_count)), "{}", b[2].client);
        assert_eq!(main_figure(BASELINE, Workload::Stream), ("net.iperf3_tcp", "Mbit/s"));
        assert_eq!(main_figure(BASELINE, Workload::Rr), ("net.tcp_rr", "transactions/s"));
        assert_eq!(main_figure("workload", Workload::Stream), ("net.tcp_stream", "Mbit/s"));
        // The Linux server is kept for all three: they follow each other.
        let at: Vec<usize> = full.iter().enumerate().filter(|(_, p)| p.factor == BASELINE).map(|(i, _)| i).collect();
        assert_eq!(at, (at[0]..at[0] + 5).collect::<Vec<_>>());
        assert!(matrix(true).iter().all(|p| p.factor != BASELINE && !p.server.contains("linux:")), "no Linux in CI");
    }

    #[test]
    fn every_point_runs_a_warm_up_and_the_reps_and_varies_one_factor() {
        for p in matrix(false) {
            let reps = match p.workload {
                Workload::Discoveryd => format!(" {}", FULL.reps + 1),
                Workload::Handover => format!("boots={} ", FULL.reps + 1),
                _ if p.factor == BASELINE && p.client.starts_with("linux:") => format!("ref.reps={}", FULL.reps + 1),
                _ => format!("net.reps={}", FULL.reps + 1),
            };
            assert!(p.client.contains(&reps), "{}", p.client);
            let channel = p.client.contains(&format!("net.group={GROUP}"));
            if ![Workload::Mix, Workload::MixRr, Workload::Discoveryd, Workload::Handover].contains(&p.workload) {
                assert_eq!(channel, p.path == Path::Channel, "{}", p.id);
            }
        }
        let full = matrix(false);
        let factors: HashSet<_> = full.iter().map(|p| p.factor).collect();
        for f in [
            "local",
            "remote",
            "residency",
            "msg",
            "workload",
            "notify",
            "mtu",
            "pages",
            "placement",
            "peers",
            "type",
            "memory",
            "discoveryd",
            "handover",
            "baseline",
        ] {
            assert!(factors.contains(f), "{f}");
        }
        // README says how many points each matrix has.
        assert_eq!((matrix(true).len(), full.len()), (42, 125));
    }
}
