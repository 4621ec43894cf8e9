//! The long-mode GDT and the TSS whose interrupt stack table gives every
//! interrupt vector its own known-good stack (see `idt::ist_for`).

use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

/// Stacks for IST1..=4, each above an unmapped guard page.
pub const IST_COUNT: usize = 4;
const IST_STACK_SIZE: usize = 32 * 1024;

#[repr(C, align(4096))]
pub struct GuardedStack {
    guard: [u8; 4096],
    stack: [u8; IST_STACK_SIZE],
}

// Only the CPU writes these stacks (on interrupt entry); Rust never touches
// them, so a `static mut` is not read or written through a reference.
static mut IST_STACKS: [GuardedStack; IST_COUNT] =
    [const { GuardedStack { guard: [0; 4096], stack: [0; IST_STACK_SIZE] } }; IST_COUNT];

static TSS: spin::Once<TaskStateSegment> = spin::Once::new();
static GDT: spin::Once<(GlobalDescriptorTable, SegmentSelector, SegmentSelector, SegmentSelector)> = spin::Once::new();

/// (guard page address, stack top) of IST stack `i` (0-based).
pub fn ist_stack(i: usize) -> (u64, u64) {
    let base = (&raw const IST_STACKS) as u64 + (i * core::mem::size_of::<GuardedStack>()) as u64;
    (base, base + core::mem::size_of::<GuardedStack>() as u64)
}

pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        for i in 0..IST_COUNT {
            tss.interrupt_stack_table[i] = VirtAddr::new(ist_stack(i).1);
        }
        tss
    });
    let (gdt, code, data, tss_sel) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss_sel = gdt.append(Descriptor::tss_segment(tss));
        (gdt, code, data, tss_sel)
    });
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded, whose descriptors are
    // a 64-bit code segment, a data segment and the 'static TSS.
    unsafe {
        CS::set_reg(*code);
        DS::set_reg(*data);
        ES::set_reg(*data);
        SS::set_reg(*data);
        load_tss(*tss_sel);
    }
}

pub fn code_selector() -> u16 {
    GDT.get().map_or(0x08, |g| g.1 .0)
}
