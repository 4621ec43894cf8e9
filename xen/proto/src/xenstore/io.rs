//! Request/reply plumbing: the outbox, the decoder, req_id matching,
//! the watch-event queue, deadlines and the per-call message budget.

use alloc::vec::Vec;

use xenstore_wire::{reply, Message, MsgType, Request, WatchEvent};

use super::{Client, InFlight};
use crate::error::Error;
use crate::iface::XenstoreRing;

/// What one non-blocking pass over the ring achieved.
pub(super) enum Poll {
    /// The reply we were waiting for.
    Reply(Message),
    /// Bytes moved; poll again before sleeping.
    Progress,
    /// Nothing to do until xenstored acts.
    Idle,
}

impl<R: XenstoreRing> Client<R> {
    pub(super) fn check_fatal(&self) -> Result<(), Error> {
        match self.fatal {
            Some(e) => Err(Error::Fatal(e)),
            None => Ok(()),
        }
    }

    /// Remembers a fatal error so every later call fails the same way.
    fn note(&mut self, e: Error) -> Error {
        if let Error::Fatal(w) = e {
            self.fatal = Some(w);
        }
        e
    }

    /// Sends `req` in transaction `tx` and blocks for its reply.
    ///
    /// On any error the request is marked abandoned rather than dropped,
    /// so a late reply is recognised and discarded instead of being
    /// mistaken for a reply with an unknown id.
    pub(super) fn call(&mut self, req: Request, tx: u32) -> Result<Message, Error> {
        self.check_fatal()?;
        let req = req.with_tx(tx);
        let in_flight = InFlight { abandoned: false };
        let id = self.pending.insert(in_flight).map_err(Error::Wire)?;
        let mut bytes = Vec::with_capacity(req.encoded_len());
        req.encode_into(id, &mut bytes);
        self.outbox.extend(bytes);
        let deadline = self.now_ns().saturating_add(self.config.timeout_ns);
        let start = self.dispatched;
        let result = loop {
            match self.poll_once(Some(id)) {
                Ok(Poll::Reply(m)) => break Ok(m),
                Ok(Poll::Progress) => {}
                Ok(Poll::Idle) => {
                    if !self.sleep_until(deadline) {
                        break Err(Error::Timeout);
                    }
                }
                Err(e) => break Err(e),
            }
            // Busy or not, the deadline holds.
            if self.out_of_time(deadline, start) {
                break Err(Error::Timeout);
            }
        };
        if result.is_err() {
            if let Some(f) = self.pending.get_mut(id) {
                f.abandoned = true;
            }
        }
        result
    }

    /// Sends `req` and checks the reply is `OK` of the request's type.
    pub(super) fn call_ack(&mut self, req: Request, tx: u32) -> Result<(), Error> {
        let ty = req.msg_type();
        let m = self.call(req, tx)?;
        reply::ack(&m, ty).map_err(Error::from_reply)
    }

    /// Waits one poll slice, ending at `deadline` at the latest. False
    /// (without waiting) once the deadline has passed.
    fn sleep_until(&mut self, deadline: u64) -> bool {
        let now = self.now_ns();
        if now >= deadline {
            return false;
        }
        let slice = (deadline - now).min(self.config.poll_ns.max(1));
        self.transport.wait(slice);
        true
    }

    /// Whether a call that started with `start` messages dispatched is
    /// past `deadline` or its message budget.
    fn out_of_time(&self, deadline: u64, start: u64) -> bool {
        self.now_ns() >= deadline || self.dispatched - start > self.config.max_messages_per_call as u64
    }

    /// Moves bytes both ways once and dispatches completed messages until
    /// the reply to `want` turns up.
    pub(super) fn poll_once(&mut self, want: Option<u32>) -> Result<Poll, Error> {
        let mut progress = false;
        while !self.outbox.is_empty() {
            let (front, _) = self.outbox.as_slices();
            let n = self.transport.write_some(front).map_err(|e| self.note(e))?;
            if n == 0 {
                break;
            }
            self.outbox.drain(..n);
            progress = true;
        }
        let mut buf = [0u8; 512];
        // At most one ring's worth per pass, so a peer that keeps
        // producing cannot keep us here forever.
        for _ in 0..xenstore_wire::ring::XENSTORE_RING_SIZE / 512 {
            let n = self.transport.read_some(&mut buf).map_err(|e| self.note(e))?;
            if n == 0 {
                break;
            }
            progress = true;
            // A bad header leaves no way to find the next message.
            let chunk = buf.get(..n).unwrap_or_default();
            self.decoder.push(chunk).map_err(|e| self.note(Error::Fatal(e)))?;
        }
        while let Some(m) = self.decoder.next_message() {
            if let Some(reply) = self.dispatch(m, want)? {
                return Ok(Poll::Reply(reply));
            }
        }
        Ok(if progress { Poll::Progress } else { Poll::Idle })
    }

    /// Routes one message: watch events to the queue, replies to their
    /// request. A reply matching nothing is reported as an error.
    fn dispatch(&mut self, m: Message, want: Option<u32>) -> Result<Option<Message>, Error> {
        self.dispatched += 1;
        if m.msg_type() == MsgType::WatchEvent {
            let ev = reply::watch_event(&m).map_err(Error::Wire)?;
            self.queue_event(ev);
            return Ok(None);
        }
        let id = m.req_id();
        let in_flight = self.pending.remove(id).map_err(Error::Wire)?;
        if Some(id) == want && !in_flight.abandoned {
            Ok(Some(m))
        } else {
            // Late reply to a request that already failed: drop it.
            self.stale_replies += 1;
            Ok(None)
        }
    }

    fn queue_event(&mut self, ev: WatchEvent) {
        if self.events.len() >= self.config.max_queued_events {
            self.events.pop_front();
            self.dropped_events += 1;
        }
        self.events.push_back(ev);
    }

    /// Removes the oldest queued event accepted by `pred`.
    fn take_event(&mut self, pred: &dyn Fn(&WatchEvent) -> bool) -> Option<WatchEvent> {
        let pos = self.events.iter().position(pred)?;
        self.events.remove(pos)
    }

    /// Polls until an event accepted by `pred` is queued, until
    /// `deadline` (or the message budget) at the latest.
    pub(super) fn wait_event_until(&mut self, pred: &dyn Fn(&WatchEvent) -> bool, deadline: u64) -> Result<WatchEvent, Error> {
        let start = self.dispatched;
        loop {
            if let Some(ev) = self.take_event(pred) {
                return Ok(ev);
            }
            self.check_fatal()?;
            if self.out_of_time(deadline, start) {
                return Err(Error::Timeout);
            }
            match self.poll_once(None)? {
                Poll::Idle => {
                    if !self.sleep_until(deadline) {
                        return Err(Error::Timeout);
                    }
                }
                Poll::Progress | Poll::Reply(_) => {}
            }
        }
    }

    /// Moves what the ring holds without blocking, until an event is
    /// queued, nothing moves, or the message budget is spent; then
    /// returns the oldest queued event.
    pub(super) fn poll_event(&mut self) -> Result<Option<WatchEvent>, Error> {
        if let Some(ev) = self.events.pop_front() {
            return Ok(Some(ev));
        }
        self.check_fatal()?;
        let start = self.dispatched;
        while let Poll::Progress = self.poll_once(None)? {
            if !self.events.is_empty() || self.dispatched - start > self.config.max_messages_per_call as u64 {
                break;
            }
        }
        Ok(self.events.pop_front())
    }

    /// Forgets queued events of an unregistered watch.
    pub(super) fn purge_events(&mut self, path: &str, token: &str) {
        self.events.retain(|e| !(e.token == token && is_at_or_below(&e.path, path)));
    }
}

/// Whether `p` is `base` or a descendant of it, component-wise.
fn is_at_or_below(p: &str, base: &str) -> bool {
    match p.strip_prefix(base) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || base.ends_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_at_or_below;

    #[test]
    fn below() {
        assert!(is_at_or_below("/a/b", "/a"));
        assert!(is_at_or_below("/a", "/a"));
        assert!(!is_at_or_below("/ab", "/a"));
        assert!(is_at_or_below("/x", "/"));
    }
}
