//! The common interrupt path: `isr_common` saves every general register
//! and the FPU/SSE state, calls `interrupt_dispatch` with the frame, and
//! restores them.

use core::sync::atomic::{AtomicU64, Ordering};

core::arch::global_asm!(include_str!(concat!(env!("OUT_DIR"), "/isr_stubs.s")), options(att_syntax));

core::arch::global_asm!(
    r#"
    .section .text.isr, "ax"
    .code64
isr_common:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, %rbx             /* the frame; rbx survives the call */
    subq $512, %rsp
    andq $-16, %rsp             /* fxsave needs 16-byte alignment */
    fxsave64 (%rsp)
    movq %rbx, %rdi
    cld
    call interrupt_dispatch
    fxrstor64 (%rsp)
    movq %rbx, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp              /* vector and error code */
    iretq
"#,
    options(att_syntax)
);

/// What `isr_common` leaves on the stack, lowest address first.
#[repr(C)]
#[derive(Debug)]
pub struct InterruptFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

pub const BREAKPOINT: u64 = 3;
pub const TIMER_VECTOR: u8 = 0x40;
pub const SPURIOUS_VECTOR: u8 = 0xff;

static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);
static LAST_BREAKPOINT_RIP: AtomicU64 = AtomicU64::new(0);
static UNEXPECTED: AtomicU64 = AtomicU64::new(0);

/// What the layers above arch do with an interrupt. main.rs sets them once,
/// before the IDT is loaded: the fault report and the timer live above
/// arch, which calls up only through these.
#[derive(Clone, Copy)]
pub struct Handlers {
    /// A CPU exception other than a breakpoint: reports it, ends the kernel.
    pub exception: fn(&InterruptFrame) -> !,
    /// The local APIC timer fired (count only: never block or log).
    pub tick: fn(),
}

static HANDLERS: spin::Once<Handlers> = spin::Once::new();

/// Installs the handlers; the first call wins.
pub fn set_handlers(handlers: Handlers) {
    HANDLERS.call_once(|| handlers);
}

/// (count, rip after the last `int3`).
pub fn breakpoints() -> (u64, u64) {
    (BREAKPOINTS.load(Ordering::Relaxed), LAST_BREAKPOINT_RIP.load(Ordering::Relaxed))
}

/// Interrupts that arrived on a vector nobody uses.
pub fn unexpected() -> u64 {
    UNEXPECTED.load(Ordering::Relaxed)
}

#[no_mangle]
extern "C" fn interrupt_dispatch(frame: &mut InterruptFrame) {
    match frame.vector {
        // A trap: rip already points past the int3, so returning resumes.
        BREAKPOINT => {
            BREAKPOINTS.fetch_add(1, Ordering::Relaxed);
            LAST_BREAKPOINT_RIP.store(frame.rip, Ordering::Relaxed);
        }
        0..=31 => match HANDLERS.get() {
            Some(handlers) => (handlers.exception)(frame),
            // Nobody to report to yet (main.rs installs the handlers first).
            None => super::cpu::halt_forever(),
        },
        v if v == u64::from(TIMER_VECTOR) => {
            if let Some(handlers) = HANDLERS.get() {
                (handlers.tick)();
            }
            super::apic::end_of_interrupt();
        }
        v if v == u64::from(SPURIOUS_VECTOR) => {}
        _ => {
            UNEXPECTED.fetch_add(1, Ordering::Relaxed);
            super::apic::end_of_interrupt();
        }
    }
}
