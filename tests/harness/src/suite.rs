//! The in-emulator kernel suite: every boot the kernel must survive or fail
//! in a particular way under plain QEMU, each one named test of
//! `cargo test` (tests/emulator.rs).

use crate::libtest::{Report, Status};
use crate::qemu::{self, Boot, Config, Outcome};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

type Check = fn(&Boot) -> Result<(), String>;

/// One boot: its test name, kernel command line and what it must show.
pub struct Case {
    pub name: String,
    pub cmdline: String,
    pub timeout: Duration,
    check: Check,
}

/// The kernel's isolated tests (each ends the kernel, so each gets a boot of
/// its own). `test=all` lists them; the `kernel::tests_all` boot fails if
/// that list and this one differ, so a new one cannot go unbooted.
pub const ISOLATED: [&str; 3] = ["stack_overflow", "null_pointer_write", "invalid_opcode"];
/// A hang must become a failure without waiting long.
const HANG_TIMEOUT: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(120);

fn expect(boot: &Boot, outcome: Outcome) -> Result<(), String> {
    if boot.outcome == outcome {
        Ok(())
    } else {
        Err(format!("expected: {}; got: {}", outcome.describe(), boot.outcome.describe()))
    }
}

fn expect_line(boot: &Boot, needle: &str) -> Result<(), String> {
    boot.has_line(needle).then_some(()).ok_or_else(|| format!("no console line contains `{needle}`"))
}

fn check_summary_boot(boot: &Boot) -> Result<(), String> {
    expect(boot, Outcome::Success)?;
    for needle in [qemu::BANNER_PREFIX, "memory map:", "TSC:", "PVH entry -> kernel_main:", "heap:", "powering off"] {
        expect_line(boot, needle)?;
    }
    Ok(())
}

fn check_all_tests(boot: &Boot) -> Result<(), String> {
    let report = Report::from_lines(boot.lines.iter().map(String::as_str));
    let summary = report.consistent()?;
    expect(boot, Outcome::Success)?;
    if summary.failed != 0 || summary.passed == 0 {
        let failed: Vec<&str> = report.tests.iter().filter(|t| t.status == Status::Failed).map(|t| t.name.as_str()).collect();
        return Err(format!("{} passed, {} failed: {}", summary.passed, summary.failed, failed.join(", ")));
    }
    let listed: BTreeSet<&str> = report
        .tests
        .iter()
        .filter(|t| matches!(&t.status, Status::Ignored(why) if why.starts_with("isolated")))
        .map(|t| t.name.as_str())
        .collect();
    let booted: BTreeSet<&str> = ISOLATED.into_iter().collect();
    if listed != booted {
        return Err(format!(
            "the kernel's isolated tests are {listed:?}, the harness boots {booted:?}: \
             update ISOLATED in tests/harness/src/suite.rs"
        ));
    }
    Ok(())
}

fn check_isolated(boot: &Boot) -> Result<(), String> {
    let summary = Report::from_lines(boot.lines.iter().map(String::as_str)).consistent()?;
    expect(boot, Outcome::Success)?;
    if (summary.passed, summary.failed) != (1, 0) {
        return Err(format!("{} passed, {} failed", summary.passed, summary.failed));
    }
    Ok(())
}

/// The runner must report a failing test as failed, with consistent counts.
fn check_reported_failure(boot: &Boot) -> Result<(), String> {
    expect(boot, Outcome::Failure)?;
    let summary = Report::from_lines(boot.lines.iter().map(String::as_str)).consistent()?;
    if (summary.passed, summary.failed, summary.ok) != (0, 1, false) {
        return Err(format!("summary {summary:?}, expected exactly one failure"));
    }
    Ok(())
}

fn check_bad_key(boot: &Boot) -> Result<(), String> {
    expect(boot, Outcome::Failure)?;
    expect_line(boot, "error: kernel command line: unknown option `bad.key`")
}

fn check_bad_value(boot: &Boot) -> Result<(), String> {
    expect(boot, Outcome::Failure)?;
    expect_line(boot, "option `timer.hz`: bad value `fast`")
}

fn check_unknown_test(boot: &Boot) -> Result<(), String> {
    expect(boot, Outcome::Failure)?;
    expect_line(boot, "no kernel test named `no_such_test`")
}

fn check_panic(boot: &Boot) -> Result<(), String> {
    check_reported_failure(boot)?;
    expect_line(boot, "PANIC at ")
}

fn check_reset(boot: &Boot) -> Result<(), String> {
    expect(boot, Outcome::Reset)?;
    (boot.outcome.exit_code() != 0).then_some(()).ok_or("a reset maps to exit status 0".into())
}

fn check_timeout(boot: &Boot) -> Result<(), String> {
    expect(boot, Outcome::Timeout)?;
    (boot.outcome.exit_code() != 0).then_some(()).ok_or("a timeout maps to exit status 0".into())
}

fn case(name: &str, cmdline: &str, check: Check) -> Case {
    Case { name: format!("kernel::{name}"), cmdline: cmdline.to_string(), timeout: TIMEOUT, check }
}

/// Every boot of the suite, in the order they run.
pub fn cases() -> Vec<Case> {
    let mut cases = vec![case("boot_summary", "", check_summary_boot), case("tests_all", "test=all", check_all_tests)];
    for name in ISOLATED {
        cases.push(case(&format!("isolated::{name}"), &format!("test={name}"), check_isolated));
    }
    cases.extend([
        case("cmdline_unknown_key_fails", "bad.key=1", check_bad_key),
        case("cmdline_bad_value_fails", "timer.hz=fast", check_bad_value),
        case("unknown_test_name_fails", "test=no_such_test", check_unknown_test),
        case("runner_reports_failing_test", "test=deliberate_failure", check_reported_failure),
        case("runner_reports_panicking_test", "test=deliberate_panic", check_panic),
        case("triple_fault_is_failure", "test=triple_fault", check_reset),
        Case { timeout: HANG_TIMEOUT, ..case("hang_is_timeout", "test=hang", check_timeout) },
    ]);
    cases
}

impl Case {
    /// Boots `kernel` with this case's command line and checks the boot;
    /// with `verbose`, the console goes to standard error as it comes. A
    /// failure says why, with the console's last lines.
    pub fn run(&self, kernel: &Path, verbose: bool) -> Result<(), String> {
        let mut config = Config::new(kernel, &self.cmdline);
        config.timeout = self.timeout;
        let boot = qemu::boot(&config, |line| {
            if verbose {
                eprintln!("    | {line}");
            }
        })?;
        let checked = match &boot.outcome {
            // No case expects QEMU itself to fail: say that first.
            Outcome::QemuError { .. } => Err(boot.outcome.describe()),
            _ => (self.check)(&boot),
        };
        checked.map_err(|why| {
            format!(
                "boot with `{}` ({:.2}s): {why}\n    --- console (last 30 lines):\n{}",
                self.cmdline,
                boot.elapsed.as_secs_f64(),
                crate::console::tail(&boot.lines, 30, "    | ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twelve_boots_with_unique_names() {
        let cases = cases();
        let names: BTreeSet<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!((cases.len(), names.len()), (12, 12));
        assert!(names.contains("kernel::isolated::stack_overflow"));
    }

    fn boot(outcome: Outcome, lines: &[&str]) -> Boot {
        let lines = lines.iter().map(|l| l.to_string()).collect();
        Boot { outcome, lines, to_banner: None, elapsed: Duration::ZERO }
    }

    #[test]
    fn test_all_must_list_the_isolated_tests_it_boots() {
        let mut lines = vec!["test heap_alloc ... ok".to_string()];
        for name in ISOLATED {
            lines.push(format!("test {name} ... ignored, isolated: boot with test={name}"));
        }
        lines.push("test result: ok. 1 passed; 0 failed; 3 ignored; 0 measured".into());
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        assert_eq!(check_all_tests(&boot(Outcome::Success, &refs)), Ok(()));
        let fewer = ["test heap_alloc ... ok", "test result: ok. 1 passed; 0 failed; 0 ignored;"];
        assert!(check_all_tests(&boot(Outcome::Success, &fewer)).unwrap_err().contains("ISOLATED"));
        let failed = ["test a ... FAILED", "test result: FAILED. 0 passed; 1 failed; 0 ignored;"];
        assert!(check_all_tests(&boot(Outcome::Failure, &failed)).is_err());
    }
}
