//! Cohort: a residency-aware inter-VM networking unikernel, booted as a PVH
//! guest by QEMU or Xen.
#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod bench;
mod bootinfo;
mod clock;
mod console;
mod fault;
mod memory;
mod platform;
mod rt;
mod testing;
mod timer;

use bootinfo::BootInfo;
use cohort_boot::cmdline::{self, LogLevel, Mode};
use log::info;
use platform::{exit, ExitStatus};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

static BOOT_INFO: spin::Once<BootInfo> = spin::Once::new();

/// Ends the boot with a clear message when something essential is missing.
fn boot_failure(what: &str, why: impl core::fmt::Display) -> ! {
    println!("error: {what}: {why}");
    exit(ExitStatus::Failure)
}

/// Called by the boot stub in long mode, on the boot stack.
#[no_mangle]
extern "C" fn kernel_main(start_info_paddr: u64) -> ! {
    let kernel_main_tsc = arch::cpu::rdtsc();
    console::init();
    // The host harness times boot to this line.
    println!("Cohort {VERSION}: residency-aware inter-VM networking unikernel");
    arch::gdt::init();
    arch::idt::init();

    let boot = match BootInfo::copy_from(start_info_paddr) {
        Ok(info) => BOOT_INFO.call_once(|| info),
        Err(e) => boot_failure("boot information", e),
    };
    let options = match cmdline::parse(boot.cmdline()) {
        Ok(options) => options,
        Err(e) => boot_failure("kernel command line", e),
    };
    log::set_max_level(match options.log_level {
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
        LogLevel::Trace => log::LevelFilter::Trace,
    });

    let heap = memory::init(&boot.memmap).unwrap_or_else(|e| boot_failure("memory", e));
    let tsc_hz = clock::init().unwrap_or_else(|e| boot_failure("clock", e));
    let apic_rate = timer::init(options.timer_hz);
    x86_64::instructions::interrupts::enable();
    let times = bench::BootTimes {
        kernel_main_ticks: kernel_main_tsc.saturating_sub(arch::boot::entry_tsc()),
        ready_ticks: arch::cpu::rdtsc().saturating_sub(arch::boot::entry_tsc()),
    };

    info!("hvm_start_info version {}; command line: `{}`", boot.start_info.version, boot.cmdline());
    let map = &boot.memmap;
    info!("memory map: {} entries, {} KiB RAM, RAM ends at {:#x}", map.regions().len(), map.total_ram() / 1024, map.ram_end());
    for region in map.regions() {
        info!("  {region}");
    }
    if map.dropped() > 0 {
        log::warn!("memory map: {} entries beyond the first {} ignored", map.dropped(), map.regions().len());
    }
    info!("TSC: {}.{:03} MHz (calibrated against the PIT)", tsc_hz / 1_000_000, tsc_hz / 1000 % 1000);
    info!(
        "PVH entry -> kernel_main: {} us; -> ready: {} us",
        clock::ticks_to_ns(times.kernel_main_ticks) / 1000,
        clock::ticks_to_ns(times.ready_ticks) / 1000
    );
    let usage = memory::usage();
    info!(
        "heap: {} KiB at {:#x}; frames: {} allocated, {} free",
        heap.heap_size / 1024,
        heap.heap_base,
        usage.frames_allocated,
        usage.frames_free
    );
    info!("timer: {} Hz on the local APIC ({} counts/s)", options.timer_hz, apic_rate);

    match options.mode {
        Mode::Summary => {
            info!("nothing more to do: powering off");
            exit(ExitStatus::Success)
        }
        Mode::Test(selection) => testing::run(selection),
        Mode::Bench(which) => {
            bench::run(which, times, options.bench_clock);
            exit(ExitStatus::Success)
        }
    }
}
