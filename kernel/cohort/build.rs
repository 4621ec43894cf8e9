//! Links the kernel with its linker script and generates the 256 interrupt
//! entry stubs (writing them out by hand would be 256 near-identical blocks),
//! and the 32 exception stubs of the Xen PV trap table (`arch::pv_traps`).
use std::fmt::Write as _;
use std::path::PathBuf;

/// Vectors for which the CPU pushes an error code (Intel SDM vol. 3, 6.13).
const HAS_ERROR_CODE: [u8; 10] = [8, 10, 11, 12, 13, 14, 17, 21, 29, 30];

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let script = dir.join("linker.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());

    // Each stub is 16-byte aligned so the IDT can compute its address.
    let mut asm = String::from(".section .text.isr, \"ax\"\n.code64\n.p2align 4\n.global isr_stubs\nisr_stubs:\n");
    for vector in 0..=255u8 {
        asm.push_str(".p2align 4\n");
        if !HAS_ERROR_CODE.contains(&vector) {
            asm.push_str("    pushq $0\n");
        }
        writeln!(asm, "    pushq ${vector}\n    jmp isr_common").expect("writing to a String");
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("isr_stubs.s"), asm).expect("writing isr_stubs.s");
    std::fs::write(out.join("pv_trap_stubs.s"), pv_trap_stubs()).expect("writing pv_trap_stubs.s");
}

/// Xen PV delivers an exception with `rcx` and `r11` pushed below the
/// CPU's frame, and with the RPL of the frame's CS cleared ("kernel
/// context", Xen's `create_bounce_frame`). Each stub puts back and drops
/// `rcx`/`r11`, sets RPL 3 again in the frame's CS and SS (the kernel runs
/// in ring 3, and `iretq` to itself needs them), and goes on at the native
/// stub of its vector. 32 bytes apart: the trap table computes addresses
/// (`.org` fails the build if a stub outgrows its slot).
fn pv_trap_stubs() -> String {
    let mut asm = String::from(".section .text.pv_traps, \"ax\"\n.code64\n.p2align 5\n.global pv_trap_stubs\npv_trap_stubs:\n");
    for vector in 0..32u8 {
        // Past rip (and the error code): CS, then RFLAGS, RSP, SS.
        let cs = if HAS_ERROR_CODE.contains(&vector) { 16 } else { 8 };
        writeln!(
            asm,
            ".org pv_trap_stubs + {vector} * 32\n    movq (%rsp), %rcx\n    movq 8(%rsp), %r11\n    addq $16, %rsp\n    orb $3, {cs}(%rsp)\n    orb $3, {ss}(%rsp)\n    jmp isr_stubs + {vector} * 16",
            ss = cs + 24
        )
        .expect("writing to a String");
    }
    asm.push_str(".org pv_trap_stubs + 32 * 32\n");
    asm
}
