//! The stream sink, the receiving end of TCP_STREAM: it takes a
//! connection's bytes until the sender closes its side, then answers one
//! line, `<bytes> <sha256>\n`, and closes.

use super::pattern::hex;
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use sha2::{Digest, Sha256};
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Duration;

/// Concurrent streams served.
const SOCKETS: usize = 4;
const BUFFER: usize = 128 * 1024;
/// A sender that stops answering is given up after this.
const PEER_TIMEOUT: Duration = Duration::from_secs(20);
const KEEP_ALIVE: Duration = Duration::from_secs(5);

struct Session {
    bytes: u64,
    hash: Sha256,
    answered: bool,
}

pub struct Sink {
    port: u16,
    sockets: Vec<(SocketHandle, Option<Session>)>,
    buf: Vec<u8>,
    /// Bytes received, all streams.
    pub bytes: u64,
    /// Streams answered.
    pub streams: u64,
}

impl Sink {
    pub fn new(sockets: &mut SocketSet<'static>, port: u16) -> Sink {
        let handles = (0..SOCKETS)
            .map(|_| {
                let socket = tcp::Socket::new(
                    tcp::SocketBuffer::new(vec![0; BUFFER]),
                    tcp::SocketBuffer::new(vec![0; 4096]),
                );
                (sockets.add(socket), None)
            })
            .collect();
        Sink { port, sockets: handles, buf: vec![0; 16 * 1024], bytes: 0, streams: 0 }
    }

    /// Takes what arrived and answers finished streams; true if anything moved.
    pub fn service(&mut self, sockets: &mut SocketSet<'static>) -> bool {
        let mut moved = false;
        for (handle, session) in &mut self.sockets {
            let socket = sockets.get_mut::<tcp::Socket>(*handle);
            if !socket.is_open() {
                *session = None;
                if socket.listen(self.port).is_ok() {
                    socket.set_timeout(Some(PEER_TIMEOUT));
                    socket.set_keep_alive(Some(KEEP_ALIVE));
                }
                continue;
            }
            if !socket.is_active() {
                continue;
            }
            let s = session.get_or_insert_with(|| Session { bytes: 0, hash: Sha256::new(), answered: false });
            while socket.can_recv() {
                let Ok(n) = socket.recv_slice(&mut self.buf) else { break };
                if n == 0 {
                    break;
                }
                s.hash.update(&self.buf[..n]);
                s.bytes += n as u64;
                self.bytes += n as u64;
                moved = true;
            }
            // The sender closed its side and everything is read: answer.
            if socket.state() == tcp::State::CloseWait && !socket.can_recv() && !s.answered {
                let digest = core::mem::take(&mut s.hash).finalize();
                let line = format!("{} {}\n", s.bytes, hex(&digest));
                if socket.send_slice(line.as_bytes()).is_ok_and(|n| n == line.len()) {
                    s.answered = true;
                    self.streams += 1;
                    socket.close();
                    moved = true;
                }
            }
        }
        moved
    }
}
