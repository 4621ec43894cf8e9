//! The console UART (16550, port I/O) and its line discipline. The line
//! logic is safe code; the one place that touches hardware (the UART's port
//! I/O) says why it is sound.
#![no_std]
#![deny(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod line;
pub mod uart;
