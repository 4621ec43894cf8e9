//! Cohort's Xen interface. `abi` holds the layouts of the public headers
//! (`xen/include/public/`, as installed by libxen-dev); `hypercall` is the
//! only code in Cohort that issues hypercalls, and the only unsafe here.
#![no_std]
#![deny(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod abi;
pub mod cpuid;
pub mod hypercall;
