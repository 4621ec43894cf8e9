//! Small CPU helpers.

/// Reads the time-stamp counter. `lfence` keeps earlier instructions from
/// being counted after the read (Intel SDM, RDTSC).
#[inline]
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: lfence and rdtsc only read the TSC into eax/edx.
    unsafe {
        core::arch::asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags));
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Halts with interrupts off, forever (under Xen PV: ends the domain).
pub fn halt_forever() -> ! {
    super::guest::ops().halt_forever()
}
