//! pvclock (`vcpu_time_info` in shared_info, read under its version
//! counter) and the Xen one-shot timer on `VIRQ_TIMER`, re-armed on every
//! tick to make a periodic tick.

use ::xen_abi::abi::ops::evtchnop::VIRQ_TIMER;
use ::xen_abi::abi::shared_info::{time, vcpu_info, TimeInfo};
use ::xen_abi::hypercall;
use core::sync::atomic::{fence, AtomicU64, Ordering};

static SHARED_INFO: AtomicU64 = AtomicU64::new(0);
static PERIOD_NS: AtomicU64 = AtomicU64::new(0);
static NEXT_DEADLINE: AtomicU64 = AtomicU64::new(0);
/// Called on each tick; given once to `start_timer` by the timer module,
/// which sits beside the platform and must not be called back by name.
static ON_TICK: spin::Once<fn()> = spin::Once::new();

fn field<T: Copy>(offset: usize) -> T {
    let base = SHARED_INFO.load(Ordering::Acquire) + (vcpu_info::TIME + offset) as u64;
    // SAFETY: shared_info is mapped for the kernel's lifetime (set in
    // `read_time_info` from the same address events use); the offsets are
    // fields of vcpu 0's vcpu_time_info, naturally aligned for T.
    unsafe { core::ptr::read_volatile(base as *const T) }
}

/// A consistent snapshot: Xen makes the version odd while it updates the
/// fields, so retry until the version is even and unchanged across the read.
pub fn read_time_info() -> TimeInfo {
    if SHARED_INFO.load(Ordering::Acquire) == 0 {
        SHARED_INFO.store(super::events_shared_info(), Ordering::Release);
    }
    loop {
        let v1: u32 = field(time::VERSION);
        // Acquire: read the fields only after the version that guards them.
        fence(Ordering::Acquire);
        let info = TimeInfo {
            tsc_timestamp: field(time::TSC_TIMESTAMP),
            system_time: field(time::SYSTEM_TIME),
            tsc_to_system_mul: field(time::TSC_TO_SYSTEM_MUL),
            tsc_shift: field(time::TSC_SHIFT),
        };
        // Acquire: the fields are read before the version is read again.
        fence(Ordering::Acquire);
        let v2: u32 = field(time::VERSION);
        if v1 == v2 && v1.is_multiple_of(2) {
            return info;
        }
        core::hint::spin_loop();
    }
}

/// Xen system time now, in ns.
pub fn system_time_ns() -> u64 {
    read_time_info().system_time_at(crate::arch::cpu::rdtsc())
}

/// pvclock as the kernel's clock source (shared_info must be mapped).
pub fn pvclock() -> crate::clock::Source {
    let info = read_time_info();
    crate::clock::Source {
        tsc_hz: info.tsc_hz(),
        entry_ns: info.system_time_at(crate::arch::boot::entry_tsc()),
        now_ns: system_time_ns,
    }
}

/// Starts a periodic tick of `hz` from one-shot timers, calling `on_tick`
/// on each.
pub fn start_timer(hz: u32, on_tick: fn()) -> Result<u32, hypercall::Errno> {
    ON_TICK.call_once(|| on_tick);
    let period = 1_000_000_000 / u64::from(hz);
    PERIOD_NS.store(period, Ordering::Relaxed);
    // Xen may start a default periodic timer; ours replaces it.
    let _ = hypercall::stop_periodic_timer(0);
    let port = hypercall::bind_virq(VIRQ_TIMER, 0)?;
    super::events::set_handler(port, |_| on_timer()).map_err(|_| hypercall::Errno::ENOSPC)?;
    hypercall::evtchn_unmask(port)?;
    arm(system_time_ns() + period);
    Ok(port)
}

/// Xen system time of the next tick (0 before the timer starts).
pub fn next_deadline_ns() -> u64 {
    NEXT_DEADLINE.load(Ordering::Relaxed)
}

pub fn period_ns() -> u64 {
    PERIOD_NS.load(Ordering::Relaxed)
}

/// The Xen system time at which `crate::clock::now_ns()` reaches
/// `clock_deadline_ns` (`u64::MAX` stays "never").
pub fn system_deadline(clock_deadline_ns: u64) -> u64 {
    if clock_deadline_ns == u64::MAX {
        return u64::MAX;
    }
    let now_clock = crate::clock::now_ns();
    system_time_ns().saturating_add(clock_deadline_ns.saturating_sub(now_clock))
}

fn arm(deadline: u64) {
    NEXT_DEADLINE.store(deadline, Ordering::Relaxed);
    // A deadline already past fires at once (no VCPU_SSHOTTMR_future).
    let _ = hypercall::set_singleshot_timer(0, deadline);
}

/// VIRQ_TIMER fired (called from `events::poll`).
pub fn on_timer() {
    let now = system_time_ns();
    let period = PERIOD_NS.load(Ordering::Relaxed);
    let mut next = NEXT_DEADLINE.load(Ordering::Relaxed);
    if now < next {
        // Early or spurious VIRQ_TIMER (Xen also raises it on time updates).
        arm(next);
        return;
    }
    if let Some(on_tick) = ON_TICK.get() {
        on_tick();
    }
    // Skip missed periods rather than firing a burst.
    while next <= now {
        next += period;
    }
    arm(next);
}
