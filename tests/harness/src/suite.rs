//! The in-emulator kernel suite: every boot the kernel must survive or fail
//! in a particular way under plain QEMU, each one named test of
//! `cargo test` (tests/emulator.rs).

use crate::kernel_events::{events, KernelEvent, Report, Status};
use crate::qemu::{self, Boot, Config, Outcome};
use figures::Event;
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

fn boot_events(boot: &Boot) -> Vec<KernelEvent> {
    events(boot.lines.iter().map(String::as_str))
}

/// The first event `pick` accepts, or an error naming `what` was expected.
fn expect_event<T>(boot: &Boot, what: &str, pick: impl FnMut(&KernelEvent) -> Option<T>) -> Result<T, String> {
    boot_events(boot).iter().find_map(pick).ok_or_else(|| format!("no `{what}` event on the console"))
}

fn check_summary_boot(boot: &Boot) -> Result<(), String> {
    expect(boot, Outcome::Success)?;
    let (ram_kib, tsc_hz, heap_kib, frames_free) = expect_event(boot, "booted", |e| match e {
        Event::Booted { ram_kib, tsc_hz, heap_kib, frames_free, .. } => Some((*ram_kib, *tsc_hz, *heap_kib, *frames_free)),
        _ => None,
    })?;
    // QEMU's 32 MiB, less what the firmware keeps; a TSC QEMU would run.
    if !(16 * 1024..=32 * 1024).contains(&ram_kib) || tsc_hz < 100_000_000 || heap_kib == 0 || frames_free == 0 {
        return Err(format!(
            "implausible boot: {ram_kib} KiB RAM, TSC {tsc_hz} Hz, heap {heap_kib} KiB, {frames_free} free frames"
        ));
    }
    Ok(())
}

fn check_all_tests(boot: &Boot) -> Result<(), String> {
    let report = Report::from_events(&boot_events(boot));
    let summary = report.consistent()?;
    expect(boot, Outcome::Success)?;
    if summary.failed != 0 || summary.passed == 0 {
        let failed = report.named(|s| *s == Status::Failed);
        return Err(format!("{} passed, {} failed: {}", summary.passed, summary.failed, failed.join(", ")));
    }
    let listed: BTreeSet<&str> = report.named(|s| matches!(s, Status::Ignored(why) if why == "isolated")).into_iter().collect();
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
    let summary = Report::from_events(&boot_events(boot)).consistent()?;
    expect(boot, Outcome::Success)?;
    if (summary.passed, summary.failed) != (1, 0) {
        return Err(format!("{} passed, {} failed", summary.passed, summary.failed));
    }
    Ok(())
}

/// The runner must report a failing test as failed, with consistent counts.
fn check_reported_failure(boot: &Boot) -> Result<(), String> {
    expect(boot, Outcome::Failure)?;
    let summary = Report::from_events(&boot_events(boot)).consistent()?;
    if (summary.passed, summary.failed, summary.ok) != (0, 1, false) {
        return Err(format!("summary {summary:?}, expected exactly one failure"));
    }
    Ok(())
}

/// The boot failed, and said which part refused and about which key.
fn check_boot_failed(boot: &Boot, what: &str, key: &str) -> Result<(), String> {
    expect(boot, Outcome::Failure)?;
    let (got_what, got_key) = expect_event(boot, "boot_failed", |e| match e {
        Event::BootFailed { what, key } => Some((what.clone(), key.clone())),
        _ => None,
    })?;
    if (got_what.as_str(), got_key.as_deref()) != (what, Some(key)) {
        return Err(format!("boot_failed about {got_what:?} {got_key:?}, expected {what:?} `{key}`"));
    }
    Ok(())
}

fn check_bad_key(boot: &Boot) -> Result<(), String> {
    check_boot_failed(boot, "kernel command line", "bad.key")
}

fn check_bad_value(boot: &Boot) -> Result<(), String> {
    check_boot_failed(boot, "kernel command line", "timer.hz")
}

fn check_unknown_test(boot: &Boot) -> Result<(), String> {
    check_boot_failed(boot, "kernel test", "no_such_test")
}

fn check_panic(boot: &Boot) -> Result<(), String> {
    check_reported_failure(boot)?;
    expect_event(boot, "panic", |e| matches!(e, Event::Panic { .. }).then_some(()))
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

    fn test(name: &str, ok: bool) -> String {
        Event::Test { name, ok }.to_string()
    }

    fn result(passed: u64, failed: u64, ignored: u64) -> String {
        Event::<&str>::TestResult { ok: failed == 0, passed, failed, ignored }.to_string()
    }

    #[test]
    fn test_all_must_list_the_isolated_tests_it_boots() {
        let mut lines = vec![test("heap_alloc", true)];
        for name in ISOLATED {
            lines.push(Event::TestIgnored { name, why: "isolated" }.to_string());
        }
        lines.push(result(1, 0, 3));
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        assert_eq!(check_all_tests(&boot(Outcome::Success, &refs)), Ok(()));
        let fewer = [test("heap_alloc", true), result(1, 0, 0)];
        let fewer: Vec<&str> = fewer.iter().map(String::as_str).collect();
        assert!(check_all_tests(&boot(Outcome::Success, &fewer)).unwrap_err().contains("ISOLATED"));
        let failed = [test("a", false), result(0, 1, 0)];
        let failed: Vec<&str> = failed.iter().map(String::as_str).collect();
        assert!(check_all_tests(&boot(Outcome::Failure, &failed)).is_err());
    }

    #[test]
    fn boot_failures_must_name_the_part_and_key() {
        let line = Event::BootFailed { what: "kernel command line", key: Some("timer.hz") }.to_string();
        let b = boot(Outcome::Failure, &["error: whatever the wording", &line]);
        assert_eq!(check_bad_value(&b), Ok(()));
        assert!(check_bad_key(&b).unwrap_err().contains("bad.key"));
        assert!(check_bad_value(&boot(Outcome::Failure, &["error: option `timer.hz`: bad value `fast`"])).is_err());
        assert!(check_bad_value(&boot(Outcome::Success, &[&line])).is_err());
    }

    #[test]
    fn a_summary_boot_needs_a_plausible_booted_event() {
        let booted = |ram_kib| {
            Event::Booted { entry: "pvh", ram_kib, tsc_hz: 2_000_000_000, heap_kib: 4096, frames_free: 5000, timer_hz: 100 }
                .to_string()
        };
        assert_eq!(check_summary_boot(&boot(Outcome::Success, &[&booted(31_000)])), Ok(()));
        assert!(check_summary_boot(&boot(Outcome::Success, &[&booted(0)])).is_err());
        assert!(check_summary_boot(&boot(Outcome::Success, &["memory map:", "heap:", "powering off"])).is_err());
    }
}
