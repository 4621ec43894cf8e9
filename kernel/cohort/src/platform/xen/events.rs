//! 2-level event channels, polled. Cohort registers no upcall, so Xen never
//! injects an interrupt into it: `poll` scans the pending words of
//! shared_info in thread context and, per port, either calls the handler
//! registered for it (the timer: count and re-arm) or records the event for
//! the code waiting on it (`take_pending`). Waiting is `SCHEDOP_poll` on
//! every open, unmasked port, which Xen checks for pending bits after
//! marking us as polling: an event raised between our scan and the
//! hypercall still wakes us.
//!
//! Why no upcall: under the lab's nested emulation (Xen inside QEMU TCG),
//! an event injected on VM entry sometimes corrupts the vCPU state and
//! triple-faults the guest (seen as `event 0x800000f3` pending, and as Xen's
//! own RIP/CR3/IDTR in the guest's saved state, in `xen-hvmctx` dumps). A
//! single-threaded unikernel needs no preemption, so polling costs nothing
//! and works the same on real hardware.

use ::xen_abi::abi::shared_info::{vcpu_info, EVTCHN_2L_PORTS, EVTCHN_MASK, EVTCHN_PENDING};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

/// Handlers run from `poll` are few (the timer); a fixed table suffices.
const HANDLERS: usize = 4;
/// `SCHEDOP_poll` takes at most 128 ports.
const MAX_OPEN: usize = 128;

static SHARED_INFO: AtomicU64 = AtomicU64::new(0);
/// Events seen and not yet taken, one bit per port.
static DELIVERED: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];
/// An event was recorded in `DELIVERED` since the main loop last idled:
/// any `poll` (a xenstore wait, another port's `take_pending`) may move a
/// port's event there after its owner looked this round, and the next idle
/// must not sleep through it.
static RECORDED_SINCE_IDLE: AtomicBool = AtomicBool::new(false);
type HandlerTable = [Option<(u32, fn(u32))>; HANDLERS];
static HANDLER_TABLE: spin::Mutex<HandlerTable> = spin::Mutex::new([None; HANDLERS]);

/// The ports `block` waits on.
struct OpenPorts {
    ports: [u32; MAX_OPEN],
    len: usize,
}
static OPEN: spin::Mutex<OpenPorts> = spin::Mutex::new(OpenPorts { ports: [0; MAX_OPEN], len: 0 });

pub fn init(shared_info: u64) {
    SHARED_INFO.store(shared_info, Ordering::Release);
}

fn word(offset: usize) -> Option<&'static AtomicU64> {
    let base = SHARED_INFO.load(Ordering::Acquire);
    if base == 0 {
        return None;
    }
    // SAFETY: shared_info stays mapped at `base` for the kernel's lifetime;
    // every offset used is an 8-aligned field inside the page, which Xen
    // updates with atomic operations, as we do.
    Some(unsafe { &*((base + offset as u64) as *const AtomicU64) })
}

fn byte(offset: usize) -> Option<&'static AtomicU8> {
    let base = SHARED_INFO.load(Ordering::Acquire);
    // SAFETY: as in `word`, for a byte field.
    (base != 0).then(|| unsafe { &*((base + offset as u64) as *const AtomicU8) })
}

/// Adds `port` to the ports `block` waits on (idempotent).
pub fn open_port(port: u32) -> Result<(), &'static str> {
    let mut open = OPEN.lock();
    let len = open.len;
    if open.ports[..len].contains(&port) {
        return Ok(());
    }
    if len == MAX_OPEN {
        return Err("more than 128 open event-channel ports");
    }
    open.ports[len] = port;
    open.len += 1;
    Ok(())
}

/// How many ports are open (bound and waited on): the timer, xenstore,
/// netfront's and every channel's.
pub fn open_ports() -> usize {
    OPEN.lock().len
}

/// Removes `port` from the wait set and forgets its undelivered events.
pub fn close_port(port: u32) {
    let mut open = OPEN.lock();
    let len = open.len;
    if let Some(i) = open.ports[..len].iter().position(|&p| p == port) {
        open.ports.copy_within(i + 1..len, i);
        open.len -= 1;
    }
    drop(open);
    take_pending(port);
}

/// Runs `handler` from `poll` for every event on `port` (and opens the
/// port). It must only do bounded work that never waits.
pub fn set_handler(port: u32, handler: fn(u32)) -> Result<(), &'static str> {
    let mut table = HANDLER_TABLE.lock();
    let slot = table.iter_mut().find(|s| s.is_none()).ok_or("no free event handler slot")?;
    *slot = Some((port, handler));
    drop(table);
    open_port(port)
}

fn is_masked(port: u32) -> bool {
    word(EVTCHN_MASK + (port as usize / 64) * 8).is_some_and(|w| w.load(Ordering::SeqCst) & (1 << (port % 64)) != 0)
}

/// Sets (true) or clears the mask bit of `port` in shared_info. Unmasking
/// this way does not deliver an event that arrived while masked: use
/// `hypercall::evtchn_unmask` for that.
pub fn set_masked(port: u32, masked: bool) {
    if port >= EVTCHN_2L_PORTS {
        return;
    }
    if let Some(w) = word(EVTCHN_MASK + (port as usize / 64) * 8) {
        let bit = 1u64 << (port % 64);
        if masked {
            w.fetch_or(bit, Ordering::SeqCst);
        } else {
            w.fetch_and(!bit, Ordering::SeqCst);
        }
    }
}

/// Takes every pending, unmasked event out of shared_info: handlers run,
/// other events are recorded for `take_pending`. Returns how many.
pub fn poll() -> usize {
    let (Some(pending_flag), Some(selector)) = (byte(vcpu_info::UPCALL_PENDING), word(vcpu_info::PENDING_SEL)) else {
        return 0;
    };
    // Nobody reads the flag (no upcall), but Xen only raises it again, and
    // with it the selector, once it is clear.
    pending_flag.store(0, Ordering::SeqCst);
    let mut taken = 0;
    loop {
        let sel = selector.swap(0, Ordering::SeqCst);
        if sel == 0 {
            return taken;
        }
        for w in (0..64).filter(|w| sel & (1 << w) != 0) {
            let (Some(pending), Some(mask)) = (word(EVTCHN_PENDING + w * 8), word(EVTCHN_MASK + w * 8)) else {
                return taken;
            };
            let mut ready = pending.load(Ordering::SeqCst) & !mask.load(Ordering::SeqCst);
            while ready != 0 {
                let bit = ready.trailing_zeros() as usize;
                ready &= ready - 1;
                pending.fetch_and(!(1 << bit), Ordering::SeqCst);
                dispatch((w * 64 + bit) as u32);
                taken += 1;
            }
        }
    }
}

fn dispatch(port: u32) {
    let handler = HANDLER_TABLE.lock().iter().flatten().find(|(p, _)| *p == port).map(|(_, f)| *f);
    if let Some(handler) = handler {
        handler(port);
        return;
    }
    if let Some(slot) = DELIVERED.get(port as usize / 64) {
        slot.fetch_or(1 << (port % 64), Ordering::SeqCst);
        RECORDED_SINCE_IDLE.store(true, Ordering::SeqCst);
    }
}

/// Clears and returns whether an event arrived on `port`.
pub fn take_pending(port: u32) -> bool {
    if port >= EVTCHN_2L_PORTS {
        return false;
    }
    poll();
    let bit = 1 << (port % 64);
    DELIVERED[port as usize / 64].fetch_and(!bit, Ordering::SeqCst) & bit != 0
}

/// Whether an event arrived on `port`, without consuming it.
pub fn is_pending(port: u32) -> bool {
    poll();
    port < EVTCHN_2L_PORTS && DELIVERED[port as usize / 64].load(Ordering::SeqCst) & (1 << (port % 64)) != 0
}

/// The main loop's idle: blocks in Xen until an event arrives on an open,
/// unmasked port or Xen system time reaches `deadline_ns` (`u64::MAX`: no
/// deadline), then takes what arrived. Returns at once if something was
/// pending, or recorded since the last idle (its owner gets a round to take
/// it).
pub fn block_until(deadline_ns: u64) {
    let recorded = RECORDED_SINCE_IDLE.swap(false, Ordering::SeqCst);
    if poll() > 0 || recorded {
        RECORDED_SINCE_IDLE.store(false, Ordering::SeqCst);
        return;
    }
    wait_for_event(deadline_ns);
    // The caller runs a round now: whatever arrived gets looked at.
    RECORDED_SINCE_IDLE.store(false, Ordering::SeqCst);
}

/// Blocks until an event arrives on an open, unmasked port (or the
/// deadline), and takes it; events already recorded do not count.
fn wait_for_event(deadline_ns: u64) {
    if poll() > 0 {
        return;
    }
    let mut ports = [0u32; MAX_OPEN];
    let n = {
        let open = OPEN.lock();
        let mut n = 0;
        for &port in open.ports[..open.len].iter().filter(|&&p| !is_masked(p)) {
            ports[n] = port;
            n += 1;
        }
        n
    };
    // The periodic tick (VIRQ_TIMER, an open port) bounds the wait anyway;
    // the timeout is a second line of defence against a lost timer event.
    let timeout = deadline_ns.min(super::time::next_deadline_ns().saturating_add(super::time::period_ns()));
    let timeout = if timeout == u64::MAX { 0 } else { timeout.max(1) };
    let _ = ::xen_abi::hypercall::sched_poll(&mut ports[..n], timeout);
    poll();
}

/// Xen raises one event on a port when it is bound (it cannot know whether
/// the peer notified the unbound port before). Callers that count events,
/// rather than treat them as hints to look at shared state, drop it here.
pub fn drain_bind_event(port: u32) {
    crate::clock::sleep(crate::clock::SECOND / 50);
    take_pending(port);
}

/// Waits until an event arrives on `port` or `timeout_ns` passes; returns
/// whether one arrived. Does not consume it.
pub fn wait_port(port: u32, timeout_ns: u64) -> bool {
    let deadline = crate::clock::now_ns().saturating_add(timeout_ns);
    loop {
        if is_pending(port) {
            return true;
        }
        if crate::clock::now_ns() >= deadline {
            return false;
        }
        wait_for_event(super::time::system_deadline(deadline));
    }
}

/// Event channels of this domain, for `xen_proto`.
#[derive(Clone)]
pub struct XenEvents;

fn errno(e: ::xen_abi::hypercall::Errno) -> xen_proto::iface::XenError {
    xen_proto::iface::XenError::Errno(e.0 as i32)
}

/// Unmasks a newly opened port and adds it to the wait set; closes it again
/// if either fails.
fn opened(port: u32) -> Result<u32, xen_proto::iface::XenError> {
    let ready = ::xen_abi::hypercall::evtchn_unmask(port)
        .map_err(errno)
        .and_then(|()| open_port(port).map_err(|_| xen_proto::iface::XenError::Exhausted));
    match ready {
        Ok(()) => Ok(port),
        Err(e) => {
            let _ = ::xen_abi::hypercall::evtchn_close(port);
            Err(e)
        }
    }
}

impl xen_proto::iface::EventChannels for XenEvents {
    fn alloc_unbound(&mut self, remote: u16) -> Result<u32, xen_proto::iface::XenError> {
        opened(::xen_abi::hypercall::alloc_unbound(remote).map_err(errno)?)
    }

    fn bind_interdomain(&mut self, remote: u16, remote_port: u32) -> Result<u32, xen_proto::iface::XenError> {
        opened(::xen_abi::hypercall::bind_interdomain(remote, remote_port).map_err(errno)?)
    }

    fn notify(&mut self, port: u32) -> Result<(), xen_proto::iface::XenError> {
        ::xen_abi::hypercall::evtchn_send(port).map_err(errno)
    }

    fn close(&mut self, port: u32) -> Result<(), xen_proto::iface::XenError> {
        close_port(port);
        ::xen_abi::hypercall::evtchn_close(port).map_err(errno)
    }

    fn take_pending(&mut self, port: u32) -> bool {
        take_pending(port)
    }

    fn wait(&mut self, timeout_ns: u64) -> bool {
        let deadline = crate::clock::now_ns().saturating_add(timeout_ns);
        if crate::clock::now_ns() >= deadline {
            return false;
        }
        wait_for_event(super::time::system_deadline(deadline));
        crate::clock::now_ns() < deadline
    }
}
