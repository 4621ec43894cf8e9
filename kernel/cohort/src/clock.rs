//! Monotonic clock: the TSC, calibrated once at boot, counted from the PVH
//! entry (so the boot stub's first instruction is time zero), or a time
//! base the platform provides (Xen's pvclock).

use crate::arch::{boot, cpu, pit};
use core::sync::atomic::{AtomicU64, Ordering};

/// Nanoseconds per TSC tick, 32.32 fixed point; 0 before calibration.
static NS_PER_TICK: AtomicU64 = AtomicU64::new(0);

/// Calibration window: long enough for 0.02% PIT resolution, short enough
/// for the boot-time budget.
const CALIBRATION_MS: u64 = 5;

/// A time base the platform provides instead of the TSC calibrated
/// against the PIT: Xen's pvclock (Xen has no PIT). main.rs hands it over
/// at boot: the clock sits below the platform and never calls it by name.
#[derive(Clone, Copy)]
pub struct Source {
    /// The TSC frequency the source's scale implies.
    pub tsc_hz: u64,
    /// The source's time at PVH entry, in ns.
    pub entry_ns: u64,
    /// The source's time now, in ns.
    pub now_ns: fn() -> u64,
}

static SOURCE: spin::Once<Source> = spin::Once::new();
/// Waits for the next interrupt or event (the platform's idle), set once
/// by main.rs; `sleep` spins without it.
static IDLE: spin::Once<fn()> = spin::Once::new();

/// Makes `source` the clock (the first call wins); returns the TSC
/// frequency it implies.
pub fn use_source(source: Source) -> u64 {
    let hz = source.tsc_hz.max(1);
    set_tsc_hz(hz);
    SOURCE.call_once(|| source);
    hz
}

/// How `sleep` waits for the next interrupt or event.
pub fn set_idle(idle: fn()) {
    IDLE.call_once(|| idle);
}

/// Calibrates the TSC against the PIT; returns its frequency in Hz.
pub fn init_pit() -> Result<u64, &'static str> {
    let hz = pit::calibrate_tsc(CALIBRATION_MS).ok_or("the PIT does not count: cannot calibrate the TSC")?;
    if hz < 1_000_000 {
        return Err("TSC slower than 1 MHz: calibration failed");
    }
    set_tsc_hz(hz);
    Ok(hz)
}

fn set_tsc_hz(hz: u64) {
    NS_PER_TICK.store(((1_000_000_000u128 << 32) / u128::from(hz)) as u64, Ordering::Relaxed);
}

pub fn ticks_to_ns(ticks: u64) -> u64 {
    ((u128::from(ticks) * u128::from(NS_PER_TICK.load(Ordering::Relaxed))) >> 32) as u64
}

/// The largest value `now_ns` returned from a source.
static SOURCE_LAST_NS: AtomicU64 = AtomicU64::new(0);

/// Nanoseconds since PVH entry; 0 before calibration. Never goes back:
/// pvclock can (Xen moves the vCPU to a CPU whose TSC is slightly behind,
/// and the guest sees no stable-TSC flag), and every duration computed as
/// `later - earlier` relies on it not doing so.
pub fn now_ns() -> u64 {
    if let Some(source) = SOURCE.get() {
        let now = (source.now_ns)().saturating_sub(source.entry_ns);
        let last = SOURCE_LAST_NS.fetch_max(now, Ordering::Relaxed);
        return now.max(last);
    }
    ticks_to_ns(cpu::rdtsc().saturating_sub(boot::entry_tsc()))
}

pub const SECOND: u64 = 1_000_000_000;

/// Sleeps for `ns`, waking on each interrupt (timer tick or event).
/// Interrupts must be enabled.
pub fn sleep(ns: u64) {
    let end = now_ns().saturating_add(ns);
    while now_ns() < end {
        match IDLE.get() {
            Some(idle) => idle(),
            None => core::hint::spin_loop(),
        }
    }
}

/// Spins for `ns` nanoseconds (used for calibration before the timer runs).
pub fn busy_wait_ns(ns: u64) {
    let end = now_ns().saturating_add(ns);
    while now_ns() < end {
        core::hint::spin_loop();
    }
}
