//! Running the network application of `app=` on a stack: the services
//! (echo and the stream sink), the measuring clients (transfer, stream,
//! rr), and netbench (in [`crate::netbench`]).

mod crr_app;
mod iperf_app;
mod maerts_app;
mod mix_app;
mod udp_rr_app;

use crate::client::{closed, Client};
use crate::echo::Echo;
use crate::pattern::CheckKind;
use crate::rr::{Rr, RrReport, BUCKETS_US};
use crate::sink::Sink;
use crate::source::Source;
use crate::stream::{Stream, StreamReport};
use crate::transfer::Transfer;
use crate::{Clock, Output, Part, Stack, Totals};
use alloc::format;
use alloc::string::String;
use cohort_boot::cmdline::{App, BenchClock, NetOptions, StreamCheck};
use core::fmt;
use figures::{Event, Figure, Frames};
use netdev::{NetDevice, PathFrames};

pub const SECOND: u64 = 1_000_000_000;
/// How long to wait for DHCP, for the peer to come up, for a channel.
pub const SETUP_TIMEOUT: u64 = 60 * SECOND;
/// How long a client waits for channels being set up before it starts
/// (so a measurement does not straddle the switch by accident).
pub const SETTLE_TIMEOUT: u64 = 10 * SECOND;
/// A measurement that makes no progress for this long has failed.
pub const STALL_TIMEOUT: u64 = 120 * SECOND;
/// A measuring client logs (and reports) its progress this often.
pub const PROGRESS_EVERY: u64 = 5 * SECOND;
/// A refused connection is tried again after this.
const RETRY_AFTER: u64 = SECOND / 2;
/// The close handshake after a measurement may take this long.
const CLOSE_TIMEOUT: u64 = 2 * SECOND;
/// What a client's loops return once the platform asked the guest to stop
/// (`run` reports it as a `stopped` event, not as a failure).
const STOPPED: &str = "stopped: the platform asked the guest to shut down";
/// Clients' local ports: IANA's dynamic range, 49152-65535.
const FIRST_PORT: u16 = 49152;
const DYNAMIC_PORTS: u64 = 16384;

/// Where in the dynamic range a run's first client port lies, from the
/// clock at its start: a re-created guest with its predecessor's address
/// must not reconnect from the same port onto the peer's half-open
/// connection of the old one (and wait out its timeout).
fn first_port(now_ns: u64) -> u16 {
    // splitmix64's finalizer: nanoseconds apart land ports apart.
    let mut z = now_ns.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    FIRST_PORT + (z % DYNAMIC_PORTS) as u16
}

/// The next client port, from `next` (wrapping within the dynamic range).
fn take_port(next: &mut u16) -> u16 {
    let port = *next;
    *next = next.checked_add(1).unwrap_or(FIRST_PORT);
    port
}

/// What the command line says about the applications.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub net: NetOptions,
    /// What the clock counts, for `BENCH` lines.
    pub clock: BenchClock,
}

/// The name `app=` gives `app`.
pub fn app_name(app: App) -> &'static str {
    match app {
        App::Echo => "echo",
        App::Transfer => "transfer",
        App::Stream => "stream",
        App::Rr => "rr",
        App::Netbench => "netbench",
        App::Handover => "handover",
        App::Iperf3 => "iperf3",
        App::Iperf3Client => "iperf3-client",
        App::Mix => "mix",
        App::Maerts => "maerts",
        App::Crr => "crr",
        App::UdpRr => "udp-rr",
    }
}

/// Runs `app` on `stack` until it ends, or until `stop` says the platform
/// asks the guest to shut down (the services run until then; a client
/// stops where it is), then closes the device cleanly; a `EVENT` line
/// says how it ended.
pub fn run<S: Stack>(
    app: App,
    stack: &mut S,
    settings: &Settings,
    clock: &dyn Clock,
    out: &mut dyn Output,
    stop: &mut dyn FnMut() -> bool,
) -> Result<(), String> {
    let device = stack.device_ref();
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
    let next_port = first_port(clock.now_ns());
    let mut run = Run { stack, net: settings.net, bench_clock: settings.clock, clock, out, next_port, stop, stopped: false };
    let mut result = run.wait_for_address().and_then(|()| run.app(app));
    if run.stopped && result.as_ref().is_err_and(|e| e == STOPPED) {
        log::info!("net: {}: {STOPPED}", app_name(app));
        run.result(&Event::Stopped { app: app_name(app) });
        result = Ok(());
    }
    let closed = run.stack.device().shutdown();
    match &closed {
        Ok(how) => log::info!("net: {how}"),
        Err(e) => log::error!("net: closing the device failed: {e}"),
    }
    let result = result.and(closed.map(drop));
    let error = result.as_ref().err().map(String::as_str);
    run.result(&Event::App { app: app_name(app), ok: result.is_ok(), error });
    result
}

/// Where a measurement's time went, and the frames the device moved
/// meanwhile (None: it does not count them).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Cost {
    time: Totals,
    frames: Option<u64>,
}

/// An application running on a stack, and where its output goes.
pub(crate) struct Run<'a, S: Stack> {
    pub(crate) stack: &'a mut S,
    pub(crate) net: NetOptions,
    bench_clock: BenchClock,
    clock: &'a dyn Clock,
    out: &'a mut dyn Output,
    pub(crate) next_port: u16,
    /// Asks the platform whether to stop (cheap: the platform paces it).
    stop: &'a mut dyn FnMut() -> bool,
    /// The platform asked to stop: every loop ends with [`STOPPED`].
    stopped: bool,
}

impl<S: Stack> Run<'_, S> {
    pub(crate) fn now(&self) -> u64 {
        self.clock.now_ns()
    }

    /// Whether the platform asked the guest to stop (remembered).
    pub(crate) fn stop_requested(&mut self) -> bool {
        self.stopped = self.stopped || (self.stop)();
        self.stopped
    }

    /// For the loops of clients and waits: `Err` once the platform asked
    /// the guest to stop.
    pub(crate) fn check_stop(&mut self) -> Result<(), String> {
        if self.stop_requested() {
            return Err(String::from(STOPPED));
        }
        Ok(())
    }

    pub(crate) fn print(&mut self, line: fmt::Arguments<'_>) {
        self.out.line(line);
    }

    pub(crate) fn figure(&mut self, name: &str, path: &str, value: f64, unit: &str) {
        self.out.figure(&Figure { name, path, value, unit, clock: self.bench_clock.as_str() });
    }

    pub(crate) fn result(&mut self, event: &Event<&str>) {
        self.out.result(event);
    }

    pub(crate) fn clock_name(&self) -> &'static str {
        self.bench_clock.as_str()
    }

    pub(crate) fn peer(&self) -> Result<[u8; 4], String> {
        self.net.peer.ok_or_else(|| String::from("this app needs net.peer=A.B.C.D"))
    }

    fn local_port(&mut self) -> u16 {
        take_port(&mut self.next_port)
    }

    fn app(&mut self, app: App) -> Result<(), String> {
        match app {
            App::Echo => self.serve(),
            App::Transfer => self.transfer(),
            App::Stream => {
                let kind = match self.net.check {
                    StreamCheck::Sha256 => CheckKind::Sha256,
                    StreamCheck::Fnv => CheckKind::Fast,
                    StreamCheck::Count => CheckKind::Count,
                };
                (0..self.net.reps).try_for_each(|_| self.stream(None, kind).map(drop))
            }
            App::Rr => (0..self.net.reps).try_for_each(|_| self.rr(None).map(drop)),
            App::Netbench => self.netbench(),
            App::Handover => self.handover(),
            App::Iperf3 => self.iperf3_serve(),
            App::Iperf3Client => self.iperf3_client(),
            App::Mix => self.mix(),
            App::Maerts => self.maerts_reps(),
            App::Crr => self.crr_reps(),
            App::UdpRr => self.udp_rr_reps(),
        }
    }

    /// Starts profiling a measurement: the time so far is dropped; the
    /// frames so far, for [`Run::profile_end`] to count from.
    pub(crate) fn profile_start(&mut self) -> Option<u64> {
        self.stack.profile().take();
        self.stack.device().frames_moved()
    }

    /// Ends what [`Run::profile_start`] began (which counted `frames`): its
    /// cost, logged as a line for people.
    pub(crate) fn profile_end(&mut self, what: &str, frames: Option<u64>) -> Cost {
        let time = self.stack.profile().take();
        log::info!("{what}: {}", time.line());
        let frames = frames.zip(self.stack.device().frames_moved()).map(|(before, now)| now.saturating_sub(before));
        Cost { time, frames }
    }

    /// A measurement's cost as `BENCH` figures over `path` (its main
    /// figure's), for the harness.
    pub(crate) fn cost_figures(&mut self, path: &str, cost: &Cost) {
        for (name, value, unit) in cost.time.figures(cost.frames) {
            self.figure(name, path, value, unit);
        }
    }

    /// Runs `f` on the stack, charging its time to the application.
    fn timed<T>(&mut self, f: impl FnOnce(&mut S) -> T) -> T {
        let start = self.now();
        let out = f(self.stack);
        let ns = self.now().saturating_sub(start);
        self.stack.profile().add(Part::App, ns);
        out
    }

    fn wait_for_address(&mut self) -> Result<(), String> {
        let deadline = self.now() + SETUP_TIMEOUT;
        let address = loop {
            self.check_stop()?;
            self.stack.step();
            if let Some(address) = self.stack.ipv4() {
                break address;
            }
            if self.now() > deadline {
                return Err("no IPv4 address: give net.ip=A.B.C.D/N or run a DHCP server".into());
            }
            self.stack.wait();
        };
        let source = if self.net.ip.is_some() { "static" } else { "dhcp" };
        log::info!("net: address {address} ({})", if self.net.ip.is_some() { "static" } else { "DHCP" });
        let ip = format!("{}", address.address());
        self.result(&Event::Address { ip: ip.as_str(), prefix: address.prefix_len(), source });
        Ok(())
    }

    /// Runs the stack for `ns` (a pause that keeps the interface alive).
    fn pause(&mut self, ns: u64) -> Result<(), String> {
        let end = self.now() + ns;
        while self.now() < end {
            self.check_stop()?;
            if !self.stack.step() {
                self.stack.wait();
            }
        }
        Ok(())
    }

    /// Runs the stack until `cond` holds; the time it took, in ns.
    pub(crate) fn wait_for(&mut self, what: &str, timeout: u64, mut cond: impl FnMut(&mut Self) -> bool) -> Result<u64, String> {
        let start = self.now();
        while !cond(self) {
            self.check_stop()?;
            if self.now() - start > timeout {
                return Err(format!("{what}: not within {} s", timeout / SECOND));
            }
            if !self.stack.step() {
                self.stack.wait();
            }
        }
        Ok(self.now() - start)
    }

    /// Echo (TCP and UDP) on `net.port`, the stream sink on `net.sink` and
    /// the stream source on `net.source`, until the platform asks us to stop.
    fn serve(&mut self) -> Result<(), String> {
        let (port, sink_port, source_port) = (self.net.port, self.net.sink, self.net.source);
        let mut echo = Echo::new(self.stack.sockets(), port)?;
        let mut sink = Sink::new(self.stack.sockets(), sink_port);
        let mut source = Source::new(self.stack.sockets(), source_port);
        log::info!("net: TCP and UDP echo on port {port}, stream sink on port {sink_port}, stream source on port {source_port}");
        let mut next_report = self.now() + PROGRESS_EVERY;
        let mut reported = (0, 0, 0);
        loop {
            let polled = self.stack.step();
            let moved = self.timed(|s| echo.service(s.sockets()) | sink.service(s.sockets()) | source.service(s.sockets()));
            if self.now() > next_report {
                next_report += PROGRESS_EVERY;
                let now = (echo.tcp_bytes, echo.udp_packets, sink.bytes + source.bytes);
                if now != reported {
                    reported = now;
                    log::info!(
                        "echo: {} TCP bytes, {} UDP packets; sink: {} bytes in {} streams; source: {} bytes in {} streams; {}; {}",
                        echo.tcp_bytes,
                        echo.udp_packets,
                        sink.bytes,
                        sink.streams,
                        source.bytes,
                        source.streams,
                        self.stack.device_ref().counters(),
                        self.stack.profile().take_line()
                    );
                }
            }
            if self.stop_requested() {
                log::info!(
                    "echo: shutdown requested after {} TCP bytes, {} UDP packets; sink {} bytes; source {} bytes; {}",
                    echo.tcp_bytes,
                    echo.udp_packets,
                    sink.bytes,
                    source.bytes,
                    self.stack.device_ref().counters()
                );
                self.result(&Event::<&str>::Served {
                    tcp_bytes: echo.tcp_bytes,
                    udp_packets: echo.udp_packets,
                    sink_bytes: sink.bytes,
                    sink_streams: sink.streams,
                });
                return Ok(());
            }
            if !polled && !moved {
                self.stack.wait();
            }
        }
    }

    /// Connects `start(stack, local_port)` (retrying while the peer refuses,
    /// up to the setup timeout), drives it to the end with progress lines,
    /// and lets the close handshake finish. `during(stack, client, now)`
    /// runs every round. The client, and the cost of its rounds until done.
    pub(crate) fn drive<C: Client>(
        &mut self,
        what: &str,
        mut start: impl FnMut(&mut S, u16) -> Result<C, String>,
        mut during: impl FnMut(&mut S, &mut C, u64),
    ) -> Result<(C, Cost), String> {
        let mut client = self.connect(what, &mut start)?;
        let mut next_report = self.now() + PROGRESS_EVERY;
        let mut last_progress = self.now();
        let frames = self.profile_start();
        while !client.done() {
            self.check_stop()?;
            let polled = self.stack.step();
            let now = self.now();
            let moved = self.timed(|s| client.service(s.sockets(), now))?;
            let now = self.now();
            during(self.stack, &mut client, now);
            if moved {
                last_progress = now;
            } else if now.saturating_sub(last_progress) > STALL_TIMEOUT {
                let progress = client.progress(self.stack.sockets());
                return Err(format!("{what}: no progress for {} s ({})", STALL_TIMEOUT / SECOND, progress.line));
            }
            if now > next_report {
                next_report += PROGRESS_EVERY;
                self.report_progress(&client);
            }
            if !polled && !moved {
                self.stack.wait();
            }
        }
        let cost = self.profile_end(what, frames);
        // Finish the close handshake (bounded), so the server's socket is
        // not left waiting for our last ACK.
        let deadline = self.now() + CLOSE_TIMEOUT;
        while !closed(self.stack.sockets(), client.handle()) && self.now() < deadline {
            let now = self.now();
            client.service(self.stack.sockets(), now).ok();
            if !self.stack.step() {
                self.stack.wait();
            }
        }
        Ok((client, cost))
    }

    /// A connected client: started, and started again while the peer
    /// refuses (it may still be booting), up to the setup timeout.
    fn connect<C: Client>(&mut self, what: &str, start: &mut impl FnMut(&mut S, u16) -> Result<C, String>) -> Result<C, String> {
        let setup_deadline = self.now() + SETUP_TIMEOUT;
        loop {
            let port = self.local_port();
            let mut c = start(self.stack, port)?;
            let connected = loop {
                self.check_stop()?;
                self.stack.step();
                let now = self.now();
                match c.service(self.stack.sockets(), now) {
                    Ok(_) if c.connected() => break true,
                    Ok(_) if now > setup_deadline => {
                        // What the paths did meanwhile tells a dead path from a deaf peer.
                        log::warn!(
                            "{what}: no connection in {} s; {}",
                            SETUP_TIMEOUT / SECOND,
                            self.stack.device_ref().counters()
                        );
                        return Err(format!("{what}: the peer never accepted"));
                    }
                    Ok(_) => self.stack.wait(),
                    Err(_) => break false,
                }
            };
            if connected {
                return Ok(c);
            }
            // Refused: free the socket, retry.
            self.stack.sockets().remove(c.handle());
            self.pause(RETRY_AFTER)?;
        }
    }

    fn report_progress<C: Client>(&mut self, client: &C) {
        let p = client.progress(self.stack.sockets());
        log::info!("{}", p.line);
        self.result(&Event::<&str>::Progress { app: p.app, done: p.done, total: p.total, unit: p.unit });
    }

    /// Before a measurement: gives channels being set up a moment.
    pub(crate) fn settle(&mut self) {
        let settling = |r: &mut Self| r.stack.device().paths().is_some_and(|p| p.settling());
        if !settling(self) {
            return;
        }
        match self.wait_for("channel setup", SETTLE_TIMEOUT, |r| !settling(r)) {
            Ok(ns) => log::info!("net: waited {:.1} ms for channels being set up", ns as f64 / 1e6),
            Err(_) => log::warn!("net: channels still not set up after {} s; going ahead", SETTLE_TIMEOUT / SECOND),
        }
    }

    /// Frames by path so far (none without channels).
    pub(crate) fn frames(&mut self) -> PathFrames {
        self.stack.device().paths().map_or(PathFrames::default(), |p| p.frames())
    }

    pub(crate) fn channels_up(&mut self) -> usize {
        self.stack.device().paths().map_or(0, |p| p.channels_up())
    }

    pub(crate) fn hold(&mut self, held: bool) {
        if let Some(p) = self.stack.device().paths() {
            p.hold(held);
        }
    }

    /// On a device with channels: the frames `what` moved since `before`,
    /// by path, printed (a line and a `frames` result).
    pub(crate) fn frame_share(&mut self, before: &PathFrames, what: &str) -> Option<Frames> {
        self.stack.device().paths()?;
        let (channel, netfront) = self.frames().since(before);
        let frames = Frames::new(channel, netfront);
        self.print(format_args!(
            "{what}: {channel} frames over the channel, {netfront} over netfront ({:.2}% channel)",
            frames.share
        ));
        self.result(&Event::Frames { of: what, channel, netfront, share: frames.share });
        Some(frames)
    }

    /// The path a measurement took, for its output: the one named, else
    /// what the frames say (the device's kind without channels).
    fn path_label(&self, named: Option<&str>, frames: Option<Frames>) -> String {
        if let Some(path) = named {
            return String::from(path);
        }
        let Some(frames) = frames else { return String::from(self.stack.device_ref().kind()) };
        String::from(frames_label(&frames))
    }

    /// `net.bytes` to the echo at `net.peer` and back, SHA-256 checked.
    fn transfer(&mut self) -> Result<(), String> {
        let (peer, port, bytes) = (self.peer()?, self.net.port, self.net.bytes);
        self.settle();
        log::info!("transfer: {bytes} bytes to {}:{port} and back", ip(peer));
        let before = self.frames();
        let start = |s: &mut S, local| {
            let (iface, sockets) = s.parts();
            Transfer::start(iface, sockets, peer, port, bytes, local)
        };
        let (t, cost) = self.drive("transfer", start, |_, _, _| {})?;
        let report = t.report(self.stack.sockets());
        let frames = self.frame_share(&before, "transfer");
        self.print(format_args!(
            "transfer: {} bytes echoed in {:.3} s, {:.2} Mbit/s; sha256 sent {} received {} ({})",
            report.bytes,
            report.seconds,
            report.mbit_per_s(),
            report.sent_sha256,
            report.received_sha256,
            if report.matches() { "match" } else { "MISMATCH" }
        ));
        self.result(&Event::Transfer {
            bytes: report.bytes,
            seconds: report.seconds,
            mbit_per_s: report.mbit_per_s(),
            sent_sha256: &report.sent_sha256,
            received_sha256: &report.received_sha256,
            matched: report.matches(),
            frames,
        });
        let counters = self.stack.device_ref().counters();
        self.print(format_args!("transfer: {counters}"));
        let path = self.stack.device_ref().kind();
        self.figure("net.tcp_echo_throughput", path, report.mbit_per_s(), "Mbit/s");
        self.cost_figures(path, &cost);
        for (name, value, unit) in self.stack.device_ref().figures() {
            self.figure(name, path, value, unit);
        }
        if !report.matches() {
            return Err(format!("echoed data differs: sha256 {} != {}", report.received_sha256, report.sent_sha256));
        }
        Ok(())
    }

    /// TCP_STREAM of `net.bytes` to the sink; `path` names it in the output
    /// (by default, what the frames took).
    pub(crate) fn stream(&mut self, path: Option<&str>, kind: CheckKind) -> Result<StreamReport, String> {
        let (peer, port, bytes) = (self.peer()?, self.net.sink, self.net.bytes);
        self.settle();
        log::info!("stream: {bytes} bytes to the sink at {}:{port}", ip(peer));
        let before = self.frames();
        let start = |s: &mut S, local| {
            let (iface, sockets) = s.parts();
            Stream::start(iface, sockets, peer, port, bytes, kind, local)
        };
        let (s, cost) = self.drive("stream", start, |_, _, _| {})?;
        let report = s.finish(self.stack.sockets());
        let frames = self.frame_share(&before, "stream");
        let path = self.path_label(path, frames);
        let result = self.stream_report(report, &path, frames);
        self.cost_figures(&path, &cost);
        result
    }

    /// Prints a stream's outcome; an error if the sink got other bytes.
    pub(crate) fn stream_report(
        &mut self,
        report: StreamReport,
        path: &str,
        frames: Option<Frames>,
    ) -> Result<StreamReport, String> {
        self.print(format_args!(
            "stream: {} bytes in {:.3} s, {:.2} Mbit/s over {path}; sink received {} bytes, {} {} ({})",
            report.bytes,
            report.seconds,
            report.mbit_per_s(),
            report.sink_bytes,
            report.check_name(),
            report.sink_digest,
            if report.matches() { "match" } else { "MISMATCH" }
        ));
        self.result(&Event::Stream {
            path,
            bytes: report.bytes,
            seconds: report.seconds,
            mbit_per_s: report.mbit_per_s(),
            check: report.check_name(),
            sent_digest: &report.sent_digest,
            sink_bytes: report.sink_bytes,
            sink_digest: &report.sink_digest,
            matched: report.matches(),
            frames,
        });
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
    pub(crate) fn rr(&mut self, path: Option<&str>) -> Result<RrReport, String> {
        let (peer, port, count, msg) = (self.peer()?, self.net.port, self.net.count, self.net.msg as usize);
        self.settle();
        log::info!("rr: {count} transactions of {msg} bytes with {}:{port}", ip(peer));
        let before = self.frames();
        let start = |s: &mut S, local| {
            let (iface, sockets) = s.parts();
            Rr::start(iface, sockets, peer, port, count, msg, local)
        };
        let (r, cost) = self.drive("rr", start, |_, _, _| {})?;
        let report = r.finish(self.stack.sockets());
        let frames = self.frame_share(&before, "rr");
        let path = self.path_label(path, frames);
        self.rr_report(&report, &path, frames);
        self.cost_figures(&path, &cost);
        Ok(report)
    }

    /// Prints a TCP_RR run's outcome and figures over `path`.
    pub(crate) fn rr_report(&mut self, report: &RrReport, path: &str, frames: Option<Frames>) {
        self.print(format_args!(
            "rr: {} transactions in {:.3} s, {:.0}/s over {path}; latency mean {:.1} us, p50 {:.1} us, p99 {:.1} us",
            report.transactions,
            report.seconds,
            report.per_second(),
            report.mean_us,
            report.p50_us,
            report.p99_us
        ));
        let mut buckets = String::new();
        for (i, n) in report.histogram.iter().enumerate().filter(|(_, n)| **n > 0) {
            match BUCKETS_US.get(i) {
                Some(b) => buckets.push_str(&format!(" <={b}us:{n}")),
                None => buckets.push_str(&format!(" longer:{n}")),
            }
        }
        self.print(format_args!("rr: round trips by bucket:{buckets}"));
        self.result(&Event::Rr {
            path,
            transactions: report.transactions,
            seconds: report.seconds,
            per_second: report.per_second(),
            mean_us: report.mean_us,
            p50_us: report.p50_us,
            p99_us: report.p99_us,
            frames,
        });
        self.figure("net.tcp_rr", path, report.per_second(), "transactions/s");
        self.figure("net.tcp_rr_latency_p50", path, report.p50_us, "us");
        self.figure("net.tcp_rr_latency_p99", path, report.p99_us, "us");
        self.figure("net.tcp_rr_latency_mean", path, report.mean_us, "us");
    }
}

/// Netfront frames a measurement over the channel may see besides its
/// own: broadcasts, which only netfront carries (an ARP refresh from each
/// side, request and reply, when a neighbour entry expires).
const BROADCAST_FRAMES: u64 = 4;

/// The path frames say a measurement took: the channel when it carried
/// 99% of them or all but a few broadcasts' worth (a 1 MiB stream in 32 KiB
/// frames is some 70 frames, one ARP request more than 1%).
fn frames_label(frames: &Frames) -> &'static str {
    if frames.channel > 0 && (frames.share >= 99.0 || frames.netfront <= BROADCAST_FRAMES) {
        "channel"
    } else if frames.channel == 0 {
        "netfront"
    } else {
        "channel+netfront"
    }
}

/// `a.b.c.d`.
pub(crate) fn ip([a, b, c, d]: [u8; 4]) -> String {
    format!("{a}.{b}.{c}.{d}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_broadcasts_on_netfront_leave_a_measurement_on_the_channel() {
        let label = |channel, netfront| frames_label(&Frames::new(channel, netfront));
        assert_eq!(label(70, 0), "channel");
        assert_eq!(label(70, 2), "channel", "an ARP refresh on netfront");
        assert_eq!(label(70, BROADCAST_FRAMES), "channel");
        assert_eq!(label(70, BROADCAST_FRAMES + 1), "channel+netfront");
        assert_eq!(label(1000, 10), "channel", "99%");
        assert_eq!(label(1000, 11), "channel+netfront");
        assert_eq!(label(0, 2), "netfront");
        assert_eq!(label(0, 0), "netfront");
        assert_eq!(label(500, 500), "channel+netfront");
    }

    #[test]
    fn first_ports_spread_over_the_dynamic_range() {
        let ports: alloc::vec::Vec<u16> = (0..1000u64).map(|i| first_port(1_000_000_000 + i * 1000)).collect();
        assert!(ports.iter().all(|p| *p >= FIRST_PORT));
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        // 1000 draws from 16384 ports: about 30 collide.
        assert!(distinct.len() > 900, "{}", distinct.len());
        assert!(distinct[0] < FIRST_PORT + 1000 && *distinct.last().unwrap() > u16::MAX - 1000, "{distinct:?}");
        assert_ne!(first_port(5_000_000_000), first_port(5_000_000_001));
    }
}
