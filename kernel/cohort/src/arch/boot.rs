//! The image's two entries, each with its ELF notes:
//!
//! - PVH (QEMU and Xen): `pvh_start32`, the 32-bit stub that builds
//!   identity-mapped page tables, enters long mode with SSE enabled, and
//!   calls `kernel_main` on the boot stack. Entry state (Xen
//!   `docs/misc/pvh.pandoc`): 32-bit protected mode, flat segments, paging
//!   off, interrupts off, `%ebx` = physical address of `hvm_start_info`.
//! - Xen PV: `pv_start64`, which Xen's domain builder enters in 64-bit
//!   mode, ring 3, on its own page tables (read-only to us) mapping the
//!   image and the bootstrap area at virtual = pseudo-physical address
//!   (VIRT_BASE and PADDR_OFFSET 0: the image is linked at 1 MiB and loaded
//!   there, as for PVH), `%rsi` = virtual address of `start_info`, `%rsp`
//!   the top of a bootstrap stack page (`public/xen.h`). It switches to the
//!   boot stack and calls `kernel_main_pv`. See docs/pv.md.
//!
//! Both share the hypercall page: the PV builder fills it (HYPERCALL_PAGE
//! note), a PVH guest asks Xen to through an MSR.

core::arch::global_asm!(
    r#"
    .section .note.Xen, "a"
    .p2align 2
    .long 4                     /* namesz: "Xen\0" */
    .long 8                     /* descsz: 8-byte address in an ELF64 */
    .long 18                    /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .p2align 2
    .quad pvh_start32
    .p2align 2

    /* The PV notes (public/elfnote.h): entry, hypercall page, the
       virtual layout (virtual = pseudo-physical), and what the generic
       loader of libxenguest insists on. */
    .long 4, 8, 1               /* XEN_ELFNOTE_ENTRY */
    .asciz "Xen"
    .quad pv_start64
    .long 4, 8, 2               /* XEN_ELFNOTE_HYPERCALL_PAGE */
    .asciz "Xen"
    .quad hypercall_page
    .long 4, 8, 3               /* XEN_ELFNOTE_VIRT_BASE */
    .asciz "Xen"
    .quad 0
    .long 4, 8, 4               /* XEN_ELFNOTE_PADDR_OFFSET */
    .asciz "Xen"
    .quad 0
    .long 4, 8, 5               /* XEN_ELFNOTE_XEN_VERSION */
    .asciz "Xen"
    .asciz "xen-3.0"
    .long 4, 7, 6               /* XEN_ELFNOTE_GUEST_OS */
    .asciz "Xen"
    .asciz "Cohort"
    .p2align 2
    .long 4, 8, 8               /* XEN_ELFNOTE_LOADER */
    .asciz "Xen"
    .asciz "generic"

    .section .text.hypercall_page, "ax"
    .p2align 12
    .global hypercall_page
hypercall_page:
    .fill 4096, 1, 0xcc         /* int3 until Xen fills it */

    .section .text.boot, "ax"
    .code64
    .global pv_start64
pv_start64:
    cld
    rdtsc
    movl %eax, boot_entry_tsc(%rip)
    movl %edx, boot_entry_tsc + 4(%rip)
    movb $1, boot_guest_kind(%rip)
    /* libxenguest has zeroed .bss (and filled hypercall_page, in .text,
       which zeroing must not touch): nothing to clear here. */
    movq %rsi, %r12             /* start_info */
    movq %rsp, %r13             /* the top of Xen's bootstrap stack */
    /* Clear the virtual CR0.TS: Rust code uses SSE from its first line. */
    xorl %edi, %edi
    call hypercall_page + {fpu_taskswitch} * 32    /* fpu_taskswitch(0) */
    leaq boot_stack_top(%rip), %rsp
    xorl %ebp, %ebp
    movq %r12, %rdi
    movq %r13, %rsi
    call kernel_main_pv
    ud2

    .section .text.boot, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    cli
    cld
    /* First thing: the TSC at entry, the zero of the boot timeline. */
    rdtsc
    movl %eax, boot_entry_tsc
    movl %edx, boot_entry_tsc + 4

    /* Zero .bss (loaders do, but the stub does not rely on it), 4 bytes
       at a time: the linker script aligns both ends. %ebx is kept. */
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    shrl $2, %ecx
    xorl %eax, %eax
    rep stosl

    /* PML4[0] -> PDPT; PDPT[0..4] -> 4 page directories of 2 MiB pages:
       the first 4 GiB identity mapped, including the local APIC. */
    movl $boot_pdpt, %eax
    orl $0x3, %eax
    movl %eax, boot_pml4
    xorl %ecx, %ecx
.Lfill_pdpt:
    movl %ecx, %eax
    shll $12, %eax
    addl $boot_pd, %eax
    orl $0x3, %eax
    movl %eax, boot_pdpt(,%ecx,8)
    incl %ecx
    cmpl $4, %ecx
    jb .Lfill_pdpt

    xorl %ecx, %ecx
.Lfill_pd:
    movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax             /* present, writable, 2 MiB */
    movl %eax, boot_pd(,%ecx,8)
    movl %ecx, %eax
    shrl $11, %eax              /* bits 32.. of the frame address */
    movl %eax, boot_pd + 4(,%ecx,8)
    incl %ecx
    cmpl $2048, %ecx
    jb .Lfill_pd

    /* CR4: PAE | OSFXSR | OSXMMEXCPT (SSE usable, since core uses it). */
    movl %cr4, %eax
    orl $((1 << 5) | (1 << 9) | (1 << 10)), %eax
    movl %eax, %cr4
    movl $boot_pml4, %eax
    movl %eax, %cr3
    /* EFER.LME */
    movl $0xc0000080, %ecx
    rdmsr
    orl $(1 << 8), %eax
    wrmsr
    /* CR0: PG | MP | PE, clear EM and TS so SSE does not trap. */
    movl %cr0, %eax
    andl $~((1 << 2) | (1 << 3)), %eax
    orl $((1 << 31) | (1 << 1) | 1), %eax
    movl %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $.Llong_mode

    .code64
.Llong_mode:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorl %eax, %eax
    movw %ax, %fs
    movw %ax, %gs
    movq $boot_stack_top, %rsp
    xorl %ebp, %ebp
    movl %ebx, %edi             /* zero-extends: the high half is undefined */
    call kernel_main
    ud2

    .section .rodata.boot, "a"
    .p2align 3
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff    /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff    /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .quad boot_gdt

    .section .data.boot, "aw"
    .p2align 3
    .global boot_entry_tsc
boot_entry_tsc:
    .quad 0
    /* 0: PVH (or QEMU's PVH loader), 1: Xen PV; see arch::guest. */
    .global boot_guest_kind
boot_guest_kind:
    .byte 0

    .section .bss.boot, "aw", @nobits
    .p2align 12
    .global boot_pml4
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4096 * 4
    /* Unmapped once paging::protect_guards runs: an overflow faults here. */
    .global boot_stack_guard
boot_stack_guard:
    .skip 4096
    .global boot_stack_bottom
boot_stack_bottom:
    .skip 128 * 1024
    .global boot_stack_top
boot_stack_top:
"#,
    fpu_taskswitch = const xen_abi::abi::ops::nr::FPU_TASKSWITCH,
    options(att_syntax)
);

extern "C" {
    static boot_entry_tsc: u64;
    static boot_guest_kind: u8;
    static boot_stack_guard: u8;
    static hypercall_page: u8;
}

/// Which entry ran: 0 PVH, 1 Xen PV.
pub fn entry_kind() -> u8 {
    // SAFETY: written once by the entry stub before any Rust code runs.
    unsafe { core::ptr::read_volatile(&raw const boot_guest_kind) }
}

/// The page of hypercall stubs (in .text, page-aligned).
pub fn hypercall_page_addr() -> u64 {
    (&raw const hypercall_page) as u64
}

/// TSC value at the first instructions of `pvh_start32` or `pv_start64`.
pub fn entry_tsc() -> u64 {
    // SAFETY: written once by the boot stub before any Rust code runs.
    unsafe { core::ptr::read_volatile(&raw const boot_entry_tsc) }
}

/// Address of the boot stack's guard page.
pub fn boot_stack_guard_addr() -> u64 {
    (&raw const boot_stack_guard) as u64
}
