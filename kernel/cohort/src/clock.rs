//! Monotonic clock: the TSC, calibrated once at boot, counted from the PVH
//! entry (so the boot stub's first instruction is time zero).

use crate::arch::{boot, cpu, pit};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use xen_abi::abi::shared_info::TimeInfo;

/// Nanoseconds per TSC tick, 32.32 fixed point; 0 before calibration.
static NS_PER_TICK: AtomicU64 = AtomicU64::new(0);
/// Xen system time at PVH entry, when the clock is Xen's pvclock.
static PVCLOCK_ENTRY_NS: AtomicU64 = AtomicU64::new(0);
static PVCLOCK: AtomicBool = AtomicBool::new(false);

/// Calibration window: long enough for 0.02% PIT resolution, short enough
/// for the boot-time budget.
const CALIBRATION_MS: u64 = 5;

/// Makes Xen's pvclock the clock (Xen has no PIT); returns the TSC
/// frequency Xen's scale factors imply.
pub fn use_pvclock(info: TimeInfo) -> u64 {
    let hz = info.tsc_hz().max(1);
    NS_PER_TICK.store(((1_000_000_000u128 << 32) / u128::from(hz)) as u64, Ordering::Relaxed);
    PVCLOCK_ENTRY_NS.store(info.system_time_at(boot::entry_tsc()), Ordering::Relaxed);
    PVCLOCK.store(true, Ordering::Release);
    hz
}

/// Calibrates the TSC against the PIT; returns its frequency in Hz.
pub fn init_pit() -> Result<u64, &'static str> {
    let hz = pit::calibrate_tsc(CALIBRATION_MS).ok_or("the PIT does not count: cannot calibrate the TSC")?;
    if hz < 1_000_000 {
        return Err("TSC slower than 1 MHz: calibration failed");
    }
    NS_PER_TICK.store(((1_000_000_000u128 << 32) / u128::from(hz)) as u64, Ordering::Relaxed);
    Ok(hz)
}

pub fn ticks_to_ns(ticks: u64) -> u64 {
    ((u128::from(ticks) * u128::from(NS_PER_TICK.load(Ordering::Relaxed))) >> 32) as u64
}

/// The largest value `now_ns` returned on pvclock.
static PVCLOCK_LAST_NS: AtomicU64 = AtomicU64::new(0);

/// Nanoseconds since PVH entry; 0 before calibration. Never goes back:
/// pvclock can (Xen moves the vCPU to a CPU whose TSC is slightly behind,
/// and the guest sees no stable-TSC flag), and every duration computed as
/// `later - earlier` relies on it not doing so.
pub fn now_ns() -> u64 {
    if PVCLOCK.load(Ordering::Acquire) {
        let now = crate::platform::xen::time::system_time_ns().saturating_sub(PVCLOCK_ENTRY_NS.load(Ordering::Relaxed));
        let last = PVCLOCK_LAST_NS.fetch_max(now, Ordering::Relaxed);
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
        crate::platform::idle();
    }
}

/// Spins for `ns` nanoseconds (used for calibration before the timer runs).
pub fn busy_wait_ns(ns: u64) {
    let end = now_ns().saturating_add(ns);
    while now_ns() < end {
        core::hint::spin_loop();
    }
}
