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
mod net;
mod pci;
mod platform;
mod rt;
mod testing;
mod timer;

use bootinfo::BootInfo;
use alloc::string::String;
use cohort_boot::cmdline::{self, App, LogLevel, Mode, Options};
use cohort_boot::memmap::MemoryMap;
use log::info;
use platform::{exit, ExitStatus};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

static BOOT_INFO: spin::Once<BootInfo> = spin::Once::new();

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

/// Called by the boot stub in long mode, on the boot stack.
#[no_mangle]
extern "C" fn kernel_main(start_info_paddr: u64) -> ! {
    let kernel_main_tsc = arch::cpu::rdtsc();
    install_hooks();
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

    let mut boot = BootInfo::copy_from(start_info_paddr).unwrap_or_else(|e| boot_failure("boot information", e));
    if boot.memmap.regions().is_empty() {
        if !on_xen {
            boot_failure("boot information", "no memory map in hvm_start_info");
        }
        boot.memmap = platform::xen::memory_map().unwrap_or_else(|e| boot_failure("XENMEM_memory_map", e));
    }
    let boot = BOOT_INFO.call_once(|| boot);
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
    let (tsc_hz, timer_source) = if on_xen {
        platform::xen::init_events().unwrap_or_else(|e| boot_failure("Xen", e));
        let hz = clock::use_source(platform::xen::time::pvclock());
        timer::init_xen(options.timer_hz).unwrap_or_else(|e| boot_failure("Xen timer", e));
        (hz, "Xen one-shot timer (VIRQ_TIMER)")
    } else {
        let hz = clock::init_pit().unwrap_or_else(|e| boot_failure("clock", e));
        timer::init(options.timer_hz);
        (hz, "local APIC timer")
    };
    x86_64::instructions::interrupts::enable();
    if on_xen {
        platform::xen::init_services(&boot.memmap).unwrap_or_else(|e| boot_failure("Xen", e));
    }
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
    let tsc_source = if on_xen { "from Xen's pvclock scale" } else { "calibrated against the PIT" };
    info!("TSC: {}.{:03} MHz ({tsc_source})", tsc_hz / 1_000_000, tsc_hz / 1000 % 1000);
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
    info!("timer: {} Hz, {timer_source}", options.timer_hz);

    match options.mode {
        Mode::Summary => {
            info!("nothing more to do: powering off");
            exit(ExitStatus::Success)
        }
        Mode::Test(selection) => testing::run(selection),
        Mode::App(app) => match run_app(app, &options, &boot.memmap) {
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
        platform::Nic::Xen(device) => net::app::run(app, device, net, clock, stop),
        platform::Nic::Virtio(device) => net::app::run(app, device, net, clock, stop),
    }
}
