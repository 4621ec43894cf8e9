//! Every in-kernel test, in the order `test=all` runs them.

mod cmdline;
mod cpu;
mod memory;
mod net;
mod runner;
mod time;
mod xen;

use super::{Kind, Needs, Test};

pub static ALL: &[Test] = &[
    Test { name: "heap_alloc", kind: Kind::Regular, needs: Needs::Any, run: memory::heap_alloc },
    Test { name: "frame_alloc", kind: Kind::Regular, needs: Needs::Any, run: memory::frame_alloc },
    Test { name: "mem_functions", kind: Kind::Regular, needs: Needs::Any, run: memory::mem_functions },
    Test { name: "breakpoint_resumes", kind: Kind::Regular, needs: Needs::Any, run: cpu::breakpoint_resumes },
    Test { name: "timer_ticks", kind: Kind::Regular, needs: Needs::Any, run: time::timer_ticks },
    Test { name: "clock_monotonic", kind: Kind::Regular, needs: Needs::Any, run: time::clock_monotonic },
    Test { name: "sse_survives_interrupts", kind: Kind::Regular, needs: Needs::Interrupts, run: cpu::sse_survives_interrupts },
    Test { name: "cmdline_errors", kind: Kind::Regular, needs: Needs::Any, run: cmdline::cmdline_errors },
    Test { name: "net_echo_transfer_loopback", kind: Kind::Regular, needs: Needs::Any, run: net::echo_transfer_loopback },
    Test { name: "smoltcp_loopback_tcp", kind: Kind::Regular, needs: Needs::Any, run: net::smoltcp_loopback_tcp },
    Test { name: "net_stream_rr_loopback", kind: Kind::Regular, needs: Needs::Any, run: net::stream_and_rr_loopback },
    Test { name: "xen_identity", kind: Kind::Regular, needs: Needs::Xen, run: xen::identity },
    Test { name: "xen_xenstore_roundtrip", kind: Kind::Regular, needs: Needs::Xen, run: xen::xenstore_roundtrip },
    Test { name: "xen_xenstore_watch", kind: Kind::Regular, needs: Needs::Xen, run: xen::xenstore_watch },
    Test { name: "xen_event_loopback", kind: Kind::Regular, needs: Needs::Xen, run: xen::event_loopback },
    Test { name: "xen_grant_refs", kind: Kind::Regular, needs: Needs::Xen, run: xen::grant_refs },
    Test {
        name: "stack_overflow",
        kind: Kind::Isolated { expect_fault: cpu::is_boot_stack_overflow },
        needs: Needs::ExceptionStacks,
        run: cpu::stack_overflow,
    },
    Test {
        name: "invalid_opcode",
        kind: Kind::Isolated { expect_fault: cpu::is_invalid_opcode },
        needs: Needs::Any,
        run: cpu::invalid_opcode,
    },
    Test {
        name: "null_pointer_write",
        kind: Kind::Isolated { expect_fault: cpu::is_null_write },
        needs: Needs::Any,
        run: cpu::null_pointer_write,
    },
    Test { name: "deliberate_failure", kind: Kind::Deliberate, needs: Needs::Any, run: runner::deliberate_failure },
    Test { name: "deliberate_panic", kind: Kind::Deliberate, needs: Needs::Any, run: runner::deliberate_panic },
    Test { name: "triple_fault", kind: Kind::Deliberate, needs: Needs::Any, run: runner::triple_fault },
    Test { name: "hang", kind: Kind::Deliberate, needs: Needs::Any, run: runner::hang },
    Test { name: "xen_grant_offer", kind: Kind::Scenario, needs: Needs::Xen, run: xen::grant_offer },
    Test { name: "xen_grant_accept", kind: Kind::Scenario, needs: Needs::Xen, run: xen::grant_accept },
    Test { name: "stack_overflow_pv", kind: Kind::Scenario, needs: Needs::NoExceptionStacks, run: cpu::stack_overflow_pv },
];
