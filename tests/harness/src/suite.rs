//! The in-emulator test suite: every boot the kernel must survive or fail
//! in a particular way, with libtest-style lines for each.

use crate::libtest::{Report, Status};
use crate::qemu::{self, Boot, Config, Outcome};
use std::path::Path;
use std::time::{Duration, Instant};

type Check = fn(&Boot) -> Result<(), String>;

struct Case {
    name: String,
    config: Config,
    check: Check,
}

/// Prefix for echoed guest output, so the guest's own `N passed, N failed`
/// lines are never mistaken for the suite's.
const ECHO: &str = "    | ";
/// A hang must become a failure without waiting long.
const HANG_TIMEOUT: Duration = Duration::from_secs(5);

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
    let summary = Report::from_lines(boot.lines.iter().map(String::as_str)).consistent()?;
    expect(boot, Outcome::Success)?;
    if summary.failed != 0 || summary.passed == 0 {
        return Err(format!("{} passed, {} failed", summary.passed, summary.failed));
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

fn case(name: &str, kernel: &Path, cmdline: &str, check: Check) -> Case {
    Case { name: name.to_string(), config: Config::new(kernel, cmdline), check }
}

fn run_case(case: &Case, verbose: bool) -> (Result<(), String>, Option<Boot>) {
    println!("{ECHO}$ boot: {}", case.config.cmdline);
    let boot = qemu::boot(&case.config, |line| {
        if verbose {
            println!("{ECHO}{line}");
        }
    });
    match boot {
        Ok(boot) => ((case.check)(&boot), Some(boot)),
        Err(e) => (Err(e), None),
    }
}

/// Runs the suite; returns whether everything passed.
pub fn run(kernel: &Path, verbose: bool) -> bool {
    let started = Instant::now();
    let mut cases = vec![case("emulator::boot_summary", kernel, "", check_summary_boot)];
    let all = case("emulator::kernel_tests_all", kernel, "test=all", check_all_tests);
    let mut results = Vec::new();

    // The first boot of test=all also tells which isolated tests exist.
    println!("\nrunning emulator tests on {}", kernel.display());
    let (result, boot) = run_case(&all, verbose);
    report(&all.name, &result, boot.as_ref());
    results.push(result.is_ok());
    let isolated: Vec<String> = boot
        .map(|b| {
            Report::from_lines(b.lines.iter().map(String::as_str))
                .tests
                .into_iter()
                .filter(|t| matches!(&t.status, Status::Ignored(why) if why.starts_with("isolated")))
                .map(|t| t.name)
                .collect()
        })
        .unwrap_or_default();
    if isolated.is_empty() {
        println!("{ECHO}warning: test=all listed no isolated tests");
    }
    for name in &isolated {
        cases.push(case(&format!("emulator::kernel_test::{name}"), kernel, &format!("test={name}"), check_isolated));
    }
    cases.extend([
        case("emulator::cmdline_unknown_key_fails", kernel, "bad.key=1", check_bad_key),
        case("emulator::cmdline_bad_value_fails", kernel, "timer.hz=fast", check_bad_value),
        case("emulator::unknown_test_name_fails", kernel, "test=no_such_test", check_unknown_test),
        case("emulator::runner_reports_failing_test", kernel, "test=deliberate_failure", check_reported_failure),
        case("emulator::runner_reports_panicking_test", kernel, "test=deliberate_panic", check_panic),
        case("emulator::triple_fault_is_failure", kernel, "test=triple_fault", check_reset),
    ]);
    let mut hang = case("emulator::hang_is_timeout", kernel, "test=hang", check_timeout);
    hang.config.timeout = HANG_TIMEOUT;
    cases.push(hang);

    for case in &cases {
        let (result, boot) = run_case(case, verbose);
        report(&case.name, &result, boot.as_ref());
        results.push(result.is_ok());
    }
    let passed = results.iter().filter(|ok| **ok).count();
    let failed = results.len() - passed;
    println!(
        "\ntest result: {}. {passed} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out; finished in {:.2}s",
        if failed == 0 { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    println!("{passed} passed, {failed} failed");
    failed == 0
}

fn report(name: &str, result: &Result<(), String>, boot: Option<&Boot>) {
    let secs = boot.map_or(0.0, |b| b.elapsed.as_secs_f64());
    match result {
        Ok(()) => println!("test {name} ... ok ({secs:.2}s)"),
        Err(why) => {
            println!("test {name} ... FAILED ({secs:.2}s)\n    {why}");
            // Show what the guest said, even when the echo was off.
            if let Some(boot) = boot {
                for line in boot.lines.iter().rev().take(30).rev() {
                    println!("{ECHO}{line}");
                }
            }
        }
    }
}
