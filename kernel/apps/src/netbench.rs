//! `app=netbench`: the shared-memory channel against netfront, between
//! the same two guests in one run.
//!
//! 1. Wait for the channel to the peer (the guest booted last measures
//!    from its own boot: detection time).
//! 2. Stream and RR over the channel, `net.reps` times each.
//! 3. A stream that starts on the channel and is moved to netfront a third
//!    of the way: how long until data flows again.
//! 4. Stream and RR over netfront (the peer follows our close).
//! 5. The channel back: how long its setup takes.
//!
//! Then the summary: medians, ratios, `BENCH` figures and a `EVENT`.

use crate::pattern::CheckKind;
use crate::run::{Run, SETUP_TIMEOUT};
use crate::spread::{RrSpread, Spread};
use crate::stream::Stream;
use crate::Stack;
use alloc::format;
use alloc::string::String;
use figures::Event;
use netdev::NetDevice;

/// Acknowledged after the switch, the switching stream has resumed.
pub const RESUMED_AFTER_BYTES: u64 = 256 * 1024;

/// What one path measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Phase {
    pub stream: Spread,
    pub rr: RrSpread,
}

impl<S: Stack> Run<'_, S> {
    /// Runs the five steps and prints the summary.
    pub(crate) fn netbench(&mut self) -> Result<(), String> {
        self.peer()?;
        let up_ms = self.first_channel("netbench", "channel.up_after_boot")?;
        let channel = self.phase("channel")?;
        let switch_ms = self.switch_under_load()?;
        self.wait_for("netbench: the channel to close", SETUP_TIMEOUT, |r| r.channels_up() == 0)?;
        let netfront = self.phase("netfront")?;
        let back_ms = self.channel_back()?;
        self.summary(up_ms, &channel, &netfront, switch_ms, back_ms);
        Ok(())
    }

    /// Step 1: waits for the channel; when it came up, in ms of this guest's
    /// clock (zero at its entry, PVH or PV): netbench's and handover's
    /// detection, as `figure` over `channel`. An error for `app` without
    /// channels (not Xen, or no group).
    pub(crate) fn first_channel(&mut self, app: &str, figure: &str) -> Result<f64, String> {
        if self.stack.device().paths().is_none() {
            return Err(format!("app={app} needs the shared-memory channel: Xen and net.group"));
        }
        self.wait_for(&format!("{app}: waiting for the channel"), SETUP_TIMEOUT, |r| r.channels_up() > 0)?;
        let up_ms = self.now() as f64 / 1e6;
        self.print(format_args!("{app}: channel up {up_ms:.1} ms after this guest's entry"));
        self.figure(figure, "channel", up_ms, "ms");
        Ok(up_ms)
    }

    /// Steps 2 and 4: TCP_STREAM (counted, not hashed, as netperf's: under
    /// emulation hashing the bytes would cost more than either path, and
    /// the comparison is of the paths; other runs check data) and TCP_RR
    /// over `path`, `net.reps` times each, and the frames' share.
    fn phase(&mut self, path: &str) -> Result<Phase, String> {
        let before = self.frames();
        let mut phase = Phase::default();
        for _ in 0..self.net.reps {
            phase.stream.push(self.stream(Some(path), CheckKind::Count)?.mbit_per_s());
        }
        for _ in 0..self.net.reps {
            let r = self.rr(Some(path))?;
            phase.rr.rate.push(r.per_second());
            phase.rr.p50.push(r.p50_us);
            phase.rr.p99.push(r.p99_us);
            phase.rr.mean.push(r.mean_us);
        }
        let frames = self.frame_share(&before, &alloc::format!("{path} phase"));
        if path == "channel" {
            let share = frames.map_or(0.0, |f| f.share);
            self.figure("channel.frame_share", "channel", share, "%");
        }
        Ok(phase)
    }

    /// Step 3: a stream that starts on the channel; a third of the way every
    /// peer is held on netfront. The time from the hold until
    /// [`RESUMED_AFTER_BYTES`] more are acknowledged, in ms (None if the
    /// stream ended first).
    fn switch_under_load(&mut self) -> Result<Option<f64>, String> {
        let (peer, port, bytes) = (self.peer()?, self.net.sink, self.net.bytes);
        let before = self.frames();
        let mut held: Option<(u64, u64)> = None;
        let mut resumed_ns: Option<u64> = None;
        let start = |s: &mut S, local| {
            let (iface, sockets) = s.parts();
            Stream::start(iface, sockets, peer, port, bytes, CheckKind::Fast, local)
        };
        let during = |stack: &mut S, s: &mut Stream, now: u64| {
            let acked = s.acked(stack.sockets());
            match held {
                None if acked >= bytes / 3 => {
                    held = Some((now, acked));
                    if let Some(p) = stack.device().paths() {
                        p.hold(true);
                    }
                }
                Some((t0, base)) if resumed_ns.is_none() && acked >= base + RESUMED_AFTER_BYTES => resumed_ns = Some(now - t0),
                _ => {}
            }
        };
        // Its cost mixes both paths: logged, not a figure.
        let (s, _) = self.drive("switching stream", start, during)?;
        let report = s.finish(self.stack.sockets());
        let frames = self.frame_share(&before, "switching stream");
        self.stream_report(report, "channel-to-netfront", frames)?;
        let switch_ms = resumed_ns.map(|ns| ns as f64 / 1e6);
        self.print(format_args!(
            "netbench: switch to netfront under load: 256 KiB more acknowledged {:.1} ms after the channel closed",
            switch_ms.unwrap_or(f64::NAN)
        ));
        self.figure("channel.switch_to_netfront", "netfront", switch_ms.unwrap_or(f64::NAN), "ms");
        Ok(switch_ms)
    }

    /// Step 5: lets the channel come back; how long its setup took, in ms.
    fn channel_back(&mut self) -> Result<f64, String> {
        self.hold(false);
        let back_ms = self.wait_for("netbench: the channel to come back", SETUP_TIMEOUT, |r| r.channels_up() > 0)? as f64 / 1e6;
        self.figure("channel.setup_after_release", "channel", back_ms, "ms");
        self.print(format_args!("netbench: channel back {back_ms:.1} ms after the hold was released"));
        Ok(back_ms)
    }

    /// Medians, ratios, the device's counters; as lines, figures and a
    /// `netbench` result.
    fn summary(&mut self, up_ms: f64, channel: &Phase, netfront: &Phase, switch_ms: Option<f64>, back_ms: f64) {
        let ratio = |a: f64, b: f64| a / b.max(1e-9);
        let (sc, sn) = (channel.stream.median(), netfront.stream.median());
        let (rc, rn) = (channel.rr.rate.median(), netfront.rr.rate.median());
        let (clock, reps) = (self.clock_name(), self.net.reps);
        self.print(format_args!(
            "netbench: TCP_STREAM channel {} Mbit/s, netfront {} Mbit/s ({:.1}x); TCP_RR channel {} /s, netfront {} /s ({:.1}x) \
             [medians (min-max) of {} runs each; {clock} clock]",
            channel.stream,
            netfront.stream,
            ratio(sc, sn),
            channel.rr.rate,
            netfront.rr.rate,
            ratio(rc, rn),
            reps,
        ));
        for (path, rr) in [("channel", &channel.rr), ("netfront", &netfront.rr)] {
            self.print(format_args!(
                "netbench: TCP_RR round trip over {path}: p50 {} us, p99 {} us, mean {} us",
                rr.p50, rr.p99, rr.mean
            ));
        }
        self.figure("channel.stream_speedup", "channel", ratio(sc, sn), "x");
        self.figure("channel.rr_speedup", "channel", ratio(rc, rn), "x");
        self.result(&Event::<&str>::Netbench {
            reps: self.net.reps,
            up_ms,
            stream_channel_mbit: sc,
            stream_netfront_mbit: sn,
            stream_speedup: ratio(sc, sn),
            rr_channel_per_s: rc,
            rr_netfront_per_s: rn,
            rr_speedup: ratio(rc, rn),
            p50_channel_us: channel.rr.p50.median(),
            p50_netfront_us: netfront.rr.p50.median(),
            switch_ms,
            back_ms,
        });
        let counters = self.stack.device_ref().counters();
        self.print(format_args!("netbench: {counters}"));
        // Each counter belongs to the path its name starts with.
        for (name, value, unit) in self.stack.device_ref().figures() {
            let path = name.split('.').next().unwrap_or(name);
            self.figure(name, path, value, unit);
        }
    }
}
