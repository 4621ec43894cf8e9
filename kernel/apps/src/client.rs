//! What the app loop needs of a measuring client (transfer, stream, rr,
//! maerts):
//! the loop retries refused connections, prints progress, and waits for
//! the close handshake before taking the report.

use crate::maerts::Maerts;
use crate::rr::Rr;
use crate::stream::Stream;
use crate::transfer::Transfer;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, Ipv4Address};

pub trait Client {
    /// Advances at time `now_ns`; Ok(true) when something moved. An error
    /// before connecting means refused (retry); after, the measurement
    /// failed.
    fn service(&mut self, sockets: &mut SocketSet<'static>, now_ns: u64) -> Result<bool, String>;
    fn connected(&self) -> bool;
    fn done(&self) -> bool;
    fn handle(&self) -> SocketHandle;
    /// How far it got.
    fn progress(&self, sockets: &mut SocketSet<'static>) -> Progress;
}

/// How far a client got: for its progress line and `EVENT` event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// `transfer`, `stream`, `rr`, `maerts` or `crr`.
    pub app: &'static str,
    /// Bytes echoed back, bytes acknowledged, or transactions done...
    pub done: u64,
    /// ... of this many.
    pub total: u64,
    /// `bytes` or `transactions`.
    pub unit: &'static str,
    /// The line to log.
    pub line: String,
}

/// A TCP socket with `rx` and `tx` bytes of buffer.
pub fn socket(rx: usize, tx: usize) -> tcp::Socket<'static> {
    tcp::Socket::new(tcp::SocketBuffer::new(vec![0; rx]), tcp::SocketBuffer::new(vec![0; tx]))
}

/// Adds `socket` and connects it to `peer:port` from `local_port`; the
/// socket is removed again when connecting fails.
pub fn connect(
    iface: &mut Interface,
    sockets: &mut SocketSet<'static>,
    socket: tcp::Socket<'static>,
    peer: [u8; 4],
    port: u16,
    local_port: u16,
) -> Result<SocketHandle, String> {
    let handle = sockets.add(socket);
    let remote = (IpAddress::Ipv4(Ipv4Address::from(peer)), port);
    if let Err(e) = sockets.get_mut::<tcp::Socket>(handle).connect(iface.context(), remote, local_port) {
        sockets.remove(handle);
        return Err(format!("connect: {e}"));
    }
    Ok(handle)
}

/// Notes when the connection is up (the client's clock starts there).
/// Ok(true): connected, go on; Ok(false): not yet; Err: refused or reset.
pub fn await_connected(socket: &tcp::Socket, connected_ns: &mut Option<u64>, now_ns: u64) -> Result<bool, String> {
    if connected_ns.is_some() {
        return Ok(true);
    }
    if socket.may_send() {
        *connected_ns = Some(now_ns);
        Ok(true)
    } else if !socket.is_open() {
        Err("connection refused or reset".into())
    } else {
        Ok(false)
    }
}

/// Whether `handle`'s side of the close handshake is over.
pub fn closed(sockets: &mut SocketSet<'static>, handle: SocketHandle) -> bool {
    matches!(sockets.get::<tcp::Socket>(handle).state(), tcp::State::Closed | tcp::State::TimeWait)
}

/// Seconds from `connected_ns` to `done_ns`; unset, they count as 0 and
/// as `connected_ns`.
pub fn elapsed_s(connected_ns: Option<u64>, done_ns: Option<u64>) -> f64 {
    let start = connected_ns.unwrap_or(0);
    (done_ns.unwrap_or(start) - start) as f64 / 1e9
}

/// Throughput of `bytes` in `seconds`, in Mbit/s (0 without time).
pub fn mbit_per_s(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        bytes as f64 * 8.0 / seconds / 1e6
    } else {
        0.0
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

impl Client for Transfer {
    fn service(&mut self, sockets: &mut SocketSet<'static>, now_ns: u64) -> Result<bool, String> {
        Transfer::service(self, sockets, now_ns)
    }
    fn connected(&self) -> bool {
        self.connected_ns.is_some()
    }
    fn done(&self) -> bool {
        Transfer::done(self)
    }
    fn handle(&self) -> SocketHandle {
        Transfer::handle(self)
    }
    fn progress(&self, _: &mut SocketSet<'static>) -> Progress {
        let (sent, received, total) = Transfer::progress(self);
        let line = format!("transfer: sent {:.1} MiB, echoed {:.1} of {:.1} MiB", mib(sent), mib(received), mib(total));
        Progress { app: "transfer", done: received, total, unit: "bytes", line }
    }
}

impl Client for Stream {
    fn service(&mut self, sockets: &mut SocketSet<'static>, now_ns: u64) -> Result<bool, String> {
        Stream::service(self, sockets, now_ns)
    }
    fn connected(&self) -> bool {
        self.connected_ns.is_some()
    }
    fn done(&self) -> bool {
        Stream::done(self)
    }
    fn handle(&self) -> SocketHandle {
        Stream::handle(self)
    }
    fn progress(&self, sockets: &mut SocketSet<'static>) -> Progress {
        let acked = self.acked(sockets);
        let line = format!("stream: {:.1} MiB acknowledged of {:.1} MiB sent", mib(acked), mib(self.sent()));
        Progress { app: "stream", done: acked, total: self.total(), unit: "bytes", line }
    }
}

impl Client for Rr {
    fn service(&mut self, sockets: &mut SocketSet<'static>, now_ns: u64) -> Result<bool, String> {
        Rr::service(self, sockets, now_ns)
    }
    fn connected(&self) -> bool {
        self.connected_ns.is_some()
    }
    fn done(&self) -> bool {
        Rr::done(self)
    }
    fn handle(&self) -> SocketHandle {
        Rr::handle(self)
    }
    fn progress(&self, _: &mut SocketSet<'static>) -> Progress {
        let (done, count) = Rr::progress(self);
        let line = format!("rr: {done} of {count} transactions");
        Progress { app: "rr", done: u64::from(done), total: u64::from(count), unit: "transactions", line }
    }
}

impl Client for Maerts {
    fn service(&mut self, sockets: &mut SocketSet<'static>, now_ns: u64) -> Result<bool, String> {
        Maerts::service(self, sockets, now_ns)
    }
    fn connected(&self) -> bool {
        self.connected_ns.is_some()
    }
    fn done(&self) -> bool {
        Maerts::done(self)
    }
    fn handle(&self) -> SocketHandle {
        Maerts::handle(self)
    }
    fn progress(&self, _: &mut SocketSet<'static>) -> Progress {
        let (received, total) = Maerts::progress(self);
        let line = format!("maerts: received {:.1} of {:.1} MiB", mib(received), mib(total));
        Progress { app: "maerts", done: received, total, unit: "bytes", line }
    }
}
