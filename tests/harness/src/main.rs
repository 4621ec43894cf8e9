//! `cohort-harness`: boots Cohort kernels in QEMU for run.sh.
//!
//!   cohort-harness run KERNEL [CMDLINE...]   boot once, stream the console, exit with the guest's status
//!   cohort-harness test KERNEL               the in-emulator test suite
//!   cohort-harness bench KERNEL              the boot benchmark (BENCH lines)
//!   cohort-harness report FILE [CHART-PREFIX] BENCH lines of FILE as Markdown tables
//!                                            (medians of the repetitions, with min-max), and
//!                                            SVG and PNG charts, one of each per clock

use cohort_harness::{bench, qemu, report, suite};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: cohort-harness run|test|bench KERNEL [CMDLINE...] | report FILE [CHART-PREFIX]";

/// `report FILE [CHART-PREFIX]`: the Markdown report on stdout; with a
/// prefix, `PREFIX-<clock>.svg` and `PREFIX-<clock>.png` charts too. A
/// BENCH line that does not parse is reported and skipped.
fn report(args: &[String]) -> ExitCode {
    let Some(file) = args.first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(64);
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("report: {file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (figures, skipped) = report::parse_text(&text);
    for s in &skipped {
        eprintln!("report: {file}:{}: BENCH line skipped: {}", s.line, s.error);
    }
    if figures.is_empty() {
        eprintln!("report: no BENCH lines in {file}");
        return ExitCode::FAILURE;
    }
    print!("{}", report::markdown(&figures));
    if let Some(prefix) = args.get(1) {
        match report::write_charts(&figures, prefix) {
            Ok(written) => written.iter().for_each(|path| eprintln!("report: wrote {path}")),
            Err(e) => {
                eprintln!("report: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("report") {
        return report(&args[1..]);
    }
    let (Some(command), Some(kernel)) = (args.first(), args.get(1)) else {
        eprintln!("{USAGE}");
        return ExitCode::from(64);
    };
    let kernel = PathBuf::from(kernel);
    let rest = &args[2..];
    let verbose = std::env::var_os("COHORT_QUIET").is_none();
    match command.as_str() {
        "run" => {
            let mut config = qemu::Config::new(&kernel, &rest.join(" "));
            if let Some(secs) = std::env::var("COHORT_TIMEOUT").ok().and_then(|s| s.parse().ok()) {
                config.timeout = Duration::from_secs(secs);
            }
            config.icount = std::env::var_os("COHORT_ICOUNT").is_some();
            match qemu::boot(&config, |line| println!("{line}")) {
                Ok(boot) => {
                    if boot.outcome != qemu::Outcome::Success {
                        eprintln!("cohort: {}", boot.outcome.describe());
                    }
                    ExitCode::from(boot.outcome.exit_code() as u8)
                }
                Err(e) => {
                    eprintln!("cohort: {e}");
                    ExitCode::from(4)
                }
            }
        }
        "test" => {
            if suite::run(&kernel, verbose) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        "bench" => match bench::run(&kernel) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench: {e}");
                ExitCode::FAILURE
            }
        },
        other => {
            eprintln!("unknown command `{other}`\n{USAGE}");
            ExitCode::from(64)
        }
    }
}
