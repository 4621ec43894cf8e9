//! Links the kernel with its linker script and generates the 256 interrupt
//! entry stubs (writing them out by hand would be 256 near-identical blocks).
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
}
