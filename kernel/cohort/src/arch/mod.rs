//! x86-64 specifics: the PVH and PV entry stubs, the guest type's
//! privileged operations (`guest`), GDT/TSS, IDT and the interrupt path,
//! paging (and PV's, `pv`), the local APIC and the PIT. Most of the kernel's assembly
//! is here; the rest is rt's memory functions and a few tests, and the
//! hypercalls are in the `xen-abi` crate.

pub mod apic;
pub mod boot;
pub mod cpu;
pub mod gdt;
pub mod guest;
pub mod idt;
pub mod interrupts;
pub mod paging;
pub mod pit;
pub mod pv;
pub mod pv_traps;
