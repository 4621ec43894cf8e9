//! `app=iperf3` and `app=iperf3-client` on the app loop.

use super::{ip, Run, PROGRESS_EVERY, SECOND, SETUP_TIMEOUT, STALL_TIMEOUT};
use crate::client::mbit_per_s;
use crate::iperf::{Iperf3Client, Iperf3Server};
use crate::{Part, Stack};
use ::iperf3::client::{ClientFailure, ClientPhase, Report};
use ::iperf3::proto;
use ::iperf3::server::Failure;
use ::iperf3::server::ServerConfig;
use ::iperf3::{Event as IperfEvent, Params, Protocol};
use alloc::format;
use alloc::string::String;
use cohort_boot::cmdline::NetOptions;
use figures::{Event, Frames};
use netdev::{NetDevice, PathFrames};

/// TCP sockets the server pools: control, up to 16 streams per direction,
/// and room for refused clients.
const SERVER_CONNECTIONS: usize = 40;

/// iperf3's port unless `net.port` was changed from its default.
fn iperf_port(net: &NetOptions) -> u16 {
    if net.port == NetOptions::default().port {
        ::iperf3::proto::DEFAULT_PORT
    } else {
        net.port
    }
}

/// 36 bytes for the cookie from the clock (the cookie names a test; it is
/// not a secret).
fn cookie_bytes(seed: u64) -> [u8; 36] {
    let mut x = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut out = [0u8; 36];
    for b in &mut out {
        // splitmix64
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        *b = (z ^ (z >> 31)) as u8;
    }
    out
}

/// The test the `iperf3.` keys ask for: `-t` when given, else `-n
/// net.bytes`; iperf3's defaults for what is not given.
fn test_params(net: &NetOptions) -> Params {
    let t = net.iperf3;
    let base = if t.udp { Params::udp(0, proto::DEFAULT_UDP_RATE, proto::DEFAULT_UDP_LEN) } else { Params::tcp(0) };
    let (time_s, bytes) = if t.time_s > 0 { (t.time_s, 0) } else { (0, net.bytes) };
    Params {
        time_s,
        bytes,
        parallel: t.parallel,
        reverse: t.reverse,
        bandwidth: if t.bitrate > 0 { t.bitrate } else { base.bandwidth },
        len: if t.len > 0 { t.len } else { base.len },
        ..base
    }
}

/// The test as iperf3's own flags, for the log.
struct IperfFlags<'a>(&'a Params);

impl core::fmt::Display for IperfFlags<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let p = self.0;
        if p.time_s > 0 {
            write!(f, "-t {}", p.time_s)?;
        } else {
            write!(f, "-n {}", p.bytes)?;
        }
        if p.protocol == Protocol::Udp {
            write!(f, " -u")?;
        }
        if p.bandwidth > 0 {
            write!(f, " -b {}", p.bandwidth)?;
        }
        write!(f, " -l {}", p.len)?;
        if p.parallel > 1 {
            write!(f, " -P {}", p.parallel)?;
        }
        if p.reverse {
            write!(f, " -R")?;
        }
        Ok(())
    }
}

/// The BENCH name of a test: `net.iperf3_tcp` for the plain upload, with
/// `_reverse` and `_pN` for `-R` and `-P N`, `udp` for `-u` (whose loss,
/// in % of the datagrams, is the same name with `_loss`).
fn figure_name(p: &Params) -> String {
    let mut name = format!("net.iperf3_{}", protocol_name(p.protocol));
    if p.reverse {
        name.push_str("_reverse");
    }
    if p.parallel > 1 {
        name.push_str(&format!("_p{}", p.parallel));
    }
    name
}

/// Bytes the server says it sent on the streams we received (`-R`).
fn server_sent(r: &Report) -> u64 {
    r.streams.iter().filter(|s| !s.client_sends).filter_map(|s| s.server.as_ref()).map(|x| x.bytes.0.max(0) as u64).sum()
}

/// The protocol's name in `iperf3` events.
fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

/// An `iperf3` event of a test that did not run: refused, busy or broken.
fn not_run<'a>(role: &'a str, i_errno: Option<i32>, error: &'a str, frames: Option<Frames>) -> Event<&'a str> {
    Event::Iperf3 {
        role,
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
        i_errno,
        error: Some(error),
        frames,
    }
}

impl<S: Stack> Run<'_, S> {
    /// The frames both ways since `before`, on a device with channels.
    fn frames_since(&mut self, before: &PathFrames) -> Option<Frames> {
        self.stack.device().paths()?;
        let (channel, netfront) = self.frames().since(before);
        Some(Frames::new(channel, netfront))
    }

    /// An iperf3 server on port 5201 (or `net.port`) until the platform
    /// asks us to stop; one test at a time, busy clients are refused.
    pub(super) fn iperf3_serve(&mut self) -> Result<(), String> {
        let port = iperf_port(&self.net);
        let mut server = Iperf3Server::new(self.stack.sockets(), port, SERVER_CONNECTIONS, ServerConfig::default());
        log::info!("iperf3: server on port {port}");
        let (mut finished, mut failed) = (0u64, 0u64);
        // The frames when the running test's parameters were accepted.
        let mut test_frames = self.frames();
        loop {
            let polled = self.stack.step();
            let now = self.now();
            let moved = self.timed(|s| server.service(s.sockets(), now));
            while let Some(e) = server.take_event() {
                match e {
                    IperfEvent::Started(p) => {
                        test_frames = self.frames();
                        log::info!("iperf3: test {p:?}");
                    }
                    IperfEvent::Finished(s) => {
                        finished += 1;
                        let secs = s.duration_us as f64 / 1e6;
                        log::info!(
                            "iperf3: test done in {secs:.3} s: received {} bytes ({:.2} Mbit/s), sent {} bytes ({:.2} Mbit/s), UDP lost {} of {}",
                            s.bytes_received,
                            mbit_per_s(s.bytes_received, secs),
                            s.bytes_sent,
                            mbit_per_s(s.bytes_sent, secs),
                            s.udp_lost,
                            s.udp_packets
                        );
                        let frames = self.frames_since(&test_frames);
                        self.result(&Event::Iperf3 {
                            role: "server",
                            ok: true,
                            protocol: Some(protocol_name(s.params.protocol)),
                            streams: s.params.parallel,
                            reverse: s.params.reverse,
                            seconds: secs,
                            bytes_sent: s.bytes_sent,
                            bytes_received: s.bytes_received,
                            mbit_per_s: mbit_per_s(s.bytes_received + s.bytes_sent, secs),
                            udp_packets: s.udp_packets,
                            udp_lost: s.udp_lost,
                            i_errno: None,
                            error: None,
                            frames,
                        });
                    }
                    IperfEvent::Failed(f) => {
                        failed += 1;
                        log::info!("iperf3: test ended early: {f:?}");
                        let (i_errno, why) = match &f {
                            Failure::Refused(r) => (Some(r.i_errno), String::from("refused")),
                            other => (None, format!("{other:?}")),
                        };
                        self.result(&not_run("server", i_errno, &why, None));
                    }
                    IperfEvent::Denied => {
                        log::info!("iperf3: busy, a client was refused");
                        self.result(&not_run("server", None, "busy", None));
                    }
                }
            }
            if self.stop_requested() {
                log::info!("iperf3: shutdown requested after {finished} tests ({failed} ended early)");
                return Ok(());
            }
            if !polled && !moved {
                self.stack.wait();
            }
        }
    }

    /// `net.reps` iperf3 TCP tests of `net.bytes` (`-n`) to `net.peer` on
    /// port 5201 (or `net.port`), one after the other; each reports the
    /// receiver's throughput as a `BENCH` figure and an `iperf3` event. A
    /// server still busy with the previous test (it answers ACCESS_DENIED),
    /// or not listening yet (a stock `iperf3 -s` 3.12 reopens its listener
    /// after a test: a connection then is refused, or closed after our
    /// cookie, before the server said anything), is asked again, up to
    /// `BUSY_TRIES` times, half a second apart; and each test after the
    /// first starts half a second after the one before, as a person or a
    /// script running iperf3 again would.
    pub(super) fn iperf3_client(&mut self) -> Result<(), String> {
        const BUSY_TRIES: u32 = 10;
        let peer = self.peer()?;
        self.settle();
        for rep in 0..self.net.reps.max(1) {
            if rep > 0 {
                self.pause(SECOND / 2)?;
            }
            let mut tries = 0;
            loop {
                match self.iperf3_test(peer) {
                    Err(Some(
                        e @ (ClientFailure::AccessDenied
                        | ClientFailure::ControlClosed(ClientPhase::Connecting | ClientPhase::Cookie)),
                    )) if tries + 1 < BUSY_TRIES => {
                        tries += 1;
                        log::info!("iperf3: {e}; asking again in 0.5 s");
                        self.pause(SECOND / 2)?;
                    }
                    Err(Some(e)) => return Err(format!("iperf3: {e}")),
                    Err(None) => return Err(String::from("iperf3: no outcome")),
                    Ok(Err(why)) => return Err(why),
                    Ok(Ok(())) => break,
                }
            }
        }
        Ok(())
    }

    /// One test: `Ok(Err)` for a failure of our own (no progress), `Err`
    /// for what the client machine reported (or `None`: nothing).
    fn iperf3_test(&mut self, peer: [u8; 4]) -> Result<Result<(), String>, Option<ClientFailure>> {
        let port = iperf_port(&self.net);
        let params = test_params(&self.net);
        log::info!("iperf3: {} to {}:{port}", IperfFlags(&params), ip(peer));
        let before = self.frames();
        let now = self.now();
        let random = cookie_bytes(now ^ u64::from(u32::from_be_bytes(peer)));
        let local = self.local_port();
        let mut client = {
            let (iface, sockets) = self.stack.parts();
            match Iperf3Client::start(iface, sockets, peer, port, params, &random, local, now) {
                Ok(c) => c,
                Err(e) => return Ok(Err(e)),
            }
        };
        let start = self.now();
        let mut last = start;
        while !client.done() {
            if let Err(stopped) = self.check_stop() {
                client.release(self.stack.sockets());
                return Ok(Err(stopped));
            }
            let polled = self.stack.step();
            let now = self.now();
            let t0 = now;
            let moved = {
                let (iface, sockets) = self.stack.parts();
                client.service(iface, sockets, now)
            };
            let ns = self.now().saturating_sub(t0);
            self.stack.profile().add(Part::App, ns);
            if moved {
                last = now;
            } else if now.saturating_sub(last) > STALL_TIMEOUT || now.saturating_sub(start) > SETUP_TIMEOUT + STALL_TIMEOUT {
                client.release(self.stack.sockets());
                return Ok(Err(format!("iperf3: no progress for {} s", STALL_TIMEOUT / SECOND)));
            }
            if now.saturating_sub(last) > PROGRESS_EVERY {
                log::info!("iperf3: waiting for the server");
            }
            if !polled && !moved {
                self.stack.wait();
            }
        }
        // Let the close handshakes finish (bounded) so IPERF_DONE is delivered.
        let deadline = self.now() + 2 * SECOND;
        while !client.closed(self.stack.sockets()) && self.now() < deadline {
            let now = self.now();
            let (iface, sockets) = self.stack.parts();
            client.service(iface, sockets, now);
            if !self.stack.step() {
                self.stack.wait();
            }
        }
        let outcome = client.outcome().cloned();
        client.release(self.stack.sockets());
        let frames = self.frame_share(&before, "iperf3");
        let path = self.path_label(None, frames);
        match outcome {
            Some(Ok(r)) => {
                let secs = r.duration_us as f64 / 1e6;
                let mbit = r.receiver_bps() / 1e6;
                let (udp_packets, udp_lost) = r.udp_loss();
                let (sent, received) =
                    if r.params.reverse { (server_sent(&r), r.bytes_received()) } else { (r.bytes_sent(), r.server_received()) };
                self.print(format_args!(
                    "iperf3: {} sent {sent} bytes in {secs:.3} s; the receiver counted {received} bytes, {mbit:.2} Mbit/s over {path}",
                    if r.params.reverse { "the server" } else { "we" },
                ));
                self.figure(&figure_name(&r.params), &path, mbit, "Mbit/s");
                if r.params.protocol == Protocol::Udp {
                    // The datagrams the receiver missed, of those sent.
                    let loss = if udp_packets > 0 { udp_lost as f64 * 100.0 / udp_packets as f64 } else { 0.0 };
                    self.figure(&format!("{}_loss", figure_name(&r.params)), &path, loss, "%");
                }
                self.result(&Event::Iperf3 {
                    role: "client",
                    ok: true,
                    protocol: Some(protocol_name(r.params.protocol)),
                    streams: r.params.parallel,
                    reverse: r.params.reverse,
                    seconds: secs,
                    bytes_sent: sent,
                    bytes_received: received,
                    mbit_per_s: mbit,
                    udp_packets,
                    udp_lost,
                    i_errno: None,
                    error: None,
                    frames,
                });
                Ok(Ok(()))
            }
            Some(Err(ClientFailure::ServerError { i_errno, errno })) => {
                let why = format!("iperf3: the server refused the test (i_errno {i_errno}, errno {errno})");
                self.result(&not_run("client", Some(i_errno), &why, frames));
                Ok(Err(why))
            }
            Some(Err(e)) => {
                let why = format!("iperf3: {e}");
                self.result(&not_run("client", None, &why, frames));
                Err(Some(e))
            }
            None => Err(None),
        }
    }
}
