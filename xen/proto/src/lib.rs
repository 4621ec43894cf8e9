//! Xen protocol logic written over the traits in [`iface`], so the kernel
//! runs it on hypercalls and the host tests run it on a simulated Xen
//! (`tests/xensim`).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod error;
pub mod grant_refs;
pub mod iface;
pub mod ring_index;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
pub mod values;
pub mod xenbus;
pub mod xenstore;
pub mod xenstore_ring;

pub use error::Error;
