//! The iperf3 client as a sans-IO state machine (Cohort's `app=iperf3-client`).
//!
//! The driver opens the control connection to the server's port and reports
//! it with [`Client::control_connected`]. From then on it moves bytes and
//! datagrams, passing the time to every call:
//!
//! * [`Client::recv`] / [`Client::send`] for any TCP connection (control or
//!   data stream), shaped for smoltcp's `recv` / `send` closures;
//! * [`Client::udp_recv`] / [`Client::udp_send`] for UDP stream sockets;
//! * [`Client::closed`] when a connection is gone;
//! * [`Client::poll`] for the next [`ClientAction`]: open a TCP data
//!   connection to the server port (then [`Client::stream_connected`]), open
//!   a UDP socket towards it (then [`Client::udp_opened`]), or close one. It
//!   also runs the timers and the end condition (`-t`, `-n`, `-k`).
//!
//! Streams are opened one after the other, as iperf3 does, so both sides
//! number them 1, 3, 4, ... in the same order. The test ends with
//! [`Client::outcome`]: a [`Report`] or a [`ClientFailure`].

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::framing::{feed_control, push_json, ControlEnd, Expect, Frame, Reader};
use crate::json::{self, Int, Num, Params, Protocol, Results, StreamResult};
use crate::proto::{self, Cookie, State, COOKIE_LEN};
use crate::server::{server_role, stream_id, Role};
use crate::stats::{fill_payload, udp_header_len, write_udp_header, Micros, StreamStats};

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The test to ask for.
    pub params: Params,
    /// The cookie naming the test (see [`Cookie::from_random`]).
    pub cookie: Cookie,
    /// Largest server results JSON accepted.
    pub max_results_json: u32,
    /// Longest wait for the server in each phase outside the transfer.
    pub setup_timeout: Micros,
}

impl ClientConfig {
    /// Settings with iperf3's defaults for everything but the test.
    pub fn new(params: Params, cookie: Cookie) -> Self {
        ClientConfig { params, cookie, max_results_json: proto::DEFAULT_MAX_RESULTS_JSON, setup_timeout: 30_000_000 }
    }
}

/// What the driver must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAction<H> {
    /// Open a TCP connection to the server port; report it with
    /// [`Client::stream_connected`].
    ConnectTcp,
    /// Open a UDP socket on a fresh local port towards the server port;
    /// report it with [`Client::udp_opened`].
    OpenUdp,
    /// Close gracefully.
    Close(H),
    /// Reset.
    Abort(H),
}

/// Where the client is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientPhase {
    /// Waiting for the control connection.
    Connecting,
    /// Cookie sent, waiting for PARAM_EXCHANGE.
    Cookie,
    /// Parameters sent, waiting for CREATE_STREAMS.
    Params,
    /// Opening the data streams.
    CreateStreams,
    /// Streams open, waiting for TEST_START / TEST_RUNNING.
    Starting,
    /// Transferring.
    Running,
    /// TEST_END sent, waiting for EXCHANGE_RESULTS (draining in reverse).
    Ending,
    /// Our results sent, waiting for the server's and DISPLAY_RESULTS.
    Results,
    /// Done (or failed): flushing the last control bytes.
    Closing,
    /// Everything closed; see [`Client::outcome`].
    Finished,
}

/// Why a test failed, with iperf3's client message in `Display`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientFailure {
    /// ACCESS_DENIED: "the server is busy running a test. try again later".
    AccessDenied,
    /// SERVER_ERROR with the server's i_errno and errno.
    ServerError {
        /// iperf3 `i_errno`.
        i_errno: i32,
        /// errno.
        errno: i32,
    },
    /// SERVER_TERMINATE: "the server has terminated".
    ServerTerminated,
    /// A state byte not valid now.
    UnexpectedMessage(u8),
    /// A JSON length above the cap.
    JsonTooLong(u32),
    /// The server's results are not valid.
    ResultsMalformed,
    /// The control connection closed in this phase.
    ControlClosed(ClientPhase),
    /// A timer ran out in this phase.
    Timeout(ClientPhase),
}

impl core::fmt::Display for ClientFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ClientFailure::AccessDenied => f.write_str("the server is busy running a test. try again later"),
            ClientFailure::ServerError { i_errno, errno } => {
                write!(f, "server error i_errno={i_errno} errno={errno}")
            }
            ClientFailure::ServerTerminated => f.write_str("the server has terminated"),
            ClientFailure::UnexpectedMessage(b) => {
                write!(f, "received an unknown control message ({b})")
            }
            ClientFailure::JsonTooLong(n) => write!(f, "results JSON too long ({n} bytes)"),
            ClientFailure::ResultsMalformed => f.write_str("unable to receive results"),
            ClientFailure::ControlClosed(p) => {
                write!(f, "control socket has closed unexpectedly ({p:?})")
            }
            ClientFailure::Timeout(p) => write!(f, "timed out ({p:?})"),
        }
    }
}

/// One stream of a finished test, from the client's side.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamReport {
    /// Stream id.
    pub id: u32,
    /// Whether the client sent (true) or received on it.
    pub client_sends: bool,
    /// Bytes the client sent or received.
    pub bytes: u64,
    /// UDP: datagrams the client sent, or the highest sequence number it
    /// received.
    pub packets: u64,
    /// UDP, client receiving: datagrams lost.
    pub lost: u64,
    /// What the server reported for it, if it did.
    pub server: Option<StreamResult>,
}

/// The figures of a finished test.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// What was asked for.
    pub params: Params,
    /// From TEST_RUNNING (after omit) to TEST_END, on the client's clock.
    pub duration_us: Micros,
    /// Per stream.
    pub streams: Vec<StreamReport>,
    /// The server's results document.
    pub server: Results,
}

impl Report {
    /// Bytes the client sent, all streams.
    pub fn bytes_sent(&self) -> u64 {
        self.streams.iter().filter(|s| s.client_sends).map(|s| s.bytes).sum()
    }

    /// Bytes the client received, all streams.
    pub fn bytes_received(&self) -> u64 {
        self.streams.iter().filter(|s| !s.client_sends).map(|s| s.bytes).sum()
    }

    /// Bytes the server says it received on the client's sending streams.
    pub fn server_received(&self) -> u64 {
        self.streams.iter().filter(|s| s.client_sends).filter_map(|s| s.server.as_ref()).map(|r| r.bytes.0.max(0) as u64).sum()
    }

    /// The receiver's figure iperf3 prints for the client-to-server
    /// direction, in bit/s: bytes the server received over its duration.
    pub fn upload_bps(&self) -> f64 {
        let secs = self
            .streams
            .iter()
            .filter(|s| s.client_sends)
            .filter_map(|s| s.server.as_ref())
            .map(|r| r.end_time.0)
            .fold(0.0, f64::max);
        if secs > 0.0 {
            self.server_received() as f64 * 8.0 / secs
        } else {
            0.0
        }
    }

    /// The receiver's figure for the server-to-client direction, in bit/s.
    pub fn download_bps(&self) -> f64 {
        if self.duration_us == 0 {
            return 0.0;
        }
        self.bytes_received() as f64 * 8.0 * 1e6 / self.duration_us as f64
    }

    /// The receiver's figure of the test's direction, in bit/s: what
    /// iperf3 prints on its "receiver" line.
    pub fn receiver_bps(&self) -> f64 {
        if self.params.reverse {
            self.download_bps()
        } else {
            self.upload_bps()
        }
    }

    /// Bytes the receiving side counted.
    pub fn receiver_bytes(&self) -> u64 {
        if self.params.reverse {
            self.bytes_received()
        } else {
            self.server_received()
        }
    }

    /// UDP, as the receiving side counted them: (datagrams expected,
    /// datagrams lost), all streams.
    pub fn udp_loss(&self) -> (u64, u64) {
        let positive = |n: i64| n.max(0) as u64;
        self.streams
            .iter()
            .map(|s| match (s.client_sends, &s.server) {
                (false, _) => (s.packets, s.lost),
                (true, Some(r)) => (positive(r.packets.0), positive(r.errors.0)),
                (true, None) => (0, 0),
            })
            .fold((0, 0), |(p, l), (sp, sl)| (p + sp, l + sl))
    }
}

#[derive(Debug)]
enum Link<H> {
    /// TCP; `cookie_sent` counts cookie bytes handed out.
    Tcp { h: H, cookie_sent: usize },
    /// UDP; `hello` once the "9876" went out, `up` once the reply came.
    Udp { h: H, hello: bool, up: bool },
}

#[derive(Debug)]
struct Stream<H> {
    id: u32,
    sends: bool,
    link: Link<H>,
    open: bool,
    stats: StreamStats,
}

impl<H: Copy + Eq> Stream<H> {
    fn handle(&self) -> H {
        match self.link {
            Link::Tcp { h, .. } | Link::Udp { h, .. } => h,
        }
    }

    fn ready(&self) -> bool {
        match self.link {
            Link::Tcp { cookie_sent, .. } => cookie_sent == COOKIE_LEN,
            Link::Udp { up, .. } => up,
        }
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct Client<H> {
    cfg: ClientConfig,
    phase: ClientPhase,
    phase_since: Micros,
    control: Option<H>,
    control_open: bool,
    reader: Reader,
    out: Vec<u8>,
    streams: Vec<Stream<H>>,
    /// A connection has been asked for and not reported yet.
    opening: bool,
    actions: VecDeque<ClientAction<H>>,
    start: Micros,
    omit_done: bool,
    end: Micros,
    server_results: Option<Results>,
    outcome: Option<Result<Report, ClientFailure>>,
    cpu: (f64, f64, f64),
}

impl<H: Copy + Eq> Client<H> {
    /// A client about to connect.
    pub fn new(cfg: ClientConfig, now: Micros) -> Self {
        Client {
            cfg,
            phase: ClientPhase::Connecting,
            phase_since: now,
            control: None,
            control_open: false,
            reader: Reader::new(Expect::Nothing),
            out: Vec::new(),
            streams: Vec::new(),
            opening: false,
            actions: VecDeque::new(),
            start: now,
            omit_done: false,
            end: now,
            server_results: None,
            outcome: None,
            cpu: (0.0, 0.0, 0.0),
        }
    }

    /// CPU use (percent: total, user, system) to report in our results.
    pub fn set_cpu_util(&mut self, total: f64, user: f64, system: f64) {
        self.cpu = (total, user, system);
    }

    /// Where the client is.
    pub fn phase(&self) -> ClientPhase {
        self.phase
    }

    /// The result, once [`ClientPhase::Finished`] (or closing).
    pub fn outcome(&self) -> Option<&Result<Report, ClientFailure>> {
        self.outcome.as_ref()
    }

    /// Connections the client still holds (control and streams).
    pub fn tracked(&self) -> usize {
        usize::from(self.control.is_some()) + self.streams.len()
    }

    /// Whether `h` is a stream the client sends on.
    pub fn sends_on(&self, h: H) -> bool {
        self.streams.iter().any(|s| s.sends && s.handle() == h)
    }

    /// The control connection is up.
    pub fn control_connected(&mut self, h: H, now: Micros) {
        if self.phase != ClientPhase::Connecting {
            return;
        }
        self.control = Some(h);
        self.control_open = true;
        self.out.extend_from_slice(&self.cfg.cookie.0);
        self.reader.expect(Expect::State);
        self.set_phase(ClientPhase::Cookie, now);
    }

    /// The control connection could not be opened.
    pub fn connect_failed(&mut self, now: Micros) {
        if self.phase == ClientPhase::Connecting {
            self.fail(ClientFailure::ControlClosed(ClientPhase::Connecting), now);
        }
    }

    /// A data connection asked for with [`ClientAction::ConnectTcp`] is up.
    pub fn stream_connected(&mut self, h: H, now: Micros) {
        self.opened(h, true, now);
    }

    /// A UDP socket asked for with [`ClientAction::OpenUdp`] is ready.
    pub fn udp_opened(&mut self, h: H, now: Micros) {
        self.opened(h, false, now);
    }

    fn opened(&mut self, h: H, tcp: bool, now: Micros) {
        let p = &self.cfg.params;
        let want_tcp = p.protocol == Protocol::Tcp;
        if self.phase != ClientPhase::CreateStreams || !self.opening || tcp != want_tcp {
            // Not asked for: give it back.
            self.actions.push_back(ClientAction::Abort(h));
            return;
        }
        self.opening = false;
        let index = self.streams.len();
        let sends = server_role(p, index) == Role::Receive;
        self.streams.push(Stream {
            id: stream_id(index),
            sends,
            link: if tcp { Link::Tcp { h, cookie_sent: 0 } } else { Link::Udp { h, hello: false, up: false } },
            open: true,
            stats: StreamStats::default(),
        });
        self.phase_since = now;
    }

    fn set_phase(&mut self, p: ClientPhase, now: Micros) {
        self.phase = p;
        self.phase_since = now;
    }

    /// Bytes received on connection `h`; returns how many were consumed.
    pub fn recv(&mut self, h: H, data: &[u8], now: Micros) -> usize {
        self.omit_check(now);
        if self.control == Some(h) {
            return feed_control(self, data, now);
        }
        let running = self.phase == ClientPhase::Running;
        if let Some(s) = self.streams.iter_mut().find(|s| s.handle() == h) {
            if running && !s.sends && !data.is_empty() {
                s.stats.received(data.len());
            }
        }
        self.check_end(now);
        data.len()
    }

    /// Fills `buf` with what connection `h` sends now; returns the length.
    pub fn send(&mut self, h: H, buf: &mut [u8], now: Micros) -> usize {
        self.omit_check(now);
        if self.control == Some(h) {
            let n = self.out.len().min(buf.len());
            buf[..n].copy_from_slice(&self.out[..n]);
            self.out.drain(..n);
            return n;
        }
        let cookie = self.cfg.cookie.0;
        let running = self.phase == ClientPhase::Running;
        let (bw, len) = (self.cfg.params.bandwidth, self.cfg.params.len as usize);
        let elapsed = now.saturating_sub(self.start);
        let Some(s) = self.streams.iter_mut().find(|s| s.handle() == h) else {
            return 0;
        };
        if let Link::Tcp { cookie_sent, .. } = &mut s.link {
            if *cookie_sent < COOKIE_LEN {
                let n = (COOKIE_LEN - *cookie_sent).min(buf.len());
                buf[..n].copy_from_slice(&cookie[*cookie_sent..*cookie_sent + n]);
                *cookie_sent += n;
                return n;
            }
        } else {
            return 0;
        }
        if !running || !s.sends || !s.open || !s.stats.may_send(bw, elapsed) {
            return 0;
        }
        let mut n = buf.len().min(len);
        let p = &self.cfg.params;
        if p.bytes > 0 {
            // Do not write far past -n.
            let left = p.bytes.saturating_sub(s.stats.bytes) as usize;
            n = n.min(left.max(1));
        }
        fill_payload(&mut buf[..n], s.stats.bytes + s.stats.bytes_omitted);
        s.stats.sent(n);
        self.check_end(now);
        n
    }

    /// A datagram on UDP stream socket `h`.
    pub fn udp_recv(&mut self, h: H, data: &[u8], now: Micros) {
        self.omit_check(now);
        let c64 = self.cfg.params.udp_counters_64bit;
        let running = self.phase == ClientPhase::Running;
        let Some(s) = self.streams.iter_mut().find(|s| s.handle() == h) else {
            return;
        };
        match &mut s.link {
            Link::Udp { up, hello, .. } if !*up => {
                // Anything else before the reply is ignored (iperf3 allows
                // a few datagrams of reverse data to overtake it).
                let reply = data == proto::UDP_CONNECT_REPLY || data == proto::UDP_LEGACY_CONNECT_REPLY;
                *up = *hello && reply;
            }
            Link::Udp { .. } if running && !s.sends => {
                s.stats.udp_received(data, now, c64);
            }
            _ => {}
        }
        self.check_end(now);
    }

    /// The next datagram for UDP stream socket `h`, written into `buf`:
    /// its length, or `None` if nothing is due (pacing) or `buf` is short.
    pub fn udp_send(&mut self, h: H, buf: &mut [u8], now: Micros) -> Option<usize> {
        self.omit_check(now);
        let p = &self.cfg.params;
        let (bw, len, c64) = (p.bandwidth, p.len as usize, p.udp_counters_64bit);
        let running = self.phase == ClientPhase::Running;
        let elapsed = now.saturating_sub(self.start);
        let s = self.streams.iter_mut().find(|s| s.handle() == h)?;
        let Link::Udp { hello, .. } = &mut s.link else {
            return None;
        };
        if !*hello {
            if buf.len() < 4 {
                return None;
            }
            *hello = true;
            buf[..4].copy_from_slice(&proto::UDP_CONNECT_MSG);
            return Some(4);
        }
        if !running || !s.sends || buf.len() < len || len < udp_header_len(c64) {
            return None;
        }
        if !s.stats.may_send(bw, elapsed) {
            return None;
        }
        s.stats.packets += 1;
        write_udp_header(&mut buf[..len], now, s.stats.packets, c64);
        fill_payload(&mut buf[udp_header_len(c64)..len], 0);
        s.stats.sent(len);
        self.check_end(now);
        Some(len)
    }

    /// Connection `h` is gone.
    pub fn closed(&mut self, h: H, now: Micros) {
        self.actions.retain(|a| !matches!(a, ClientAction::Close(x) | ClientAction::Abort(x) if *x == h));
        if self.control == Some(h) {
            self.control_open = false;
            match self.phase {
                ClientPhase::Closing | ClientPhase::Finished => {}
                ph => self.fail(ClientFailure::ControlClosed(ph), now),
            }
            self.reap();
            return;
        }
        if let Some(s) = self.streams.iter_mut().find(|s| s.handle() == h) {
            s.open = false;
        }
    }

    /// Runs timers and the end condition; returns the next thing to do.
    pub fn poll(&mut self, now: Micros) -> Option<ClientAction<H>> {
        self.omit_check(now);
        self.check_end(now);
        self.timers(now);
        self.next_stream();
        self.reap();
        self.actions.pop_front()
    }

    fn timers(&mut self, now: Micros) {
        let late = now.saturating_sub(self.phase_since) >= self.cfg.setup_timeout;
        match self.phase {
            ClientPhase::Running | ClientPhase::Finished => {}
            ClientPhase::Closing => {
                if late {
                    self.out.clear();
                    if let (Some(c), true) = (self.control, self.control_open) {
                        self.actions.push_back(ClientAction::Abort(c));
                    }
                    self.control_open = false;
                }
            }
            ph => {
                if late {
                    self.fail(ClientFailure::Timeout(ph), now);
                }
            }
        }
    }

    /// Asks for the next stream once the previous one is ready.
    fn next_stream(&mut self) {
        if self.phase != ClientPhase::CreateStreams || self.opening {
            return;
        }
        if !self.streams.iter().all(|s| s.ready()) {
            return;
        }
        if self.streams.len() < self.cfg.params.stream_count() as usize {
            self.opening = true;
            self.actions.push_back(match self.cfg.params.protocol {
                Protocol::Tcp => ClientAction::ConnectTcp,
                Protocol::Udp => ClientAction::OpenUdp,
            });
        } else {
            self.phase = ClientPhase::Starting;
        }
    }

    fn omit_check(&mut self, now: Micros) {
        if self.omit_done || self.phase != ClientPhase::Running {
            return;
        }
        let end = self.start.saturating_add(u64::from(self.cfg.params.omit_s) * 1_000_000);
        if now >= end {
            self.omit_done = true;
            self.start = end;
            for s in &mut self.streams {
                s.stats.reset_for_omit();
            }
        }
    }

    /// iperf3's end condition: time, bytes or blocks, after omit.
    fn check_end(&mut self, now: Micros) {
        if self.phase != ClientPhase::Running || !self.omit_done {
            return;
        }
        let p = &self.cfg.params;
        let (mut sent, mut recvd, mut bsent, mut brecvd) = (0u64, 0u64, 0u64, 0u64);
        for s in &self.streams {
            if s.sends {
                sent += s.stats.bytes;
                bsent += s.stats.blocks;
            } else {
                recvd += s.stats.bytes;
                brecvd += s.stats.blocks;
            }
        }
        let timed = p.time_s > 0 && now >= self.start.saturating_add(u64::from(p.time_s) * 1_000_000);
        let bytes = p.bytes > 0 && (sent >= p.bytes || recvd >= p.bytes);
        let blocks = p.blocks > 0 && (bsent >= p.blocks || brecvd >= p.blocks);
        if timed || bytes || blocks {
            self.end = now;
            self.out.push(State::TestEnd.byte());
            self.set_phase(ClientPhase::Ending, now);
        }
    }

    fn on_control_frame(&mut self, f: Frame, now: Micros) {
        use ClientPhase as P;
        match f {
            Frame::State(b) => {
                self.reader.expect(Expect::State);
                match (self.phase, State::from_byte(b)) {
                    (P::Cookie, Some(State::ParamExchange)) => {
                        push_json(&mut self.out, &json::write_params(&self.cfg.params));
                        self.set_phase(P::Params, now);
                    }
                    (P::Params, Some(State::CreateStreams)) => {
                        self.set_phase(P::CreateStreams, now);
                        self.next_stream();
                    }
                    (P::Starting | P::CreateStreams, Some(State::TestStart))
                        if self.streams.len() == self.cfg.params.stream_count() as usize =>
                    {
                        self.set_phase(P::Starting, now);
                        self.start = now;
                    }
                    (P::Starting, Some(State::TestRunning)) => {
                        self.set_phase(P::Running, now);
                        self.start = now;
                        self.omit_done = self.cfg.params.omit_s == 0;
                    }
                    (P::Ending | P::Running, Some(State::ExchangeResults)) => {
                        if self.phase == P::Running {
                            self.end = now;
                        }
                        let r = self.our_results();
                        push_json(&mut self.out, &json::write_results(&r));
                        self.set_phase(P::Results, now);
                        let max = self.cfg.max_results_json;
                        self.reader.expect(Expect::Json { max });
                    }
                    (P::Results, Some(State::DisplayResults)) if self.server_results.is_some() => {
                        self.out.push(State::IperfDone.byte());
                        let report = self.report();
                        self.outcome = Some(Ok(report));
                        self.shutdown(now);
                    }
                    (_, Some(State::AccessDenied)) => self.fail(ClientFailure::AccessDenied, now),
                    (_, Some(State::ServerError)) => self.reader.expect(Expect::ErrorCodes),
                    (_, Some(State::ServerTerminate)) => {
                        // iperf3 still answers IPERF_DONE (fixture server_sigint).
                        self.out.push(State::IperfDone.byte());
                        self.fail(ClientFailure::ServerTerminated, now);
                    }
                    _ => self.fail(ClientFailure::UnexpectedMessage(b), now),
                }
            }
            Frame::ErrorCodes(i_errno, errno) => self.fail(ClientFailure::ServerError { i_errno, errno }, now),
            Frame::JsonLength(n) => self.fail(ClientFailure::JsonTooLong(n), now),
            Frame::Json(body) => {
                let ok = json::parse_results(&body, self.streams.len())
                    .ok()
                    .filter(|r| r.streams.iter().all(|c| self.streams.iter().any(|s| i64::from(s.id) == c.id.0)));
                match ok {
                    Some(r) => {
                        self.server_results = Some(r);
                        self.reader.expect(Expect::State);
                    }
                    None => self.fail(ClientFailure::ResultsMalformed, now),
                }
            }
            Frame::Cookie(_) => self.fail(ClientFailure::UnexpectedMessage(0), now),
        }
    }

    fn our_results(&self) -> Results {
        let udp = self.cfg.params.protocol == Protocol::Udp;
        let sends = self.streams.iter().any(|s| s.sends);
        let end_time = Num(self.end.saturating_sub(self.start) as f64 / 1e6);
        Results {
            cpu_util_total: Num(self.cpu.0),
            cpu_util_user: Num(self.cpu.1),
            cpu_util_system: Num(self.cpu.2),
            sender_has_retransmits: Int(if sends { 0 } else { -1 }),
            streams: self
                .streams
                .iter()
                .map(|s| {
                    let recv = !s.sends;
                    let clamp = |v: u64| Int(v.min(i64::MAX as u64) as i64);
                    StreamResult {
                        id: Int(i64::from(s.id)),
                        bytes: clamp(s.stats.bytes),
                        retransmits: Int(-1),
                        jitter: Num(if recv && udp { s.stats.jitter } else { 0.0 }),
                        errors: if recv { clamp(s.stats.errors) } else { Int(0) },
                        packets: if !udp {
                            Int(0)
                        } else if recv {
                            clamp(s.stats.packet_count)
                        } else {
                            clamp(s.stats.packets)
                        },
                        start_time: Num(0.0),
                        end_time,
                    }
                })
                .collect(),
        }
    }

    fn report(&self) -> Report {
        let server = self.server_results.clone().unwrap_or_default();
        Report {
            params: self.cfg.params.clone(),
            duration_us: self.end.saturating_sub(self.start),
            streams: self
                .streams
                .iter()
                .map(|s| StreamReport {
                    id: s.id,
                    client_sends: s.sends,
                    bytes: s.stats.bytes,
                    packets: if s.sends { s.stats.packets } else { s.stats.packet_count },
                    lost: if s.sends { 0 } else { s.stats.errors },
                    server: server.streams.iter().find(|r| r.id.0 == i64::from(s.id)).cloned(),
                })
                .collect(),
            server,
        }
    }

    fn fail(&mut self, f: ClientFailure, now: Micros) {
        if self.outcome.is_none() {
            self.outcome = Some(Err(f));
        }
        self.shutdown(now);
    }

    /// Closes the streams; the control connection follows once flushed.
    fn shutdown(&mut self, now: Micros) {
        for s in self.streams.drain(..) {
            if s.open {
                self.actions.push_back(ClientAction::Close(s.handle()));
            }
        }
        self.opening = false;
        self.reader.expect(Expect::Nothing);
        if !self.control_open {
            self.out.clear();
        }
        self.set_phase(ClientPhase::Closing, now);
        self.reap();
    }

    fn reap(&mut self) {
        if self.phase != ClientPhase::Closing {
            return;
        }
        if self.control_open && !self.out.is_empty() {
            return;
        }
        if let (Some(c), true) = (self.control, self.control_open) {
            self.actions.push_back(ClientAction::Close(c));
        }
        self.control = None;
        self.control_open = false;
        self.phase = ClientPhase::Finished;
    }
}

impl<H: Copy + Eq> ControlEnd for Client<H> {
    fn control_reader(&mut self) -> Option<&mut Reader> {
        match self.phase {
            ClientPhase::Closing | ClientPhase::Finished => None,
            _ => Some(&mut self.reader),
        }
    }

    fn control_frame(&mut self, f: Frame, now: Micros) {
        self.on_control_frame(f, now);
    }
}
