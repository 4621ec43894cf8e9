//! Which machine Cohort runs on, and the services that differ: plain QEMU
//! (isa-debug-exit, virtio-net) or a Xen PVH or PV domain (hypercalls, pvclock
//! and the one-shot timer, event channels, PV console, netfront and the
//! channels to co-resident peers).

pub mod qemu;
pub mod xen;

use core::sync::atomic::{AtomicBool, Ordering};
use x86_64::instructions::port::Port;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    Failure,
}

static ON_XEN: AtomicBool = AtomicBool::new(false);

pub fn on_xen() -> bool {
    ON_XEN.load(Ordering::Relaxed)
}

/// Set by the PV entry, which knows it runs on Xen.
fn mark_on_xen() {
    ON_XEN.store(true, Ordering::Relaxed);
}

/// Looks for Xen and installs the hypercall page if it is there.
pub fn detect() -> bool {
    let found = xen::detect();
    ON_XEN.store(found, Ordering::Relaxed);
    found
}

const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Values written to isa-debug-exit: QEMU exits with 33 and 35. The host
/// side (`tests/`, run.sh) maps 33 to 0 and everything else to failure, so
/// a guest that dies without saying so never looks successful.
pub const EXIT_SUCCESS_VALUE: u32 = 0x10;
pub const EXIT_FAILURE_VALUE: u32 = 0x11;

/// Ends the kernel: Xen `SCHEDOP_shutdown` (poweroff or crash), or QEMU's
/// isa-debug-exit.
pub fn exit(status: ExitStatus) -> ! {
    crate::arch::guest::ops().disable_interrupts();
    if on_xen() {
        xen::shutdown(status);
    }
    let value = match status {
        ExitStatus::Success => EXIT_SUCCESS_VALUE,
        ExitStatus::Failure => EXIT_FAILURE_VALUE,
    };
    // SAFETY: writing the debug-exit port only ends the VM; on a machine
    // without the device the write is ignored and we halt below.
    unsafe { Port::<u32>::new(DEBUG_EXIT_PORT).write(value) };
    crate::console::print_emergency(format_args!("cohort: no exit device; halting ({status:?})\n"));
    crate::arch::cpu::halt_forever()
}

/// The network device of this platform, open and ready for the stack
/// (main.rs runs the application on it: the platform sits below net).
// Made once and taken apart at once: the size of a variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Nic {
    /// Xen: netfront, and channels to co-resident peers of `net.group`.
    Xen(xen::residency::ResidentNet),
    /// Plain QEMU: virtio-net.
    Virtio(qemu::virtio_net::Driver),
}

/// Opens this platform's network device; `ram` is the boot memory map.
/// On Xen it also starts watching for `xl shutdown` ([`stop_requested`]).
pub fn open_net(
    options: &cohort_boot::cmdline::Options<'_>,
    ram: &cohort_boot::memmap::MemoryMap,
) -> Result<Nic, alloc::string::String> {
    if on_xen() {
        xen::control::watch()?;
        let netfront = xen::net::open(options.net.offload)?;
        let device = xen::residency::ResidentNet::open(netfront, &options.chan, options.net.ip.map(|c| c.addr))?;
        return Ok(Nic::Xen(device));
    }
    let device = qemu::virtio_net::probe(ram).ok_or("no usable virtio-net device (QEMU: -device virtio-net-pci,netdev=...)")?;
    Ok(Nic::Virtio(device))
}

/// Whether the platform asks the guest to shut down: `xl shutdown` on Xen
/// (once [`open_net`] watches for it), never on plain QEMU.
pub fn stop_requested() -> bool {
    on_xen() && xen::control::requested().is_some()
}

/// Lets the hypervisor run something else on this CPU if it wants to
/// (`SCHEDOP_yield` on Xen); returns at once elsewhere.
pub fn yield_cpu() {
    if on_xen() {
        let _ = ::xen_abi::hypercall::sched_yield();
    }
}

/// Waits for the next interrupt (timer or event): on Xen a `SCHEDOP_poll`
/// on the open ports (never `SCHEDOP_block`, which PV must not use),
/// `hlt` elsewhere. Interrupts must be enabled.
pub fn idle() {
    if on_xen() {
        xen::block();
    } else {
        x86_64::instructions::interrupts::enable_and_hlt();
    }
}
