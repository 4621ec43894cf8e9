//! The IDT: 256 interrupt gates, each pointing at its generated stub
//! (`build.rs`), each on an IST stack so that even a fault on a broken
//! stack (overflow into a guard page) is handled on a good one.

use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;
use x86_64::VirtAddr;

const STUB_SIZE: u64 = 16;

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

/// Present, DPL 0, 64-bit interrupt gate (clears IF on entry).
const INTERRUPT_GATE: u8 = 0x8e;

static IDT: spin::Once<[Gate; 256]> = spin::Once::new();

extern "C" {
    static isr_stubs: u8;
}

/// IST index (1-based, as the gate encodes it) for each vector: exceptions
/// share IST1, the double fault has IST2, NMI and machine check IST3, and
/// external interrupts IST4, so a fault inside an interrupt handler does not
/// overwrite the interrupted handler's stack.
pub const fn ist_for(vector: u8) -> u8 {
    match vector {
        8 => 2,
        2 | 18 => 3,
        0..=31 => 1,
        _ => 4,
    }
}

pub fn init() {
    let stubs = (&raw const isr_stubs) as u64;
    let selector = super::gdt::code_selector();
    let idt = IDT.call_once(|| {
        let mut idt = [Gate::default(); 256];
        for (vector, gate) in idt.iter_mut().enumerate() {
            let addr = stubs + vector as u64 * STUB_SIZE;
            *gate = Gate {
                offset_low: addr as u16,
                selector,
                ist: ist_for(vector as u8),
                type_attr: INTERRUPT_GATE,
                offset_mid: (addr >> 16) as u16,
                offset_high: (addr >> 32) as u32,
                reserved: 0,
            };
        }
        idt
    });
    let pointer = DescriptorTablePointer {
        limit: (core::mem::size_of::<[Gate; 256]>() - 1) as u16,
        base: VirtAddr::new(idt.as_ptr() as u64),
    };
    // SAFETY: the table is 'static, fully initialised, and every gate points
    // at a stub in isr_stubs with a selector of the loaded GDT.
    unsafe { lidt(&pointer) };
}

/// Loads an empty IDT, so the next exception triple-faults. Only the test
/// of the host harness's triple-fault detection uses this.
pub fn load_empty() {
    let pointer = DescriptorTablePointer { limit: 0, base: VirtAddr::new(0) };
    // SAFETY: deliberately makes every interrupt fatal; the caller wants a
    // triple fault next.
    unsafe { lidt(&pointer) };
}
