//! A blocking xenstore client over [`XenstoreRing`].
//!
//! One request is in flight at a time from the caller's point of view;
//! replies are matched by `req_id` through [`Pending`], watch events
//! (`XS_WATCH_EVENT`, unsolicited) are queued until asked for. Nothing
//! xenstored sends can make the client panic: malformed replies become
//! errors, and a corrupt ring makes the client fail every call with
//! [`Error::Fatal`]. Nothing it sends can keep a call going either: every
//! timeout is a deadline on the ring's clock ([`XenstoreRing::now_ns`]),
//! however busy the ring is, and a call handles at most
//! [`Config::max_messages_per_call`] messages.

#[cfg(test)]
mod flood;
mod io;
mod tx;

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use xenstore_wire::{reply, Decoder, Pending, Permission, Request, WatchEvent};

use crate::error::Error;
use crate::iface::{DomId, XenstoreRing};
use crate::xenstore_ring::RingTransport;

pub use tx::{Tx, TxId};

/// Tunables of a [`Client`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Total time a request may take, in ns: a deadline on the ring's
    /// clock, reading included.
    pub timeout_ns: u64,
    /// Longest single wait on the ring, in ns.
    pub poll_ns: u64,
    /// Attempts [`Client::transaction`] makes before giving up on `EAGAIN`.
    pub tx_retries: u32,
    /// In-flight request ids, including abandoned ones whose late reply
    /// has not arrived yet.
    pub max_pending: usize,
    /// Queued watch events; beyond this the oldest are dropped (counted).
    pub max_queued_events: usize,
    /// Messages (watch events, stale replies) one call handles at most
    /// before giving up with [`Error::Timeout`]: a stream of watch events
    /// cannot keep a request, or a wait for another token, going.
    pub max_messages_per_call: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            // A deadline on the clock since the hardening (before, only idle
            // polls counted): 5 s failed guests in a loaded lab, where dom0's
            // xenstored waits for a CPU; 30 s still ends a dead xenstored's call.
            timeout_ns: 30_000_000_000,
            poll_ns: 10_000_000,
            tx_retries: 8,
            max_pending: 16,
            max_queued_events: 256,
            max_messages_per_call: 1024,
        }
    }
}

/// Bookkeeping for one request id.
#[derive(Debug)]
struct InFlight {
    /// The caller gave up (timeout or error); a late reply is dropped.
    abandoned: bool,
}

/// Blocking xenstore client.
pub struct Client<R: XenstoreRing> {
    transport: RingTransport<R>,
    decoder: Decoder,
    pending: Pending<InFlight>,
    /// Request bytes not yet accepted by the ring, kept so a timeout in
    /// the middle of a request never leaves half a message behind.
    outbox: VecDeque<u8>,
    events: VecDeque<WatchEvent>,
    dropped_events: u64,
    stale_replies: u64,
    /// Messages dispatched so far (for the per-call budget).
    dispatched: u64,
    fatal: Option<xenstore_wire::Error>,
    config: Config,
}

impl<R: XenstoreRing> Client<R> {
    /// A client with the default [`Config`].
    pub fn new(ring: R) -> Self {
        Client::with_config(ring, Config::default())
    }

    /// A client with explicit tunables.
    pub fn with_config(ring: R, config: Config) -> Self {
        Client {
            transport: RingTransport::new(ring),
            decoder: Decoder::new(),
            pending: Pending::new(config.max_pending),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            dropped_events: 0,
            stale_replies: 0,
            dispatched: 0,
            fatal: None,
            config,
        }
    }

    /// The tunables in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Changes the tunables (the pending-table size is fixed at creation).
    pub fn set_config(&mut self, config: Config) {
        self.config = config;
    }

    /// The ring's clock, in ns.
    pub fn now_ns(&self) -> u64 {
        self.transport.ring().now_ns()
    }

    /// The ring underneath.
    pub fn ring(&self) -> &R {
        self.transport.ring()
    }

    /// The ring underneath, mutably.
    pub fn ring_mut(&mut self) -> &mut R {
        self.transport.ring_mut()
    }

    /// Whether an earlier fatal error made the client unusable.
    pub fn is_fatal(&self) -> bool {
        self.fatal.is_some()
    }

    /// Watch events dropped because the queue was full.
    pub fn dropped_watch_events(&self) -> u64 {
        self.dropped_events
    }

    /// Late replies to abandoned requests that were discarded.
    pub fn stale_replies(&self) -> u64 {
        self.stale_replies
    }

    /// Reads a node's value.
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>, Error> {
        self.read_in(0, path)
    }

    /// Reads a node's value as UTF-8.
    pub fn read_string(&mut self, path: &str) -> Result<String, Error> {
        self.read_string_in(0, path)
    }

    /// Writes a node, creating it and missing parents.
    pub fn write(&mut self, path: &str, value: &[u8]) -> Result<(), Error> {
        self.write_in(0, path, value)
    }

    /// Creates a node (and parents) with an empty value; existing is fine.
    pub fn mkdir(&mut self, path: &str) -> Result<(), Error> {
        self.mkdir_in(0, path)
    }

    /// Removes a node and everything below it.
    pub fn rm(&mut self, path: &str) -> Result<(), Error> {
        self.rm_in(0, path)
    }

    /// Lists the names of a node's children.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>, Error> {
        self.directory_in(0, path)
    }

    /// A node's permissions, owner first.
    pub fn get_perms(&mut self, path: &str) -> Result<Vec<Permission>, Error> {
        let req = Request::get_perms(path).map_err(Error::Wire)?;
        let m = self.call(req, 0)?;
        reply::get_perms(&m).map_err(Error::from_reply)
    }

    /// Replaces a node's permissions; the first entry names the owner and
    /// the access of unlisted domains.
    pub fn set_perms(&mut self, path: &str, perms: &[Permission]) -> Result<(), Error> {
        let req = Request::set_perms(path, perms).map_err(Error::Wire)?;
        self.call_ack(req, 0)
    }

    /// Registers a watch on `path` and everything below it. xenstored
    /// fires it once right away.
    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), Error> {
        let req = Request::watch(path, token).map_err(Error::Wire)?;
        self.call_ack(req, 0)
    }

    /// Removes a watch, and forgets its events still queued here.
    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<(), Error> {
        let req = Request::unwatch(path, token).map_err(Error::Wire)?;
        let r = self.call_ack(req, 0);
        // Events that raced with the unwatch are dropped either way.
        self.purge_events(path, token);
        r
    }

    /// The home path of domain `domid` (`/local/domain/<domid>`).
    pub fn get_domain_path(&mut self, domid: DomId) -> Result<String, Error> {
        let m = self.call(Request::get_domain_path(domid), 0)?;
        reply::get_domain_path(&m).map_err(Error::from_reply)
    }

    /// A queued watch event, after draining the ring without blocking.
    pub fn next_watch_event(&mut self) -> Result<Option<WatchEvent>, Error> {
        self.poll_event()
    }

    /// Blocks until a watch event arrives, at most `timeout_ns`.
    pub fn wait_watch_event(&mut self, timeout_ns: u64) -> Result<WatchEvent, Error> {
        let deadline = self.now_ns().saturating_add(timeout_ns);
        self.wait_event_until(&|_| true, deadline)
    }

    /// Blocks until an event for `token` arrives, at most `timeout_ns`;
    /// other events stay queued.
    pub fn wait_watch_event_for(&mut self, token: &str, timeout_ns: u64) -> Result<WatchEvent, Error> {
        let deadline = self.now_ns().saturating_add(timeout_ns);
        self.wait_event_until(&|e| e.token == token, deadline)
    }

    /// Like [`wait_watch_event_for`](Self::wait_watch_event_for), until
    /// `deadline_ns` on the ring's clock.
    pub fn wait_watch_event_until(&mut self, token: &str, deadline_ns: u64) -> Result<WatchEvent, Error> {
        self.wait_event_until(&|e| e.token == token, deadline_ns)
    }

    // Transaction-scoped primitives; tx 0 means "no transaction".

    fn read_in(&mut self, tx: u32, path: &str) -> Result<Vec<u8>, Error> {
        let req = Request::read(path).map_err(Error::Wire)?;
        let m = self.call(req, tx)?;
        reply::read(&m).map(Vec::from).map_err(Error::from_reply)
    }

    fn read_string_in(&mut self, tx: u32, path: &str) -> Result<String, Error> {
        let v = self.read_in(tx, path)?;
        String::from_utf8(v).map_err(|_| Error::Wire(xenstore_wire::Error::NotUtf8))
    }

    fn write_in(&mut self, tx: u32, path: &str, value: &[u8]) -> Result<(), Error> {
        let req = Request::write(path, value).map_err(Error::Wire)?;
        self.call_ack(req, tx)
    }

    fn mkdir_in(&mut self, tx: u32, path: &str) -> Result<(), Error> {
        let req = Request::mkdir(path).map_err(Error::Wire)?;
        self.call_ack(req, tx)
    }

    fn rm_in(&mut self, tx: u32, path: &str) -> Result<(), Error> {
        let req = Request::rm(path).map_err(Error::Wire)?;
        self.call_ack(req, tx)
    }

    fn directory_in(&mut self, tx: u32, path: &str) -> Result<Vec<String>, Error> {
        let req = Request::directory(path).map_err(Error::Wire)?;
        let m = self.call(req, tx)?;
        reply::directory(&m).map_err(Error::from_reply)
    }
}
