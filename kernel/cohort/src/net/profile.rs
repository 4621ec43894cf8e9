//! Where a network measurement's time goes, in this guest: device
//! housekeeping, the stack's poll, the application, and idle (blocked in
//! the hypervisor, waiting for an event). Printed with each measurement.

use core::sync::atomic::{AtomicU64, Ordering};

pub enum Part {
    Service,
    Poll,
    App,
    Idle,
}

static NS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
static COUNT: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// Runs `f`, charging its time to `part`.
pub fn time<T>(part: Part, f: impl FnOnce() -> T) -> T {
    let start = crate::clock::now_ns();
    let out = f();
    let i = part as usize;
    NS[i].fetch_add(crate::clock::now_ns().saturating_sub(start), Ordering::Relaxed);
    COUNT[i].fetch_add(1, Ordering::Relaxed);
    out
}

/// The totals since the last call (which resets them), as one line.
pub fn take_line() -> alloc::string::String {
    let take = |i: usize| (NS[i].swap(0, Ordering::Relaxed), COUNT[i].swap(0, Ordering::Relaxed));
    let parts = [take(0), take(1), take(2), take(3)];
    let total: u64 = parts.iter().map(|p| p.0).sum::<u64>().max(1);
    let pct = |ns: u64| 100.0 * ns as f64 / total as f64;
    alloc::format!(
        "time: device service {:.1}% ({} calls), stack poll {:.1}% ({}), application {:.1}% ({}), idle {:.1}% ({} waits)",
        pct(parts[0].0),
        parts[0].1,
        pct(parts[1].0),
        parts[1].1,
        pct(parts[2].0),
        parts[2].1,
        pct(parts[3].0),
        parts[3].1
    )
}
