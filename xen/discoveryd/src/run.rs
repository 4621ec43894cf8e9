//! The daemon's loop: connect, watch, scan; scan again after relevant
//! watch events and periodically; when xenstored goes away, reconnect with
//! a growing pause and start over.
//!
//! A guest can rewrite its advert as often as it likes: after a burst of
//! [`SCAN_BURST`], scans come once per [`Options::min_interval`] on
//! average, and changes meanwhile lead to one scan when the limit allows
//! ([`Schedule`]): coalesced, never lost.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::scan::{relevant, Publisher, Report};
use crate::store::{Store, StoreError};

pub const WATCH_TOKEN: &str = "cohort-discoveryd";

/// Default [`Options::min_interval`]: a guest rewriting its advert in a
/// loop costs dom0 at most 5 scans a second on average (a scan takes a few
/// ms). Guests that behave get their scans at once (see [`Schedule`]).
pub const MIN_SCAN_INTERVAL: Duration = Duration::from_millis(200);
/// Watch events taken per round of the loop, before looking at the
/// schedule again (a stream of events cannot hold the loop).
pub const MAX_EVENTS_PER_ROUND: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Scan this often even without events (a safety net).
    pub rescan: Duration,
    /// The average interval between scans under a stream of changes.
    pub min_interval: Duration,
    /// Stop after the first scan.
    pub once: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { rescan: Duration::from_secs(10), min_interval: MIN_SCAN_INTERVAL, once: false }
    }
}

/// Scans allowed back to back before the rate limit applies.
pub const SCAN_BURST: usize = 16;

/// When to scan: at once, then after relevant changes, and every `rescan`
/// whatever happens. Changes are rate-limited, not delayed: up to
/// [`SCAN_BURST`] scans may follow each other at once (creating a guest
/// changes several relevant nodes, its advert comes last, and each change
/// gets its scan), but a scan
/// never starts sooner than `SCAN_BURST * min_interval` after the scan
/// `SCAN_BURST` scans before it, so a guest rewriting its advert in a loop
/// gets one scan per `min_interval` on average. Changes while limited are
/// remembered: one scan covers them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    rescan: Duration,
    min_interval: Duration,
    start: Instant,
    /// When the last scans ended, oldest first once full.
    recent: [Option<Instant>; SCAN_BURST],
    /// Where the next scan's end goes in `recent`.
    next: usize,
    /// A change not scanned yet.
    dirty: bool,
}

impl Schedule {
    pub fn new(opts: &Options, now: Instant) -> Schedule {
        Schedule {
            rescan: opts.rescan,
            min_interval: opts.min_interval,
            start: now,
            recent: [None; SCAN_BURST],
            next: 0,
            dirty: true,
        }
    }

    /// Something relevant changed.
    pub fn changed(&mut self) {
        self.dirty = true;
    }

    /// A scan ended at `now`.
    pub fn scanned(&mut self, now: Instant) {
        self.recent[self.next] = Some(now);
        self.next = (self.next + 1) % SCAN_BURST;
        self.dirty = false;
    }

    /// When the next scan is due.
    pub fn next_scan(&self) -> Instant {
        let last = self.recent[(self.next + SCAN_BURST - 1) % SCAN_BURST];
        let Some(last) = last else { return self.start };
        // The scan SCAN_BURST scans ago (the slot the next one overwrites).
        let not_before = match self.recent[self.next] {
            Some(oldest) => (oldest + self.min_interval * SCAN_BURST as u32).max(last),
            None => last,
        };
        if self.dirty {
            not_before
        } else {
            (last + self.rescan).max(not_before)
        }
    }

    pub fn due(&self, now: Instant) -> bool {
        now >= self.next_scan()
    }

    /// Whether a change waits for its scan.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }
}

/// Makes a connection to xenstored.
pub trait Connector {
    type Store: Store;
    fn connect(&mut self) -> Result<Self::Store, StoreError>;
}

/// What the loop reports, for the log.
pub enum Event<'a> {
    Connected,
    ConnectFailed(&'a StoreError, Duration),
    Lost(&'a StoreError),
    Scanned { report: &'a Report, took: Duration },
}

/// Registers the watches; one that exists already (a reconnection that
/// xenstored took for the same client) is fine.
fn watch_all<S: Store>(s: &mut S) -> Result<(), StoreError> {
    for path in ["/local/domain", "@introduceDomain", "@releaseDomain"] {
        match s.watch(path, WATCH_TOKEN) {
            Ok(()) | Err(StoreError::Xs(xenstore_wire::XsError::Eexist)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Serves one connection until it fails (or `once` is done, or `stop`).
/// `scanned` is set once a scan succeeded on it.
fn serve<S: Store>(
    s: &mut S,
    publisher: &mut Publisher,
    opts: Options,
    log: &mut dyn FnMut(Event<'_>),
    stop: &mut dyn FnMut() -> bool,
    scanned: &mut bool,
) -> Result<(), StoreError> {
    watch_all(s)?;
    let mut schedule = Schedule::new(&opts, Instant::now());
    loop {
        if schedule.due(Instant::now()) {
            let started = Instant::now();
            let report = publisher.scan(s)?;
            *scanned = true;
            schedule.scanned(Instant::now());
            log(Event::Scanned { report: &report, took: started.elapsed() });
            if opts.once {
                return Ok(());
            }
        }
        if stop() {
            return Ok(());
        }
        // Wait for the first event (at most until the next scan is due),
        // then take what is already queued, a bounded number.
        let mut wait = schedule.next_scan().saturating_duration_since(Instant::now()).min(Duration::from_millis(500));
        for _ in 0..MAX_EVENTS_PER_ROUND {
            let Some(ev) = s.next_event(wait)? else { break };
            if relevant(&ev.path) {
                schedule.changed();
            }
            wait = Duration::ZERO;
        }
    }
}

/// Runs until `stop` says so (or after one scan with `once`). Never gives
/// up on xenstored: connection failures are reported and retried with a
/// pause growing to 5 s (reset once a connection scans successfully).
/// With `policy`, groups are dom0's (see [`crate::policy`]).
pub fn run<C: Connector>(
    connector: &mut C,
    opts: Options,
    policy: Option<PathBuf>,
    log: &mut dyn FnMut(Event<'_>),
    stop: &mut dyn FnMut() -> bool,
) {
    let mut publisher = policy.map_or_else(Publisher::default, Publisher::with_policy);
    let mut pause = Duration::from_millis(200);
    let backoff = |pause: &mut Duration| {
        std::thread::sleep(*pause);
        *pause = (*pause * 2).min(Duration::from_secs(5));
    };
    while !stop() {
        let mut s = match connector.connect() {
            Ok(s) => s,
            Err(e) => {
                log(Event::ConnectFailed(&e, pause));
                backoff(&mut pause);
                continue;
            }
        };
        log(Event::Connected);
        publisher.reset();
        let mut scanned = false;
        match serve(&mut s, &mut publisher, opts, log, stop, &mut scanned) {
            Ok(()) => return,
            Err(e) => {
                log(Event::Lost(&e));
                if scanned {
                    pause = Duration::from_millis(200);
                }
                backoff(&mut pause);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn schedule(t0: Instant) -> Schedule {
        Schedule::new(&Options { rescan: 1000 * MS, min_interval: 200 * MS, once: false }, t0)
    }

    #[test]
    fn the_first_scan_is_at_once() {
        let t0 = Instant::now();
        assert!(schedule(t0).due(t0));
    }

    #[test]
    fn a_burst_of_changes_is_scanned_at_once_then_limited_and_not_lost() {
        let t0 = Instant::now();
        let mut s = schedule(t0);
        // The first SCAN_BURST scans follow their changes at once.
        let burst = SCAN_BURST as u32;
        for i in 0..burst {
            let now = t0 + i * 5 * MS;
            assert!(s.due(now), "scan {i}");
            s.scanned(now);
            s.changed();
        }
        // Then the next waits until SCAN_BURST intervals after the first.
        let limit = t0 + burst * 200 * MS;
        assert!(!s.due(limit - MS));
        s.changed();
        assert!(s.due(limit));
        s.scanned(limit);
        assert!(!s.is_dirty());
        // Nothing changed: the periodic rescan.
        assert!(!s.due(limit + 999 * MS));
        assert!(s.due(limit + 1000 * MS));
        // A change long after the last scan: at once.
        s.scanned(limit + 1000 * MS);
        s.changed();
        assert!(s.due(limit + 8000 * MS));
    }

    #[test]
    fn a_change_every_millisecond_scans_at_most_once_per_interval_on_average() {
        let t0 = Instant::now();
        let mut s = schedule(t0);
        let mut scans = Vec::new();
        for ms in 0..4000u32 {
            let now = t0 + ms * MS;
            s.changed();
            if s.due(now) {
                scans.push(ms);
                s.scanned(now);
            }
        }
        // SCAN_BURST at once, then one per 200 ms on average.
        let burst = SCAN_BURST as u32;
        assert_eq!(&scans[..SCAN_BURST], (0..burst).collect::<Vec<u32>>().as_slice());
        assert_eq!(scans[SCAN_BURST], burst * 200);
        assert!(scans.len() <= SCAN_BURST + 4000 / 200, "{} scans", scans.len());
        for w in scans.windows(SCAN_BURST + 1) {
            assert!(w[SCAN_BURST] - w[0] >= burst * 200, "{w:?}");
        }
        // The last changes were not lost: a scan is due when the limit allows.
        assert!(s.is_dirty());
        assert!(s.due(t0 + 8000 * MS));
    }
}
