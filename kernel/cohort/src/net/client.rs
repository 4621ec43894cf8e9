//! What the app loop needs of a measuring client (transfer, stream, rr):
//! the loop retries refused connections, prints progress, and waits for
//! the close handshake before taking the report.

use super::rr::Rr;
use super::stream::Stream;
use super::transfer::Transfer;
use alloc::format;
use alloc::string::String;
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, Ipv4Address};

pub trait Client {
    /// Advances; Ok(true) when something moved. An error before
    /// connecting means refused (retry); after, the measurement failed.
    fn service(&mut self, sockets: &mut SocketSet<'static>) -> Result<bool, String>;
    fn connected(&self) -> bool;
    fn done(&self) -> bool;
    fn handle(&self) -> SocketHandle;
    /// One line of progress.
    fn progress(&self, sockets: &mut SocketSet<'static>) -> String;
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
pub fn await_connected(socket: &tcp::Socket, connected_ns: &mut Option<u64>) -> Result<bool, String> {
    if connected_ns.is_some() {
        return Ok(true);
    }
    if socket.may_send() {
        *connected_ns = Some(crate::clock::now_ns());
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

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

impl Client for Transfer {
    fn service(&mut self, sockets: &mut SocketSet<'static>) -> Result<bool, String> {
        Transfer::service(self, sockets)
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
    fn progress(&self, _: &mut SocketSet<'static>) -> String {
        let (sent, received, total) = Transfer::progress(self);
        format!("transfer: sent {:.1} MiB, echoed {:.1} of {:.1} MiB", mib(sent), mib(received), mib(total))
    }
}

impl Client for Stream {
    fn service(&mut self, sockets: &mut SocketSet<'static>) -> Result<bool, String> {
        Stream::service(self, sockets)
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
    fn progress(&self, sockets: &mut SocketSet<'static>) -> String {
        format!("stream: {:.1} MiB acknowledged of {:.1} MiB sent", mib(self.acked(sockets)), mib(self.sent()))
    }
}

impl Client for Rr {
    fn service(&mut self, sockets: &mut SocketSet<'static>) -> Result<bool, String> {
        Rr::service(self, sockets)
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
    fn progress(&self, _: &mut SocketSet<'static>) -> String {
        let (done, count) = Rr::progress(self);
        format!("rr: {done} of {count} transactions")
    }
}
