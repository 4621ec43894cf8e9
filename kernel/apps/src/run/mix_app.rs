//! `app=mix`: one guest, N concurrent TCP flows, one to each address of
//! `net.peers`: the study's question 1, where some peers are co-resident
//! (the channel) and the rest remote (netfront). By default each flow is a
//! stream to the peer's sink; with `mix.rr=on` a TCP_RR client of the
//! peer's echo, whose latencies are pooled over all flows and per peer
//! address (a guest cannot tell which path one flow took, only how the
//! frames of all split). Every flow counts from one start (all connected),
//! so the aggregate and each flow's rate share a clock; the frames moved
//! say how much took the channel.

use super::{ip, Run, CLOSE_TIMEOUT, STALL_TIMEOUT};
use crate::client::{closed, mbit_per_s, Client, Progress};
use crate::latency::Latencies;
use crate::pattern::CheckKind;
use crate::rr::Rr;
use crate::stream::Stream;
use crate::Stack;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;

/// One repetition's outcome.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MixReport {
    pub flows: usize,
    pub bytes: u64,
    pub seconds: f64,
    /// Throughput of the slowest and the fastest flow, each from the
    /// common start to its own end.
    pub slowest: f64,
    pub fastest: f64,
}

impl MixReport {
    pub fn aggregate(&self) -> f64 {
        mbit_per_s(self.bytes, self.seconds)
    }
}

/// One repetition of the RR mixture.
#[derive(Clone, Debug, PartialEq)]
pub struct MixRrReport {
    pub flows: usize,
    pub transactions: u64,
    /// From the common start to the last flow's end.
    pub seconds: f64,
    /// Transactions per second of the slowest flow, from the common start
    /// to its own end.
    pub slowest: f64,
    /// Over every transaction of every flow.
    pub mean_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Per distinct peer address, in `net.peers` order.
    pub peers: Vec<PeerLatency>,
}

impl MixRrReport {
    pub fn aggregate(&self) -> f64 {
        self.transactions as f64 / self.seconds.max(1e-9)
    }
}

/// The transactions of the flows to one peer address.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerLatency {
    pub peer: [u8; 4],
    pub flows: usize,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// A flow of a mixture: a client, and when it ended.
trait Flow: Client {
    fn done_ns(&self) -> Option<u64>;
}

impl Flow for Stream {
    fn done_ns(&self) -> Option<u64> {
        self.done_ns
    }
}

/// A TCP_RR flow of the mixture. [`Rr`] sends its first request as soon as
/// it is connected; this one only connects until `go`, so no flow's
/// transactions start (or wait in its socket) while others connect.
struct RrFlow {
    peer: [u8; 4],
    rr: Rr,
    connected_ns: Option<u64>,
    go: bool,
}

impl Client for RrFlow {
    fn service(&mut self, sockets: &mut SocketSet<'static>, now_ns: u64) -> Result<bool, String> {
        if self.go {
            return self.rr.service(sockets, now_ns);
        }
        let socket = sockets.get_mut::<tcp::Socket>(self.rr.handle());
        crate::client::await_connected(socket, &mut self.connected_ns, now_ns).map(|_| false)
    }
    fn connected(&self) -> bool {
        self.connected_ns.is_some()
    }
    fn done(&self) -> bool {
        self.rr.done()
    }
    fn handle(&self) -> SocketHandle {
        self.rr.handle()
    }
    fn progress(&self, sockets: &mut SocketSet<'static>) -> Progress {
        Client::progress(&self.rr, sockets)
    }
}

impl Flow for RrFlow {
    fn done_ns(&self) -> Option<u64> {
        self.rr.done_ns
    }
}

impl<S: Stack> Run<'_, S> {
    /// `net.reps` repetitions of the mixture.
    pub(super) fn mix(&mut self) -> Result<(), String> {
        if self.net.peers.as_slice().is_empty() {
            return Err("app=mix needs net.peers=A.B.C.D[,...]".into());
        }
        if self.net.mix.rr {
            return (0..self.net.reps).try_for_each(|_| self.mix_rr_once().map(drop));
        }
        (0..self.net.reps).try_for_each(|_| self.mix_once().map(drop))
    }

    /// Runs connected `flows` from one start until all are done (a stop
    /// request, or a round without progress for the stall timeout, ends it
    /// with an error), then lets their close handshakes finish (bounded).
    /// The common start and the last flow's end, in ns.
    fn race<F: Flow>(&mut self, what: &str, flows: &mut [F]) -> Result<(u64, u64), String> {
        let start = self.now();
        let mut last_progress = start;
        while !flows.iter().all(|f| f.done()) {
            self.check_stop()?;
            let polled = self.stack.step();
            let mut moved = false;
            for flow in flows.iter_mut().filter(|f| !f.done()) {
                let now = self.now();
                moved |= self.timed(|s| flow.service(s.sockets(), now))?;
            }
            let now = self.now();
            if moved {
                last_progress = now;
            } else if now.saturating_sub(last_progress) > STALL_TIMEOUT {
                let done = flows.iter().filter(|f| f.done()).count();
                return Err(format!(
                    "{what}: no progress for {} s ({done} of {} flows done)",
                    STALL_TIMEOUT / super::SECOND,
                    flows.len()
                ));
            }
            if !polled && !moved {
                self.stack.wait();
            }
        }
        let end = flows.iter().filter_map(|f| f.done_ns()).max().unwrap_or(start);
        let deadline = self.now() + CLOSE_TIMEOUT;
        while !flows.iter().all(|f| closed(self.stack.sockets(), f.handle())) && self.now() < deadline {
            if !self.stack.step() {
                self.stack.wait();
            }
        }
        Ok((start, end))
    }

    fn mix_once(&mut self) -> Result<MixReport, String> {
        let (port, bytes) = (self.net.sink, self.net.bytes);
        let peers: Vec<[u8; 4]> = self.net.peers.as_slice().to_vec();
        self.settle();
        let list: Vec<String> = peers.iter().map(|p| ip(*p)).collect();
        log::info!("mix: {} concurrent streams of {bytes} bytes to {}", peers.len(), list.join(", "));
        let before = self.frames();
        let mut flows = Vec::with_capacity(peers.len());
        for peer in peers {
            let mut start = |s: &mut S, local| {
                let (iface, sockets) = s.parts();
                Stream::start(iface, sockets, peer, port, bytes, CheckKind::Count, local)
            };
            flows.push(self.connect("mix", &mut start)?);
        }
        let (start, end) = self.race("mix", &mut flows)?;
        let frames = self.frame_share(&before, "mix");
        let mut report = MixReport { flows: flows.len(), bytes: 0, seconds: 0.0, slowest: f64::MAX, fastest: 0.0 };
        for flow in flows {
            let own = flow.done_ns.unwrap_or(end).saturating_sub(start) as f64 / 1e9;
            let r = flow.finish(self.stack.sockets());
            if !r.matches() {
                return Err(format!("mix: a sink counted {} bytes of {}", r.sink_bytes, r.bytes));
            }
            let rate = mbit_per_s(r.bytes, own);
            report.slowest = report.slowest.min(rate);
            report.fastest = report.fastest.max(rate);
            report.bytes += r.bytes;
        }
        report.seconds = end.saturating_sub(start) as f64 / 1e9;
        let path = self.path_label(None, frames);
        self.print(format_args!(
            "mix: {} flows, {} bytes in {:.3} s, {:.2} Mbit/s in all over {path}; per flow {:.2} to {:.2} Mbit/s",
            report.flows,
            report.bytes,
            report.seconds,
            report.aggregate(),
            report.slowest,
            report.fastest
        ));
        self.figure("net.mix_aggregate", &path, report.aggregate(), "Mbit/s");
        self.figure("net.mix_flow_slowest", &path, report.slowest, "Mbit/s");
        self.figure("net.mix_flow_fastest", &path, report.fastest, "Mbit/s");
        if let Some(f) = frames {
            self.figure("net.mix_channel_share", &path, f.share, "%");
        }
        Ok(report)
    }

    fn mix_rr_once(&mut self) -> Result<MixRrReport, String> {
        let (port, count, msg) = (self.net.port, self.net.count, self.net.msg as usize);
        let peers: Vec<[u8; 4]> = self.net.peers.as_slice().to_vec();
        self.settle();
        let list: Vec<String> = peers.iter().map(|p| ip(*p)).collect();
        log::info!(
            "mix-rr: {} concurrent TCP_RR flows of {count} transactions of {msg} bytes to {}",
            peers.len(),
            list.join(", ")
        );
        let before = self.frames();
        let mut flows = Vec::with_capacity(peers.len());
        for peer in peers {
            let mut start = |s: &mut S, local| {
                let (iface, sockets) = s.parts();
                let rr = Rr::start(iface, sockets, peer, port, count, msg, local)?;
                Ok(RrFlow { peer, rr, connected_ns: None, go: false })
            };
            flows.push(self.connect("mix-rr", &mut start)?);
        }
        flows.iter_mut().for_each(|f| f.go = true);
        let (start, end) = self.race("mix-rr", &mut flows)?;
        let frames = self.frame_share(&before, "mix-rr");
        let mut all = Latencies::new(0);
        // Per distinct peer: its flows and their latencies.
        let mut by_peer: Vec<([u8; 4], usize, Latencies)> = Vec::new();
        let (mut transactions, mut slowest) = (0u64, f64::MAX);
        let n = flows.len();
        for flow in flows {
            all.merge(flow.rr.latencies());
            let i = match by_peer.iter().position(|(p, _, _)| *p == flow.peer) {
                Some(i) => i,
                None => {
                    by_peer.push((flow.peer, 0, Latencies::new(0)));
                    by_peer.len() - 1
                }
            };
            let (_, flows_to, latencies) = &mut by_peer[i];
            *flows_to += 1;
            latencies.merge(flow.rr.latencies());
            let own = flow.rr.done_ns.unwrap_or(end).saturating_sub(start) as f64 / 1e9;
            let r = flow.rr.finish(self.stack.sockets());
            slowest = slowest.min(f64::from(r.transactions) / own.max(1e-9));
            transactions += u64::from(r.transactions);
        }
        let pooled = all.summary();
        let peers = by_peer
            .into_iter()
            .map(|(peer, flows, l)| {
                let s = l.summary();
                PeerLatency { peer, flows, p50_us: s.p50_us, p99_us: s.p99_us }
            })
            .collect();
        let report = MixRrReport {
            flows: n,
            transactions,
            seconds: end.saturating_sub(start) as f64 / 1e9,
            slowest,
            mean_us: pooled.mean_us,
            p50_us: pooled.p50_us,
            p99_us: pooled.p99_us,
            peers,
        };
        let path = self.path_label(None, frames);
        self.print(format_args!(
            "mix-rr: {} flows, {} transactions in {:.3} s, {:.0}/s in all over {path}, slowest flow {:.0}/s; latency mean {:.1} us, p50 {:.1} us, p99 {:.1} us",
            report.flows,
            report.transactions,
            report.seconds,
            report.aggregate(),
            report.slowest,
            report.mean_us,
            report.p50_us,
            report.p99_us
        ));
        self.figure("net.mix_rr_aggregate", &path, report.aggregate(), "transactions/s");
        self.figure("net.mix_rr_flow_slowest", &path, report.slowest, "transactions/s");
        self.figure("net.mix_rr_latency_p50", &path, report.p50_us, "us");
        self.figure("net.mix_rr_latency_p99", &path, report.p99_us, "us");
        if let Some(f) = frames {
            self.figure("net.mix_rr_channel_share", &path, f.share, "%");
        }
        for p in &report.peers {
            let (peer, label) = (ip(p.peer), format!("peer-{}", ip(p.peer)));
            self.print(format_args!(
                "mix-rr: {} flows to {peer}: latency p50 {:.1} us, p99 {:.1} us",
                p.flows, p.p50_us, p.p99_us
            ));
            self.figure("net.mix_rr_peer_latency_p50", &label, p.p50_us, "us");
            self.figure("net.mix_rr_peer_latency_p99", &label, p.p99_us, "us");
        }
        Ok(report)
    }
}
