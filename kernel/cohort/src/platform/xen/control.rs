//! `xl shutdown`: the toolstack writes `poweroff` to the guest's
//! `control/shutdown`; the guest clears the key to acknowledge, cleans up
//! and shuts down. Every application polls it: the services end there,
//! the clients stop where they are.

use super::peer::store;
use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering};

const KEY: &str = "control/shutdown";
const TOKEN: &str = "cohort-control";
/// Polling the watch queue costs a look at the xenstore ring; a few times a
/// second is plenty for a shutdown request.
const CHECK_EVERY_NS: u64 = 200_000_000;
/// Calls between looks at the clock: applications ask every round, and a
/// clock read costs more than the rest of this.
const CALLS_PER_CLOCK_READ: u64 = 64;

static NEXT_CHECK: AtomicU64 = AtomicU64::new(0);
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Advertises PV shutdown support and watches for requests.
pub fn watch() -> Result<(), String> {
    store(|c| c.write("control/feature-poweroff", b"1"))?;
    store(|c| c.watch(KEY, TOKEN))
}

/// The request (e.g. "poweroff"), once, if the toolstack made one.
pub fn requested() -> Option<String> {
    if !CALLS.fetch_add(1, Ordering::Relaxed).is_multiple_of(CALLS_PER_CLOCK_READ) {
        return None;
    }
    let now = crate::clock::now_ns();
    if now < NEXT_CHECK.load(Ordering::Relaxed) {
        return None;
    }
    NEXT_CHECK.store(now + CHECK_EVERY_NS, Ordering::Relaxed);
    let fired = super::with_xenstore(|c| !super::watches::take(c, TOKEN).is_empty()).unwrap_or(false);
    if !fired {
        return None;
    }
    let request = store(|c| c.read_string(KEY)).ok().filter(|r| !r.is_empty())?;
    // Acknowledge: xl waits for the key to be cleared.
    let _ = store(|c| c.write(KEY, b""));
    Some(request)
}
