//! The console UART: a 16550 at COM1, through the `uart_16550` crate.
#![allow(unsafe_code)]

use uart_16550::backend::PioBackend;
use uart_16550::{Config, Uart16550};

pub const COM1: u16 = 0x3f8;

pub struct Uart {
    device: Uart16550<PioBackend>,
}

impl Uart {
    /// Probes and initialises the UART at `port`; `None` when no 16550
    /// answers there (a Xen PVH guest has none).
    ///
    /// # Safety
    /// `port` must be a 16550's base port, or unused I/O space, and nothing
    /// else may drive those 8 ports while the `Uart` lives.
    pub unsafe fn probe(port: u16) -> Option<Uart> {
        // SAFETY: the caller guarantees exclusive use of the port range.
        let mut device = unsafe { Uart16550::new_port(port) }.ok()?;
        device.init(Config::default()).ok()?;
        Some(Uart { device })
    }

    /// Sends all of `bytes`, waiting for the transmitter as needed.
    pub fn write(&mut self, bytes: &[u8]) {
        crate::line::write_crlf(bytes, |chunk| self.device.send_bytes_exact(chunk));
    }
}
