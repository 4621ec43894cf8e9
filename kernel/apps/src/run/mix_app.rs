//! `app=mix`: one guest, N concurrent TCP streams, one to the sink of each
//! address of `net.peers`: the study's question 1, where some peers are
//! co-resident (the channel) and the rest remote (netfront). Every flow
//! counts from one start (all connected), so the aggregate and each flow's
//! throughput share a clock; the frames moved say how much took the channel.

use super::{ip, Run, CLOSE_TIMEOUT, STALL_TIMEOUT};
use crate::client::{closed, mbit_per_s};
use crate::pattern::CheckKind;
use crate::stream::Stream;
use crate::Stack;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

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

impl<S: Stack> Run<'_, S> {
    /// `net.reps` repetitions of the mixture.
    pub(super) fn mix(&mut self) -> Result<(), String> {
        if self.net.peers.as_slice().is_empty() {
            return Err("app=mix needs net.peers=A.B.C.D[,...]".into());
        }
        (0..self.net.reps).try_for_each(|_| self.mix_once().map(drop))
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
        let start = self.now();
        let mut last_progress = start;
        // Bounded by the stall timeout: a round without progress for that
        // long ends the measurement with an error.
        while !flows.iter().all(Stream::done) {
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
                    "mix: no progress for {} s ({done} of {} flows done)",
                    STALL_TIMEOUT / super::SECOND,
                    flows.len()
                ));
            }
            if !polled && !moved {
                self.stack.wait();
            }
        }
        let end = flows.iter().filter_map(|f| f.done_ns).max().unwrap_or(start);
        let deadline = self.now() + CLOSE_TIMEOUT;
        while !flows.iter().all(|f| closed(self.stack.sockets(), f.handle())) && self.now() < deadline {
            if !self.stack.step() {
                self.stack.wait();
            }
        }
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
}
