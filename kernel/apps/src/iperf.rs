//! iperf3 over smoltcp: the glue between the sans-IO state machines of the
//! `iperf3` crate and a `SocketSet`. [`Iperf3Server`] answers stock
//! `iperf3 -c` clients on one port (control and TCP data connections on the
//! same port, UDP streams on the same port number); [`Iperf3Client`]
//! measures a stock `iperf3 -s`.
//!
//! Both are driven by `service(…, now_ns)` rounds like the other apps; the
//! protocol decisions, limits and timers are in the `iperf3` crate.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::net::SocketAddr;

use ::iperf3::client::{Client, ClientAction, ClientConfig, ClientFailure, ClientPhase, Report};
use ::iperf3::proto::{Cookie, COOKIE_LEN};
use ::iperf3::server::{Accept, Action, Server, ServerConfig, ACCESS_DENIED};
use ::iperf3::{Event, Params};
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Duration;
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address};

/// TCP buffer of a data stream, each way, as the stream app's and the
/// sink's: with 64 KiB, Cohort's iperf3 moved a third less over netfront
/// (README, "Benchmarks").
const STREAM_BUFFER: usize = 128 * 1024;
/// TCP buffer, each way, of a control connection and of the server's pooled
/// sockets beyond the first [`SERVER_STREAM_SOCKETS`].
const POOL_BUFFER: usize = 64 * 1024;
/// The server's first pooled sockets get [`STREAM_BUFFER`]: smoltcp gives a
/// new connection to the first listening socket in its set, so an idle
/// server's next test has them for its control connection and first three
/// streams. All 40 would not fit a 32 MiB guest's heap (7.5 MiB).
pub const SERVER_STREAM_SOCKETS: usize = 4;
/// What the client's data streams buffer, both ways together: 16 streams
/// get [`STREAM_BUFFER`] each way, more get less (never below
/// [`POOL_BUFFER`] / 4).
const CLIENT_STREAMS_BUDGET: usize = 4 * 1024 * 1024;
/// UDP: datagrams and bytes buffered each way.
const UDP_PACKETS: usize = 64;
const UDP_BYTES: usize = 256 * 1024;
/// Largest UDP datagram (iperf3's `MAX_UDP_BLOCKSIZE`).
const MAX_DATAGRAM: usize = 65507;
/// A peer silent this long (keep-alives unanswered) is given up.
const PEER_TIMEOUT: Duration = Duration::from_secs(20);
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Work per socket per round, so one busy peer can't starve the loop.
const ROUND_BUDGET: usize = 64;

/// A TCP socket with `buffer` bytes each way.
fn tcp_socket(buffer: usize) -> tcp::Socket<'static> {
    let mut s = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; buffer]), tcp::SocketBuffer::new(vec![0; buffer]));
    s.set_nagle_enabled(false);
    // A peer that stops answering (even one that never sends its FIN back)
    // frees the socket: keep-alive probes, and a timeout on them.
    s.set_keep_alive(Some(KEEP_ALIVE));
    s.set_timeout(Some(PEER_TIMEOUT));
    s
}

fn udp_socket() -> udp::Socket<'static> {
    let buf = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; UDP_PACKETS], vec![0; UDP_BYTES]);
    udp::Socket::new(buf(), buf())
}

/// The peer is gone: reset, or it closed and everything is read.
fn peer_gone(s: &tcp::Socket) -> bool {
    !s.is_open() || (!s.may_recv() && !s.can_recv() && s.state() != tcp::State::Established)
}

/// Moves bytes between a TCP socket and a state machine, both ways,
/// within the round's budget; whether anything moved.
fn pump(s: &mut tcp::Socket, mut recv: impl FnMut(&[u8]) -> usize, mut send: impl FnMut(&mut [u8]) -> usize) -> bool {
    let mut moved = false;
    for _ in 0..ROUND_BUDGET {
        match s.recv(|b| {
            let n = recv(b);
            (n, n)
        }) {
            Ok(n) if n > 0 => moved = true,
            _ => break,
        }
    }
    for _ in 0..ROUND_BUDGET {
        match s.send(|b| {
            let n = send(b);
            (n, n)
        }) {
            Ok(n) if n > 0 => moved = true,
            _ => break,
        }
    }
    moved
}

/// Where a pooled TCP socket is, for the server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Listening (or closed, to listen again).
    Idle,
    /// Handed to the state machine.
    Known,
    /// Refused or closed by us; listens again once closed.
    Closing,
}

/// The iperf3 server (`app=iperf3`).
pub struct Iperf3Server {
    port: u16,
    server: Server<SocketHandle>,
    tcp: Vec<(SocketHandle, Slot)>,
    udp: SocketHandle,
    buf: Vec<u8>,
}

impl Iperf3Server {
    /// Listens on `port` with `connections` pooled TCP sockets (control,
    /// data streams and refused clients together; the first
    /// [`SERVER_STREAM_SOCKETS`] with larger buffers) and one UDP socket.
    pub fn new(sockets: &mut SocketSet<'static>, port: u16, connections: usize, cfg: ServerConfig) -> Self {
        let buffer = |i| if i < SERVER_STREAM_SOCKETS { STREAM_BUFFER } else { POOL_BUFFER };
        let tcp = (0..connections.max(2)).map(|i| (sockets.add(tcp_socket(buffer(i))), Slot::Idle)).collect();
        let udp = sockets.add(udp_socket());
        let _ = sockets.get_mut::<udp::Socket>(udp).bind(port);
        let mut s = Iperf3Server { port, server: Server::new(cfg), tcp, udp, buf: vec![0; MAX_DATAGRAM] };
        s.listen(sockets);
        s
    }

    /// The state machine (its phase, whether it is idle).
    pub fn state(&self) -> &Server<SocketHandle> {
        &self.server
    }

    /// The next thing to log.
    pub fn take_event(&mut self) -> Option<Event> {
        self.server.take_event()
    }

    fn listen(&mut self, sockets: &mut SocketSet<'static>) {
        for (h, slot) in &mut self.tcp {
            let s = sockets.get_mut::<tcp::Socket>(*h);
            if *slot != Slot::Known && !s.is_open() {
                *slot = Slot::Idle;
                let _ = s.listen(self.port);
            }
        }
    }

    /// One round at `now_ns`; true if anything moved.
    pub fn service(&mut self, sockets: &mut SocketSet<'static>, now_ns: u64) -> bool {
        let now = now_ns / 1000;
        let mut moved = false;
        for i in 0..self.tcp.len() {
            let (h, slot) = self.tcp[i];
            let s = sockets.get_mut::<tcp::Socket>(h);
            match slot {
                Slot::Idle if s.may_send() => {
                    // A new connection.
                    moved = true;
                    match self.server.accept(h, now) {
                        Accept::Deny => {
                            let _ = s.send_slice(&[ACCESS_DENIED]);
                            s.close();
                            self.tcp[i].1 = Slot::Closing;
                        }
                        Accept::Control | Accept::Stream => self.tcp[i].1 = Slot::Known,
                    }
                }
                Slot::Closing if !s.is_open() => self.tcp[i].1 = Slot::Idle,
                Slot::Closing => {
                    // Unread bytes of a refused or finished peer are dropped.
                    for _ in 0..ROUND_BUDGET {
                        if !s.can_recv() || s.recv(|b| (b.len(), ())).is_err() {
                            break;
                        }
                    }
                }
                _ => {}
            }
            if self.tcp[i].1 != Slot::Known {
                continue;
            }
            let s = sockets.get_mut::<tcp::Socket>(h);
            moved |= pump(s, |b| self.server.recv(h, b, now), |_| 0);
            moved |= pump(s, |_| 0, |b| self.server.send(h, b, now));
            if peer_gone(s) {
                self.server.closed(h, now);
                s.close();
                self.tcp[i].1 = Slot::Closing;
                moved = true;
            }
        }
        moved |= self.service_udp(sockets, now);
        while let Some(a) = self.server.poll(now) {
            moved = true;
            let h = a.handle();
            let s = sockets.get_mut::<tcp::Socket>(h);
            match a {
                Action::Close(_) => s.close(),
                Action::Abort(_) => s.abort(),
                Action::Deny(_) => {
                    let _ = s.send_slice(&[ACCESS_DENIED]);
                    s.close();
                }
            }
            if let Some(e) = self.tcp.iter_mut().find(|(x, _)| *x == h) {
                e.1 = Slot::Closing;
            }
        }
        self.listen(sockets);
        moved
    }

    fn service_udp(&mut self, sockets: &mut SocketSet<'static>, now: u64) -> bool {
        let mut moved = false;
        let u = sockets.get_mut::<udp::Socket>(self.udp);
        for _ in 0..ROUND_BUDGET {
            let Ok((n, meta)) = u.recv_slice(&mut self.buf) else {
                break;
            };
            moved = true;
            let from: SocketAddr = meta.endpoint.into();
            if let Some(reply) = self.server.udp_recv(from, &self.buf[..n], now) {
                let _ = u.send_slice(&reply, meta.endpoint);
            }
        }
        for _ in 0..ROUND_BUDGET {
            if !u.can_send() {
                break;
            }
            let Some((to, n)) = self.server.udp_send(&mut self.buf, now) else {
                break;
            };
            moved = true;
            // Peers come from this IPv4-only stack.
            let SocketAddr::V4(to) = to else { continue };
            if u.send_slice(&self.buf[..n], IpEndpoint::from(to)).is_err() {
                break;
            }
        }
        moved
    }
}

/// The iperf3 client (`app=iperf3-client`).
pub struct Iperf3Client {
    peer: IpAddress,
    port: u16,
    client: Client<SocketHandle>,
    control: SocketHandle,
    control_up: bool,
    /// TCP data connection being opened.
    connecting: Option<SocketHandle>,
    tcp: Vec<SocketHandle>,
    udp: Vec<SocketHandle>,
    next_port: u16,
    /// Each data stream's TCP buffer, each way.
    stream_buffer: usize,
    buf: Vec<u8>,
}

impl Iperf3Client {
    /// Connects to `peer:port` for the test `params`; `random` makes the
    /// cookie; local ports are taken from `first_port` on.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        iface: &mut Interface,
        sockets: &mut SocketSet<'static>,
        peer: [u8; 4],
        port: u16,
        params: Params,
        random: &[u8; COOKIE_LEN - 1],
        first_port: u16,
        now_ns: u64,
    ) -> Result<Self, String> {
        let peer = IpAddress::Ipv4(Ipv4Address::from(peer));
        let stream_buffer =
            (CLIENT_STREAMS_BUDGET / (2 * params.stream_count().max(1) as usize)).clamp(POOL_BUFFER / 4, STREAM_BUFFER);
        let control = sockets.add(tcp_socket(POOL_BUFFER));
        if let Err(e) = sockets.get_mut::<tcp::Socket>(control).connect(iface.context(), (peer, port), first_port) {
            sockets.remove(control);
            return Err(alloc::format!("connect: {e}"));
        }
        Ok(Iperf3Client {
            peer,
            port,
            client: Client::new(ClientConfig::new(params, Cookie::from_random(random)), now_ns / 1000),
            control,
            control_up: false,
            connecting: None,
            tcp: Vec::new(),
            udp: Vec::new(),
            next_port: first_port.wrapping_add(1).max(1024),
            stream_buffer,
            buf: vec![0; MAX_DATAGRAM],
        })
    }

    /// Finished (see [`Iperf3Client::outcome`]).
    pub fn done(&self) -> bool {
        self.client.phase() == ClientPhase::Finished
    }

    /// The report, or why the test failed.
    pub fn outcome(&self) -> Option<&Result<Report, ClientFailure>> {
        self.client.outcome()
    }

    /// Whether every connection finished its close handshake (so the last
    /// bytes, IPERF_DONE among them, went out): then [`Iperf3Client::release`].
    pub fn closed(&self, sockets: &mut SocketSet<'static>) -> bool {
        let tcp_closed = |h: SocketHandle, sockets: &mut SocketSet<'static>| {
            matches!(sockets.get::<tcp::Socket>(h).state(), tcp::State::Closed | tcp::State::TimeWait)
        };
        tcp_closed(self.control, sockets) && self.tcp.iter().all(|h| tcp_closed(*h, sockets))
    }

    /// Removes every socket the client added (once done and the close
    /// handshakes are over, or to give up).
    pub fn release(self, sockets: &mut SocketSet<'static>) {
        sockets.remove(self.control);
        for h in self.tcp.into_iter().chain(self.connecting).chain(self.udp) {
            sockets.remove(h);
        }
    }

    fn local_port(&mut self) -> u16 {
        let p = self.next_port;
        self.next_port = self.next_port.checked_add(1).unwrap_or(49152);
        p
    }

    /// One round at `now_ns`; true if anything moved.
    pub fn service(&mut self, iface: &mut Interface, sockets: &mut SocketSet<'static>, now_ns: u64) -> bool {
        let now = now_ns / 1000;
        let mut moved = false;
        if !self.control_up && self.client.phase() == ClientPhase::Connecting {
            let s = sockets.get_mut::<tcp::Socket>(self.control);
            if s.may_send() {
                self.control_up = true;
                self.client.control_connected(self.control, now);
                moved = true;
            } else if !s.is_open() {
                self.client.connect_failed(now);
            }
        }
        if let Some(h) = self.connecting {
            let s = sockets.get_mut::<tcp::Socket>(h);
            if s.may_send() {
                self.connecting = None;
                self.tcp.push(h);
                self.client.stream_connected(h, now);
                moved = true;
            } else if !s.is_open() {
                // Refused: the client's timer ends the test.
                self.connecting = None;
                sockets.remove(h);
            }
        }
        let mut conns: Vec<SocketHandle> = self.tcp.clone();
        if self.control_up {
            conns.push(self.control);
        }
        for h in conns {
            let s = sockets.get_mut::<tcp::Socket>(h);
            moved |= pump(s, |_| 0, |b| self.client.send(h, b, now));
            moved |= pump(s, |b| self.client.recv(h, b, now), |_| 0);
            if peer_gone(s) {
                self.client.closed(h, now);
                s.close();
                if h == self.control {
                    self.control_up = false;
                }
            }
        }
        for &h in &self.udp {
            let u = sockets.get_mut::<udp::Socket>(h);
            for _ in 0..ROUND_BUDGET {
                let Ok((n, _)) = u.recv_slice(&mut self.buf) else {
                    break;
                };
                moved = true;
                self.client.udp_recv(h, &self.buf[..n], now);
            }
            for _ in 0..ROUND_BUDGET {
                if !u.can_send() {
                    break;
                }
                let Some(n) = self.client.udp_send(h, &mut self.buf, now) else {
                    break;
                };
                moved = true;
                if u.send_slice(&self.buf[..n], (self.peer, self.port)).is_err() {
                    break;
                }
            }
        }
        while let Some(a) = self.client.poll(now) {
            moved = true;
            match a {
                ClientAction::ConnectTcp => {
                    let h = sockets.add(tcp_socket(self.stream_buffer));
                    let port = self.local_port();
                    if sockets.get_mut::<tcp::Socket>(h).connect(iface.context(), (self.peer, self.port), port).is_ok() {
                        self.connecting = Some(h);
                    } else {
                        sockets.remove(h);
                    }
                }
                ClientAction::OpenUdp => {
                    let h = sockets.add(udp_socket());
                    let port = self.local_port();
                    if sockets.get_mut::<udp::Socket>(h).bind(port).is_ok() {
                        self.udp.push(h);
                        self.client.udp_opened(h, now);
                    } else {
                        sockets.remove(h);
                    }
                }
                ClientAction::Close(h) | ClientAction::Abort(h) => {
                    let abort = matches!(a, ClientAction::Abort(_));
                    if h == self.control || self.tcp.contains(&h) {
                        let s = sockets.get_mut::<tcp::Socket>(h);
                        if abort {
                            s.abort();
                        } else {
                            s.close();
                        }
                    } else if self.udp.contains(&h) {
                        sockets.get_mut::<udp::Socket>(h).close();
                    }
                }
            }
        }
        moved
    }
}
