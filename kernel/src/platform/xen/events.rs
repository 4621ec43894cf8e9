//! 2-level event channels: Xen raises `UPCALL_VECTOR`; the handler scans
//! the pending words in shared_info and, per port, either calls the
//! interrupt handler registered for it (the timer: count and re-arm, never
//! block) or records the event for the code waiting on it (`take_pending`).
//! Drivers use the second way, so their work never runs inside the code
//! that sent the notification.

use ::xen::abi::shared_info::{vcpu_info, EVTCHN_2L_PORTS, EVTCHN_MASK, EVTCHN_PENDING};
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use x86_64::instructions::interrupts::without_interrupts;

pub const UPCALL_VECTOR: u8 = 0xf3;
/// Interrupt-context handlers are few (the timer); a fixed table suffices.
const HANDLERS: usize = 4;

static SHARED_INFO: AtomicU64 = AtomicU64::new(0);
/// Events delivered and not yet taken, one bit per port.
static DELIVERED: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];
/// (port, handler) pairs.
type HandlerTable = [Option<(u32, fn(u32))>; HANDLERS];
/// Taken only with interrupts disabled, so the upcall never waits on it.
static HANDLER_TABLE: spin::Mutex<HandlerTable> = spin::Mutex::new([None; HANDLERS]);

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

/// Runs `handler` in interrupt context for every event on `port`. It must
/// only do bounded work that takes no lock a thread may hold.
pub fn set_handler(port: u32, handler: fn(u32)) -> Result<(), &'static str> {
    without_interrupts(|| {
        let mut table = HANDLER_TABLE.lock();
        let slot = table.iter_mut().find(|s| s.is_none()).ok_or("no free event handler slot")?;
        *slot = Some((port, handler));
        Ok(())
    })
}

/// Sets (true) or clears the mask bit of `port` in shared_info. Unmasking
/// this way does not raise an event that arrived while masked: use
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

/// The upcall: runs with interrupts disabled.
pub fn on_upcall() {
    let (Some(pending_flag), Some(selector)) = (byte(vcpu_info::UPCALL_PENDING), word(vcpu_info::PENDING_SEL)) else {
        return;
    };
    // Clear the flag first: an event raised after this point sets it again
    // and we loop, so nothing is lost.
    pending_flag.store(0, Ordering::SeqCst);
    loop {
        let sel = selector.swap(0, Ordering::SeqCst);
        if sel == 0 {
            break;
        }
        for w in (0..64).filter(|w| sel & (1 << w) != 0) {
            let (Some(pending), Some(mask)) = (word(EVTCHN_PENDING + w * 8), word(EVTCHN_MASK + w * 8)) else { return };
            let mut ready = pending.load(Ordering::SeqCst) & !mask.load(Ordering::SeqCst);
            while ready != 0 {
                let bit = ready.trailing_zeros() as usize;
                ready &= ready - 1;
                pending.fetch_and(!(1 << bit), Ordering::SeqCst);
                dispatch((w * 64 + bit) as u32);
            }
        }
    }
}

fn dispatch(port: u32) {
    // Interrupts are off here (upcall), so the table is never held.
    let handler = HANDLER_TABLE.lock().iter().flatten().find(|(p, _)| *p == port).map(|(_, f)| *f);
    if let Some(handler) = handler {
        handler(port);
        return;
    }
    if let Some(slot) = DELIVERED.get(port as usize / 64) {
        slot.fetch_or(1 << (port % 64), Ordering::SeqCst);
    }
}

/// Clears and returns whether an event arrived on `port`.
pub fn take_pending(port: u32) -> bool {
    if port >= EVTCHN_2L_PORTS {
        return false;
    }
    let bit = 1 << (port % 64);
    DELIVERED[port as usize / 64].fetch_and(!bit, Ordering::SeqCst) & bit != 0
}

/// Whether an event arrived on `port`, without consuming it.
pub fn is_pending(port: u32) -> bool {
    port < EVTCHN_2L_PORTS && DELIVERED[port as usize / 64].load(Ordering::SeqCst) & (1 << (port % 64)) != 0
}

/// Xen raises one event on a port when it is bound (it cannot know whether
/// the peer notified the unbound port before). Callers that count events,
/// rather than treat them as hints to look at shared state, drop it here.
pub fn drain_bind_event(port: u32) {
    crate::clock::sleep(crate::clock::SECOND / 50);
    take_pending(port);
}

/// Waits (blocking in Xen) until an event arrives on `port` or `timeout_ns`
/// passes; returns whether one arrived. Does not consume it.
pub fn wait_port(port: u32, timeout_ns: u64) -> bool {
    let deadline = crate::clock::now_ns().saturating_add(timeout_ns);
    loop {
        if is_pending(port) {
            return true;
        }
        if crate::clock::now_ns() >= deadline {
            return false;
        }
        super::block();
    }
}

/// Event channels of this domain, for `xen_proto`.
pub struct XenEvents;

fn errno(e: ::xen::hypercall::Errno) -> xen_proto::iface::XenError {
    xen_proto::iface::XenError::Errno(e.0 as i32)
}

impl xen_proto::iface::EventChannels for XenEvents {
    fn alloc_unbound(&mut self, remote: u16) -> Result<u32, xen_proto::iface::XenError> {
        let port = ::xen::hypercall::alloc_unbound(remote).map_err(errno)?;
        ::xen::hypercall::evtchn_unmask(port).map_err(errno)?;
        Ok(port)
    }

    fn bind_interdomain(&mut self, remote: u16, remote_port: u32) -> Result<u32, xen_proto::iface::XenError> {
        let port = ::xen::hypercall::bind_interdomain(remote, remote_port).map_err(errno)?;
        ::xen::hypercall::evtchn_unmask(port).map_err(errno)?;
        Ok(port)
    }

    fn notify(&mut self, port: u32) -> Result<(), xen_proto::iface::XenError> {
        ::xen::hypercall::evtchn_send(port).map_err(errno)
    }

    fn close(&mut self, port: u32) -> Result<(), xen_proto::iface::XenError> {
        take_pending(port);
        ::xen::hypercall::evtchn_close(port).map_err(errno)
    }

    fn take_pending(&mut self, port: u32) -> bool {
        take_pending(port)
    }

    fn wait(&mut self, timeout_ns: u64) -> bool {
        let deadline = crate::clock::now_ns().saturating_add(timeout_ns);
        if crate::clock::now_ns() >= deadline {
            return false;
        }
        super::block();
        crate::clock::now_ns() < deadline
    }
}
