//! Host side of Cohort's tests and benchmarks: builds the kernel and the
//! dom0 daemon, boots them under plain QEMU and under Xen in QEMU, follows
//! the serial consoles, classifies how each boot ended, and reads the
//! `EVENT`, `RESULT` and `BENCH` lines the guests and dom0 print.
//!
//! `cargo test` runs the suites through tests/emulator.rs; the
//! `cohort-harness` binary (src/main.rs) runs single boots, the lab, the
//! demo and the benchmarks for run.sh.

pub mod artifacts;
pub mod bench;
pub mod compare;
pub mod console;
pub mod cpio;
pub mod kernel_events;
pub mod lab;
pub mod protocol;
pub mod qemu;
pub mod report;
pub mod study;
pub mod suite;
pub mod suites;
pub mod summary;
pub mod tap;
pub mod xensuite;
