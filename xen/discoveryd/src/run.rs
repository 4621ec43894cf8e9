//! The daemon's loop: connect, watch, scan; scan again on every relevant
//! watch event (events arriving together are coalesced) and periodically;
//! when xenstored goes away, reconnect with a growing pause and start over.

use std::time::{Duration, Instant};

use crate::scan::{relevant, Publisher, Report};
use crate::store::{Store, StoreError};

pub const WATCH_TOKEN: &str = "cohort-discoveryd";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Scan this often even without events (a safety net).
    pub rescan: Duration,
    /// Stop after the first scan.
    pub once: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { rescan: Duration::from_secs(10), once: false }
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
    let mut next_scan = Instant::now();
    loop {
        if Instant::now() >= next_scan {
            let started = Instant::now();
            let report = publisher.scan(s)?;
            *scanned = true;
            log(Event::Scanned { report: &report, took: started.elapsed() });
            next_scan = Instant::now() + opts.rescan;
            if opts.once {
                return Ok(());
            }
        }
        if stop() {
            return Ok(());
        }
        let wait = next_scan.saturating_duration_since(Instant::now()).min(Duration::from_millis(500));
        if let Some(ev) = s.next_event(wait)? {
            if relevant(&ev.path) {
                // Take whatever else is already queued, then scan once.
                while s.next_event(Duration::ZERO)?.is_some() {}
                next_scan = Instant::now();
            }
        }
    }
}

/// Runs until `stop` says so (or after one scan with `once`). Never gives
/// up on xenstored: connection failures are reported and retried with a
/// pause growing to 5 s (reset once a connection scans successfully).
pub fn run<C: Connector>(
    connector: &mut C,
    opts: Options,
    log: &mut dyn FnMut(Event<'_>),
    stop: &mut dyn FnMut() -> bool,
) {
    let mut publisher = Publisher::default();
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
