//! `app=handover`: the switch between paths under load, both ways, and
//! what it costs the stream (question 2 of the study).
//!
//! Once: how long after this guest's entry its first channel came up
//! (detection: its advert, dom0's listing, the offer and the mapping; the
//! study gives it one co-resident peer, `net.peer`), and the same from its
//! advert, split where it read dom0's list naming the peer.
//! Then `net.reps` times, a stream of at most `net.bytes` (FNV-checked by
//! the sink: a lost, duplicated or reordered byte fails it) that starts on
//! the channel. Once [`HOLD_AFTER_BYTES`] are acknowledged every peer is
//! held on netfront; `handover.hold_ms` later the hold is released and the
//! channel comes back; once the stream has resumed on it, it ends. Per
//! stream, as `BENCH` figures over `channel+netfront`: the time from the
//! hold until the stream resumed on netfront ([`RESUMED_AFTER_BYTES`] more
//! acknowledged), from the release until the channel was up, and until the
//! stream resumed on it; the TCP payload sent in all and sent again
//! (smoltcp counts neither: the device does, [`netdev::Paths::track_tcp`]);
//! the stream's rate across both switches is its `net.tcp_stream`.

use crate::pattern::CheckKind;
use crate::run::{Run, SETUP_TIMEOUT};
use crate::stream::Stream;
use crate::Stack;
use alloc::format;
use alloc::string::String;
use netdev::NetDevice;

/// Acknowledged after a switch, the stream has resumed on the new path.
pub const RESUMED_AFTER_BYTES: u64 = 256 * 1024;
/// Acknowledged over the channel before the hold: the stream is under way.
pub const HOLD_AFTER_BYTES: u64 = 1 << 20;
/// The least `net.bytes` that can see both switches.
pub const MIN_BYTES: u64 = HOLD_AFTER_BYTES + 2 * RESUMED_AFTER_BYTES;
/// The figures' path: the stream takes both.
const PATH: &str = "channel+netfront";

/// Where a stream is in its two switches.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    /// On the channel, until [`HOLD_AFTER_BYTES`] are acknowledged.
    Channel,
    /// Held on netfront since `at` (ns), with `base` bytes acknowledged.
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
    /// The channel up again (released at `at`), with `base` acknowledged then.
    Back {
        at: u64,
        base: u64,
    },
    Done,
}

/// One stream's switches, in ns.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Times {
    to_netfront: Option<u64>,
    channel_back: Option<u64>,
    to_channel: Option<u64>,
}

impl<S: Stack> Run<'_, S> {
    pub(crate) fn handover(&mut self) -> Result<(), String> {
        self.peer()?;
        let up_ms = self.first_channel("handover", "handover.detect")?;
        self.detection_steps(up_ms);
        for rep in 0..self.net.reps {
            self.wait_for("handover: the channel before a stream", SETUP_TIMEOUT, |r| r.channels_up() > 0)?;
            self.switching_stream(rep)?;
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

    /// One stream with both switches; its figures.
    fn switching_stream(&mut self, rep: u32) -> Result<(), String> {
        let (peer, port, bytes) = (self.peer()?, self.net.sink, self.net.bytes);
        if bytes < MIN_BYTES {
            return Err(format!("app=handover needs net.bytes of at least {MIN_BYTES}"));
        }
        let hold_ns = u64::from(self.net.handover_hold_ms) * 1_000_000;
        let before = self.frames();
        if let Some(p) = self.stack.device().paths() {
            p.track_tcp(true);
        }
        let mut step = Step::Channel;
        let mut times = Times::default();
        let start = |s: &mut S, local| {
            let (iface, sockets) = s.parts();
            Stream::start(iface, sockets, peer, port, bytes, CheckKind::Fast, local)
        };
        let during = |stack: &mut S, s: &mut Stream, now: u64| {
            let acked = s.acked(stack.sockets());
            let Some(paths) = stack.device().paths() else { return };
            step = match step {
                Step::Channel if acked >= HOLD_AFTER_BYTES => {
                    paths.hold(true);
                    Step::Held { at: now, base: acked }
                }
                Step::Held { at, base } if acked >= base + RESUMED_AFTER_BYTES => {
                    times.to_netfront = Some(now - at);
                    Step::Netfront { at }
                }
                Step::Netfront { at } if now - at >= hold_ns => {
                    paths.hold(false);
                    Step::Released { at: now }
                }
                Step::Released { at } if paths.channels_up() > 0 => {
                    times.channel_back = Some(now - at);
                    Step::Back { at, base: acked }
                }
                Step::Back { at, base } if acked >= base + RESUMED_AFTER_BYTES => {
                    times.to_channel = Some(now - at);
                    s.end_early();
                    Step::Done
                }
                other => other,
            };
        };
        let result = self.drive("switching stream", start, during);
        let sent = self.stack.device().paths().and_then(|p| {
            let sent = p.tcp_sent();
            p.track_tcp(false);
            sent
        });
        // Whatever happened, no hold outlives the stream.
        if matches!(step, Step::Held { .. } | Step::Netfront { .. }) {
            self.hold(false);
        }
        let (s, _) = result?;
        let report = s.finish(self.stack.sockets());
        let frames = self.frame_share(&before, "switching stream");
        let report = self.stream_report(report, PATH, frames)?;
        let ms = |t: Option<u64>, what: &str| {
            t.map(|ns| ns as f64 / 1e6)
                .ok_or(format!("handover: the stream ended before {what}, at net.bytes={bytes}; give more"))
        };
        let to_netfront = ms(times.to_netfront, "it resumed on netfront")?;
        let channel_back = ms(times.channel_back, "the channel came back")?;
        let to_channel = ms(times.to_channel, "it resumed on the channel")?;
        let sent = sent.ok_or("handover: the device counted no TCP bytes")?;
        self.print(format_args!(
            "handover {}: to netfront {to_netfront:.3} ms; channel back {channel_back:.3} ms, stream on it {to_channel:.3} ms after the \
             release; {} of {} TCP payload bytes sent again; {:.2} Mbit/s",
            rep + 1,
            sent.retransmitted,
            sent.payload,
            report.mbit_per_s()
        ));
        self.figure("handover.to_netfront", PATH, to_netfront, "ms");
        self.figure("handover.channel_back", PATH, channel_back, "ms");
        self.figure("handover.to_channel", PATH, to_channel, "ms");
        self.figure("handover.retransmitted", PATH, sent.retransmitted as f64, "bytes");
        self.figure("handover.payload_sent", PATH, sent.payload as f64, "bytes");
        Ok(())
    }
}
