//! What ends the kernel on an error: CPU exceptions other than breakpoints,
//! each reported with vector, error code, RIP and CR2, and panics (the
//! panic handler). Both then exit with failure, unless the running test
//! expects exactly that fault.

use crate::arch::interrupts::InterruptFrame;
use x86_64::registers::control::Cr2;

/// What the layers above do when the kernel faults or panics. main.rs
/// sets them once at boot: the test runner and the platform's exit live
/// above fault, which calls up only through these.
pub struct Hooks {
    /// After a CPU exception is reported: a test that expects it passes
    /// (and the kernel ends), the running test fails; returns when no test
    /// runs.
    pub on_fault: fn(&Fault),
    /// After a panic is reported: the running test fails (and the kernel
    /// ends); returns when no test runs.
    pub on_panic: fn(),
    /// Ends the kernel with failure.
    pub stop: fn() -> !,
}

static HOOKS: spin::Once<Hooks> = spin::Once::new();

/// Installs the hooks; the first call wins.
pub fn set_hooks(hooks: Hooks) {
    HOOKS.call_once(|| hooks);
}

/// Ends the kernel with failure (halts if main.rs has not set the hooks).
fn stop() -> ! {
    match HOOKS.get() {
        Some(hooks) => (hooks.stop)(),
        None => crate::arch::cpu::halt_forever(),
    }
}

const NAMES: [&str; 32] = [
    "#DE divide error",
    "#DB debug",
    "NMI",
    "#BP breakpoint",
    "#OF overflow",
    "#BR bound range",
    "#UD invalid opcode",
    "#NM device not available",
    "#DF double fault",
    "coprocessor segment overrun",
    "#TS invalid TSS",
    "#NP segment not present",
    "#SS stack fault",
    "#GP general protection",
    "#PF page fault",
    "reserved 15",
    "#MF x87 floating point",
    "#AC alignment check",
    "#MC machine check",
    "#XM SIMD floating point",
    "#VE virtualization",
    "#CP control protection",
    "reserved 22",
    "reserved 23",
    "reserved 24",
    "reserved 25",
    "reserved 26",
    "reserved 27",
    "#HV hypervisor injection",
    "#VC VMM communication",
    "#SX security",
    "reserved 31",
];

pub const PAGE_FAULT: u64 = 14;

#[derive(Clone, Copy, Debug)]
pub struct Fault {
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub rsp: u64,
    pub cr2: u64,
    /// The guard page hit, for page faults inside one.
    pub guard: Option<&'static str>,
}

pub fn fatal_exception(frame: &InterruptFrame) -> ! {
    let cr2 = Cr2::read_raw();
    let guard = (frame.vector == PAGE_FAULT)
        .then(|| crate::memory::guard_pages().into_iter().find(|&(_, page)| cr2 & !0xfff == page).map(|(n, _)| n))
        .flatten();
    let fault = Fault { vector: frame.vector, error_code: frame.error_code, rip: frame.rip, rsp: frame.rsp, cr2, guard };
    let name = NAMES.get(frame.vector as usize).copied().unwrap_or("?");
    crate::eprintln_emergency!(
        "EXCEPTION: {name} (vector {}), error code {:#x}, rip {:#x}, rsp {:#x}, cr2 {:#x}",
        fault.vector,
        fault.error_code,
        fault.rip,
        fault.rsp,
        fault.cr2
    );
    match guard {
        Some("null page") => crate::eprintln_emergency!("  null pointer access: cr2 is in the unmapped null page"),
        Some(stack) => crate::eprintln_emergency!("  stack overflow: cr2 is in the guard page below the {stack}"),
        None => {}
    }
    crate::eprintln_emergency!(
        "{}",
        figures::Event::Fault { vector: fault.vector, rip: fault.rip, cr2: fault.cr2, guard: fault.guard }
    );
    if let Some(hooks) = HOOKS.get() {
        (hooks.on_fault)(&fault);
    }
    crate::eprintln_emergency!("cohort: kernel stopped by a CPU exception");
    stop()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    crate::arch::guest::ops().disable_interrupts();
    let (file, line) = info.location().map_or((None, 0), |at| (Some(at.file()), at.line()));
    match file {
        Some(file) => crate::eprintln_emergency!("PANIC at {file}:{line}: {}", info.message()),
        None => crate::eprintln_emergency!("PANIC: {}", info.message()),
    }
    crate::eprintln_emergency!("{}", figures::Event::Panic { file, line });
    if let Some(hooks) = HOOKS.get() {
        (hooks.on_panic)();
    }
    stop()
}
