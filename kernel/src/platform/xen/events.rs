//! 2-level event channels: Xen raises `UPCALL_VECTOR`; the handler scans
//! the pending words in shared_info and records what arrived. Only the
//! timer acts inside the interrupt; everything else is picked up later by
//! the code waiting for it (`take_pending`), so a handler never runs inside
//! the code that sent the notification.

use ::xen::abi::shared_info::{vcpu_info, EVTCHN_2L_PORTS, EVTCHN_MASK, EVTCHN_PENDING};
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

pub const UPCALL_VECTOR: u8 = 0xf3;
const NO_PORT: u32 = u32::MAX;

static SHARED_INFO: AtomicU64 = AtomicU64::new(0);
/// Events delivered and not yet taken, one bit per port.
static DELIVERED: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];
static TIMER_PORT: AtomicU32 = AtomicU32::new(NO_PORT);

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

pub fn set_timer_port(port: u32) {
    TIMER_PORT.store(port, Ordering::Relaxed);
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
    if port == TIMER_PORT.load(Ordering::Relaxed) {
        super::time::on_timer();
    } else if let Some(slot) = DELIVERED.get(port as usize / 64) {
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
