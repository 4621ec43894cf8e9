//! The in-kernel test runner. `test=all` runs every regular test in one
//! boot and lists the isolated ones (tests that end the kernel, such as a
//! stack overflow); `test=NAME` runs one. Output follows libtest, so the
//! host harness and people read it the same way.

mod cases;

use crate::fault::Fault;
use crate::platform::{exit, ExitStatus};
use alloc::string::String;
use cohort_boot::cmdline::TestSelection;
use core::sync::atomic::{AtomicUsize, Ordering};

pub type Outcome = Result<(), String>;

pub enum Kind {
    /// Runs in `test=all`.
    Regular,
    /// Ends the kernel with a CPU fault, which passes the test when the
    /// predicate accepts it. Runs only when named, in its own boot.
    Isolated { expect_fault: fn(&Fault) -> bool },
    /// Must fail: proves the host harness notices failures. Only when named.
    Deliberate,
    /// Judged from outside the guest: one side of a multi-guest scenario
    /// the harness sets up (peers found through xenstore), or a fault the
    /// guest cannot report (dom0 reads the stopped vCPU). Only when named.
    Scenario,
}

/// Where a test can run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Any,
    Xen,
    /// Device interrupts: plain QEMU (on Xen, events are polled and no
    /// interrupt is ever taken).
    Interrupts,
    /// Exceptions on stacks of their own (IST): not as a Xen PV guest.
    ExceptionStacks,
    /// No exception stacks: a Xen PV guest.
    NoExceptionStacks,
}

impl Needs {
    fn why(self) -> &'static str {
        match self {
            Needs::Any => "",
            Needs::Xen => "needs Xen",
            Needs::Interrupts => "needs interrupts (on Xen, events are polled)",
            Needs::ExceptionStacks => "needs IST exception stacks (a Xen PV guest has none)",
            Needs::NoExceptionStacks => "is for a guest without IST exception stacks (Xen PV; elsewhere: test=stack_overflow)",
        }
    }
}

pub struct Test {
    pub name: &'static str,
    pub kind: Kind,
    pub needs: Needs,
    pub run: fn() -> Outcome,
}

impl Test {
    fn runs_here(&self) -> bool {
        match self.needs {
            Needs::Any => true,
            Needs::Xen => crate::platform::on_xen(),
            Needs::Interrupts => !crate::platform::on_xen(),
            Needs::ExceptionStacks => crate::arch::guest::ops().exception_stacks(),
            Needs::NoExceptionStacks => !crate::arch::guest::ops().exception_stacks(),
        }
    }
}

/// Returns `Err(message)` from the test unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)*) => {
        if !$cond {
            return Err(alloc::format!($($msg)*));
        }
    };
}

const NONE: usize = usize::MAX;
static CURRENT: AtomicUsize = AtomicUsize::new(NONE);
static PASSED: AtomicUsize = AtomicUsize::new(0);
static FAILED: AtomicUsize = AtomicUsize::new(0);
static IGNORED: AtomicUsize = AtomicUsize::new(0);
static STARTED_NS: spin::Once<u64> = spin::Once::new();

pub fn run(selection: TestSelection<'_>) -> ! {
    STARTED_NS.call_once(crate::clock::now_ns);
    let tests = cases::ALL;
    match selection {
        TestSelection::All => {
            let regular = tests.iter().filter(|t| matches!(t.kind, Kind::Regular) && t.runs_here()).count();
            crate::println!("\nrunning {regular} tests");
            for (index, test) in tests.iter().enumerate() {
                match test.kind {
                    Kind::Regular if test.runs_here() => run_one(index, test),
                    Kind::Regular => {
                        IGNORED.fetch_add(1, Ordering::Relaxed);
                        crate::println!("test {} ... ignored, {}", test.name, test.needs.why());
                        crate::println!("{}", figures::Event::TestIgnored { name: test.name, why: test.needs.why() });
                    }
                    Kind::Isolated { .. } => {
                        IGNORED.fetch_add(1, Ordering::Relaxed);
                        crate::println!("test {} ... ignored, isolated: boot with test={}", test.name, test.name);
                        crate::println!("{}", figures::Event::TestIgnored { name: test.name, why: "isolated" });
                    }
                    Kind::Deliberate | Kind::Scenario => {}
                }
            }
        }
        TestSelection::Named(name) => match tests.iter().position(|t| t.name == name) {
            Some(index) if !tests[index].runs_here() => {
                crate::println!("error: kernel test `{name}` {}", tests[index].needs.why());
                crate::println!("{}", figures::Event::BootFailed { what: "kernel test", key: Some(name) });
                exit(ExitStatus::Failure);
            }
            Some(index) => {
                crate::println!("\nrunning 1 test");
                run_one(index, &tests[index]);
            }
            None => {
                crate::println!("error: no kernel test named `{name}`; the tests are:");
                crate::println!("{}", figures::Event::BootFailed { what: "kernel test", key: Some(name) });
                for t in tests {
                    crate::println!("  {}", t.name);
                }
                exit(ExitStatus::Failure);
            }
        },
    }
    finish()
}

fn run_one(index: usize, test: &Test) {
    CURRENT.store(index, Ordering::SeqCst);
    let outcome = (test.run)();
    CURRENT.store(NONE, Ordering::SeqCst);
    match (outcome, &test.kind) {
        (Ok(()), Kind::Isolated { .. }) => fail(test.name, "returned, but a CPU fault was expected"),
        (Ok(()), _) => pass(test.name),
        (Err(message), _) => fail(test.name, &message),
    }
}

fn pass(name: &str) {
    PASSED.fetch_add(1, Ordering::Relaxed);
    crate::console::print_emergency(format_args!("test {name} ... ok\n{}\n", figures::Event::Test { name, ok: true }));
}

fn fail(name: &str, why: &str) {
    FAILED.fetch_add(1, Ordering::Relaxed);
    crate::console::print_emergency(format_args!(
        "test {name} ... FAILED\n    {why}\n{}\n",
        figures::Event::Test { name, ok: false }
    ));
}

fn finish() -> ! {
    let passed = PASSED.load(Ordering::Relaxed);
    let failed = FAILED.load(Ordering::Relaxed);
    let ignored = IGNORED.load(Ordering::Relaxed);
    let ns = crate::clock::now_ns().saturating_sub(STARTED_NS.get().copied().unwrap_or(0));
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    crate::console::print_emergency(format_args!(
        "\ntest result: {verdict}. {passed} passed; {failed} failed; {ignored} ignored; 0 measured; 0 filtered out; \
         finished in {}.{:03}s\n{passed} passed, {failed} failed\n{}\n",
        ns / 1_000_000_000,
        ns % 1_000_000_000 / 1_000_000,
        figures::Event::<&str>::TestResult {
            ok: failed == 0,
            passed: passed as u64,
            failed: failed as u64,
            ignored: ignored as u64
        }
    ));
    exit(if failed == 0 { ExitStatus::Success } else { ExitStatus::Failure })
}

fn current() -> Option<&'static Test> {
    cases::ALL.get(CURRENT.load(Ordering::SeqCst))
}

/// Called by the fault path. A test that expects this fault passes; any
/// other running test fails. Returns only when no test is running.
pub fn on_fault(fault: &Fault) {
    let Some(test) = current() else { return };
    match &test.kind {
        Kind::Isolated { expect_fault } if expect_fault(fault) => pass(test.name),
        _ => fail(test.name, "unexpected CPU exception (reported above)"),
    }
    finish()
}

/// Called by the panic handler: the running test fails.
pub fn on_panic() {
    if let Some(test) = current() {
        fail(test.name, "panicked (message above)");
        finish()
    }
}
