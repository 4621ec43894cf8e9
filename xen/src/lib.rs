//! Cohort's Xen interface. `abi` holds the layouts of the public headers
//! (`xen/include/public/`) as checked views over bytes, so everything here
//! is host-tested.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod abi;
