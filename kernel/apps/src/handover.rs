//! `app=handover`: the switch between paths under load, both ways, and
//! what it costs the traffic (question 2 of the study).
//!
//! Once: how long after this guest's entry its first channel came up
//! (detection: its advert, dom0's listing, the offer and the mapping; the
//! study gives it one co-resident peer, `net.peer`), and the same from its
//! advert, split where it read dom0's list naming the peer.
//! Then `net.reps` times, a run of `handover.load` that starts on the
//! channel: a stream of at most `net.bytes` to the sink (FNV-checked by
//! the sink: a lost, duplicated or reordered byte fails it), `net.bytes`
//! from the source (MAERTS, FNV-checked here), or at most `net.count`
//! request/response transactions of `net.msg` bytes with the echo. Once
//! it has moved [`Marks::hold_after`] every peer is held on netfront;
//! `handover.hold_ms` later the hold is released and the channel comes
//! back; once the run has resumed on it, it ends (a MAERTS runs to its
//! end: the source sends what it was asked for). Per run, as `BENCH`
//! figures over `channel+netfront`: the time from the hold until the run
//! resumed on netfront ([`Marks::resumed_after`] more moved), from the
//! release until the channel was up, and until the run resumed on it; the
//! longest time without progress (a stall) from the hold until the
//! release, and from the release until resumed on the channel;
//! the TCP payload sent, and what of it was sent again; the payload
//! received, and what of it arrived out of order: behind a later byte,
//! after a loss or reordered (smoltcp counts none of these: the device
//! does, [`netdev::Paths::track_tcp`]); the
//! run's own figures (`net.tcp_stream`, `net.tcp_maerts` or `net.tcp_rr`).

use crate::client::Client;
use crate::maerts::Maerts;
use crate::pattern::CheckKind;
use crate::rr::Rr;
use crate::run::{Run, SETUP_TIMEOUT};
use crate::stream::Stream;
use crate::Stack;
use alloc::format;
use alloc::string::String;
use cohort_boot::cmdline::HandoverLoad;
use netdev::{NetDevice, PathFrames, TcpSent};
use smoltcp::iface::SocketSet;

/// A stream's or MAERTS's marks, in bytes.
pub const BYTE_MARKS: Marks = Marks { hold_after: 1 << 20, resumed_after: 256 * 1024 };
/// Request/response's marks, in transactions.
pub const TRANSACTION_MARKS: Marks = Marks { hold_after: 500, resumed_after: 50 };
/// The figures' path: the run takes both.
const PATH: &str = "channel+netfront";

/// How far a run goes on the channel before the hold, and how far more
/// after a switch before it counts as resumed on the new path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marks {
    pub hold_after: u64,
    pub resumed_after: u64,
}

impl Marks {
    /// The least a run must be able to move to see both switches.
    pub const fn least(self) -> u64 {
        self.hold_after + 2 * self.resumed_after
    }
}

/// What moves across the switches.
trait Load: Client {
    /// How far it got: bytes acknowledged (a stream), bytes received
    /// (MAERTS) or transactions done (RR).
    fn moved(&self, sockets: &mut SocketSet<'static>) -> u64;
    /// Ends the run soon, once both switches are timed.
    fn end_early(&mut self);
}

impl Load for Stream {
    fn moved(&self, sockets: &mut SocketSet<'static>) -> u64 {
        self.acked(sockets)
    }
    fn end_early(&mut self) {
        Stream::end_early(self);
    }
}

impl Load for Maerts {
    fn moved(&self, _: &mut SocketSet<'static>) -> u64 {
        self.progress().0
    }
    /// The source sends all it was asked for: the run goes on to its end.
    fn end_early(&mut self) {}
}

impl Load for Rr {
    fn moved(&self, _: &mut SocketSet<'static>) -> u64 {
        u64::from(self.progress().0)
    }
    fn end_early(&mut self) {
        Rr::end_early(self);
    }
}

/// Where a run is in its two switches.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    /// On the channel, until `hold_after` moved.
    Channel,
    /// Held on netfront since `at` (ns), with `base` moved.
    Held {
        at: u64,
        base: u64,
    },
    /// Resumed on netfront; released `hold_ms` after `at`.
    Netfront {
        at: u64,
    },
    /// Released at `at`; waiting for the channel.
    Released {
        at: u64,
    },
    /// The channel up again (released at `at`), with `base` moved then.
    Back {
        at: u64,
        base: u64,
    },
    Done,
}

/// One run's switches, in ns, and what the device counted.
#[derive(Clone, Copy, Debug, Default)]
struct Switched {
    to_netfront: Option<u64>,
    channel_back: Option<u64>,
    to_channel: Option<u64>,
    /// The longest time without progress from the hold until the release,
    /// and from the release until resumed on the channel.
    stall_to_netfront: u64,
    stall_to_channel: u64,
    sent: Option<TcpSent>,
    received: Option<TcpSent>,
}

impl<S: Stack> Run<'_, S> {
    pub(crate) fn handover(&mut self) -> Result<(), String> {
        self.peer()?;
        let up_ms = self.first_channel("handover", "handover.detect")?;
        self.detection_steps(up_ms);
        for rep in 0..self.net.reps {
            self.wait_for("handover: the channel before a run", SETUP_TIMEOUT, |r| r.channels_up() > 0)?;
            match self.net.handover_load {
                HandoverLoad::Stream => self.switching_stream(rep)?,
                HandoverLoad::Maerts => self.switching_maerts(rep)?,
                HandoverLoad::Rr => self.switching_rr(rep)?,
            }
        }
        Ok(())
    }

    /// Detection's steps, as figures over the channel (ms): our advert
    /// written → dom0's list naming a peer read (`handover.advert_listed`:
    /// discoveryd's scan and write, our watch) → the channel seen up
    /// (`handover.listed_up`: the offer and the mapping), and the whole
    /// (`handover.detect_advert`).
    fn detection_steps(&mut self, up_ms: f64) {
        let Some(d) = self.stack.device().paths().and_then(|p| p.detection()) else { return };
        let advert_ms = d.advertised_ns as f64 / 1e6;
        self.figure("handover.detect_advert", "channel", up_ms - advert_ms, "ms");
        let Some(listed_ms) = d.listed_ns.map(|l| l as f64 / 1e6) else { return };
        self.figure("handover.advert_listed", "channel", listed_ms - advert_ms, "ms");
        self.figure("handover.listed_up", "channel", up_ms - listed_ms, "ms");
        self.print(format_args!(
            "handover: advertised at {advert_ms:.1} ms, listed {:.1} ms later, channel up {:.1} ms after that",
            listed_ms - advert_ms,
            up_ms - listed_ms
        ));
    }

    fn switching_stream(&mut self, rep: u32) -> Result<(), String> {
        let (peer, port, bytes) = (self.peer()?, self.net.sink, self.net.bytes);
        least("net.bytes", bytes, BYTE_MARKS)?;
        let start = |s: &mut S, local| {
            let (iface, sockets) = s.parts();
            Stream::start(iface, sockets, peer, port, bytes, CheckKind::Fast, local)
        };
        let (s, before, run) = self.switching("switching stream", BYTE_MARKS, start)?;
        let report = s.finish(self.stack.sockets());
        let frames = self.frame_share(&before, "switching stream");
        let report = self.stream_report(report, PATH, frames)?;
        self.switch_figures(rep, "stream", &run, ("net.bytes", bytes), &format!("{:.2} Mbit/s", report.mbit_per_s()))
    }

    fn switching_maerts(&mut self, rep: u32) -> Result<(), String> {
        let (peer, port, bytes) = (self.peer()?, self.net.source, self.net.bytes);
        least("net.bytes", bytes, BYTE_MARKS)?;
        let start = |s: &mut S, local| {
            let (iface, sockets) = s.parts();
            Maerts::start(iface, sockets, peer, port, bytes, CheckKind::Fast, local)
        };
        let (m, before, run) = self.switching("switching maerts", BYTE_MARKS, start)?;
        let report = m.finish(self.stack.sockets());
        let frames = self.frame_share(&before, "switching maerts");
        let report = self.maerts_report(report, PATH, frames)?;
        self.switch_figures(rep, "maerts", &run, ("net.bytes", bytes), &format!("{:.2} Mbit/s", report.mbit_per_s()))
    }

    fn switching_rr(&mut self, rep: u32) -> Result<(), String> {
        let (peer, port, count, msg) = (self.peer()?, self.net.port, self.net.count, self.net.msg as usize);
        least("net.count", u64::from(count), TRANSACTION_MARKS)?;
        let start = |s: &mut S, local| {
            let (iface, sockets) = s.parts();
            Rr::start(iface, sockets, peer, port, count, msg, local)
        };
        let (r, before, run) = self.switching("switching rr", TRANSACTION_MARKS, start)?;
        let report = r.finish(self.stack.sockets());
        let frames = self.frame_share(&before, "switching rr");
        self.rr_report(&report, PATH, frames);
        let rate = format!("{:.0} transactions/s, p50 {:.1} us", report.per_second(), report.p50_us);
        self.switch_figures(rep, "rr", &run, ("net.count", u64::from(count)), &rate)
    }

    /// Drives one run through both switches: the run, the frames by path
    /// before it, and what the switches took.
    fn switching<L: Load>(
        &mut self,
        what: &str,
        marks: Marks,
        start: impl FnMut(&mut S, u16) -> Result<L, String>,
    ) -> Result<(L, PathFrames, Switched), String> {
        let hold_ns = u64::from(self.net.handover_hold_ms) * 1_000_000;
        let before = self.frames();
        if let Some(p) = self.stack.device().paths() {
            p.track_tcp(true);
        }
        let mut step = Step::Channel;
        let mut run = Switched::default();
        // (moved, when) at the last progress, from the hold on.
        let mut last: Option<(u64, u64)> = None;
        let during = |stack: &mut S, c: &mut L, now: u64| {
            let moved = c.moved(stack.sockets());
            if let Some((_, at)) = last.filter(|(m, _)| *m != moved) {
                let stall = match step {
                    Step::Held { .. } | Step::Netfront { .. } => &mut run.stall_to_netfront,
                    _ => &mut run.stall_to_channel,
                };
                *stall = (*stall).max(now - at);
                last = Some((moved, now));
            }
            let Some(paths) = stack.device().paths() else { return };
            step = match step {
                Step::Channel if moved >= marks.hold_after => {
                    paths.hold(true);
                    last = Some((moved, now));
                    Step::Held { at: now, base: moved }
                }
                Step::Held { at, base } if moved >= base + marks.resumed_after => {
                    run.to_netfront = Some(now - at);
                    Step::Netfront { at }
                }
                Step::Netfront { at } if now - at >= hold_ns => {
                    paths.hold(false);
                    // A stall across the release counts from here.
                    last = Some((moved, now));
                    Step::Released { at: now }
                }
                Step::Released { at } if paths.channels_up() > 0 => {
                    run.channel_back = Some(now - at);
                    Step::Back { at, base: moved }
                }
                Step::Back { at, base } if moved >= base + marks.resumed_after => {
                    run.to_channel = Some(now - at);
                    last = None;
                    c.end_early();
                    Step::Done
                }
                other => other,
            };
        };
        let result = self.drive(what, start, during);
        if let Some(p) = self.stack.device().paths() {
            run.sent = p.tcp_sent();
            run.received = p.tcp_received();
            p.track_tcp(false);
        }
        // Whatever happened, no hold outlives the run.
        if matches!(step, Step::Held { .. } | Step::Netfront { .. }) {
            self.hold(false);
        }
        let (c, _) = result?;
        Ok((c, before, run))
    }

    /// The switches' figures and line for run `rep` of `load`, whose
    /// length was `(key, value)`; `rate` says how fast it went.
    fn switch_figures(&mut self, rep: u32, load: &str, run: &Switched, length: (&str, u64), rate: &str) -> Result<(), String> {
        let (key, value) = length;
        let ms = |t: Option<u64>, what: &str| {
            t.map(|ns| ns as f64 / 1e6).ok_or(format!("handover: the {load} ended before {what}, at {key}={value}; give more"))
        };
        let to_netfront = ms(run.to_netfront, "it resumed on netfront")?;
        let channel_back = ms(run.channel_back, "the channel came back")?;
        let to_channel = ms(run.to_channel, "it resumed on the channel")?;
        let (stall_netfront, stall_channel) = (run.stall_to_netfront as f64 / 1e6, run.stall_to_channel as f64 / 1e6);
        let sent = run.sent.ok_or("handover: the device counted no TCP bytes sent")?;
        let received = run.received.ok_or("handover: the device counted no TCP bytes received")?;
        self.print(format_args!(
            "handover {} ({load}): to netfront {to_netfront:.3} ms; channel back {channel_back:.3} ms, on it {to_channel:.3} ms \
             after the release; longest stall {stall_netfront:.3} ms after the hold, {stall_channel:.3} ms after the release; TCP payload sent again {} of {}, received out of order {} of {}; {rate}",
            rep + 1,
            sent.retransmitted,
            sent.payload,
            received.retransmitted,
            received.payload,
        ));
        self.figure("handover.to_netfront", PATH, to_netfront, "ms");
        self.figure("handover.channel_back", PATH, channel_back, "ms");
        self.figure("handover.to_channel", PATH, to_channel, "ms");
        self.figure("handover.stall_to_netfront", PATH, stall_netfront, "ms");
        self.figure("handover.stall_to_channel", PATH, stall_channel, "ms");
        self.figure("handover.retransmitted", PATH, sent.retransmitted as f64, "bytes");
        self.figure("handover.payload_sent", PATH, sent.payload as f64, "bytes");
        self.figure("handover.received_out_of_order", PATH, received.retransmitted as f64, "bytes");
        self.figure("handover.payload_received", PATH, received.payload as f64, "bytes");
        Ok(())
    }
}

/// An error unless `value` of `key` lets a run see both switches.
fn least(key: &str, value: u64, marks: Marks) -> Result<(), String> {
    if value < marks.least() {
        return Err(format!("app=handover needs {key} of at least {}", marks.least()));
    }
    Ok(())
}
