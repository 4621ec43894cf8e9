//! The console: COM1's 16550 when there is one, else QEMU/Xen's debug port
//! 0xe9, until the platform registers an output of its own (Xen's PV
//! console). Everything logs through the `log` facade into it.

use crate::arch::guest::without_interrupts;
use core::fmt::{self, Write};
use uart::uart::{Uart, COM1};
use x86_64::instructions::port::Port;

/// An output the platform provides (Xen's PV console ring). It registers
/// itself with [`set_output`] once it works: the console sits below the
/// platform and knows it only through this trait. Calls come under the
/// console's lock, one at a time.
pub trait Output: Sync {
    fn write(&self, bytes: &[u8]);
    /// Waits (bounded) until the consumer has everything written so far.
    fn flush(&self) {}
}

enum Sink {
    Uart(Uart),
    /// Port 0xe9: QEMU's debugcon and Xen's `(dN)` guest log; the early
    /// console on Xen, until the PV console ring is up.
    DebugPort,
    Output(&'static dyn Output),
}

/// Writes to port 0xe9 whatever the console is.
pub fn print_debug_port(args: fmt::Arguments<'_>) {
    let _ = Sink::DebugPort.write_fmt(args);
}

impl Sink {
    fn write(&mut self, bytes: &[u8]) {
        match self {
            Sink::Uart(uart) => uart.write(bytes),
            Sink::Output(output) => output.write(bytes),
            // A PV guest has no I/O ports (`out` would fault): nothing.
            Sink::DebugPort if !crate::arch::guest::ops().io_ports() => {}
            Sink::DebugPort => {
                let mut port: Port<u8> = Port::new(0xe9);
                for &b in bytes {
                    // SAFETY: 0xe9 is the debug console port; writes have no
                    // other effect.
                    unsafe { port.write(b) };
                }
            }
        }
    }
}

impl Write for Sink {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write(s.as_bytes());
        Ok(())
    }
}

static CONSOLE: spin::Mutex<Option<Sink>> = spin::Mutex::new(None);

/// Probes the UART and installs the logger.
pub fn init() {
    // No I/O ports as a Xen PV guest: no UART to probe.
    let uart = if crate::arch::guest::ops().io_ports() {
        // SAFETY: COM1's ports belong to the console alone.
        unsafe { Uart::probe(COM1) }
    } else {
        None
    };
    let sink = uart.map_or(Sink::DebugPort, Sink::Uart);
    *CONSOLE.lock() = Some(sink);
    // Fails only if a logger is already set, which init order rules out.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
}

/// Makes `output` the console (instead of the UART or port 0xe9).
pub fn set_output(output: &'static dyn Output) {
    without_interrupts(|| *CONSOLE.lock() = Some(Sink::Output(output)));
}

/// Waits until the console's consumer has everything (Xen's PV console is
/// read asynchronously by dom0).
pub fn flush() {
    if CONSOLE.is_locked() {
        return;
    }
    without_interrupts(|| {
        if let Some(Sink::Output(output)) = CONSOLE.lock().as_ref() {
            output.flush();
        }
    });
}

/// Writes formatted text as one unit (no interleaving with other writers).
pub fn print(args: fmt::Arguments<'_>) {
    without_interrupts(|| match CONSOLE.lock().as_mut() {
        Some(sink) => {
            let _ = sink.write_fmt(args);
        }
        // Before init (an early fault): the debug port needs no setup.
        None => {
            let _ = Sink::DebugPort.write_fmt(args);
        }
    });
}

/// For the fault and panic paths: the interrupted code may hold the lock
/// and will never run again, so the lock is broken rather than waited for.
pub fn print_emergency(args: fmt::Arguments<'_>) {
    if CONSOLE.is_locked() {
        // SAFETY: called only on paths that end the kernel; the holder never
        // resumes, so nobody observes the broken critical section.
        unsafe { CONSOLE.force_unlock() };
    }
    print(args);
}

#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::console::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

#[macro_export]
macro_rules! eprintln_emergency {
    ($($arg:tt)*) => {
        $crate::console::print_emergency(format_args!("{}\n", format_args!($($arg)*)))
    };
}

struct Logger;
static LOGGER: Logger = Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let ns = crate::clock::now_ns();
        let target = record.target().strip_prefix("cohort::").unwrap_or(record.target());
        print(format_args!(
            "[{:>4}.{:06}] {:<5} {}: {}\n",
            ns / 1_000_000_000,
            ns % 1_000_000_000 / 1000,
            record.level(),
            target,
            record.args()
        ));
    }

    fn flush(&self) {}
}
