//! How the kernel ends: under QEMU through `isa-debug-exit` (iobase 0xf4),
//! which makes QEMU exit with `(value << 1) | 1`.

use x86_64::instructions::port::Port;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    Failure,
}

const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Values written to isa-debug-exit: QEMU exits with 33 and 35. The host
/// side (`tests/`, run.sh) maps 33 to 0 and everything else to failure, so
/// a guest that dies without saying so never looks successful.
pub const EXIT_SUCCESS_VALUE: u32 = 0x10;
pub const EXIT_FAILURE_VALUE: u32 = 0x11;

pub fn exit(status: ExitStatus) -> ! {
    let value = match status {
        ExitStatus::Success => EXIT_SUCCESS_VALUE,
        ExitStatus::Failure => EXIT_FAILURE_VALUE,
    };
    // SAFETY: writing the debug-exit port only ends the VM; on a machine
    // without the device the write is ignored and we halt below.
    unsafe { Port::<u32>::new(DEBUG_EXIT_PORT).write(value) };
    crate::println!("cohort: no exit device; halting ({status:?})");
    crate::arch::cpu::halt_forever()
}
