//! CPU exceptions other than breakpoints end the kernel: each is reported
//! with vector, error code, RIP and CR2, then the kernel exits with failure
//! (unless the running test expects exactly that fault).

use crate::arch::interrupts::InterruptFrame;
use crate::platform::{exit, ExitStatus};
use x86_64::registers::control::Cr2;

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
    crate::testing::on_fault(&fault);
    crate::eprintln_emergency!("cohort: kernel stopped by a CPU exception");
    exit(ExitStatus::Failure)
}
