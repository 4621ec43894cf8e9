//! The periodic tick, from the local APIC timer or (on Xen) the one-shot
//! timer re-armed on every tick, and its count.

use crate::arch::{apic, interrupts::TIMER_VECTOR};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

static TICKS: AtomicU64 = AtomicU64::new(0);
static HZ: AtomicU32 = AtomicU32::new(0);

/// Measures the APIC timer against the clock and starts it at `hz`.
/// Interrupts stay disabled; the caller enables them.
pub fn init(hz: u32) {
    apic::init();
    let rate = apic::measure_timer_rate(10_000_000, crate::clock::busy_wait_ns);
    let count = (rate / u64::from(hz)).clamp(1, u64::from(u32::MAX)) as u32;
    HZ.store(hz, Ordering::Relaxed);
    apic::start_periodic(TIMER_VECTOR, count);
}

/// Starts the Xen one-shot timer, re-armed every 1/`hz` s.
pub fn init_xen(hz: u32) -> Result<u32, xen_abi::hypercall::Errno> {
    apic::init();
    HZ.store(hz, Ordering::Relaxed);
    crate::platform::xen::time::start_timer(hz, on_tick)
}

/// Called on each tick (the APIC timer's interrupt, or Xen's timer
/// event): count only, never block or log.
pub fn on_tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

pub fn hz() -> u32 {
    HZ.load(Ordering::Relaxed)
}
