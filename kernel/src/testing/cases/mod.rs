//! Every in-kernel test, in the order `test=all` runs them.

mod cmdline;
mod cpu;
mod memory;
mod net;
mod runner;
mod time;

use super::{Kind, Test};

pub static ALL: &[Test] = &[
    Test { name: "heap_alloc", kind: Kind::Regular, run: memory::heap_alloc },
    Test { name: "frame_alloc", kind: Kind::Regular, run: memory::frame_alloc },
    Test { name: "mem_functions", kind: Kind::Regular, run: memory::mem_functions },
    Test { name: "breakpoint_resumes", kind: Kind::Regular, run: cpu::breakpoint_resumes },
    Test { name: "timer_ticks", kind: Kind::Regular, run: time::timer_ticks },
    Test { name: "clock_monotonic", kind: Kind::Regular, run: time::clock_monotonic },
    Test { name: "sse_survives_interrupts", kind: Kind::Regular, run: cpu::sse_survives_interrupts },
    Test { name: "cmdline_errors", kind: Kind::Regular, run: cmdline::cmdline_errors },
    Test { name: "smoltcp_loopback_tcp", kind: Kind::Regular, run: net::smoltcp_loopback_tcp },
    Test { name: "stack_overflow", kind: Kind::Isolated { expect_fault: cpu::is_boot_stack_overflow }, run: cpu::stack_overflow },
    Test { name: "invalid_opcode", kind: Kind::Isolated { expect_fault: cpu::is_invalid_opcode }, run: cpu::invalid_opcode },
    Test { name: "null_pointer_write", kind: Kind::Isolated { expect_fault: cpu::is_null_write }, run: cpu::null_pointer_write },
    Test { name: "deliberate_failure", kind: Kind::Deliberate, run: runner::deliberate_failure },
    Test { name: "deliberate_panic", kind: Kind::Deliberate, run: runner::deliberate_panic },
    Test { name: "triple_fault", kind: Kind::Deliberate, run: runner::triple_fault },
    Test { name: "hang", kind: Kind::Deliberate, run: runner::hang },
];
