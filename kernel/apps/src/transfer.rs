//! The `transfer` client: sends a pseudo-random stream to an echo service,
//! reads it back, and compares the SHA-256 of both directions.

use crate::pattern::{hex, Pattern};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use sha2::{Digest, Sha256};
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;

const BUFFER: usize = 128 * 1024;
const CHUNK: usize = 16 * 1024;

pub struct Transfer {
    handle: SocketHandle,
    total: u64,
    sent: u64,
    received: u64,
    /// The next bytes to send, generated but not yet accepted by TCP.
    pending: Vec<u8>,
    pending_at: usize,
    pattern: Pattern,
    tx_hash: Sha256,
    rx_hash: Sha256,
    buf: Vec<u8>,
    pub connected_ns: Option<u64>,
    pub done_ns: Option<u64>,
}

pub struct Report {
    pub bytes: u64,
    pub seconds: f64,
    pub sent_sha256: String,
    pub received_sha256: String,
}

impl Report {
    pub fn matches(&self) -> bool {
        self.sent_sha256 == self.received_sha256
    }

    /// Payload throughput of one direction (the same bytes go each way).
    pub fn mbit_per_s(&self) -> f64 {
        crate::client::mbit_per_s(self.bytes, self.seconds)
    }
}

impl Transfer {
    pub fn start(
        iface: &mut Interface,
        sockets: &mut SocketSet<'static>,
        peer: [u8; 4],
        port: u16,
        total: u64,
        local_port: u16,
    ) -> Result<Transfer, String> {
        let socket = crate::client::socket(BUFFER, BUFFER);
        let handle = crate::client::connect(iface, sockets, socket, peer, port, local_port)?;
        Ok(Transfer {
            handle,
            total,
            sent: 0,
            received: 0,
            pending: Vec::new(),
            pending_at: 0,
            pattern: Pattern::new(),
            tx_hash: Sha256::new(),
            rx_hash: Sha256::new(),
            buf: vec![0; CHUNK],
            connected_ns: None,
            done_ns: None,
        })
    }

    fn refill(&mut self) {
        let n = (CHUNK as u64).min(self.total - self.sent) as usize;
        self.pattern.fill(&mut self.pending, n);
        self.tx_hash.update(&self.pending);
        self.pending_at = 0;
    }

    /// Advances the transfer at time `now_ns`; Ok(true) when something
    /// moved.
    pub fn service(&mut self, sockets: &mut SocketSet<'static>, now_ns: u64) -> Result<bool, String> {
        let socket = sockets.get_mut::<tcp::Socket>(self.handle);
        if !crate::client::await_connected(socket, &mut self.connected_ns, now_ns)? {
            return Ok(false);
        }
        let mut moved = false;
        while socket.can_send() && (self.pending_at < self.pending.len() || self.sent < self.total) {
            if self.pending_at == self.pending.len() {
                self.refill();
            }
            let n = socket.send_slice(&self.pending[self.pending_at..]).map_err(|e| format!("send: {e}"))?;
            if n == 0 {
                break;
            }
            self.pending_at += n;
            self.sent += n as u64;
            moved = true;
        }
        while socket.can_recv() {
            let n = socket.recv_slice(&mut self.buf).map_err(|e| format!("recv: {e}"))?;
            if n == 0 {
                break;
            }
            self.rx_hash.update(&self.buf[..n]);
            self.received += n as u64;
            moved = true;
        }
        if self.received > self.sent {
            return Err(format!("received {} bytes, more than the {} sent", self.received, self.sent));
        }
        if self.received == self.total && self.done_ns.is_none() {
            self.done_ns = Some(now_ns);
            socket.close();
        }
        if !socket.is_open() && self.done_ns.is_none() {
            return Err(format!("connection closed after {} of {} bytes echoed", self.received, self.total));
        }
        Ok(moved)
    }

    pub fn done(&self) -> bool {
        self.done_ns.is_some()
    }

    pub fn handle(&self) -> SocketHandle {
        self.handle
    }

    pub fn progress(&self) -> (u64, u64, u64) {
        (self.sent, self.received, self.total)
    }

    /// The measurement; the socket goes back to `sockets`.
    pub fn report(self, sockets: &mut SocketSet<'static>) -> Report {
        sockets.remove(self.handle);
        Report {
            bytes: self.received,
            seconds: crate::client::elapsed_s(self.connected_ns, self.done_ns),
            sent_sha256: hex(&self.tx_hash.finalize()),
            received_sha256: hex(&self.rx_hash.finalize()),
        }
    }
}
