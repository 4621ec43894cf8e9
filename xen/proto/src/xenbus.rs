//! Xenbus device states (`xen/io/xenbus.h`) and frontend helpers.
//!
//! Each end of a split driver publishes its state as a decimal number in
//! its `state` node and watches the other end's.

use core::fmt;

use alloc::format;
use alloc::string::String;

use crate::error::Error;
use crate::iface::XenstoreRing;
use crate::xenstore::Client;
use xenstore_wire::XsError;

/// `enum xenbus_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum XenbusState {
    /// 0: no state node, or not yet set.
    Unknown = 0,
    /// 1: setting up.
    Initialising = 1,
    /// 2: waiting for the peer's details (backend: for frontend rings).
    InitWait = 2,
    /// 3: details published, waiting for the peer to connect.
    Initialised = 3,
    /// 4: running.
    Connected = 4,
    /// 5: shutting down.
    Closing = 5,
    /// 6: shut down.
    Closed = 6,
    /// 7: reconfiguration in progress.
    Reconfiguring = 7,
    /// 8: reconfiguration done.
    Reconfigured = 8,
}

const ALL: [XenbusState; 9] = [
    XenbusState::Unknown,
    XenbusState::Initialising,
    XenbusState::InitWait,
    XenbusState::Initialised,
    XenbusState::Connected,
    XenbusState::Closing,
    XenbusState::Closed,
    XenbusState::Reconfiguring,
    XenbusState::Reconfigured,
];

impl XenbusState {
    /// The state with number `n`, if any.
    pub fn from_number(n: u32) -> Option<XenbusState> {
        ALL.iter().copied().find(|s| u32::from(*s as u8) == n)
    }

    /// The number stored in xenstore.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// Parses a `state` node value: decimal digits only (a trailing NUL
    /// is tolerated); anything else is [`Error::InvalidState`].
    pub fn parse(value: &[u8]) -> Result<XenbusState, Error> {
        let digits = value.strip_suffix(&[0]).unwrap_or(value);
        if digits.is_empty() || digits.len() > 3 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(Error::InvalidState);
        }
        let n = digits.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
        XenbusState::from_number(n).ok_or(Error::InvalidState)
    }

    /// The value to write into a `state` node.
    pub fn to_value(self) -> String {
        format!("{}", self.number())
    }
}

impl fmt::Display for XenbusState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Reads a `state` node; a missing node is [`XenbusState::Unknown`], as
/// in Linux's `xenbus_read_driver_state`.
pub fn read_state<R: XenstoreRing>(c: &mut Client<R>, path: &str) -> Result<XenbusState, Error> {
    match c.read(path) {
        Ok(v) => XenbusState::parse(&v),
        Err(Error::Xs(XsError::Enoent)) => Ok(XenbusState::Unknown),
        Err(e) => Err(e),
    }
}

/// Writes `state` to the `state` node at `path` inside a transaction,
/// retrying on `EAGAIN`. Writing the current state again is skipped, so
/// the peer sees no spurious watch event.
pub fn switch_state<R: XenstoreRing>(c: &mut Client<R>, path: &str, state: XenbusState) -> Result<(), Error> {
    let value = state.to_value();
    c.transaction(|tx| {
        match tx.read(path) {
            Ok(cur) if cur == value.as_bytes() => return Ok(()),
            Ok(_) | Err(Error::Xs(XsError::Enoent)) => {}
            Err(e) => return Err(e),
        }
        tx.write(path, value.as_bytes())
    })
}

/// Waits until the `state` node at `path` holds one of `wanted`, at most
/// `timeout_ns` (a deadline on the ring's clock, however many events
/// arrive meanwhile), using a watch that is removed before returning.
/// Returns the state seen.
pub fn wait_for_state<R: XenstoreRing>(
    c: &mut Client<R>,
    path: &str,
    wanted: &[XenbusState],
    timeout_ns: u64,
) -> Result<XenbusState, Error> {
    let token = format!("xenbus-wait:{path}");
    c.watch(path, &token)?;
    let result = wait_watched(c, path, &token, wanted, timeout_ns);
    let unwatch = c.unwatch(path, &token);
    let state = result?;
    unwatch?;
    Ok(state)
}

fn wait_watched<R: XenstoreRing>(
    c: &mut Client<R>,
    path: &str,
    token: &str,
    wanted: &[XenbusState],
    timeout_ns: u64,
) -> Result<XenbusState, Error> {
    let deadline = c.now_ns().saturating_add(timeout_ns);
    loop {
        // Re-read on every event: events only say "something changed".
        let s = read_state(c, path)?;
        if wanted.contains(&s) {
            return Ok(s);
        }
        if c.now_ns() >= deadline {
            return Err(Error::Timeout);
        }
        c.wait_watch_event_until(token, deadline)?;
    }
}

/// A frontend's own state, allowing only the protocol's transitions:
/// Initialising → InitWait → Initialised → Connected → Closing → Closed,
/// Closed → Initialising to reconnect, and Closing from any earlier
/// live state (error shutdown, as Linux's `xenbus_dev_fatal` does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontendStateMachine {
    state: XenbusState,
}

impl Default for FrontendStateMachine {
    fn default() -> Self {
        FrontendStateMachine::new()
    }
}

impl FrontendStateMachine {
    /// Starts in `Initialising`.
    pub fn new() -> Self {
        FrontendStateMachine { state: XenbusState::Initialising }
    }

    /// The current state.
    pub fn state(&self) -> XenbusState {
        self.state
    }

    /// Whether moving to `to` is allowed from here.
    pub fn can_transition(&self, to: XenbusState) -> bool {
        use XenbusState::*;
        matches!(
            (self.state, to),
            (Initialising, InitWait)
                | (InitWait, Initialised)
                | (Initialised, Connected)
                | (Initialising | InitWait | Initialised | Connected, Closing)
                | (Closing, Closed)
                | (Closed, Initialising)
        )
    }

    /// Moves to `to`, or fails with [`Error::IllegalTransition`] and
    /// stays put.
    pub fn transition(&mut self, to: XenbusState) -> Result<(), Error> {
        if !self.can_transition(to) {
            return Err(Error::IllegalTransition { from: self.state, to });
        }
        self.state = to;
        Ok(())
    }

    /// Validates the move, publishes it at `path` with [`switch_state`],
    /// and only then records it (a failed write changes nothing).
    pub fn switch<R: XenstoreRing>(&mut self, c: &mut Client<R>, path: &str, to: XenbusState) -> Result<(), Error> {
        if !self.can_transition(to) {
            return Err(Error::IllegalTransition { from: self.state, to });
        }
        switch_state(c, path, to)?;
        self.state = to;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::XenbusState::*;
    use super::*;

    #[test]
    fn parse_states() {
        assert_eq!(XenbusState::parse(b"4"), Ok(Connected));
        assert_eq!(XenbusState::parse(b"0"), Ok(Unknown));
        assert_eq!(XenbusState::parse(b"8\0"), Ok(Reconfigured));
        assert_eq!(XenbusState::parse(b"004"), Ok(Connected));
        for bad in [&b""[..], b"9", b"garbage", b"-1", b" 4", b"4 ", b"1000000", b"0x4"] {
            assert_eq!(XenbusState::parse(bad), Err(Error::InvalidState), "{bad:?}");
        }
        for s in ALL {
            assert_eq!(XenbusState::parse(s.to_value().as_bytes()), Ok(s));
        }
    }

    #[test]
    fn legal_walk_and_reconnect() {
        let mut m = FrontendStateMachine::new();
        for s in [InitWait, Initialised, Connected, Closing, Closed, Initialising, InitWait] {
            m.transition(s).unwrap();
            assert_eq!(m.state(), s);
        }
    }

    #[test]
    fn illegal_transitions_rejected() {
        let mut m = FrontendStateMachine::new();
        let err = m.transition(Connected).unwrap_err();
        assert_eq!(err, Error::IllegalTransition { from: Initialising, to: Connected });
        assert_eq!(m.state(), Initialising);
        assert!(m.transition(Initialising).is_err());
        assert!(m.transition(Unknown).is_err());
        m.transition(Closing).unwrap();
        assert!(m.transition(Connected).is_err());
        m.transition(Closed).unwrap();
        assert!(m.transition(Closing).is_err());
        assert!(m.transition(Reconfiguring).is_err());
        // Every pair is either in the table or rejected, never a panic.
        for from in ALL {
            for to in ALL {
                let mut m = FrontendStateMachine { state: from };
                let ok = m.can_transition(to);
                assert_eq!(m.transition(to).is_ok(), ok);
            }
        }
    }
}
