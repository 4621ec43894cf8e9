//! The local APIC (xAPIC, memory-mapped) as the timer interrupt source, with
//! the legacy 8259 PICs masked.

use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::instructions::port::Port;
use x86_64::registers::model_specific::Msr;

const IA32_APIC_BASE: u32 = 0x1b;
const APIC_GLOBAL_ENABLE: u64 = 1 << 11;

mod reg {
    pub const EOI: u64 = 0xb0;
    pub const SPURIOUS: u64 = 0xf0;
    pub const LVT_TIMER: u64 = 0x320;
    pub const TIMER_INITIAL: u64 = 0x380;
    pub const TIMER_CURRENT: u64 = 0x390;
    pub const TIMER_DIVIDE: u64 = 0x3e0;
}

const LVT_MASKED: u32 = 1 << 16;
const LVT_PERIODIC: u32 = 1 << 17;
const DIVIDE_BY_16: u32 = 0b0011;

/// Base address of the APIC registers; 0 until `init`.
static BASE: AtomicU64 = AtomicU64::new(0);

fn write(offset: u64, value: u32) {
    let base = BASE.load(Ordering::Relaxed);
    if base == 0 {
        return;
    }
    // SAFETY: `base` is the APIC's MMIO page from IA32_APIC_BASE, identity
    // mapped; `offset` is one of the 32-bit registers in `reg`.
    unsafe { core::ptr::write_volatile((base + offset) as *mut u32, value) }
}

fn read(offset: u64) -> u32 {
    let base = BASE.load(Ordering::Relaxed);
    if base == 0 {
        return 0;
    }
    // SAFETY: as in `write`.
    unsafe { core::ptr::read_volatile((base + offset) as *const u32) }
}

/// Masks both 8259 PICs and software-enables the local APIC (a Xen PV
/// guest has neither: nothing to do).
pub fn init() {
    if !super::guest::ops().takes_interrupts() {
        return;
    }
    // SAFETY: 0x21/0xa1 are the PICs' mask registers; masking every line
    // only stops legacy interrupts, which Cohort does not use.
    unsafe {
        Port::<u8>::new(0x21).write(0xff);
        Port::<u8>::new(0xa1).write(0xff);
    }
    let mut msr = Msr::new(IA32_APIC_BASE);
    // SAFETY: IA32_APIC_BASE exists on every x86-64 CPU; setting the global
    // enable bit keeps the base where it is.
    let base = unsafe {
        let value = msr.read();
        msr.write(value | APIC_GLOBAL_ENABLE);
        value & 0x000f_ffff_ffff_f000
    };
    BASE.store(base, Ordering::Relaxed);
    write(reg::SPURIOUS, 0x100 | u32::from(super::interrupts::SPURIOUS_VECTOR));
}

pub fn end_of_interrupt() {
    write(reg::EOI, 0);
}

/// APIC timer counts per second at divide-by-16, measured against `wait`
/// (which must busy-wait the given number of nanoseconds).
pub fn measure_timer_rate(wait_ns: u64, wait: impl FnOnce(u64)) -> u64 {
    write(reg::TIMER_DIVIDE, DIVIDE_BY_16);
    write(reg::LVT_TIMER, LVT_MASKED);
    write(reg::TIMER_INITIAL, u32::MAX);
    wait(wait_ns);
    let elapsed = u64::from(u32::MAX - read(reg::TIMER_CURRENT));
    write(reg::TIMER_INITIAL, 0);
    elapsed * 1_000_000_000 / wait_ns
}

/// Starts the periodic timer on `vector` every `count` timer counts.
pub fn start_periodic(vector: u8, count: u32) {
    write(reg::TIMER_DIVIDE, DIVIDE_BY_16);
    write(reg::LVT_TIMER, LVT_PERIODIC | u32::from(vector));
    write(reg::TIMER_INITIAL, count.max(1));
}
