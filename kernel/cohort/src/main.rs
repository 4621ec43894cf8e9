//! Cohort: a residency-aware inter-VM networking unikernel, booted as a PVH
//! guest by QEMU or Xen, or as a Xen PV guest (docs/pv.md).
//!
//! The modules form layers, each using only its own layer and those below
//! (`kernel/layers` checks it): arch and rt; memory, console, clock, fault;
//! platform and timer; net; bench and testing. This file alone wires them
//! together: it sets the hooks through which lower layers call up, and
//! hands what the platform provides (its clock, console, network device)
//! to the layers that use it.
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
mod net;
mod pci;
mod platform;
mod rt;
mod testing;
mod timer;

use alloc::string::String;
use bootinfo::BootInfo;
use cohort_boot::cmdline::{self, App, LogLevel, Mode, Options};
use cohort_boot::memmap::MemoryMap;
use log::info;
use platform::{exit, ExitStatus};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Ends the boot with a clear message when something essential is missing.
fn boot_failure(what: &str, why: impl core::fmt::Display) -> ! {
    println!("error: {what}: {why}");
    exit(ExitStatus::Failure)
}

/// The lower layers call up only through hooks, set here once before
/// anything can fault: the interrupt path reports exceptions through
/// `fault` and counts ticks in `timer`; faults and panics tell the test
/// runner, then end the kernel through the platform; the clock sleeps
/// through the platform's idle.
fn install_hooks() {
    arch::interrupts::set_handlers(arch::interrupts::Handlers { exception: fault::fatal_exception, tick: timer::on_tick });
    fault::set_hooks(fault::Hooks {
        on_fault: testing::on_fault,
        on_panic: testing::on_panic,
        stop: || exit(ExitStatus::Failure),
    });
    clock::set_idle(platform::idle);
}

/// Called by the PVH boot stub in long mode, on the boot stack.
#[no_mangle]
extern "C" fn kernel_main(start_info_paddr: u64) -> ! {
    let kernel_main_tsc = arch::cpu::rdtsc();
    install_hooks();
    let on_xen = start_cpu_and_console();
    let boot = read_boot_info(start_info_paddr, on_xen);
    start(boot, on_xen, kernel_main_tsc)
}

/// Called by the PV entry stub (`pv_start64`) in ring 3, on the boot
/// stack: `start_info` and the top of Xen's bootstrap stack, both virtual
/// addresses. No GDT or IDT of ours (Xen's flat selectors; exceptions end
/// the domain until a trap table is registered: docs/pv.md), no UART.
#[no_mangle]
extern "C" fn kernel_main_pv(start_info: u64, entry_rsp: u64) -> ! {
    let kernel_main_tsc = arch::cpu::rdtsc();
    install_hooks();
    console::init();
    // Until the console ring is registered, output goes nowhere (a domU
    // has no console_io and no port 0xe9); a failure still crashes the
    // domain, which `xl list` shows.
    let pv = platform::xen::pv::boot(start_info, entry_rsp).unwrap_or_else(|e| boot_failure("Xen PV start", e));
    println!("Cohort {VERSION}: residency-aware inter-VM networking unikernel");
    let boot = BootInfo::from_pv(pv.cmdline, pv.ram_end, pv.reserved).unwrap_or_else(|e| boot_failure("boot information", e));
    info!(
        "PV: {} pages of RAM, {} KiB mapped ({} entries and {} page tables added to the builder's map)",
        pv.nr_pages,
        pv.ram_end / 1024,
        pv.entries_added,
        pv.tables_made
    );
    start(boot, true, kernel_main_tsc)
}

/// The boot from the command line on, the same for every entry.
fn start(boot: BootInfo, on_xen: bool, kernel_main_tsc: u64) -> ! {
    let options = cmdline::parse(boot.cmdline()).unwrap_or_else(|e| {
        println!("{}", figures::Event::BootFailed { what: "kernel command line", key: e.key() });
        boot_failure("kernel command line", e)
    });
    set_log_level(options.log_level);
    let heap = memory::init(&boot.memmap, boot.reserved).unwrap_or_else(|e| boot_failure("memory", e));
    let time = start_clock_and_timer(on_xen, options.timer_hz);
    arch::guest::ops().enable_interrupts();
    if on_xen {
        platform::xen::init_services(&boot.memmap).unwrap_or_else(|e| boot_failure("Xen", e));
    }
    let times = bench::BootTimes {
        kernel_main_ticks: kernel_main_tsc.saturating_sub(arch::boot::entry_tsc()),
        ready_ticks: arch::cpu::rdtsc().saturating_sub(arch::boot::entry_tsc()),
    };
    log_boot_summary(&boot, heap, &time, times);
    run(&options, &boot.memmap, times)
}

/// GDT, IDT and the console, then the banner; true on Xen.
fn start_cpu_and_console() -> bool {
    // Exceptions are reported from the first instruction on (without an
    // IDT, any fault would be a silent triple fault).
    arch::gdt::init();
    arch::idt::init();
    console::init();
    // On Xen, the PV console replaces port 0xe9 as soon as hypercalls work,
    // so even a command-line error shows in `xl console` and its logs.
    let on_xen = platform::detect();
    if on_xen {
        platform::xen::console::register();
    }
    // The harnesses time boot to this line; on Xen it also goes to port
    // 0xe9, which reaches `xl dmesg` without xenconsoled's delay.
    println!("Cohort {VERSION}: residency-aware inter-VM networking unikernel");
    if on_xen {
        console::print_debug_port(format_args!("Cohort {VERSION}: kernel_main\n"));
    }
    on_xen
}

/// hvm_start_info, its command line and memory map, copied; on Xen, whose
/// hvm_start_info has no memory map, the map from XENMEM_memory_map.
fn read_boot_info(start_info_paddr: u64, on_xen: bool) -> BootInfo {
    let mut boot = BootInfo::copy_from(start_info_paddr).unwrap_or_else(|e| boot_failure("boot information", e));
    if boot.memmap.regions().is_empty() {
        if !on_xen {
            boot_failure("boot information", "no memory map in hvm_start_info");
        }
        boot.memmap = platform::xen::memory_map().unwrap_or_else(|e| boot_failure("XENMEM_memory_map", e));
    }
    boot
}

fn set_log_level(level: LogLevel) {
    log::set_max_level(match level {
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
        LogLevel::Trace => log::LevelFilter::Trace,
    });
}

/// What keeps time, for the boot summary.
struct Timekeeping {
    tsc_hz: u64,
    tsc_source: &'static str,
    timer_hz: u32,
    timer_source: &'static str,
}

/// The clock (Xen's pvclock, or the TSC calibrated against the PIT) and
/// the periodic timer at `hz` (Xen's one-shot timer, or the local APIC's).
/// Interrupts stay off.
fn start_clock_and_timer(on_xen: bool, hz: u32) -> Timekeeping {
    if on_xen {
        platform::xen::init_events().unwrap_or_else(|e| boot_failure("Xen", e));
        let tsc_hz = clock::use_source(platform::xen::time::pvclock());
        timer::init_xen(hz).unwrap_or_else(|e| boot_failure("Xen timer", e));
        Timekeeping {
            tsc_hz,
            tsc_source: "from Xen's pvclock scale",
            timer_hz: hz,
            timer_source: "Xen one-shot timer (VIRQ_TIMER)",
        }
    } else {
        let tsc_hz = clock::init_pit().unwrap_or_else(|e| boot_failure("clock", e));
        timer::init(hz);
        Timekeeping { tsc_hz, tsc_source: "calibrated against the PIT", timer_hz: hz, timer_source: "local APIC timer" }
    }
}

fn log_boot_summary(boot: &BootInfo, heap: memory::HeapRegion, time: &Timekeeping, times: bench::BootTimes) {
    match &boot.start_info {
        Some(start_info) => info!("hvm_start_info version {}; command line: `{}`", start_info.version, boot.cmdline()),
        None => info!("PV start_info; command line: `{}`", boot.cmdline()),
    }
    log_memory_map(&boot.memmap);
    info!("TSC: {}.{:03} MHz ({})", time.tsc_hz / 1_000_000, time.tsc_hz / 1000 % 1000, time.tsc_source);
    info!(
        "{} entry -> kernel_main: {} us; -> ready: {} us",
        arch::guest::ops().entry(),
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
    info!("timer: {} Hz, {}", time.timer_hz, time.timer_source);
    println!(
        "{}",
        figures::Event::Booted {
            entry: arch::guest::ops().entry(),
            ram_kib: boot.memmap.total_ram() / 1024,
            tsc_hz: time.tsc_hz,
            heap_kib: heap.heap_size / 1024,
            frames_free: usage.frames_free as u64,
            timer_hz: time.timer_hz,
        }
    );
}

fn log_memory_map(map: &MemoryMap) {
    info!("memory map: {} entries, {} KiB RAM, RAM ends at {:#x}", map.regions().len(), map.total_ram() / 1024, map.ram_end());
    for region in map.regions() {
        info!("  {region}");
    }
    if map.dropped() > 0 {
        log::warn!("memory map: {} entries beyond the first {} ignored", map.dropped(), map.regions().len());
    }
}

/// What the command line asked for: the summary alone, the tests, a
/// network application or a benchmark; then the kernel ends.
fn run(options: &Options<'_>, ram: &MemoryMap, times: bench::BootTimes) -> ! {
    match options.mode {
        Mode::Summary => {
            info!("nothing more to do: powering off");
            exit(ExitStatus::Success)
        }
        Mode::Test(selection) => testing::run(selection),
        Mode::App(app) => match run_app(app, options, ram) {
            Ok(()) => exit(ExitStatus::Success),
            Err(e) => boot_failure("app", e),
        },
        Mode::Bench(which) => match bench::run(which, times, options.bench_clock) {
            Ok(()) => exit(ExitStatus::Success),
            Err(e) => boot_failure("benchmark", e),
        },
    }
}

/// Runs `app` on the platform's network device until it ends (or until
/// the platform asks the guest to stop).
fn run_app(app: App, options: &Options<'_>, ram: &MemoryMap) -> Result<(), String> {
    let (net, clock, stop) = (&options.net, options.bench_clock, &mut platform::stop_requested);
    match platform::open_net(options, ram)? {
        platform::Nic::Xen(device) => net::run(app, device, net, clock, stop),
        platform::Nic::Virtio(device) => net::run(app, device, net, clock, stop),
    }
}
