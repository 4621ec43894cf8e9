//! Host side of Cohort's tests and benchmarks: boots kernels in QEMU,
//! classifies how each boot ended, and reads the libtest-style and `BENCH`
//! lines the guest prints.

pub mod bench;
pub mod libtest;
pub mod qemu;
pub mod report;
pub mod suite;
