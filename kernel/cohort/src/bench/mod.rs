//! In-guest benchmarks. Each figure is one `BENCH {json}` line on the
//! console; the host harness adds what only it can see (wall time from
//! QEMU start, image size) and collects them.

use crate::{clock, memory};
use cohort_boot::cmdline::{Bench, BenchClock};
use figures::Figure;

/// The timeline of this boot, in TSC ticks since the entry (PVH or PV).
#[derive(Clone, Copy)]
pub struct BootTimes {
    pub kernel_main_ticks: u64,
    pub ready_ticks: u64,
}

mod xen;

/// Runs one benchmark; an error means the figures could not be measured.
pub fn run(bench: Bench, times: BootTimes, clock_kind: BenchClock) -> Result<(), alloc::string::String> {
    let needs_xen = !matches!(bench, Bench::Boot);
    if needs_xen && !crate::platform::on_xen() {
        return Err(alloc::format!("bench={bench:?} needs Xen"));
    }
    match bench {
        Bench::Boot => boot(times, clock_kind),
        Bench::Xen => xen::primitives(clock_kind)?,
        Bench::EvtchnPing => xen::ping(clock_kind)?,
        Bench::EvtchnPong => xen::pong(clock_kind)?,
    }
    Ok(())
}

/// Median of `samples` (sorted in place); 0 for none.
pub fn median(samples: &mut [u64]) -> u64 {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or(0)
}

/// The boot's figures; the two times are named after the entry that ran
/// (`boot.pvh_entry_to_ready`, `boot.pv_entry_to_ready`).
fn boot(times: BootTimes, clock_kind: BenchClock) {
    let us = |ticks| clock::ticks_to_ns(ticks) as f64 / 1000.0;
    let usage = memory::usage();
    let (start, end) = memory::image_range();
    let entry = crate::arch::guest::ops().entry();
    let to_kernel_main = alloc::format!("boot.{entry}_entry_to_kernel_main");
    let to_ready = alloc::format!("boot.{entry}_entry_to_ready");
    let figures = [
        (to_kernel_main.as_str(), us(times.kernel_main_ticks), "us"),
        (to_ready.as_str(), us(times.ready_ticks), "us"),
        ("mem.heap_used_idle", usage.heap_used as f64, "bytes"),
        ("mem.frames_allocated_idle", usage.frames_allocated as f64, "frames"),
        ("mem.heap_size", usage.heap_size as f64, "bytes"),
        ("image.loaded_size", (end - start) as f64, "bytes"),
    ];
    for (name, value, unit) in figures {
        crate::println!("{}", Figure { name, path: "boot", value, unit, clock: clock_kind.as_str() });
    }
}
