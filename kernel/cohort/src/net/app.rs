//! Running the network applications of `app=` on a device: the services
//! (echo and the stream sink), the measuring clients (transfer, stream,
//! rr), and netbench, which measures the shared-memory channel against
//! netfront in one run.

use super::client::{closed, Client};
use super::echo::Echo;
use super::rr::{Rr, RrReport};
use super::pattern::CheckKind;
use super::sink::Sink;
use super::stream::{Stream, StreamReport};
use super::transfer::Transfer;
use super::{NetDevice, PathFrames, Stack};
use figures::Figure;
use crate::clock::{now_ns, sleep, SECOND};
use alloc::format;
use alloc::string::String;
use cohort_boot::cmdline::{App, BenchClock, NetOptions, StreamCheck};

/// How long to wait for DHCP, for the peer to come up, for a channel.
const SETUP_TIMEOUT: u64 = 60 * SECOND;
/// How long a client waits for channels being set up before it starts
/// (so a measurement does not straddle the switch by accident).
const SETTLE_TIMEOUT: u64 = 10 * SECOND;
/// A measurement that makes no progress for this long has failed.
const STALL_TIMEOUT: u64 = 120 * SECOND;
const PROGRESS_EVERY: u64 = 5 * SECOND;

/// Runs `app` on `device`; `stop` says when the platform asks the guest to
/// shut down. The device is closed cleanly before returning.
pub fn run<D: NetDevice>(
    app: App,
    device: D,
    net: &NetOptions,
    clock: BenchClock,
    stop: &mut dyn FnMut() -> bool,
) -> Result<(), String> {
    let mac = device.mac();
    log::info!(
        "net: {} device, MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        device.kind(),
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5]
    );
    let mut stack = Stack::new(device, mac, net);
    let address = wait_for_address(&mut stack)?;
    log::info!("net: address {address} ({})", if net.ip.is_some() { "static" } else { "DHCP" });
    let mut run = Run { stack, net: *net, clock, next_port: 49152 };
    let result = match app {
        App::Echo => run.serve(stop),
        App::Transfer => run.transfer(),
        App::Stream => {
            let kind = match net.check {
                StreamCheck::Sha256 => CheckKind::Sha256,
                StreamCheck::Fnv => CheckKind::Fast,
                StreamCheck::Count => CheckKind::Count,
            };
            (0..net.reps).try_for_each(|_| run.stream(None, kind).map(drop))
        }
        App::Rr => (0..net.reps).try_for_each(|_| run.rr(None).map(drop)),
        App::Netbench => run.netbench(),
    };
    let closed = run.stack.device.shutdown();
    match &closed {
        Ok(how) => log::info!("net: {how}"),
        Err(e) => log::error!("net: closing the device failed: {e}"),
    }
    result.and(closed.map(drop))
}

fn wait_for_address<D: NetDevice>(stack: &mut Stack<D>) -> Result<smoltcp::wire::Ipv4Cidr, String> {
    let deadline = now_ns() + SETUP_TIMEOUT;
    loop {
        stack.step();
        if let Some(address) = stack.ipv4() {
            return Ok(address);
        }
        if now_ns() > deadline {
            return Err("no IPv4 address: give net.ip=A.B.C.D/N or run a DHCP server".into());
        }
        stack.wait();
    }
}

struct Run<D: NetDevice> {
    stack: Stack<D>,
    net: NetOptions,
    clock: BenchClock,
    next_port: u16,
}

impl<D: NetDevice> Run<D> {
    fn peer(&self) -> Result<[u8; 4], String> {
        self.net.peer.ok_or_else(|| String::from("this app needs net.peer=A.B.C.D"))
    }

    fn local_port(&mut self) -> u16 {
        let port = self.next_port;
        self.next_port = self.next_port.checked_add(1).unwrap_or(49152);
        port
    }

    fn figure(&self, name: &str, path: &str, value: f64, unit: &str) {
        crate::println!("{}", Figure { name, path, value, unit, clock: self.clock.as_str() });
    }

    /// Echo (TCP and UDP) on `net.port` and the stream sink on `net.sink`,
    /// until the platform asks us to stop.
    fn serve(&mut self, stop: &mut dyn FnMut() -> bool) -> Result<(), String> {
        let (port, sink_port) = (self.net.port, self.net.sink);
        let mut echo = Echo::new(&mut self.stack.sockets, port)?;
        let mut sink = Sink::new(&mut self.stack.sockets, sink_port);
        log::info!("net: TCP and UDP echo on port {port}, stream sink on port {sink_port}");
        let mut next_report = now_ns() + PROGRESS_EVERY;
        let mut reported = (0, 0, 0);
        loop {
            let polled = self.stack.step();
            let moved = super::profile::time(super::profile::Part::App, || {
                echo.service(&mut self.stack.sockets) | sink.service(&mut self.stack.sockets)
            });
            if now_ns() > next_report {
                next_report += PROGRESS_EVERY;
                let now = (echo.tcp_bytes, echo.udp_packets, sink.bytes);
                if now != reported {
                    reported = now;
                    log::info!(
                        "echo: {} TCP bytes, {} UDP packets; sink: {} bytes in {} streams; {}; {}",
                        echo.tcp_bytes,
                        echo.udp_packets,
                        sink.bytes,
                        sink.streams,
                        self.stack.device.counters(),
                        super::profile::take_line()
                    );
                }
            }
            if stop() {
                log::info!(
                    "echo: shutdown requested after {} TCP bytes, {} UDP packets; sink {} bytes",
                    echo.tcp_bytes,
                    echo.udp_packets,
                    sink.bytes
                );
                return Ok(());
            }
            if !polled && !moved {
                self.stack.wait();
            }
        }
    }

    /// Connects `start(stack, local_port)` (retrying while the peer refuses,
    /// up to the setup timeout), drives it to the end with progress lines,
    /// and lets the close handshake finish. `during` runs every round.
    fn drive<C: Client>(
        &mut self,
        what: &str,
        mut start: impl FnMut(&mut Stack<D>, u16) -> Result<C, String>,
        mut during: impl FnMut(&mut Stack<D>, &mut C),
    ) -> Result<C, String> {
        let setup_deadline = now_ns() + SETUP_TIMEOUT;
        let mut client = loop {
            let port = self.local_port();
            let mut c = start(&mut self.stack, port)?;
            let connected = loop {
                self.stack.step();
                match c.service(&mut self.stack.sockets) {
                    Ok(_) if c.connected() => break true,
                    Ok(_) if now_ns() > setup_deadline => return Err(format!("{what}: the peer never accepted")),
                    Ok(_) => self.stack.wait(),
                    Err(_) => break false,
                }
            };
            if connected {
                break c;
            }
            // Refused (the peer may still be booting): free the socket, retry.
            self.stack.sockets.remove(c.handle());
            sleep(SECOND / 2);
        };
        let mut next_report = now_ns() + PROGRESS_EVERY;
        let mut last_progress = now_ns();
        super::profile::take_line();
        while !client.done() {
            let polled = self.stack.step();
            let moved = super::profile::time(super::profile::Part::App, || client.service(&mut self.stack.sockets))?;
            during(&mut self.stack, &mut client);
            let now = now_ns();
            if moved {
                last_progress = now;
            } else if now.saturating_sub(last_progress) > STALL_TIMEOUT {
                return Err(format!("{what}: no progress for {} s ({})", STALL_TIMEOUT / SECOND, client.progress(&mut self.stack.sockets)));
            }
            if now > next_report {
                next_report += PROGRESS_EVERY;
                log::info!("{}", client.progress(&mut self.stack.sockets));
            }
            if !polled && !moved {
                self.stack.wait();
            }
        }
        log::info!("{what}: {}", super::profile::take_line());
        // Finish the close handshake (bounded), so the server's socket is
        // not left waiting for our last ACK.
        let deadline = now_ns() + 2 * SECOND;
        while !closed(&mut self.stack.sockets, client.handle()) && now_ns() < deadline {
            client.service(&mut self.stack.sockets).ok();
            if !self.stack.step() {
                self.stack.wait();
            }
        }
        Ok(client)
    }

    /// Before a measurement: gives channels being set up a moment.
    fn settle(&mut self) {
        if !self.stack.device.paths().is_some_and(|p| p.settling()) {
            return;
        }
        match self.wait_for("channel setup", SETTLE_TIMEOUT, |r| !r.stack.device.paths().is_some_and(|p| p.settling())) {
            Ok(ns) => log::info!("net: waited {:.1} ms for channels being set up", ns as f64 / 1e6),
            Err(_) => log::warn!("net: channels still not set up after {} s; going ahead", SETTLE_TIMEOUT / SECOND),
        }
    }

    fn transfer(&mut self) -> Result<(), String> {
        let (peer, port, bytes) = (self.peer()?, self.net.port, self.net.bytes);
        self.settle();
        log::info!("transfer: {bytes} bytes to {}:{port} and back", ip(peer));
        let before = self.frames();
        let t = self.drive("transfer", |s, local| Transfer::start(&mut s.iface, &mut s.sockets, peer, port, bytes, local), |_, _| {})?;
        let report = t.report(&mut self.stack.sockets);
        self.frame_share(&before, "transfer");
        crate::println!(
            "transfer: {} bytes echoed in {:.3} s, {:.2} Mbit/s; sha256 sent {} received {} ({})",
            report.bytes,
            report.seconds,
            report.mbit_per_s(),
            report.sent_sha256,
            report.received_sha256,
            if report.matches() { "match" } else { "MISMATCH" }
        );
        crate::println!("transfer: {}", self.stack.device.counters());
        let path = self.stack.device.kind();
        self.figure("net.tcp_echo_throughput", path, report.mbit_per_s(), "Mbit/s");
        for (name, value, unit) in self.stack.device.figures() {
            self.figure(name, path, value, unit);
        }
        if !report.matches() {
            return Err(format!("echoed data differs: sha256 {} != {}", report.received_sha256, report.sent_sha256));
        }
        Ok(())
    }

    /// The path a measurement took, for its output: the one named, else
    /// what the frames say (the device's kind without channels).
    fn path_label(&mut self, named: Option<&str>, before: &PathFrames, what: &str) -> String {
        if let Some(path) = named {
            self.frame_share(before, what);
            return String::from(path);
        }
        if self.stack.device.paths().is_none() {
            return String::from(self.stack.device.kind());
        }
        let share = self.frame_share(before, what);
        String::from(if share >= 99.0 {
            "channel"
        } else if share == 0.0 {
            "netfront"
        } else {
            "channel+netfront"
        })
    }

    /// TCP_STREAM of `net.bytes` to the sink; `path` names it in the output
    /// (by default, what the frames took).
    fn stream(&mut self, path: Option<&str>, kind: CheckKind) -> Result<StreamReport, String> {
        let (peer, port, bytes) = (self.peer()?, self.net.sink, self.net.bytes);
        self.settle();
        log::info!("stream: {bytes} bytes to the sink at {}:{port}", ip(peer));
        let before = self.frames();
        let s = self.drive("stream", |s, local| Stream::start(&mut s.iface, &mut s.sockets, peer, port, bytes, kind, local), |_, _| {})?;
        let report = s.finish(&mut self.stack.sockets);
        let path = self.path_label(path, &before, "stream");
        self.stream_report(report, &path)
    }

    fn stream_report(&mut self, report: StreamReport, path: &str) -> Result<StreamReport, String> {
        crate::println!(
            "stream: {} bytes in {:.3} s, {:.2} Mbit/s over {path}; sink received {} bytes, {} {} ({})",
            report.bytes,
            report.seconds,
            report.mbit_per_s(),
            report.sink_bytes,
            report.check_name(),
            report.sink_digest,
            if report.matches() { "match" } else { "MISMATCH" }
        );
        self.figure("net.tcp_stream", path, report.mbit_per_s(), "Mbit/s");
        if !report.matches() {
            return Err(format!(
                "the sink got {} bytes with {} {}; sent {} with {}",
                report.sink_bytes,
                report.check_name(),
                report.sink_digest,
                report.bytes,
                report.sent_digest
            ));
        }
        Ok(report)
    }

    /// TCP_RR of `net.count` transactions of `net.msg` bytes.
    fn rr(&mut self, path: Option<&str>) -> Result<RrReport, String> {
        let (peer, port, count, msg) = (self.peer()?, self.net.port, self.net.count, self.net.msg as usize);
        self.settle();
        log::info!("rr: {count} transactions of {msg} bytes with {}:{port}", ip(peer));
        let before = self.frames();
        let r = self.drive("rr", |s, local| Rr::start(&mut s.iface, &mut s.sockets, peer, port, count, msg, local), |_, _| {})?;
        let report = r.finish(&mut self.stack.sockets);
        let path = self.path_label(path, &before, "rr");
        let path = path.as_str();
        crate::println!(
            "rr: {} transactions in {:.3} s, {:.0}/s over {path}; latency mean {:.1} us, p50 {:.1} us, p99 {:.1} us",
            report.transactions,
            report.seconds,
            report.per_second(),
            report.mean_us,
            report.p50_us,
            report.p99_us
        );
        let mut buckets = String::new();
        for (i, n) in report.histogram.iter().enumerate().filter(|(_, n)| **n > 0) {
            match super::rr::BUCKETS_US.get(i) {
                Some(b) => buckets.push_str(&format!(" <={b}us:{n}")),
                None => buckets.push_str(&format!(" longer:{n}")),
            }
        }
        crate::println!("rr: round trips by bucket:{buckets}");
        self.figure("net.tcp_rr", path, report.per_second(), "transactions/s");
        self.figure("net.tcp_rr_latency_p50", path, report.p50_us, "us");
        self.figure("net.tcp_rr_latency_p99", path, report.p99_us, "us");
        self.figure("net.tcp_rr_latency_mean", path, report.mean_us, "us");
        Ok(report)
    }

    fn channels_up(&mut self) -> usize {
        self.stack.device.paths().map_or(0, |p| p.channels_up())
    }

    fn frames(&mut self) -> PathFrames {
        self.stack.device.paths().map_or(PathFrames::default(), |p| p.frames())
    }

    fn hold(&mut self, held: bool) {
        if let Some(p) = self.stack.device.paths() {
            p.hold(held);
        }
    }

    /// Runs the stack until `cond` holds; the time it took, in ns.
    fn wait_for(&mut self, what: &str, timeout: u64, mut cond: impl FnMut(&mut Self) -> bool) -> Result<u64, String> {
        let start = now_ns();
        while !cond(self) {
            if now_ns() - start > timeout {
                return Err(format!("netbench: {what}: not within {} s", timeout / SECOND));
            }
            if !self.stack.step() {
                self.stack.wait();
            }
        }
        Ok(now_ns() - start)
    }

    /// TCP_STREAM (counted, not hashed, as netperf's: under emulation
    /// hashing the bytes would cost more than either path, and the
    /// comparison is of the paths; other runs check data) and TCP_RR over
    /// `path`, `net.reps` times each.
    fn stream_and_rr(&mut self, path: &str) -> Result<(Spread, RrSpread), String> {
        let mut stream = Spread::default();
        for _ in 0..self.net.reps {
            stream.push(self.stream(Some(path), CheckKind::Count)?.mbit_per_s());
        }
        let mut rr = RrSpread::default();
        for _ in 0..self.net.reps {
            let r = self.rr(Some(path))?;
            rr.rate.push(r.per_second());
            rr.p50.push(r.p50_us);
            rr.p99.push(r.p99_us);
            rr.mean.push(r.mean_us);
        }
        Ok((stream, rr))
    }

    /// Prints the share of frames the channel carried since `before` (on
    /// a device with channels).
    fn frame_share(&mut self, before: &PathFrames, what: &str) -> f64 {
        if self.stack.device.paths().is_none() {
            return 0.0;
        }
        let (channel, fallback) = self.frames().since(before);
        let share = 100.0 * channel as f64 / (channel + fallback).max(1) as f64;
        crate::println!("{what}: {channel} frames over the channel, {fallback} over netfront ({share:.2}% channel)");
        share
    }

    /// Stream and RR over the channel, the switch to netfront under load,
    /// stream and RR over netfront, and the channel coming back.
    fn netbench(&mut self) -> Result<(), String> {
        self.peer()?;
        if self.stack.device.paths().is_none() {
            return Err("app=netbench needs the shared-memory channel: Xen and net.group".into());
        }
        // 1. The channel to the peer (the guest booted last measures from
        //    its own boot: detection time).
        self.wait_for("waiting for the channel", SETUP_TIMEOUT, |r| r.channels_up() > 0)?;
        let up_ms = now_ns() as f64 / 1e6;
        crate::println!("netbench: channel up {up_ms:.1} ms after this guest's PVH entry");
        self.figure("channel.up_after_boot", "channel", up_ms, "ms");

        // 2. Over the channel, `net.reps` times each.
        let before = self.frames();
        let (stream_channel, rr_channel) = self.stream_and_rr("channel")?;
        let share = self.frame_share(&before, "channel phase");
        self.figure("channel.frame_share", "channel", share, "%");

        // 3. A stream that starts on the channel and is moved to netfront
        //    a third of the way: how long until data flows again.
        let (peer, port, bytes) = (self.peer()?, self.net.sink, self.net.bytes);
        let mut held_at: Option<u64> = None;
        let mut resumed: Option<(u64, u64)> = None;
        let s = self.drive(
            "switching stream",
            |s, local| Stream::start(&mut s.iface, &mut s.sockets, peer, port, bytes, CheckKind::Fast, local),
            |stack, s| {
                let acked = s.acked(&mut stack.sockets);
                match (held_at, resumed) {
                    (None, _) if acked >= bytes / 3 => {
                        held_at = Some(now_ns());
                        if let Some(p) = stack.device.paths() {
                            p.hold(true);
                        }
                        resumed = Some((acked, 0));
                    }
                    (Some(t0), Some((base, 0))) if acked >= base + 256 * 1024 => resumed = Some((base, now_ns() - t0)),
                    _ => {}
                }
            },
        )?;
        let report = s.finish(&mut self.stack.sockets);
        self.stream_report(report, "channel-to-netfront")?;
        let switch_ms = resumed.map_or(f64::NAN, |(_, ns)| ns as f64 / 1e6);
        crate::println!("netbench: switch to netfront under load: 256 KiB more acknowledged {switch_ms:.1} ms after the channel closed");
        self.figure("channel.switch_to_netfront", "netfront", switch_ms, "ms");

        // 4. Over netfront (the peer follows our close; wait until it has).
        self.wait_for("the channel to close", SETUP_TIMEOUT, |r| r.channels_up() == 0)?;
        let before = self.frames();
        let (stream_netfront, rr_netfront) = self.stream_and_rr("netfront")?;
        self.frame_share(&before, "netfront phase");

        // 5. The channel back.
        self.hold(false);
        let back_ns = self.wait_for("the channel to come back", SETUP_TIMEOUT, |r| r.channels_up() > 0)?;
        self.figure("channel.setup_after_release", "channel", back_ns as f64 / 1e6, "ms");
        crate::println!("netbench: channel back {:.1} ms after the hold was released", back_ns as f64 / 1e6);

        let ratio = |a: f64, b: f64| a / b.max(1e-9);
        let (sc, sn) = (stream_channel.median(), stream_netfront.median());
        let (rc, rn) = (rr_channel.rate.median(), rr_netfront.rate.median());
        crate::println!(
            "netbench: TCP_STREAM channel {} Mbit/s, netfront {} Mbit/s ({:.1}x); TCP_RR channel {} /s, netfront {} /s ({:.1}x) \
             [medians (min-max) of {} runs each; {} clock]",
            stream_channel,
            stream_netfront,
            ratio(sc, sn),
            rr_channel.rate,
            rr_netfront.rate,
            ratio(rc, rn),
            self.net.reps,
            self.clock.as_str()
        );
        for (path, rr) in [("channel", &rr_channel), ("netfront", &rr_netfront)] {
            crate::println!("netbench: TCP_RR round trip over {path}: p50 {} us, p99 {} us, mean {} us", rr.p50, rr.p99, rr.mean);
        }
        self.figure("channel.stream_speedup", "channel", ratio(sc, sn), "x");
        self.figure("channel.rr_speedup", "channel", ratio(rc, rn), "x");
        crate::println!("netbench: {}", self.stack.device.counters());
        // Each counter belongs to the path its name starts with.
        for (name, value, unit) in self.stack.device.figures() {
            let path = name.split('.').next().unwrap_or(name);
            self.figure(name, path, value, unit);
        }
        Ok(())
    }
}

/// Repeated measurements of one figure.
#[derive(Default)]
struct Spread(alloc::vec::Vec<f64>);

impl Spread {
    fn push(&mut self, v: f64) {
        self.0.push(v);
    }

    fn sorted(&self) -> alloc::vec::Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The middle value (the mean of the two middle ones for an even count).
    fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }
}

/// `median (min-max)`, or the one value.
impl core::fmt::Display for Spread {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let v = self.sorted();
        let prec = f.precision().unwrap_or(1);
        match (v.first(), v.last()) {
            (Some(lo), Some(hi)) if v.len() > 1 => write!(f, "{:.prec$} ({lo:.prec$}-{hi:.prec$})", self.median()),
            _ => write!(f, "{:.prec$}", self.median()),
        }
    }
}

#[derive(Default)]
struct RrSpread {
    rate: Spread,
    p50: Spread,
    p99: Spread,
    mean: Spread,
}

fn ip([a, b, c, d]: [u8; 4]) -> String {
    format!("{a}.{b}.{c}.{d}")
}
