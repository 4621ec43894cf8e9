//! Cohort's device drivers. Driver logic is safe code; the one place that
//! touches hardware directly (the UART's port I/O) says why it is sound.
#![no_std]
#![deny(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod line;
pub mod uart;
