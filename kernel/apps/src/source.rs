//! The stream source, the sending end of TCP_MAERTS (the stream the other
//! way): a client asks with one [`Request`] for a number of bytes and a
//! check; the source sends that many bytes of the pattern, then one line,
//! `<bytes> <digest>\n`, and closes. A request it cannot read resets the
//! connection.

use crate::pattern::{CheckKind, Chunks};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use cohort_boot::cmdline::NET_BYTES_MAX;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Duration;

/// Concurrent streams served: a connection beyond these is refused.
const SOCKETS: usize = 4;
const BUFFER: usize = 128 * 1024;
const CHUNK: usize = 16 * 1024;
/// Chunks handed to one socket per round, at most (the send buffer holds
/// eight; the budget keeps one stream from holding the others up).
const CHUNKS_PER_ROUND: usize = BUFFER / CHUNK;
/// A receiver that stops answering is given up after this.
const PEER_TIMEOUT: Duration = Duration::from_secs(20);
const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// What a client asks the source for: 16 bytes, `maerts`, the check's
/// letter (`s` SHA-256, `f` FNV, `n` the count alone), a zero, and the
/// byte count (big-endian u64, at most `net.bytes`' maximum).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub bytes: u64,
    pub kind: CheckKind,
}

pub const REQUEST_LEN: usize = 16;
const MAGIC: &[u8; 6] = b"maerts";

impl Request {
    pub fn to_bytes(self) -> [u8; REQUEST_LEN] {
        let mut b = [0u8; REQUEST_LEN];
        b[..6].copy_from_slice(MAGIC);
        b[6] = match self.kind {
            CheckKind::Sha256 => b's',
            CheckKind::Fast => b'f',
            CheckKind::Count => b'n',
        };
        b[8..].copy_from_slice(&self.bytes.to_be_bytes());
        b
    }

    /// The request in `b`; an error that says what is wrong with it.
    pub fn parse(b: &[u8; REQUEST_LEN]) -> Result<Request, String> {
        if &b[..6] != MAGIC || b[7] != 0 {
            return Err("not a maerts request".into());
        }
        let kind = match b[6] {
            b's' => CheckKind::Sha256,
            b'f' => CheckKind::Fast,
            b'n' => CheckKind::Count,
            c => return Err(format!("unknown check `{}`", c.escape_ascii())),
        };
        let mut count = [0u8; 8];
        count.copy_from_slice(&b[8..]);
        let bytes = u64::from_be_bytes(count);
        if bytes > NET_BYTES_MAX {
            return Err(format!("{bytes} bytes asked, more than {NET_BYTES_MAX}"));
        }
        Ok(Request { bytes, kind })
    }
}

/// One connection's progress.
#[derive(Default)]
struct Session {
    head: Vec<u8>,
    /// Once the request is read: what is sent, how much, and how much of
    /// the chunk in hand.
    sending: Option<(Request, Chunks, u64, usize)>,
    /// The closing line, and how much of it is sent.
    trailer: Option<(Vec<u8>, usize)>,
}

pub struct Source {
    port: u16,
    sockets: Vec<(SocketHandle, Session)>,
    /// Bytes sent, all streams (the pattern, not the closing lines).
    pub bytes: u64,
    /// Streams sent whole.
    pub streams: u64,
    /// Connections reset for a bad request.
    pub refused: u64,
}

impl Source {
    pub fn new(sockets: &mut SocketSet<'static>, port: u16) -> Source {
        let handles = (0..SOCKETS)
            .map(|_| {
                let socket = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 256]), tcp::SocketBuffer::new(vec![0; BUFFER]));
                (sockets.add(socket), Session::default())
            })
            .collect();
        let mut source = Source { port, sockets: handles, bytes: 0, streams: 0, refused: 0 };
        // Listen now, so a connection arriving before the first round is
        // not refused.
        source.service(sockets);
        source
    }

    /// Reads requests and sends what they ask; true if anything moved.
    pub fn service(&mut self, sockets: &mut SocketSet<'static>) -> bool {
        let mut moved = false;
        for (handle, session) in &mut self.sockets {
            let socket = sockets.get_mut::<tcp::Socket>(*handle);
            if !socket.is_open() {
                *session = Session::default();
                if socket.listen(self.port).is_ok() {
                    socket.set_timeout(Some(PEER_TIMEOUT));
                    socket.set_keep_alive(Some(KEEP_ALIVE));
                }
                continue;
            }
            if !socket.is_active() {
                continue;
            }
            match serve(socket, session, &mut self.bytes) {
                Ok(Step::Idle) => {}
                Ok(Step::Moved) => moved = true,
                Ok(Step::Finished) => {
                    self.streams += 1;
                    moved = true;
                }
                Err(e) => {
                    log::warn!("source: {e}: connection reset");
                    socket.abort();
                    self.refused += 1;
                    moved = true;
                }
            }
        }
        moved
    }
}

enum Step {
    Idle,
    Moved,
    /// The stream and its line are sent: the source has closed.
    Finished,
}

/// One round of one connection.
fn serve(socket: &mut tcp::Socket, s: &mut Session, total: &mut u64) -> Result<Step, String> {
    let mut moved = false;
    if s.sending.is_none() && s.trailer.is_none() {
        let mut head = [0u8; REQUEST_LEN];
        if socket.can_recv() {
            let want = REQUEST_LEN - s.head.len();
            let n = socket.recv_slice(&mut head[..want]).map_err(|e| format!("recv: {e}"))?;
            s.head.extend_from_slice(&head[..n]);
            moved |= n > 0;
        }
        if s.head.len() < REQUEST_LEN {
            if socket.state() == tcp::State::CloseWait {
                return Err(format!("the client closed after {} bytes of its request", s.head.len()));
            }
            return Ok(if moved { Step::Moved } else { Step::Idle });
        }
        head.copy_from_slice(&s.head);
        let request = Request::parse(&head)?;
        s.sending = Some((request, Chunks::new(request.kind), 0, 0));
    }
    if let Some((request, chunks, sent, at)) = &mut s.sending {
        let mut rounds = 0;
        while *sent < request.bytes && socket.can_send() && rounds < CHUNKS_PER_ROUND {
            if *at == chunks.current().len() {
                chunks.next((CHUNK as u64).min(request.bytes - *sent) as usize);
                *at = 0;
                rounds += 1;
            }
            let n = socket.send_slice(&chunks.current()[*at..]).map_err(|e| format!("send: {e}"))?;
            if n == 0 {
                break;
            }
            *at += n;
            *sent += n as u64;
            *total += n as u64;
            moved = true;
        }
        if *sent == request.bytes {
            let (request, chunks, ..) = s.sending.take().ok_or("no stream")?;
            let line = format!("{} {}\n", request.bytes, chunks.finish());
            s.trailer = Some((line.into_bytes(), 0));
        }
    }
    if let Some((line, at)) = &mut s.trailer {
        if *at < line.len() {
            let n = socket.send_slice(&line[*at..]).map_err(|e| format!("send: {e}"))?;
            *at += n;
            moved |= n > 0;
            if *at == line.len() {
                socket.close();
                return Ok(Step::Finished);
            }
        }
    }
    Ok(if moved { Step::Moved } else { Step::Idle })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_back_and_bad_ones_are_errors() {
        for kind in [CheckKind::Sha256, CheckKind::Fast, CheckKind::Count] {
            let r = Request { bytes: 123_456, kind };
            assert_eq!(Request::parse(&r.to_bytes()), Ok(r));
        }
        let good = Request { bytes: 1, kind: CheckKind::Count }.to_bytes();
        let mut bad = good;
        bad[0] = b'M';
        assert!(Request::parse(&bad).unwrap_err().contains("not a maerts"));
        let mut bad = good;
        bad[6] = b'x';
        assert!(Request::parse(&bad).unwrap_err().contains("unknown check `x`"));
        let mut bad = good;
        bad[7] = 1;
        assert!(Request::parse(&bad).is_err());
        let max = Request { bytes: NET_BYTES_MAX, kind: CheckKind::Count };
        assert_eq!(Request::parse(&max.to_bytes()), Ok(max));
        let over = Request { bytes: NET_BYTES_MAX + 1, kind: CheckKind::Count }.to_bytes();
        assert!(Request::parse(&over).unwrap_err().contains("more than"));
    }
}
