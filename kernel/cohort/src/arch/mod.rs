//! x86-64 specifics: the PVH entry stub, GDT/TSS, IDT and the interrupt
//! path, paging, the local APIC and the PIT. Most of the kernel's assembly
//! is here; the rest is rt's memory functions and a few tests, and the
//! hypercalls are in the `xen-abi` crate.

pub mod apic;
pub mod boot;
pub mod cpu;
pub mod gdt;
pub mod idt;
pub mod interrupts;
pub mod paging;
pub mod pit;
