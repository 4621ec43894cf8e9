//! The TCP_RR client: request/response transactions of `msg` bytes with
//! an echo service, one at a time, timing each.

use crate::latency::Latencies;
pub use crate::latency::BUCKETS_US;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;

pub struct Rr {
    handle: SocketHandle,
    count: u32,
    msg: usize,
    done: u32,
    /// (start time, bytes of the response received) of the transaction
    /// in flight.
    in_flight: Option<(u64, usize)>,
    latencies: Latencies,
    request: Vec<u8>,
    buf: Vec<u8>,
    pub connected_ns: Option<u64>,
    pub done_ns: Option<u64>,
}

pub struct RrReport {
    pub transactions: u32,
    pub seconds: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Round trips per bucket of [`BUCKETS_US`] (the last: longer).
    pub histogram: [u32; BUCKETS_US.len() + 1],
}

impl RrReport {
    pub fn per_second(&self) -> f64 {
        f64::from(self.transactions) / self.seconds.max(1e-9)
    }
}

impl Rr {
    pub fn start(
        iface: &mut Interface,
        sockets: &mut SocketSet<'static>,
        peer: [u8; 4],
        port: u16,
        count: u32,
        msg: usize,
        local_port: u16,
    ) -> Result<Rr, String> {
        let size = msg.max(4096);
        let mut socket = crate::client::socket(size, size);
        // One small segment each way per transaction, sent at once; the
        // next request carries the ACK of a response, as netperf's TCP_RR
        // on Linux does (acknowledging each response by itself cost a
        // third frame, and a wake-up of the peer, per transaction).
        socket.set_nagle_enabled(false);
        let handle = crate::client::connect(iface, sockets, socket, peer, port, local_port)?;
        Ok(Rr {
            handle,
            count,
            msg,
            done: 0,
            in_flight: None,
            latencies: Latencies::new(count),
            request: vec![0x5a; msg],
            buf: vec![0; size],
            connected_ns: None,
            done_ns: None,
        })
    }

    pub fn progress(&self) -> (u32, u32) {
        (self.done, self.count)
    }

    /// Advances at time `now_ns`; Ok(true) when something moved.
    pub fn service(&mut self, sockets: &mut SocketSet<'static>, now_ns: u64) -> Result<bool, String> {
        let socket = sockets.get_mut::<tcp::Socket>(self.handle);
        if !crate::client::await_connected(socket, &mut self.connected_ns, now_ns)? {
            return Ok(false);
        }
        let mut moved = false;
        if self.in_flight.is_none() && self.done < self.count && socket.send_capacity() - socket.send_queue() >= self.msg {
            socket.send_slice(&self.request).map_err(|e| format!("send: {e}"))?;
            self.in_flight = Some((now_ns, 0));
            moved = true;
        }
        while let Some((start, got)) = self.in_flight {
            if !socket.can_recv() {
                break;
            }
            let want = self.msg - got;
            let n = socket.recv_slice(&mut self.buf[..want]).map_err(|e| format!("recv: {e}"))?;
            if n == 0 {
                break;
            }
            moved = true;
            if got + n < self.msg {
                self.in_flight = Some((start, got + n));
                continue;
            }
            self.latencies.record(now_ns.saturating_sub(start));
            self.in_flight = None;
            self.done += 1;
            if self.done == self.count {
                self.done_ns = Some(now_ns);
                socket.close();
            }
        }
        if self.done_ns.is_none() && !socket.is_open() {
            return Err(format!("connection closed after {} of {} transactions", self.done, self.count));
        }
        Ok(moved)
    }

    pub fn done(&self) -> bool {
        self.done_ns.is_some()
    }

    /// Ends after the transaction in flight, or the next one
    /// (app=handover ends its run once both switches are timed).
    pub fn end_early(&mut self) {
        self.count = self.count.min(self.done + 1);
    }

    /// The round trips so far (for pooling several clients', `app=mix`).
    pub fn latencies(&self) -> &Latencies {
        &self.latencies
    }

    pub fn handle(&self) -> SocketHandle {
        self.handle
    }

    pub fn finish(self, sockets: &mut SocketSet<'static>) -> RrReport {
        sockets.remove(self.handle);
        let s = self.latencies.summary();
        RrReport {
            transactions: self.done,
            seconds: crate::client::elapsed_s(self.connected_ns, self.done_ns),
            mean_us: s.mean_us,
            p50_us: s.p50_us,
            p99_us: s.p99_us,
            histogram: s.histogram,
        }
    }
}
