use crate::ensure;
use crate::testing::Outcome;
use crate::{clock, timer};

use crate::clock::SECOND;

pub fn timer_ticks() -> Outcome {
    // Where the CPU takes interrupts at all (not as a Xen PV guest, whose
    // tick is a polled event), main.rs has turned them on.
    let cpu = crate::arch::guest::ops();
    ensure!(cpu.interrupts_enabled() || !cpu.takes_interrupts(), "interrupts are disabled");
    let start_ticks = timer::ticks();
    let start = clock::now_ns();
    while timer::ticks() < start_ticks + 10 {
        ensure!(clock::now_ns() - start < 5 * SECOND, "only {} ticks in 5 s", timer::ticks() - start_ticks);
        crate::platform::idle();
    }
    let elapsed = clock::now_ns() - start;
    let ticks = timer::ticks() - start_ticks;
    let stray = crate::arch::interrupts::unexpected();
    ensure!(stray == 0, "{stray} interrupts arrived on unused vectors");
    // Both the APIC timer and the TSC run on the emulator's clock, so the
    // period is checked against the clock, loosely (factor 4 either way).
    let period = elapsed / ticks;
    let expected = SECOND / u64::from(timer::hz());
    ensure!(period > expected / 4 && period < expected * 4, "tick period {period} ns, configured {expected} ns");
    Ok(())
}

pub fn clock_monotonic() -> Outcome {
    let mut last = clock::now_ns();
    ensure!(last > 0, "clock reads 0 after calibration");
    for i in 0..20_000 {
        let now = clock::now_ns();
        ensure!(now >= last, "clock went back at read {i}: {last} -> {now}");
        last = now;
    }
    // The clock advances with the timer: 3 ticks lie on a grid 2 periods
    // apart at least. Only 1 period is required: under a loaded nested
    // host the clock (pvclock, kept monotonic) may lag Xen's timer by
    // milliseconds (seen: 12.2 ms for 3 ticks at 100 Hz).
    let t0 = clock::now_ns();
    let ticks = timer::ticks();
    while timer::ticks() < ticks + 3 {
        crate::platform::idle();
    }
    let elapsed = clock::now_ns() - t0;
    let period = SECOND / u64::from(timer::hz());
    ensure!(elapsed >= period, "3 ticks took only {elapsed} ns (period {period} ns)");
    Ok(())
}
