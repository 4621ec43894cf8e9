//! The iperf3 server as a sans-IO state machine.
//!
//! The driver owns the sockets: TCP connections accepted on the port (the
//! control connection and TCP data streams both arrive there) and, for UDP
//! tests, one UDP socket bound to the same port. It tells the server what
//! happened and asks what to do, always passing the time:
//!
//! * [`Server::accept`] for each new TCP connection: control, data stream
//!   (cookie still to come) or refused ([`Accept::Deny`]: write
//!   [`ACCESS_DENIED`] and close, nothing is kept);
//! * [`Server::recv`] with the bytes a connection received: returns how many
//!   were consumed (shaped for smoltcp's `TcpSocket::recv` closure);
//! * [`Server::send`] to fill a connection's transmit space: control bytes,
//!   or payload on a sending data stream (shaped for `TcpSocket::send`);
//! * [`Server::closed`] when a connection is gone (FIN read, reset, error);
//! * [`Server::udp_recv`] / [`Server::udp_send`] for datagrams;
//! * [`Server::poll`] for the next [`Action`] (close / abort / deny a
//!   connection), which also runs the timers; [`Server::take_event`] for what
//!   to log.
//!
//! One test runs at a time. Whatever the peer does, every connection the
//! server was told about either gets exactly one closing [`Action`] or was
//! reported [`closed`](Server::closed) by the driver (then it gets none), and
//! the server returns to idle:
//! [`Server::is_idle`] and [`Server::tracked`] show it.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::framing::{feed_control, push_json, ControlEnd, Expect, Frame, Reader};
use crate::json::{self, Int, Limits, Num, Params, Protocol, Refusal, Results, StreamResult};
use crate::proto::{self, errno, ierr, server_error_bytes, Cookie, State, COOKIE_LEN};
use crate::stats::{fill_payload, udp_header_len, write_udp_header, Micros, StreamStats};

/// The byte a refused connection gets before it is closed.
pub const ACCESS_DENIED: u8 = State::AccessDenied.byte();

/// Server settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// What tests are accepted.
    pub limits: Limits,
    /// Largest parameters JSON.
    pub max_params_json: u32,
    /// Largest results JSON from the client.
    pub max_results_json: u32,
    /// Longest wait in each phase outside the transfer (cookie, parameters,
    /// stream creation, results, IPERF_DONE, flushing the last bytes).
    pub setup_timeout: Micros,
    /// Longest time without any data or control byte during the transfer
    /// (iperf3's `rcv_timeout`, 120 s).
    pub idle_timeout: Micros,
    /// Added to `-t` + `-O` for the safety timer (iperf3: 40 s).
    pub grace: Micros,
    /// Safety limit for tests without `-t` (`-n`, `-k`).
    pub untimed_limit: Micros,
    /// Data connections waiting for their cookie at once, beyond the
    /// streams still expected.
    pub extra_pending: usize,
    /// Events kept for [`Server::take_event`]; older ones are dropped.
    pub max_events: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: Limits::default(),
            max_params_json: proto::DEFAULT_MAX_PARAMS_JSON,
            max_results_json: proto::DEFAULT_MAX_RESULTS_JSON,
            setup_timeout: 30_000_000,
            idle_timeout: 120_000_000,
            grace: 40_000_000,
            untimed_limit: 3_600_000_000,
            extra_pending: 4,
            max_events: 16,
        }
    }
}

/// What to do with a new TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    /// It is the control connection of a new test.
    Control,
    /// It should be a data stream: feed its first bytes (the cookie).
    Stream,
    /// Busy: write [`ACCESS_DENIED`], close; the server keeps nothing.
    Deny,
}

/// Something the driver must do to a connection. After it the server has
/// forgotten the handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action<H> {
    /// Close gracefully (FIN after what was already queued).
    Close(H),
    /// Reset the connection.
    Abort(H),
    /// Write [`ACCESS_DENIED`], then close.
    Deny(H),
}

impl<H: Copy> Action<H> {
    /// The connection concerned.
    pub fn handle(&self) -> H {
        match *self {
            Action::Close(h) | Action::Abort(h) | Action::Deny(h) => h,
        }
    }
}

/// Where a test is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the control connection's cookie.
    Cookie,
    /// PARAM_EXCHANGE sent, waiting for the parameters JSON.
    Params,
    /// CREATE_STREAMS sent, waiting for the data streams.
    CreateStreams,
    /// TEST_START + TEST_RUNNING sent; data flows until TEST_END.
    Running,
    /// EXCHANGE_RESULTS sent, waiting for the client's results.
    Results,
    /// Results and DISPLAY_RESULTS sent, waiting for IPERF_DONE.
    Done,
    /// Flushing the last control bytes before closing.
    Closing,
}

/// Role of a data stream, from the server's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The server receives on it.
    Receive,
    /// The server sends on it.
    Send,
}

/// Why a test ended early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The control cookie is not 36 printable characters and a NUL.
    BadCookie,
    /// A JSON length prefix above the cap (or 0).
    JsonTooLong(u32),
    /// Parameters that are not a JSON object of the expected shape.
    ParamsMalformed,
    /// Parameters refused (sent to the client as SERVER_ERROR).
    Refused(Refusal),
    /// Client results that are not valid.
    ResultsMalformed,
    /// A control byte that is not valid in the current phase.
    UnexpectedMessage(u8),
    /// The control connection closed during this phase.
    ControlClosed(Phase),
    /// The client sent CLIENT_TERMINATE.
    ClientTerminated,
    /// A timer ran out during this phase.
    Timeout(Phase),
}

/// The figures of a finished test, as the server measured them.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// What the client asked for.
    pub params: Params,
    /// From TEST_RUNNING (after omit) to TEST_END.
    pub duration_us: Micros,
    /// Bytes received on all receiving streams.
    pub bytes_received: u64,
    /// Bytes sent on all sending streams.
    pub bytes_sent: u64,
    /// UDP datagrams lost on receiving streams.
    pub udp_lost: u64,
    /// Highest UDP sequence numbers seen, summed over receiving streams.
    pub udp_packets: u64,
    /// The client's results.
    pub client: Results,
}

/// What happened, for the log.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Parameters accepted; streams are expected.
    Started(Params),
    /// Test done and results exchanged.
    Finished(Summary),
    /// Test ended early.
    Failed(Failure),
    /// A connection was refused with ACCESS_DENIED.
    Denied,
}

#[derive(Debug)]
enum Link<H> {
    Tcp(H),
    Udp(SocketAddr),
}

#[derive(Debug)]
struct Stream<H> {
    id: u32,
    role: Role,
    link: Link<H>,
    open: bool,
    stats: StreamStats,
}

#[derive(Debug)]
struct Pending<H> {
    handle: H,
    buf: [u8; COOKIE_LEN],
    len: usize,
    since: Micros,
}

#[derive(Debug)]
struct Test<H> {
    control: H,
    control_open: bool,
    phase: Phase,
    phase_since: Micros,
    reader: Reader,
    out: Vec<u8>,
    cookie: Option<Cookie>,
    params: Option<Params>,
    streams: Vec<Stream<H>>,
    pending: Vec<Pending<H>>,
    /// Start of measurement: TEST_RUNNING, moved to the end of omit.
    start: Micros,
    omit_done: bool,
    end: Micros,
    deadline: Micros,
    last_activity: Micros,
    rr: usize,
    summary: Option<Summary>,
}

impl<H> Test<H> {
    /// At the end of the omit period the counters restart (iperf3's
    /// `reset_stats`). Checked on every call, not only in `poll`.
    fn omit_check(&mut self, now: Micros) {
        if self.omit_done || self.phase != Phase::Running {
            return;
        }
        let omit = self.params.as_ref().map_or(0, |p| u64::from(p.omit_s) * 1_000_000);
        let end = self.start.saturating_add(omit);
        if now >= end {
            self.omit_done = true;
            self.start = end;
            for s in &mut self.streams {
                s.stats.reset_for_omit();
            }
        }
    }
}

/// Stream id of the `index`-th stream (0-based): 1, 3, 4, 5, ... as iperf3.
pub fn stream_id(index: usize) -> u32 {
    let i = u32::try_from(index).unwrap_or(u32::MAX - 2);
    if i == 0 {
        1
    } else {
        i + 2
    }
}

/// Role of the `index`-th stream to connect, from the server's side.
pub fn server_role(p: &Params, index: usize) -> Role {
    if p.bidirectional {
        if index < usize::from(p.parallel) {
            Role::Receive
        } else {
            Role::Send
        }
    } else if p.reverse {
        Role::Send
    } else {
        Role::Receive
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct Server<H> {
    cfg: ServerConfig,
    test: Option<Test<H>>,
    actions: VecDeque<Action<H>>,
    events: VecDeque<Event>,
    cpu: (f64, f64, f64),
}

impl<H: Copy + Eq> Server<H> {
    /// An idle server.
    pub fn new(cfg: ServerConfig) -> Self {
        Server { cfg, test: None, actions: VecDeque::new(), events: VecDeque::new(), cpu: (0.0, 0.0, 0.0) }
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    /// CPU use (percent: total, user, system) to report in the next results.
    pub fn set_cpu_util(&mut self, total: f64, user: f64, system: f64) {
        self.cpu = (total, user, system);
    }

    /// No test, no action pending.
    pub fn is_idle(&self) -> bool {
        self.test.is_none() && self.actions.is_empty()
    }

    /// The current test's phase.
    pub fn phase(&self) -> Option<Phase> {
        self.test.as_ref().map(|t| t.phase)
    }

    /// The current test's parameters, once accepted.
    pub fn params(&self) -> Option<&Params> {
        self.test.as_ref().and_then(|t| t.params.as_ref())
    }

    /// Number of connection handles and UDP peers the server remembers.
    pub fn tracked(&self) -> usize {
        self.test.as_ref().map_or(0, |t| 1 + t.streams.len() + t.pending.len())
    }

    /// Role of a TCP data stream, if `h` is one.
    pub fn stream_role(&self, h: H) -> Option<Role> {
        let t = self.test.as_ref()?;
        t.streams.iter().find(|s| matches!(s.link, Link::Tcp(x) if x == h)).map(|s| s.role)
    }

    /// Whether `h` is the control connection.
    pub fn is_control(&self, h: H) -> bool {
        self.test.as_ref().is_some_and(|t| t.control == h)
    }

    /// The UDP peers of the current test (for a driver that filters).
    pub fn udp_peers(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.test.iter().flat_map(|t| {
            t.streams.iter().filter_map(|s| match s.link {
                Link::Udp(a) => Some(a),
                Link::Tcp(_) => None,
            })
        })
    }

    /// The earliest time at which [`Server::poll`] has timer work.
    pub fn next_deadline(&self) -> Option<Micros> {
        let t = self.test.as_ref()?;
        let mut d = match t.phase {
            Phase::Running => t.deadline.min(t.last_activity.saturating_add(self.cfg.idle_timeout)),
            _ => t.phase_since.saturating_add(self.cfg.setup_timeout),
        };
        if t.phase == Phase::Running && !t.omit_done {
            let omit = t.params.as_ref().map_or(0, |p| u64::from(p.omit_s) * 1_000_000);
            d = d.min(t.start.saturating_add(omit));
        }
        for p in &t.pending {
            d = d.min(p.since.saturating_add(self.cfg.setup_timeout));
        }
        Some(d)
    }

    /// Next event to log.
    pub fn take_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn event(&mut self, e: Event) {
        while self.events.len() >= self.cfg.max_events.max(1) {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    /// A new TCP connection on the port.
    pub fn accept(&mut self, h: H, now: Micros) -> Accept {
        let extra = self.cfg.extra_pending;
        match &mut self.test {
            None => {
                self.test = Some(Test {
                    control: h,
                    control_open: true,
                    phase: Phase::Cookie,
                    phase_since: now,
                    reader: Reader::new(Expect::Cookie),
                    out: Vec::new(),
                    cookie: None,
                    params: None,
                    streams: Vec::new(),
                    pending: Vec::new(),
                    start: now,
                    omit_done: false,
                    end: now,
                    deadline: now,
                    last_activity: now,
                    rr: 0,
                    summary: None,
                });
                Accept::Control
            }
            Some(t) => {
                let tcp = t.params.as_ref().is_some_and(|p| p.protocol == Protocol::Tcp);
                let expected = t.params.as_ref().map_or(0, |p| p.stream_count() as usize);
                let missing = expected.saturating_sub(t.streams.len());
                let known = t.control == h
                    || t.pending.iter().any(|p| p.handle == h)
                    || t.streams.iter().any(|s| matches!(s.link, Link::Tcp(x) if x == h));
                if t.phase == Phase::CreateStreams && tcp && !known && t.pending.len() < missing + extra {
                    t.pending.push(Pending { handle: h, buf: [0; COOKIE_LEN], len: 0, since: now });
                    Accept::Stream
                } else {
                    self.event(Event::Denied);
                    Accept::Deny
                }
            }
        }
    }

    /// Bytes received on connection `h`. Returns how many were consumed;
    /// the driver keeps the rest for the next call. Bytes of connections the
    /// server does not know are all consumed (discarded).
    pub fn recv(&mut self, h: H, data: &[u8], now: Micros) -> usize {
        let Some(t) = &mut self.test else {
            return data.len();
        };
        t.omit_check(now);
        if t.control == h {
            return feed_control(self, data, now);
        }
        if let Some(i) = t.pending.iter().position(|p| p.handle == h) {
            let p = &mut t.pending[i];
            let take = (COOKIE_LEN - p.len).min(data.len());
            p.buf[p.len..p.len + take].copy_from_slice(&data[..take]);
            p.len += take;
            if p.len < COOKIE_LEN {
                return take;
            }
            let p = t.pending.swap_remove(i);
            let ok = t.phase == Phase::CreateStreams
                && t.cookie.is_some_and(|c| c.0 == p.buf)
                && t.params.as_ref().is_some_and(|pa| t.streams.len() < pa.stream_count() as usize);
            if !ok {
                self.actions.push_back(Action::Deny(h));
                self.event(Event::Denied);
                return data.len();
            }
            self.add_stream(Link::Tcp(h), now);
            let rest = &data[take..];
            return take + self.stream_recv(h, rest, now);
        }
        self.stream_recv(h, data, now)
    }

    fn stream_recv(&mut self, h: H, data: &[u8], now: Micros) -> usize {
        let Some(t) = &mut self.test else {
            return data.len();
        };
        if data.is_empty() {
            return 0;
        }
        let running = t.phase == Phase::Running;
        if let Some(s) = t.streams.iter_mut().find(|s| matches!(s.link, Link::Tcp(x) if x == h)) {
            // Bytes count only while running, and only on receiving streams.
            if running && s.role == Role::Receive {
                s.stats.received(data.len());
                t.last_activity = now;
            }
        }
        data.len()
    }

    /// Fills `buf` with what connection `h` should send now; returns the
    /// length. Control bytes first; payload on sending data streams while
    /// the test runs, paced to `-b`.
    pub fn send(&mut self, h: H, buf: &mut [u8], now: Micros) -> usize {
        let Some(t) = &mut self.test else {
            return 0;
        };
        t.omit_check(now);
        if t.control == h {
            let n = t.out.len().min(buf.len());
            buf[..n].copy_from_slice(&t.out[..n]);
            t.out.drain(..n);
            return n;
        }
        if t.phase != Phase::Running {
            return 0;
        }
        let Some(p) = t.params.as_ref() else {
            return 0;
        };
        let (bw, len) = (p.bandwidth, p.len as usize);
        let elapsed = now.saturating_sub(t.start);
        let Some(s) = t.streams.iter_mut().find(|s| matches!(s.link, Link::Tcp(x) if x == h)) else {
            return 0;
        };
        if s.role != Role::Send || !s.open || !s.stats.may_send(bw, elapsed) {
            return 0;
        }
        let n = buf.len().min(len);
        fill_payload(&mut buf[..n], s.stats.bytes + s.stats.bytes_omitted);
        s.stats.sent(n);
        t.last_activity = now;
        n
    }

    /// Connection `h` is gone (peer closed, reset or error). The server will
    /// not ask anything more of it.
    pub fn closed(&mut self, h: H, now: Micros) {
        // Nothing more is asked of it, not even what was already queued.
        self.actions.retain(|a| a.handle() != h);
        let Some(t) = &mut self.test else {
            return;
        };
        if t.control == h {
            t.control_open = false;
            match t.phase {
                // The results went out: a close instead of IPERF_DONE is fine.
                Phase::Done => self.finish(now),
                Phase::Closing => {}
                ph => self.fail(Failure::ControlClosed(ph), None, now),
            }
            self.reap();
            return;
        }
        if let Some(i) = t.pending.iter().position(|p| p.handle == h) {
            t.pending.swap_remove(i);
            return;
        }
        if let Some(s) = t.streams.iter_mut().find(|s| matches!(s.link, Link::Tcp(x) if x == h)) {
            // iperf3 keeps the test going; the client decides when it ends.
            s.open = false;
        }
    }

    /// A datagram on the UDP port. Returns the reply to send back to `from`
    /// (the "6789" connect reply), if any.
    pub fn udp_recv(&mut self, from: SocketAddr, data: &[u8], now: Micros) -> Option<[u8; 4]> {
        let t = self.test.as_mut()?;
        t.omit_check(now);
        let p = t.params.as_ref()?;
        if p.protocol != Protocol::Udp {
            return None;
        }
        let c64 = p.udp_counters_64bit;
        let expected = p.stream_count() as usize;
        let known = t.streams.iter().position(|s| matches!(s.link, Link::Udp(a) if a == from));
        match (t.phase, known) {
            (Phase::CreateStreams, None) if t.streams.len() < expected => {
                // iperf3 does not look at the content of the connect datagram.
                self.add_stream(Link::Udp(from), now);
                Some(proto::UDP_CONNECT_REPLY)
            }
            (Phase::Running, Some(i)) if t.streams[i].role == Role::Receive => {
                if t.streams[i].stats.udp_received(data, now, c64) {
                    t.last_activity = now;
                }
                None
            }
            _ => None,
        }
    }

    /// The next UDP datagram to send, written into `buf`: its destination and
    /// length. `None` when no stream may send now (pacing) or `buf` is
    /// shorter than the datagram size.
    pub fn udp_send(&mut self, buf: &mut [u8], now: Micros) -> Option<(SocketAddr, usize)> {
        let t = self.test.as_mut()?;
        t.omit_check(now);
        if t.phase != Phase::Running {
            return None;
        }
        let p = t.params.as_ref()?;
        if p.protocol != Protocol::Udp {
            return None;
        }
        let len = p.len as usize;
        let (bw, c64) = (p.bandwidth, p.udp_counters_64bit);
        if buf.len() < len || len < udp_header_len(c64) {
            return None;
        }
        let elapsed = now.saturating_sub(t.start);
        let n = t.streams.len();
        for k in 0..n {
            let i = (t.rr + k) % n;
            let s = &mut t.streams[i];
            let Link::Udp(addr) = s.link else { continue };
            if s.role != Role::Send || !s.stats.may_send(bw, elapsed) {
                continue;
            }
            s.stats.packets += 1;
            write_udp_header(&mut buf[..len], now, s.stats.packets, c64);
            let hl = udp_header_len(c64);
            fill_payload(&mut buf[hl..len], 0);
            s.stats.sent(len);
            t.rr = (i + 1) % n;
            t.last_activity = now;
            return Some((addr, len));
        }
        None
    }

    /// Runs the timers and returns the next thing to do to a connection.
    pub fn poll(&mut self, now: Micros) -> Option<Action<H>> {
        self.timers(now);
        self.reap();
        self.actions.pop_front()
    }

    fn timers(&mut self, now: Micros) {
        let cfg = &self.cfg;
        let Some(t) = &mut self.test else {
            return;
        };
        let mut expired = Vec::new();
        t.pending.retain(|p| {
            let keep = now.saturating_sub(p.since) < cfg.setup_timeout;
            if !keep {
                expired.push(p.handle);
            }
            keep
        });
        for h in expired {
            self.actions.push_back(Action::Abort(h));
        }
        let Some(t) = &mut self.test else {
            return;
        };
        match t.phase {
            Phase::Running => {
                t.omit_check(now);
                let idle = now.saturating_sub(t.last_activity) >= self.cfg.idle_timeout;
                if now >= t.deadline || idle {
                    self.fail(Failure::Timeout(Phase::Running), None, now);
                }
            }
            Phase::Closing => {
                if now.saturating_sub(t.phase_since) >= self.cfg.setup_timeout {
                    t.out.clear();
                    let c = t.control;
                    let open = t.control_open;
                    self.test = None;
                    if open {
                        self.actions.push_back(Action::Abort(c));
                    }
                }
            }
            ph => {
                if now.saturating_sub(t.phase_since) >= self.cfg.setup_timeout {
                    let reply = (ph == Phase::CreateStreams).then_some((ierr::IECREATESTREAM, errno::ETIMEDOUT));
                    self.fail(Failure::Timeout(ph), reply, now);
                }
            }
        }
    }

    /// Drops a closing test once its output is flushed.
    fn reap(&mut self) {
        let Some(t) = &self.test else {
            return;
        };
        if t.phase == Phase::Closing && (t.out.is_empty() || !t.control_open) {
            let (c, open) = (t.control, t.control_open);
            self.test = None;
            // A connection reported closed needs no action.
            if open {
                self.actions.push_back(Action::Close(c));
            }
        }
    }

    fn on_control_frame(&mut self, f: Frame, now: Micros) {
        let Some(t) = &mut self.test else {
            return;
        };
        t.last_activity = now;
        match (t.phase, f) {
            (Phase::Cookie, Frame::Cookie(raw)) => match Cookie::parse(&raw) {
                Some(c) => {
                    t.cookie = Some(c);
                    t.out.push(State::ParamExchange.byte());
                    t.phase = Phase::Params;
                    t.phase_since = now;
                    let max = self.cfg.max_params_json;
                    t.reader.expect(Expect::Json { max });
                }
                None => self.fail(Failure::BadCookie, Some((ierr::IERECVCOOKIE, errno::EINVAL)), now),
            },
            (Phase::Params, Frame::JsonLength(n)) => {
                self.fail(Failure::JsonTooLong(n), Some((ierr::IERECVPARAMS, errno::EMSGSIZE)), now)
            }
            (Phase::Params, Frame::Json(body)) => match json::parse_params(&body, &self.cfg.limits) {
                Ok(p) => {
                    t.out.push(State::CreateStreams.byte());
                    t.phase = Phase::CreateStreams;
                    t.phase_since = now;
                    t.reader.expect(Expect::State);
                    t.params = Some(p.clone());
                    self.event(Event::Started(p));
                }
                Err(None) => self.fail(Failure::ParamsMalformed, Some((ierr::IERECVPARAMS, errno::EINVAL)), now),
                Err(Some(r)) => self.fail(Failure::Refused(r), Some((r.i_errno, r.errno)), now),
            },
            (Phase::CreateStreams | Phase::Running, Frame::State(b)) => {
                match State::from_byte(b) {
                    // iperf3 ignores a stray TEST_START from the client.
                    Some(State::TestStart) => t.reader.expect(Expect::State),
                    Some(State::TestEnd) if t.phase == Phase::Running => self.test_end(now),
                    Some(State::ClientTerminate) => self.fail(Failure::ClientTerminated, None, now),
                    _ => self.fail(Failure::UnexpectedMessage(b), Some((ierr::IEMESSAGE, errno::NONE)), now),
                }
            }
            (Phase::Results, Frame::JsonLength(n)) => {
                self.fail(Failure::JsonTooLong(n), Some((ierr::IERECVRESULTS, errno::EMSGSIZE)), now)
            }
            (Phase::Results, Frame::Json(body)) => self.results(&body, now),
            (Phase::Done, Frame::State(b)) => {
                if b == State::IperfDone.byte() {
                    self.finish(now);
                } else if b == State::ClientTerminate.byte() {
                    self.fail(Failure::ClientTerminated, None, now);
                } else {
                    self.fail(Failure::UnexpectedMessage(b), None, now);
                }
            }
            // The reader only yields what the phase expects.
            _ => self.fail(Failure::UnexpectedMessage(0), None, now),
        }
    }

    fn add_stream(&mut self, link: Link<H>, now: Micros) {
        let Some(t) = &mut self.test else {
            return;
        };
        let Some(p) = t.params.as_ref() else {
            return;
        };
        let index = t.streams.len();
        t.streams.push(Stream {
            id: stream_id(index),
            role: server_role(p, index),
            link,
            open: true,
            stats: StreamStats::default(),
        });
        if t.streams.len() == p.stream_count() as usize {
            // All connected: stray connections still waiting for a cookie
            // are not needed any more.
            for q in t.pending.drain(..) {
                self.actions.push_back(Action::Deny(q.handle));
            }
            t.out.push(State::TestStart.byte());
            t.out.push(State::TestRunning.byte());
            t.phase = Phase::Running;
            t.phase_since = now;
            t.start = now;
            t.last_activity = now;
            t.omit_done = p.omit_s == 0;
            let limit = if p.time_s > 0 {
                (u64::from(p.time_s) + u64::from(p.omit_s)) * 1_000_000 + self.cfg.grace
            } else {
                self.cfg.untimed_limit
            };
            t.deadline = now.saturating_add(limit);
        }
    }

    fn close_streams(&mut self) {
        let Some(t) = &mut self.test else {
            return;
        };
        for s in t.streams.drain(..) {
            // Streams closed at TEST_END or reported closed need nothing more.
            if let (Link::Tcp(h), true) = (s.link, s.open) {
                self.actions.push_back(Action::Close(h));
            }
        }
        for p in t.pending.drain(..) {
            self.actions.push_back(Action::Abort(p.handle));
        }
    }

    fn test_end(&mut self, now: Micros) {
        let Some(t) = &mut self.test else {
            return;
        };
        t.end = now;
        // iperf3 closes the data sockets at TEST_END, before the results.
        for s in &mut t.streams {
            if let Link::Tcp(h) = s.link {
                if s.open {
                    s.open = false;
                    self.actions.push_back(Action::Close(h));
                }
            }
        }
        t.out.push(State::ExchangeResults.byte());
        t.phase = Phase::Results;
        t.phase_since = now;
        let max = self.cfg.max_results_json;
        t.reader.expect(Expect::Json { max });
    }

    fn results(&mut self, body: &[u8], now: Micros) {
        let Some(t) = &mut self.test else {
            return;
        };
        let client = match json::parse_results(body, t.streams.len()) {
            Ok(r) if r.streams.iter().all(|c| t.streams.iter().any(|s| i64::from(s.id) == c.id.0)) => r,
            _ => return self.fail(Failure::ResultsMalformed, Some((ierr::IERECVRESULTS, errno::EINVAL)), now),
        };
        let duration = t.end.saturating_sub(t.start);
        let end_time = Num(duration as f64 / 1e6);
        let sends = t.streams.iter().any(|s| s.role == Role::Send);
        let udp = matches!(t.params.as_ref().map(|p| p.protocol), Some(Protocol::Udp));
        let ours = Results {
            cpu_util_total: Num(self.cpu.0),
            cpu_util_user: Num(self.cpu.1),
            cpu_util_system: Num(self.cpu.2),
            sender_has_retransmits: Int(if sends { 0 } else { -1 }),
            streams: t
                .streams
                .iter()
                .map(|s| {
                    let recv = s.role == Role::Receive;
                    StreamResult {
                        id: Int(i64::from(s.id)),
                        bytes: Int(s.stats.bytes.min(i64::MAX as u64) as i64),
                        retransmits: Int(-1),
                        jitter: Num(if recv && udp { s.stats.jitter } else { 0.0 }),
                        errors: Int(if recv { s.stats.errors.min(i64::MAX as u64) as i64 } else { 0 }),
                        packets: Int(if !udp {
                            0
                        } else if recv {
                            s.stats.packet_count.min(i64::MAX as u64) as i64
                        } else {
                            s.stats.packets.min(i64::MAX as u64) as i64
                        }),
                        start_time: Num(0.0),
                        end_time,
                    }
                })
                .collect(),
        };
        push_json(&mut t.out, &json::write_results(&ours));
        t.out.push(State::DisplayResults.byte());
        t.phase = Phase::Done;
        t.phase_since = now;
        t.reader.expect(Expect::State);
        let mut sum = Summary {
            params: t.params.clone().unwrap_or_else(|| Params::tcp(0)),
            duration_us: duration,
            bytes_received: 0,
            bytes_sent: 0,
            udp_lost: 0,
            udp_packets: 0,
            client,
        };
        for s in &t.streams {
            match s.role {
                Role::Receive => {
                    sum.bytes_received += s.stats.bytes;
                    sum.udp_lost += s.stats.errors;
                    sum.udp_packets += s.stats.packet_count;
                }
                Role::Send => sum.bytes_sent += s.stats.bytes,
            }
        }
        t.summary = Some(sum);
    }

    /// Results delivered: report and close.
    fn finish(&mut self, now: Micros) {
        let Some(t) = &mut self.test else {
            return;
        };
        let summary = t.summary.take();
        self.close_streams();
        self.closing(now);
        match summary {
            Some(s) => self.event(Event::Finished(s)),
            None => self.event(Event::Failed(Failure::ControlClosed(Phase::Done))),
        }
    }

    /// Ends the test early; `reply` is sent as SERVER_ERROR first.
    fn fail(&mut self, f: Failure, reply: Option<(i32, i32)>, now: Micros) {
        if let (Some(t), Some((i, e))) = (&mut self.test, reply) {
            if t.control_open {
                t.out.extend_from_slice(&server_error_bytes(i, e));
            }
        }
        self.close_streams();
        self.closing(now);
        self.event(Event::Failed(f));
    }

    fn closing(&mut self, now: Micros) {
        if let Some(t) = &mut self.test {
            t.phase = Phase::Closing;
            t.phase_since = now;
            t.reader.expect(Expect::Nothing);
            if !t.control_open {
                t.out.clear();
            }
        }
    }
}

impl<H: Copy + Eq> ControlEnd for Server<H> {
    fn control_reader(&mut self) -> Option<&mut Reader> {
        self.test.as_mut().filter(|t| t.phase != Phase::Closing).map(|t| &mut t.reader)
    }

    fn control_frame(&mut self, f: Frame, now: Micros) {
        self.on_control_frame(f, now);
    }
}
