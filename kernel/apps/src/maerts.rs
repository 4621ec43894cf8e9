//! The TCP_MAERTS client: asks the source for `total` bytes, takes them,
//! and takes the source's closing line (its byte count and digest) as the
//! end of the measurement, so the time covers every byte received.

use crate::pattern::{Check, CheckKind};
use crate::source::{Request, REQUEST_LEN};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;

const BUFFER: usize = 128 * 1024;
/// The source's closing line at most (`<bytes> <64 hex digits>\n`).
const LINE_MAX: usize = 96;
/// Reads per round at most: the receive buffer's worth, in `buf`'s pieces.
const READS_PER_ROUND: usize = BUFFER / (16 * 1024) + 1;

pub struct Maerts {
    handle: SocketHandle,
    total: u64,
    received: u64,
    check: Check,
    request: [u8; REQUEST_LEN],
    request_sent: usize,
    line: Vec<u8>,
    buf: Vec<u8>,
    pub connected_ns: Option<u64>,
    pub done_ns: Option<u64>,
}

pub struct MaertsReport {
    pub bytes: u64,
    pub seconds: f64,
    pub kind: CheckKind,
    pub digest: String,
    /// What the source says it sent.
    pub source_bytes: u64,
    pub source_digest: String,
}

impl MaertsReport {
    pub fn matches(&self) -> bool {
        self.source_bytes == self.bytes && self.source_digest == self.digest
    }

    pub fn check_name(&self) -> &'static str {
        self.kind.name()
    }

    pub fn mbit_per_s(&self) -> f64 {
        crate::client::mbit_per_s(self.bytes, self.seconds)
    }
}

impl Maerts {
    pub fn start(
        iface: &mut Interface,
        sockets: &mut SocketSet<'static>,
        peer: [u8; 4],
        port: u16,
        total: u64,
        kind: CheckKind,
        local_port: u16,
    ) -> Result<Maerts, String> {
        let socket = crate::client::socket(BUFFER, 256);
        let handle = crate::client::connect(iface, sockets, socket, peer, port, local_port)?;
        Ok(Maerts {
            handle,
            total,
            received: 0,
            check: Check::new(kind),
            request: Request { bytes: total, kind }.to_bytes(),
            request_sent: 0,
            line: Vec::new(),
            buf: vec![0; 16 * 1024],
            connected_ns: None,
            done_ns: None,
        })
    }

    pub fn handle(&self) -> SocketHandle {
        self.handle
    }

    /// Bytes of the stream received so far, and of how many.
    pub fn progress(&self) -> (u64, u64) {
        (self.received, self.total)
    }

    /// Advances at time `now_ns`; Ok(true) when something moved.
    pub fn service(&mut self, sockets: &mut SocketSet<'static>, now_ns: u64) -> Result<bool, String> {
        let socket = sockets.get_mut::<tcp::Socket>(self.handle);
        if !crate::client::await_connected(socket, &mut self.connected_ns, now_ns)? {
            return Ok(false);
        }
        let mut moved = false;
        if self.request_sent < REQUEST_LEN && socket.can_send() {
            self.request_sent += socket.send_slice(&self.request[self.request_sent..]).map_err(|e| format!("send: {e}"))?;
            moved = true;
        }
        let mut reads = 0;
        while socket.can_recv() && reads < READS_PER_ROUND && self.done_ns.is_none() {
            reads += 1;
            let n = socket.recv_slice(&mut self.buf).map_err(|e| format!("recv: {e}"))?;
            if n == 0 {
                break;
            }
            moved = true;
            let data = (self.total - self.received).min(n as u64) as usize;
            self.check.update(&self.buf[..data]);
            self.received += data as u64;
            let rest = &self.buf[data..n];
            if self.line.len() + rest.len() > LINE_MAX {
                return Err(format!("the source sent more than {} bytes and a line", self.total));
            }
            self.line.extend_from_slice(rest);
            if self.line.ends_with(b"\n") {
                self.done_ns = Some(now_ns);
                // Our side is done too: the source closes after its line.
                socket.close();
            }
        }
        if self.done_ns.is_none() && !socket.may_recv() {
            return Err(format!("connection closed after {} of {} bytes, before the source's line", self.received, self.total));
        }
        Ok(moved)
    }

    pub fn done(&self) -> bool {
        self.done_ns.is_some()
    }

    /// Removes the socket.
    pub fn finish(self, sockets: &mut SocketSet<'static>) -> MaertsReport {
        let line = String::from_utf8_lossy(&self.line).into_owned();
        let mut words = line.split_whitespace();
        let source_bytes = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        let source_digest = String::from(words.next().unwrap_or(""));
        sockets.remove(self.handle);
        MaertsReport {
            bytes: self.received,
            seconds: crate::client::elapsed_s(self.connected_ns, self.done_ns),
            kind: self.check.kind(),
            digest: self.check.finish(),
            source_bytes,
            source_digest,
        }
    }
}
