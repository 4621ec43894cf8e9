//! Notices a backend that leaves our transmits unanswered: a netback that
//! stopped taking requests, or one that no longer hears our notifications
//! (Linux's netback can leave our port masked for good when it binds it,
//! issue 14). Only reconnecting gets such a backend going again
//! ([`Netfront::restart`](crate::Netfront::restart)).

/// How long transmits may stay unanswered before the backend is taken to
/// be stuck: far beyond any queueing in a working netback.
pub const TX_STALL_NS: u64 = 2_000_000_000;

/// Where the transmit ring stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxProgress {
    /// Requests sent and not answered yet.
    pub outstanding: u32,
    /// Responses taken so far (wrapping).
    pub answered: u32,
}

/// Times how long transmits have been outstanding with no response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxWatchdog {
    limit_ns: u64,
    /// Since when nothing was answered, and what had been by then.
    waiting: Option<(u64, u32)>,
}

impl TxWatchdog {
    pub const fn new(limit_ns: u64) -> TxWatchdog {
        TxWatchdog { limit_ns, waiting: None }
    }

    /// Looks at the ring at `now_ns` (call it after taking responses):
    /// how long transmits have gone unanswered, once that is at least the
    /// limit; None otherwise.
    pub fn stalled(&mut self, p: TxProgress, now_ns: u64) -> Option<u64> {
        if p.outstanding == 0 {
            self.waiting = None;
            return None;
        }
        match self.waiting {
            Some((since, answered)) if answered == p.answered => {
                let waited = now_ns.saturating_sub(since);
                (waited >= self.limit_ns).then_some(waited)
            }
            _ => {
                self.waiting = Some((now_ns, p.answered));
                None
            }
        }
    }

    /// Starts over (after a restart).
    pub fn reset(&mut self) {
        self.waiting = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn at(outstanding: u32, answered: u32) -> TxProgress {
        TxProgress { outstanding, answered }
    }

    #[test]
    fn fires_only_after_the_limit_with_no_response() {
        let mut w = TxWatchdog::new(100 * MS);
        assert_eq!(w.stalled(at(3, 0), 0), None, "starts timing");
        assert_eq!(w.stalled(at(3, 0), 99 * MS), None);
        assert_eq!(w.stalled(at(5, 0), 100 * MS), Some(100 * MS), "more sent, still nothing answered");
        assert_eq!(w.stalled(at(5, 0), 150 * MS), Some(150 * MS));
    }

    #[test]
    fn a_response_or_an_empty_ring_starts_over() {
        let mut w = TxWatchdog::new(100 * MS);
        w.stalled(at(3, 0), 0);
        assert_eq!(w.stalled(at(3, 1), 90 * MS), None, "one answered: timing again from here");
        assert_eq!(w.stalled(at(3, 1), 180 * MS), None);
        assert_eq!(w.stalled(at(3, 1), 190 * MS), Some(100 * MS));
        assert_eq!(w.stalled(at(0, 4), 200 * MS), None, "all answered");
        assert_eq!(w.stalled(at(1, 4), 250 * MS), None);
        assert_eq!(w.stalled(at(1, 4), 349 * MS), None);
        w.reset();
        assert_eq!(w.stalled(at(1, 4), 400 * MS), None, "reset: timing again");
        assert_eq!(w.stalled(at(1, 4), 500 * MS), Some(100 * MS));
    }

    #[test]
    fn the_answered_count_may_wrap() {
        let mut w = TxWatchdog::new(10);
        w.stalled(at(2, u32::MAX), 0);
        assert_eq!(w.stalled(at(2, 0), 20), None, "wrapped: one more answered");
        assert_eq!(w.stalled(at(2, 0), 30), Some(10));
    }
}
