//! What the daemon asks of xenstore, and the client that does it over
//! xenstored's Unix socket (the same framing as the ring: xs_wire.h).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use xen_proto::iface::DomId;
use xenstore_wire::{reply, Access, Decoder, Message, MsgType, Permission, Request, WatchEvent, XsError};

/// The default socket of C xenstored (Xen 4.17: `$XENSTORED_RUNDIR/socket`).
pub const DEFAULT_SOCKET: &str = "/var/run/xenstored/socket";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The connection is gone (xenstored restarted or died): reconnect.
    #[error("xenstored connection lost: {0}")]
    Disconnected(String),
    /// xenstored answered with an error.
    #[error("xenstored: {0}")]
    Xs(XsError),
    /// An answer we could not make sense of.
    #[error("xenstore protocol: {0}")]
    Protocol(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The xenstore operations of the daemon (dom0's view: no permission
/// stands in its way).
pub trait Store {
    /// A node's value; `None` if it does not exist.
    fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>>;
    /// Children of a node; empty if it does not exist.
    fn directory(&mut self, path: &str) -> Result<Vec<String>>;
    /// The domain owning a node (its first permission); `None` if the node
    /// does not exist.
    fn owner(&mut self, path: &str) -> Result<Option<DomId>>;
    /// Writes `value` at `path`, owned by dom0 and readable by `reader`
    /// only, in one transaction (retried on EAGAIN).
    fn publish(&mut self, path: &str, value: &[u8], reader: DomId) -> Result<()>;
    /// Removes a node (a missing one is fine).
    fn remove(&mut self, path: &str) -> Result<()>;
    fn watch(&mut self, path: &str, token: &str) -> Result<()>;
    /// The next watch event, waiting at most `timeout`.
    fn next_event(&mut self, timeout: Duration) -> Result<Option<WatchEvent>>;
}

/// Permissions of a published list: dom0 owns it, `reader` may read.
pub fn list_perms(reader: DomId) -> [Permission; 2] {
    [Permission::new(0, Access::None), Permission::new(reader, Access::Read)]
}

/// Watch events queued while waiting for replies; one more collapses the
/// queue into a single [`OVERFLOW_PATH`] event (counted): the daemon
/// rescans everything anyway, and memory stays bounded.
pub const MAX_QUEUED_EVENTS: usize = 1024;
/// The path of the event that stands for events dropped on overflow; it
/// is relevant to every list (see [`crate::scan::relevant`]).
pub const OVERFLOW_PATH: &str = "@cohort-discoveryd-overflow";

/// Transactions redone on EAGAIN at most this often.
const TX_ATTEMPTS: usize = 16;
/// How long one request may take before the connection counts as gone.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A xenstore client over xenstored's Unix socket.
pub struct SocketStore {
    sock: UnixStream,
    decoder: Decoder,
    next_req: u32,
    events: VecDeque<WatchEvent>,
    /// Times the queue overflowed, and events dropped then.
    overflows: u64,
    dropped: u64,
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Disconnected(e.to_string())
}

impl SocketStore {
    pub fn connect(path: &Path) -> Result<SocketStore> {
        let sock = UnixStream::connect(path).map_err(|e| StoreError::Disconnected(format!("{}: {e}", path.display())))?;
        Ok(SocketStore { sock, decoder: Decoder::new(), next_req: 1, events: VecDeque::new(), overflows: 0, dropped: 0 })
    }

    /// Times the event queue overflowed into "rescan everything".
    pub fn overflows(&self) -> u64 {
        self.overflows
    }

    /// Watch events dropped on overflow.
    pub fn dropped_events(&self) -> u64 {
        self.dropped
    }

    fn queue_event(&mut self, ev: WatchEvent) {
        if self.events.front().is_some_and(|e| e.path == OVERFLOW_PATH) {
            // Already collapsed: "rescan everything" covers this one too.
            self.dropped += 1;
            return;
        }
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.overflows += 1;
            self.dropped += self.events.len() as u64 + 1;
            self.events.clear();
            self.events.push_back(WatchEvent { path: OVERFLOW_PATH.into(), token: ev.token });
            return;
        }
        self.events.push_back(ev);
    }

    /// Reads until a message is complete or `deadline` passes.
    fn next_message(&mut self, deadline: Instant) -> Result<Option<Message>> {
        loop {
            if let Some(m) = self.decoder.next_message() {
                return Ok(Some(m));
            }
            if let Some(e) = self.decoder.poison_error() {
                return Err(StoreError::Protocol(format!("undecodable stream: {e:?}")));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            self.sock.set_read_timeout(Some(deadline - now)).map_err(io)?;
            let mut buf = [0u8; 4096];
            match self.sock.read(&mut buf) {
                Ok(0) => return Err(StoreError::Disconnected("xenstored closed the socket".into())),
                Ok(n) => self.decoder.push(&buf[..n]).map_err(|e| StoreError::Protocol(format!("{e:?}")))?,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => return Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
    }

    /// Sends `req` and returns its reply; watch events read meanwhile are
    /// queued.
    fn call(&mut self, req: Request) -> Result<Message> {
        let id = self.next_req;
        self.next_req = self.next_req.wrapping_add(1).max(1);
        self.sock.write_all(&req.encode(id)).map_err(io)?;
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            let Some(m) = self.next_message(deadline)? else {
                return Err(StoreError::Disconnected("no reply from xenstored".into()));
            };
            match m.msg_type() {
                MsgType::WatchEvent => {
                    let ev = reply::watch_event(&m).map_err(|e| StoreError::Protocol(format!("{e:?}")))?;
                    self.queue_event(ev);
                }
                MsgType::Error if m.req_id() == id => return Err(StoreError::Xs(XsError::from_payload(&m.payload))),
                _ if m.req_id() == id => return Ok(m),
                // A reply to nothing we are waiting for: skip it.
                _ => {}
            }
        }
    }

    fn ack(&mut self, req: Request) -> Result<()> {
        let ty = req.msg_type();
        let m = self.call(req)?;
        reply::ack(&m, ty).map_err(|e| StoreError::Protocol(format!("{e:?}")))
    }

    fn request(r: std::result::Result<Request, xenstore_wire::Error>) -> Result<Request> {
        r.map_err(|e| StoreError::Protocol(format!("bad request: {e:?}")))
    }

    fn try_publish(&mut self, path: &str, value: &[u8], reader: DomId) -> Result<()> {
        let m = self.call(Request::transaction_start())?;
        let tx = reply::transaction_start(&m).map_err(|e| StoreError::Protocol(format!("{e:?}")))?;
        let body = (|| {
            self.ack(Self::request(Request::write(path, value))?.with_tx(tx))?;
            self.ack(Self::request(Request::set_perms(path, &list_perms(reader)))?.with_tx(tx))
        })();
        let end = Self::request(Request::transaction_end(tx, body.is_ok()))?;
        let ended = self.ack(end);
        body?;
        ended
    }
}

impl Store for SocketStore {
    fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        match self.call(Self::request(Request::read(path))?) {
            Ok(m) => Ok(Some(m.payload)),
            Err(StoreError::Xs(XsError::Enoent)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn directory(&mut self, path: &str) -> Result<Vec<String>> {
        match self.call(Self::request(Request::directory(path))?) {
            Ok(m) => reply::directory(&m).map_err(|e| StoreError::Protocol(format!("{e:?}"))),
            Err(StoreError::Xs(XsError::Enoent)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    fn owner(&mut self, path: &str) -> Result<Option<DomId>> {
        match self.call(Self::request(Request::get_perms(path))?) {
            Ok(m) => {
                let perms = reply::get_perms(&m).map_err(|e| StoreError::Protocol(format!("{e:?}")))?;
                perms.first().map(|p| Some(p.domid)).ok_or_else(|| StoreError::Protocol("a node without an owner".into()))
            }
            Err(StoreError::Xs(XsError::Enoent)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn publish(&mut self, path: &str, value: &[u8], reader: DomId) -> Result<()> {
        for _ in 0..TX_ATTEMPTS {
            match self.try_publish(path, value, reader) {
                Err(StoreError::Xs(XsError::Eagain)) => continue,
                other => return other,
            }
        }
        Err(StoreError::Xs(XsError::Eagain))
    }

    fn remove(&mut self, path: &str) -> Result<()> {
        match self.ack(Self::request(Request::rm(path))?) {
            Err(StoreError::Xs(XsError::Enoent)) => Ok(()),
            other => other,
        }
    }

    fn watch(&mut self, path: &str, token: &str) -> Result<()> {
        self.ack(Self::request(Request::watch(path, token))?)
    }

    fn next_event(&mut self, timeout: Duration) -> Result<Option<WatchEvent>> {
        if let Some(ev) = self.events.pop_front() {
            return Ok(Some(ev));
        }
        let Some(m) = self.next_message(Instant::now() + timeout)? else { return Ok(None) };
        if m.msg_type() != MsgType::WatchEvent {
            return Err(StoreError::Protocol(format!("unexpected {:?} between requests", m.msg_type())));
        }
        reply::watch_event(&m).map(Some).map_err(|e| StoreError::Protocol(format!("{e:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages() {
        let all = [
            (StoreError::Disconnected("broken pipe".into()), "xenstored connection lost: broken pipe"),
            (StoreError::Xs(XsError::Eacces), "xenstored: EACCES"),
            (StoreError::Protocol("NotOk".into()), "xenstore protocol: NotOk"),
        ];
        for (e, message) in all {
            assert_eq!(e.to_string(), message);
        }
    }
}
