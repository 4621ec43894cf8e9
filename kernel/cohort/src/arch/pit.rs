//! TSC calibration against the 8254 PIT's channel 2 (plain QEMU; a Xen PVH
//! guest has no PIT and uses pvclock instead).

use x86_64::instructions::port::Port;

const PIT_HZ: u64 = 1_193_182;

/// Measures the TSC rate over `ms` milliseconds of PIT time. `None` when the
/// PIT does not count (absent device, or a count that ends at once).
pub fn calibrate_tsc(ms: u64) -> Option<u64> {
    let latch = PIT_HZ * ms / 1000;
    if latch == 0 || latch > 0xffff {
        return None;
    }
    let mut gate: Port<u8> = Port::new(0x61);
    let mut command: Port<u8> = Port::new(0x43);
    let mut channel2: Port<u8> = Port::new(0x42);
    // SAFETY: ports 0x42/0x43/0x61 are the PIT's channel 2 and its gate; no
    // other code in Cohort uses them.
    unsafe {
        // Gate high, speaker off; channel 2, lobyte/hibyte, mode 0.
        let g = gate.read();
        gate.write((g & !0x02) | 0x01);
        command.write(0xb0);
        channel2.write(latch as u8);
        channel2.write((latch >> 8) as u8);
        if gate.read() & 0x20 != 0 {
            return None; // output already high: nothing is counting
        }
        let start = super::cpu::rdtsc();
        // Bounded: a PIT that never fires must not hang the boot.
        let mut spins: u64 = 0;
        while gate.read() & 0x20 == 0 {
            spins += 1;
            if spins > 200_000_000 {
                return None;
            }
        }
        let ticks = super::cpu::rdtsc() - start;
        Some(ticks * PIT_HZ / latch)
    }
}
