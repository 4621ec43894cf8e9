//! The UDP_RR client: request/response datagrams of `msg` bytes with the
//! UDP echo, one at a time, timing each. UDP does not resend: a datagram
//! lost either way is noticed after [`LOSS_TIMEOUT_NS`], counted, and the
//! next request goes out (netperf's UDP_RR would stop there). Each request
//! carries its number in its first bytes (as many as fit), so a late answer
//! to an earlier one is told apart and dropped.

use crate::latency::{Latencies, Summary};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::udp;
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address};

/// A request unanswered for this long is lost.
pub const LOSS_TIMEOUT_NS: u64 = 100_000_000;
/// Losses in a row, once a transaction is done, that end the test: the
/// echo stopped answering.
pub const LOST_IN_A_ROW_MAX: u32 = 50;
/// Before the first answer (the peer may be booting, ARP not done):
/// requests tried, half a second apart, a minute's worth; not counted.
pub const SETUP_TRIES_MAX: u32 = 120;
const SETUP_RETRY_NS: u64 = 500_000_000;
/// The largest request: one datagram in a 1500-byte IPv4 frame.
pub const MSG_MAX: usize = 1472;
/// Datagrams buffered each way, and read per round at most.
const PACKETS: usize = 8;

pub struct UdpRr {
    handle: SocketHandle,
    peer: IpEndpoint,
    count: u32,
    msg: usize,
    done: u32,
    /// Lost in all (after the first answer), and in a row.
    pub lost: u32,
    lost_in_a_row: u32,
    setup_tries: u32,
    /// Stale answers dropped (to requests already counted lost).
    pub stale: u32,
    seq: u64,
    /// (number, start) of the request in flight.
    in_flight: Option<(u64, u64)>,
    latencies: Latencies,
    request: Vec<u8>,
    buf: Vec<u8>,
    pub start_ns: Option<u64>,
    pub done_ns: Option<u64>,
}

pub struct UdpRrReport {
    pub transactions: u32,
    pub lost: u32,
    pub stale: u32,
    pub seconds: f64,
    pub latency: Summary,
}

impl UdpRrReport {
    pub fn per_second(&self) -> f64 {
        f64::from(self.transactions) / self.seconds.max(1e-9)
    }
}

impl UdpRr {
    /// Binds `local_port`; an error for a request too long for one datagram.
    pub fn start(
        sockets: &mut SocketSet<'static>,
        peer: [u8; 4],
        port: u16,
        count: u32,
        msg: usize,
        local_port: u16,
    ) -> Result<UdpRr, String> {
        if msg > MSG_MAX {
            return Err(format!("udp-rr: net.msg={msg} is more than one datagram holds ({MSG_MAX})"));
        }
        let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; PACKETS], vec![0; PACKETS * MSG_MAX]);
        let handle = sockets.add(udp::Socket::new(buffer(), buffer()));
        if let Err(e) = sockets.get_mut::<udp::Socket>(handle).bind(local_port) {
            sockets.remove(handle);
            return Err(format!("udp-rr: bind: {e}"));
        }
        Ok(UdpRr {
            handle,
            peer: IpEndpoint::new(IpAddress::Ipv4(Ipv4Address::from(peer)), port),
            count,
            msg,
            done: 0,
            lost: 0,
            lost_in_a_row: 0,
            setup_tries: 0,
            stale: 0,
            seq: 0,
            in_flight: None,
            latencies: Latencies::new(count),
            request: vec![0x5a; msg],
            buf: vec![0; MSG_MAX],
            start_ns: None,
            done_ns: None,
        })
    }

    pub fn progress(&self) -> (u32, u32) {
        (self.done, self.count)
    }

    pub fn done(&self) -> bool {
        self.done_ns.is_some()
    }

    /// Advances at time `now_ns`; Ok(true) when something moved.
    pub fn service(&mut self, sockets: &mut SocketSet<'static>, now_ns: u64) -> Result<bool, String> {
        let socket = sockets.get_mut::<udp::Socket>(self.handle);
        let tagged = self.msg.min(8);
        let mut moved = false;
        let mut reads = 0;
        while socket.can_recv() && reads < PACKETS {
            reads += 1;
            let (n, from) = match socket.recv_slice(&mut self.buf) {
                Ok((n, meta)) => (n, meta.endpoint),
                // Longer than any answer: not one.
                Err(_) => continue,
            };
            moved = true;
            let Some((seq, start)) = self.in_flight else {
                self.stale += 1;
                continue;
            };
            if from != self.peer || n != self.msg || self.buf[..tagged] != seq.to_le_bytes()[..tagged] {
                self.stale += 1;
                continue;
            }
            self.in_flight = None;
            self.start_ns.get_or_insert(start);
            self.latencies.record(now_ns.saturating_sub(start));
            self.done += 1;
            self.lost_in_a_row = 0;
            if self.done == self.count {
                self.done_ns = Some(now_ns);
                return Ok(true);
            }
        }
        if let Some((_, start)) = self.in_flight {
            let timeout = if self.done == 0 { SETUP_RETRY_NS } else { LOSS_TIMEOUT_NS };
            if now_ns.saturating_sub(start) < timeout {
                return Ok(moved);
            }
            self.in_flight = None;
            if self.done == 0 {
                if self.setup_tries >= SETUP_TRIES_MAX {
                    return Err(format!("udp-rr: no answer to {SETUP_TRIES_MAX} requests: is the echo at {}?", self.peer));
                }
            } else {
                self.lost += 1;
                self.lost_in_a_row += 1;
                if self.lost_in_a_row >= LOST_IN_A_ROW_MAX {
                    return Err(format!("udp-rr: {LOST_IN_A_ROW_MAX} requests in a row lost after {} answered", self.done));
                }
            }
        }
        if self.done < self.count && socket.can_send() {
            self.seq += 1;
            let tag = self.seq.to_le_bytes();
            self.request[..tagged].copy_from_slice(&tag[..tagged]);
            socket.send_slice(&self.request, self.peer).map_err(|e| format!("udp-rr: send: {e}"))?;
            if self.done == 0 {
                self.setup_tries += 1;
            }
            self.in_flight = Some((self.seq, now_ns));
            moved = true;
        }
        Ok(moved)
    }

    pub fn finish(self, sockets: &mut SocketSet<'static>) -> UdpRrReport {
        sockets.remove(self.handle);
        UdpRrReport {
            transactions: self.done,
            lost: self.lost,
            stale: self.stale,
            seconds: crate::client::elapsed_s(self.start_ns, self.done_ns),
            latency: self.latencies.summary(),
        }
    }

    /// Removes the socket (after an error).
    pub fn abandon(self, sockets: &mut SocketSet<'static>) {
        sockets.remove(self.handle);
    }
}
