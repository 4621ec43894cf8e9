//! Boot-time logic of the Cohort kernel that needs no hardware: the typed
//! kernel command line, the memory map, and the physical-frame bitmap.
//! The kernel feeds it what it copied out of `hvm_start_info`; the host
//! tests feed it made-up input.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod cmdline;
pub mod frames;
pub mod memmap;
