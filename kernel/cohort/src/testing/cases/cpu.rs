use crate::arch::interrupts;
use crate::ensure;
use crate::fault::{Fault, PAGE_FAULT};
use crate::testing::Outcome;

pub fn breakpoint_resumes() -> Outcome {
    let (count_before, _) = interrupts::breakpoints();
    let resumed_at: u64;
    // SAFETY: int3 traps to our handler, which returns to the next
    // instruction; the lea records that instruction's address.
    unsafe {
        core::arch::asm!("int3", "2:", "lea {0}, [rip + 2b]", out(reg) resumed_at);
    }
    let (count, rip) = interrupts::breakpoints();
    ensure!(count == count_before + 1, "breakpoint count {count_before} -> {count}");
    ensure!(rip == resumed_at, "handler saw rip {rip:#x}, execution resumed at {resumed_at:#x}");
    Ok(())
}

/// SSE registers hold live values across many timer interrupts; the stubs
/// must save and restore them (the handlers themselves may use SSE).
pub fn sse_survives_interrupts() -> Outcome {
    let ticks = crate::timer::ticks();
    let deadline = crate::clock::now_ns() + 2_000_000_000;
    while crate::timer::ticks() < ticks + 5 {
        let seed: u64 = 0x0123_4567_89ab_cdef ^ crate::timer::ticks();
        let out: u64;
        // SAFETY: only xmm0/xmm1 and the named GPRs are touched; the loop
        // is long enough that interrupts land inside it.
        unsafe {
            core::arch::asm!(
                "movq xmm0, {seed}",
                "movq xmm1, {seed}",
                "mov {n:e}, 200000",
                "3:",
                "pxor xmm1, xmm0",
                "pxor xmm1, xmm0",
                "dec {n:e}",
                "jnz 3b",
                "movq {out}, xmm1",
                seed = in(reg) seed, n = out(reg) _, out = lateout(reg) out,
                out("xmm0") _, out("xmm1") _,
            );
        }
        ensure!(out == seed, "xmm1 changed across interrupts: {seed:#x} -> {out:#x}");
        ensure!(crate::clock::now_ns() < deadline, "no timer interrupts while checking SSE state");
    }
    Ok(())
}

#[inline(never)]
#[allow(unconditional_recursion)] // the guard page ends it
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 512];
    frame[0] = depth as u8;
    let frame = core::hint::black_box(frame);
    // Not a tail call: the result is used after the call returns.
    recurse(depth + 1) + u64::from(frame[0])
}

pub fn stack_overflow() -> Outcome {
    let n = recurse(core::hint::black_box(0));
    Err(alloc::format!("recursion ended without overflowing ({n})"))
}

/// The same overflow where no exception stack exists (a Xen PV guest): Xen
/// cannot write the page fault's frame on the overflowed stack and crashes
/// the domain. The guard's address goes out first, so dom0 can check the
/// stopped vCPU's `cr2` against it (`cohort.sh`).
pub fn stack_overflow_pv() -> Outcome {
    let addr = crate::arch::boot::boot_stack_guard_addr();
    crate::println!("{}", figures::Event::Guard { name: "boot stack", addr });
    stack_overflow()
}

pub fn is_boot_stack_overflow(f: &Fault) -> bool {
    f.vector == PAGE_FAULT && f.guard == Some("boot stack")
}

pub fn invalid_opcode() -> Outcome {
    // SAFETY: ud2 raises #UD, which the test expects; it never returns here.
    unsafe { core::arch::asm!("ud2") };
    Err("ud2 did not fault".into())
}

pub fn is_invalid_opcode(f: &Fault) -> bool {
    f.vector == 6
}

pub fn null_pointer_write() -> Outcome {
    let null = core::hint::black_box(8usize) as *mut u64;
    // SAFETY: deliberately writes to the unmapped null page; the page fault
    // ends the test.
    unsafe { core::ptr::write_volatile(null, 1) };
    Err("write to the null page did not fault".into())
}

pub fn is_null_write(f: &Fault) -> bool {
    // Error code bit 1: the access was a write.
    f.vector == PAGE_FAULT && f.cr2 == 8 && f.error_code & 2 != 0 && f.guard == Some("null page")
}
