//! Notices a backend that no longer takes our transmits: a netback that
//! stopped, or one that no longer hears our notifications (Linux's
//! netback can leave our port masked for good when it binds it, issue
//! 14). Only reconnecting gets such a backend going again
//! ([`Netfront::restart`](crate::Netfront::restart)); restarts that do
//! not help are spaced out.
//!
//! A backend that took our requests and holds their answers is not
//! stuck: Linux answers a transmit only when the packet is freed, which a
//! full queue towards another guest may delay for up to 10 s.

/// How long transmits may stay untaken before the backend is stuck.
pub const TX_STALL_NS: u64 = 2_000_000_000;
/// The longest wait between restarts that did not help.
pub const RESTART_BACKOFF_MAX_NS: u64 = 64_000_000_000;

/// Where the transmit ring stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxProgress {
    /// Requests sent and not answered yet.
    pub outstanding: u32,
    /// Responses taken so far (wrapping).
    pub answered: u32,
    /// The backend has looked at every request we sent: its `req_event`
    /// (what it writes when it finds the ring empty) is past our last
    /// one. Read from shared memory: a hint, never trusted further.
    pub taken: bool,
}

/// Times how long transmits have gone untaken, and spaces out restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxWatchdog {
    limit_ns: u64,
    /// Since when nothing was answered, and what had been by then.
    waiting: Option<(u64, u32)>,
    /// No restart before this; `backoff_ns` after the last one that did
    /// not help (0: none yet, or the last one helped).
    not_before_ns: u64,
    backoff_ns: u64,
    /// What had been answered at the last restart.
    answered_at_restart: Option<u32>,
}

impl TxWatchdog {
    pub const fn new(limit_ns: u64) -> TxWatchdog {
        TxWatchdog { limit_ns, waiting: None, not_before_ns: 0, backoff_ns: 0, answered_at_restart: None }
    }

    /// Looks at the ring at `now_ns` (call it after taking responses):
    /// how long transmits have gone untaken and unanswered, once that is
    /// at least the limit and a restart is allowed; None otherwise.
    pub fn stalled(&mut self, p: TxProgress, now_ns: u64) -> Option<u64> {
        if self.answered_at_restart.is_some_and(|a| a != p.answered) {
            // A transmit was answered since the last restart: it helped.
            self.backoff_ns = 0;
            self.not_before_ns = 0;
            self.answered_at_restart = None;
        }
        if p.outstanding == 0 || p.taken {
            self.waiting = None;
            return None;
        }
        match self.waiting {
            Some((since, answered)) if answered == p.answered => {
                let waited = now_ns.saturating_sub(since);
                (waited >= self.limit_ns && now_ns >= self.not_before_ns).then_some(waited)
            }
            _ => {
                self.waiting = Some((now_ns, p.answered));
                None
            }
        }
    }

    /// Whether a restart may be tried at `now_ns` (the backoff after the
    /// last one has passed): for trying again after one that failed.
    pub fn restart_due(&self, now_ns: u64) -> bool {
        now_ns >= self.not_before_ns
    }

    /// A restart was tried at `now_ns` (whether it worked or not): timing
    /// starts over, and the next restart waits twice as long as the last
    /// (from the limit up to [`RESTART_BACKOFF_MAX_NS`]) unless a
    /// transmit is answered meanwhile.
    pub fn restarted(&mut self, answered: u32, now_ns: u64) {
        self.waiting = None;
        self.backoff_ns = (self.backoff_ns * 2).clamp(self.limit_ns, RESTART_BACKOFF_MAX_NS);
        self.not_before_ns = now_ns.saturating_add(self.backoff_ns);
        self.answered_at_restart = Some(answered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn at(outstanding: u32, answered: u32) -> TxProgress {
        TxProgress { outstanding, answered, taken: false }
    }

    #[test]
    fn fires_only_after_the_limit_with_nothing_taken() {
        let mut w = TxWatchdog::new(100 * MS);
        assert_eq!(w.stalled(at(3, 0), 0), None, "starts timing");
        assert_eq!(w.stalled(at(3, 0), 99 * MS), None);
        assert_eq!(w.stalled(at(5, 0), 100 * MS), Some(100 * MS), "more sent, still nothing answered");
        assert_eq!(w.stalled(at(5, 0), 150 * MS), Some(150 * MS));
    }

    #[test]
    fn a_response_an_empty_ring_or_requests_taken_start_over() {
        let mut w = TxWatchdog::new(100 * MS);
        w.stalled(at(3, 0), 0);
        assert_eq!(w.stalled(at(3, 1), 90 * MS), None, "one answered: timing again from here");
        assert_eq!(w.stalled(at(3, 1), 180 * MS), None);
        assert_eq!(w.stalled(at(3, 1), 190 * MS), Some(100 * MS));
        assert_eq!(w.stalled(at(0, 4), 200 * MS), None, "all answered");
        assert_eq!(w.stalled(at(1, 4), 250 * MS), None);
        // Taken but not answered (Linux holds a packet's answer until it
        // is freed): not stuck, however long.
        let held = TxProgress { taken: true, ..at(1, 4) };
        assert_eq!(w.stalled(held, 300 * MS), None);
        assert_eq!(w.stalled(held, 900 * MS), None);
        assert_eq!(w.stalled(at(2, 4), 950 * MS), None, "a new request, not taken: timing again");
        assert_eq!(w.stalled(at(2, 4), 1050 * MS), Some(100 * MS));
    }

    #[test]
    fn the_answered_count_may_wrap() {
        let mut w = TxWatchdog::new(10);
        w.stalled(at(2, u32::MAX), 0);
        assert_eq!(w.stalled(at(2, 0), 20), None, "wrapped: one more answered");
        assert_eq!(w.stalled(at(2, 0), 30), Some(10));
    }

    #[test]
    fn restarts_that_do_not_help_are_spaced_out_and_one_that_helps_resets() {
        let mut w = TxWatchdog::new(100 * MS);
        w.stalled(at(3, 7), 0);
        assert!(w.stalled(at(3, 7), 100 * MS).is_some());
        w.restarted(7, 100 * MS);
        // Still nothing answered after it: the next one after 100 ms of
        // stall and no earlier than 100 ms after the restart...
        assert_eq!(w.stalled(at(3, 7), 110 * MS), None);
        assert!(!w.restart_due(199 * MS) && w.restart_due(200 * MS));
        assert_eq!(w.stalled(at(3, 7), 210 * MS), Some(100 * MS));
        w.restarted(7, 210 * MS);
        // ... then 200 ms, 400 ms, ...
        w.stalled(at(3, 7), 220 * MS);
        assert_eq!(w.stalled(at(3, 7), 400 * MS), None, "backoff 200 ms");
        assert!(w.stalled(at(3, 7), 410 * MS).is_some());
        for _ in 0..20 {
            w.restarted(7, 0);
        }
        assert_eq!(w.not_before_ns, RESTART_BACKOFF_MAX_NS, "capped");
        // An answer after the restart: the backoff is gone.
        assert_eq!(w.stalled(at(2, 8), 1000 * MS), None);
        assert_eq!(w.stalled(at(2, 8), 1100 * MS), Some(100 * MS));
    }
}
