//! How Cohort drives the CPU, chosen once by the entry that ran: natively
//! in ring 0 (PVH under Xen or QEMU), or as a Xen PV guest in ring 3,
//! where `cli`, `sti`, `hlt`, port I/O and page-table writes are
//! privileged and go through Xen instead (docs/pv.md). The rest of the
//! kernel calls the functions here (and `paging::unmap`) and never asks
//! which it is.

use xen_abi::abi::ops::schedop;
use xen_abi::hypercall;

/// The privileged operations whose form differs between the guest types.
pub trait Privileged: Sync {
    /// The entry's name, as the `booted` event reports it.
    fn entry(&self) -> &'static str;
    /// Whether an interrupt (or event upcall) may arrive now.
    fn interrupts_enabled(&self) -> bool;
    fn disable_interrupts(&self);
    fn enable_interrupts(&self);
    /// Ends all execution on this CPU, for good.
    fn halt_forever(&self) -> !;
    /// Whether `in`/`out` work (legacy devices, the debug port).
    fn io_ports(&self) -> bool;
    /// Whether the CPU takes interrupts at all: a local APIC (and 8259
    /// PICs) to set up, an interrupt flag to turn on.
    fn takes_interrupts(&self) -> bool;
    /// Whether exceptions switch to a stack of their own (IST), so that a
    /// stack overflow into a guard page is reported.
    fn exception_stacks(&self) -> bool;
    /// Removes the mapping of the 4 KiB page at `addr` (`alloc_frame`
    /// gives a frame for a page table, where one must be made).
    fn unmap_page(&self, addr: u64, alloc_frame: &mut dyn FnMut() -> Option<u64>) -> Result<(), super::paging::Error>;
}

/// Ring 0: the CPU's own instructions.
struct Native;

impl Privileged for Native {
    fn entry(&self) -> &'static str {
        "pvh"
    }

    fn interrupts_enabled(&self) -> bool {
        x86_64::instructions::interrupts::are_enabled()
    }

    fn disable_interrupts(&self) {
        x86_64::instructions::interrupts::disable();
    }

    fn enable_interrupts(&self) {
        x86_64::instructions::interrupts::enable();
    }

    fn halt_forever(&self) -> ! {
        loop {
            x86_64::instructions::interrupts::disable();
            x86_64::instructions::hlt();
        }
    }

    fn io_ports(&self) -> bool {
        true
    }

    fn takes_interrupts(&self) -> bool {
        true
    }

    fn exception_stacks(&self) -> bool {
        true
    }

    fn unmap_page(&self, addr: u64, alloc_frame: &mut dyn FnMut() -> Option<u64>) -> Result<(), super::paging::Error> {
        super::paging::unmap_native(addr, alloc_frame)
    }
}

/// Ring 3 under Xen PV. Cohort registers no event upcall (events are
/// polled, as on PVH: `platform::xen::events`) and the upcall mask Xen
/// starts the vCPU with stays set, so nothing asynchronous ever enters
/// the guest: "interrupts" are always off, and disabling them is nothing.
struct XenPv;

impl Privileged for XenPv {
    fn entry(&self) -> &'static str {
        "pv"
    }

    fn interrupts_enabled(&self) -> bool {
        false
    }

    fn disable_interrupts(&self) {}

    fn enable_interrupts(&self) {}

    fn halt_forever(&self) -> ! {
        // `hlt` is privileged; a PV vCPU that must never run again asks
        // Xen to end the domain (reached only when the platform's own
        // shutdown failed, or before it is known).
        loop {
            let _ = hypercall::sched_shutdown(schedop::SHUTDOWN_CRASH);
            let _ = hypercall::sched_yield();
        }
    }

    fn io_ports(&self) -> bool {
        false
    }

    fn takes_interrupts(&self) -> bool {
        false
    }

    fn exception_stacks(&self) -> bool {
        false
    }

    fn unmap_page(&self, addr: u64, _: &mut dyn FnMut() -> Option<u64>) -> Result<(), super::paging::Error> {
        // Xen validates the change to its (read-only to us) page table.
        // SAFETY: unmapping only makes later accesses fault; the callers
        // unmap guard pages nothing lives in.
        unsafe { hypercall::update_va_mapping(addr & !0xfff, 0) }.map_err(|_| super::paging::Error::NotMapped(addr))
    }
}

static NATIVE: Native = Native;
static XEN_PV: XenPv = XenPv;

/// The operations of the guest type the entry stub recorded.
pub fn ops() -> &'static dyn Privileged {
    match super::boot::entry_kind() {
        1 => &XEN_PV,
        _ => &NATIVE,
    }
}

/// Runs `f` with interrupts (event upcalls) off, restoring them after.
pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    let ops = ops();
    let were_enabled = ops.interrupts_enabled();
    if were_enabled {
        ops.disable_interrupts();
    }
    let result = f();
    if were_enabled {
        ops.enable_interrupts();
    }
    result
}
