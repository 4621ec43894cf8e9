//! x86-64 platform code: the only kernel modules with inline assembly
//! (hypercalls live in `xen/`).

pub mod apic;
pub mod boot;
pub mod cpu;
pub mod gdt;
pub mod idt;
pub mod interrupts;
pub mod paging;
pub mod pit;
