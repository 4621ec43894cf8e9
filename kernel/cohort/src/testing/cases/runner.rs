//! Tests that must fail, each in its own way: the host harness boots them
//! and checks that it reports the failure (a runner that cannot fail proves
//! nothing).
use crate::testing::Outcome;

pub fn deliberate_failure() -> Outcome {
    Err("this test fails on purpose".into())
}

pub fn deliberate_panic() -> Outcome {
    panic!("this test panics on purpose");
}

pub fn triple_fault() -> Outcome {
    crate::arch::idt::load_empty();
    // SAFETY: with an empty IDT the breakpoint cannot be delivered: #GP,
    // then #DF, then a triple fault resets the VM, as intended.
    unsafe { core::arch::asm!("int3") };
    Err("survived an interrupt with an empty IDT".into())
}

pub fn hang() -> Outcome {
    crate::arch::cpu::halt_forever()
}
