//! The TCP_CRR client: transactions of `msg` bytes with an echo service,
//! each on a new connection: connect, send the request, take the response,
//! close, and wait for the server's FIN. A transaction's latency runs from
//! its connect to that FIN, so it holds both handshakes.
//!
//! One connection is open at a time, and its socket is removed once the
//! server's FIN is in (from TIME-WAIT: the server has our last ACK, and a
//! repeated FIN of its would get a reset, which it takes as closed too).

use crate::latency::{Latencies, Summary};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;

/// Refused connections tried again in a row, at most, once a transaction
/// is done (the echo serves four at once; one still closing may take a
/// SYN's place), and how soon.
pub const REFUSALS_MAX: u32 = 50;
const RETRY_NS: u64 = 1_000_000;
/// Before the first transaction, while the peer may still be booting:
/// refusals tried again in a row (a minute's worth), and how soon.
pub const SETUP_REFUSALS_MAX: u32 = 120;
const SETUP_RETRY_NS: u64 = 500_000_000;

/// The connection of the transaction in flight.
struct Conn {
    handle: SocketHandle,
    start_ns: u64,
    sent: usize,
    got: usize,
    closing: bool,
}

pub struct Crr {
    peer: [u8; 4],
    port: u16,
    count: u32,
    msg: usize,
    done: u32,
    conn: Option<Conn>,
    /// Refusals since the last transaction, and in all after the first
    /// (those before it are the peer coming up).
    refused_in_a_row: u32,
    pub refused: u32,
    retry_at: u64,
    latencies: Latencies,
    request: Vec<u8>,
    buf: Vec<u8>,
    pub start_ns: Option<u64>,
    pub done_ns: Option<u64>,
}

pub struct CrrReport {
    pub transactions: u32,
    pub seconds: f64,
    pub refused: u32,
    pub latency: Summary,
}

impl CrrReport {
    pub fn per_second(&self) -> f64 {
        f64::from(self.transactions) / self.seconds.max(1e-9)
    }
}

impl Crr {
    pub fn new(peer: [u8; 4], port: u16, count: u32, msg: usize) -> Crr {
        Crr {
            peer,
            port,
            count,
            msg,
            done: 0,
            conn: None,
            refused_in_a_row: 0,
            refused: 0,
            retry_at: 0,
            latencies: Latencies::new(count),
            request: vec![0x5a; msg],
            buf: vec![0; msg.min(16 * 1024)],
            start_ns: None,
            done_ns: None,
        }
    }

    pub fn progress(&self) -> (u32, u32) {
        (self.done, self.count)
    }

    pub fn done(&self) -> bool {
        self.done_ns.is_some()
    }

    /// The socket of the transaction in flight.
    pub fn handle(&self) -> Option<SocketHandle> {
        self.conn.as_ref().map(|c| c.handle)
    }

    /// Advances at time `now_ns`, opening the next connection from
    /// `local_port()`'s port; Ok(true) when something moved.
    pub fn service(
        &mut self,
        iface: &mut Interface,
        sockets: &mut SocketSet<'static>,
        now_ns: u64,
        local_port: &mut dyn FnMut() -> u16,
    ) -> Result<bool, String> {
        if self.conn.is_none() {
            if self.done == self.count || now_ns < self.retry_at {
                return Ok(false);
            }
            let size = self.msg.max(4096);
            let mut socket = crate::client::socket(size, size);
            socket.set_nagle_enabled(false);
            let handle = crate::client::connect(iface, sockets, socket, self.peer, self.port, local_port())?;
            self.start_ns.get_or_insert(now_ns);
            self.conn = Some(Conn { handle, start_ns: now_ns, sent: 0, got: 0, closing: false });
            return Ok(true);
        }
        let Some(conn) = self.conn.as_mut() else { return Ok(false) };
        let socket = sockets.get_mut::<tcp::Socket>(conn.handle);
        let mut moved = false;
        if conn.sent < self.msg && socket.may_send() {
            let n = socket.send_slice(&self.request[conn.sent..]).map_err(|e| format!("send: {e}"))?;
            conn.sent += n;
            moved |= n > 0;
        }
        // At most the response's bytes, in `buf`'s pieces.
        while conn.got < self.msg && socket.can_recv() {
            let want = (self.msg - conn.got).min(self.buf.len());
            let n = socket.recv_slice(&mut self.buf[..want]).map_err(|e| format!("recv: {e}"))?;
            if n == 0 {
                break;
            }
            conn.got += n;
            moved = true;
        }
        if conn.got == self.msg && !conn.closing {
            socket.close();
            conn.closing = true;
            moved = true;
        }
        match socket.state() {
            tcp::State::TimeWait if conn.closing => {
                self.latencies.record(now_ns.saturating_sub(conn.start_ns));
                self.done += 1;
                self.refused_in_a_row = 0;
                if self.done == self.count {
                    self.done_ns = Some(now_ns);
                }
            }
            tcp::State::Closed if conn.sent == 0 && conn.got == 0 => {
                // Refused (or reset before a byte went): try again soon.
                let (max, retry) = if self.done == 0 { (SETUP_REFUSALS_MAX, SETUP_RETRY_NS) } else { (REFUSALS_MAX, RETRY_NS) };
                self.refused_in_a_row += 1;
                if self.refused_in_a_row > max {
                    return Err(format!("{max} connections refused in a row after {} transactions", self.done));
                }
                if self.done == 0 {
                    // The clock starts with the first accepted connection.
                    self.start_ns = None;
                } else {
                    self.refused += 1;
                }
                self.retry_at = now_ns + retry;
            }
            tcp::State::Closed => {
                return Err(format!(
                    "transaction {}: the connection was reset with {} of {} bytes back",
                    self.done + 1,
                    conn.got,
                    self.msg
                ))
            }
            _ => return Ok(moved),
        }
        sockets.remove(conn.handle);
        self.conn = None;
        Ok(true)
    }

    /// Removes the socket of a transaction in flight (after an error).
    pub fn abandon(&mut self, sockets: &mut SocketSet<'static>) {
        if let Some(conn) = self.conn.take() {
            sockets.remove(conn.handle);
        }
    }

    pub fn finish(mut self, sockets: &mut SocketSet<'static>) -> CrrReport {
        self.abandon(sockets);
        CrrReport {
            transactions: self.done,
            seconds: crate::client::elapsed_s(self.start_ns, self.done_ns),
            refused: self.refused,
            latency: self.latencies.summary(),
        }
    }
}
