//! The TCP_STREAM client: sends `total` bytes to a sink, closes its side,
//! and takes the sink's answer (byte count and digest) as the end of the
//! measurement, so the time covers every byte delivered.

use crate::pattern::{CheckKind, Chunks};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;

const BUFFER: usize = 128 * 1024;
const CHUNK: usize = 16 * 1024;

pub struct Stream {
    handle: SocketHandle,
    total: u64,
    sent: u64,
    /// What is sent, and how much of its current chunk is.
    chunks: Chunks,
    pending_at: usize,
    /// The check's magic, and how much of it is still to send.
    magic: [u8; 8],
    magic_left: usize,
    answer: Vec<u8>,
    closed: bool,
    pub connected_ns: Option<u64>,
    pub done_ns: Option<u64>,
}

pub struct StreamReport {
    pub bytes: u64,
    pub seconds: f64,
    pub kind: CheckKind,
    pub sent_digest: String,
    /// What the sink says it received.
    pub sink_bytes: u64,
    pub sink_digest: String,
}

impl StreamReport {
    pub fn matches(&self) -> bool {
        self.sink_bytes == self.bytes && self.sink_digest == self.sent_digest
    }

    pub fn check_name(&self) -> &'static str {
        self.kind.name()
    }

    pub fn mbit_per_s(&self) -> f64 {
        crate::client::mbit_per_s(self.bytes, self.seconds)
    }
}

impl Stream {
    pub fn start(
        iface: &mut Interface,
        sockets: &mut SocketSet<'static>,
        peer: [u8; 4],
        port: u16,
        total: u64,
        kind: CheckKind,
        local_port: u16,
    ) -> Result<Stream, String> {
        let socket = crate::client::socket(4096, BUFFER);
        let handle = crate::client::connect(iface, sockets, socket, peer, port, local_port)?;
        Ok(Stream {
            handle,
            total,
            sent: 0,
            chunks: Chunks::new(kind),
            pending_at: 0,
            magic: kind.magic().unwrap_or_default(),
            magic_left: kind.magic().map_or(0, |m| m.len()),
            answer: Vec::new(),
            closed: false,
            connected_ns: None,
            done_ns: None,
        })
    }

    pub fn handle(&self) -> SocketHandle {
        self.handle
    }

    /// Bytes the sink acknowledged so far.
    pub fn acked(&self, sockets: &mut SocketSet<'static>) -> u64 {
        self.sent.saturating_sub(sockets.get::<tcp::Socket>(self.handle).send_queue() as u64)
    }

    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Bytes to send in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Advances the stream at time `now_ns`; Ok(true) when something moved.
    pub fn service(&mut self, sockets: &mut SocketSet<'static>, now_ns: u64) -> Result<bool, String> {
        let socket = sockets.get_mut::<tcp::Socket>(self.handle);
        if !crate::client::await_connected(socket, &mut self.connected_ns, now_ns)? {
            return Ok(false);
        }
        let mut moved = false;
        while self.magic_left > 0 && socket.can_send() {
            let at = self.magic.len() - self.magic_left;
            self.magic_left -= socket.send_slice(&self.magic[at..]).map_err(|e| format!("send: {e}"))?;
            moved = true;
        }
        while self.magic_left == 0
            && socket.can_send()
            && (self.pending_at < self.chunks.current().len() || self.sent < self.total)
        {
            if self.pending_at == self.chunks.current().len() {
                self.chunks.next((CHUNK as u64).min(self.total - self.sent) as usize);
                self.pending_at = 0;
            }
            let n = socket.send_slice(&self.chunks.current()[self.pending_at..]).map_err(|e| format!("send: {e}"))?;
            if n == 0 {
                break;
            }
            self.pending_at += n;
            self.sent += n as u64;
            moved = true;
        }
        if self.sent == self.total && self.pending_at == self.chunks.current().len() && !self.closed {
            // FIN after the last byte: the sink answers when it sees it.
            socket.close();
            self.closed = true;
        }
        while socket.can_recv() && self.answer.len() < 256 {
            let mut buf = [0u8; 256];
            let n = socket.recv_slice(&mut buf).map_err(|e| format!("recv: {e}"))?;
            if n == 0 {
                break;
            }
            self.answer.extend_from_slice(&buf[..n]);
            moved = true;
        }
        if self.done_ns.is_none() && self.answer.ends_with(b"\n") {
            self.done_ns = Some(now_ns);
        }
        if self.done_ns.is_none() && !socket.is_open() {
            return Err(format!("connection closed after {} of {} bytes, before the sink answered", self.sent, self.total));
        }
        Ok(moved)
    }

    pub fn done(&self) -> bool {
        self.done_ns.is_some()
    }

    /// Ends the stream before `total`: the rest of the chunk being sent
    /// goes, then the FIN, and the sink's answer checks what was sent
    /// (app=handover ends its stream once both switches are timed).
    pub fn end_early(&mut self) {
        let rest = (self.chunks.current().len() - self.pending_at) as u64;
        self.total = self.total.min(self.sent + rest);
    }

    /// Removes the socket (the sink closes its side after answering).
    pub fn finish(self, sockets: &mut SocketSet<'static>) -> StreamReport {
        let answer = String::from_utf8_lossy(&self.answer).into_owned();
        let mut words = answer.split_whitespace();
        let sink_bytes = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        let sink_digest = String::from(words.next().unwrap_or(""));
        let kind = self.chunks.kind();
        sockets.remove(self.handle);
        StreamReport {
            bytes: self.sent,
            seconds: crate::client::elapsed_s(self.connected_ns, self.done_ns),
            kind,
            sent_digest: self.chunks.finish(),
            sink_bytes,
            sink_digest,
        }
    }
}
