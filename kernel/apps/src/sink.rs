//! The stream sink, the receiving end of TCP_STREAM: it takes a
//! connection's bytes until the sender closes its side, then answers one
//! line, `<bytes> <digest>\n`, and closes. The digest is SHA-256, unless
//! the stream starts with the magic of another check (`CheckKind::magic`).

use crate::pattern::{Check, CheckKind};
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
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
    /// The first 8 bytes, until they say which check the stream wants.
    head: Vec<u8>,
    check: Option<Check>,
    answered: bool,
}

impl Session {
    fn take(&mut self, mut data: &[u8]) -> u64 {
        let mut counted = data.len() as u64;
        if self.check.is_none() {
            let n = (8 - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.head.len() < 8 {
                return 0;
            }
            let asked = [CheckKind::Fast, CheckKind::Count].into_iter().find(|k| k.magic().is_some_and(|m| self.head == m));
            if let Some(kind) = asked {
                self.check = Some(Check::new(kind));
                counted -= 8;
            } else {
                let mut check = Check::new(CheckKind::Sha256);
                check.update(&self.head);
                self.check = Some(check);
            }
        }
        if let Some(check) = &mut self.check {
            check.update(data);
        }
        self.bytes += counted;
        counted
    }

    fn answer(&mut self) -> alloc::string::String {
        let mut check = self.check.take().unwrap_or_else(|| Check::new(CheckKind::Sha256));
        let mut bytes = self.bytes;
        if !self.head.is_empty() && self.head.len() < 8 {
            // A stream shorter than the magic: all of it is data.
            check.update(&self.head);
            bytes = self.head.len() as u64;
        }
        format!("{bytes} {}\n", check.finish())
    }
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
                let socket = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; BUFFER]), tcp::SocketBuffer::new(vec![0; 4096]));
                (sockets.add(socket), None)
            })
            .collect();
        let mut sink = Sink { port, sockets: handles, buf: vec![0; 16 * 1024], bytes: 0, streams: 0 };
        // Listen now, so a connection arriving before the first round is
        // not refused.
        sink.service(sockets);
        sink
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
            let s = session.get_or_insert_with(|| Session { bytes: 0, head: Vec::new(), check: None, answered: false });
            while socket.can_recv() {
                let Ok(n) = socket.recv_slice(&mut self.buf) else { break };
                if n == 0 {
                    break;
                }
                self.bytes += s.take(&self.buf[..n]);
                moved = true;
            }
            // The sender closed its side and everything is read: answer.
            if socket.state() == tcp::State::CloseWait && !socket.can_recv() && !s.answered {
                let line = s.answer();
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
