//! `cargo test`'s emulator tests, one named test per QEMU boot and per
//! check (libtest-mimic):
//!
//!   kernel::...      the in-emulator kernel suite, one boot each (src/suite.rs)
//!   net::...         the plain-QEMU network test: virtio-net on a tap in a
//!                    network namespace, one QEMU run, four checks (src/tap.rs)
//!   xen::FILE        real Xen in QEMU: one lab boot runs every selected
//!   xen::FILE::CHECK scenario file; each file and each check it declares is
//!                    a test (src/xensuite.rs)
//!
//! COHORT_SUITES picks what runs: unset means `kernel`; `all` means
//! `kernel,net,xen,lint` (lint is tests/lint.rs); `none` runs none. The others are listed as ignored,
//! with the reason. A filter (`cargo test -- stack_overflow`) selects as
//! usual; the lab boots only for the scenario files that have a selected
//! test. Without qemu-system-x86_64 every boot is ignored, saying so.
//! Tests run one at a time (one QEMU at a time) unless --test-threads says
//! otherwise. COHORT_VERBOSE=1 shows every console line.
//!
//! The kernel and the dom0 daemon are built here, into target/kernel and
//! target/dom0 (src/artifacts.rs). A lab run that fails with a failure
//! dom0 traced to the lab (`LAB FAULT`) is run once more and only the second
//! run counts; the lines after the test summary name every such rerun.

use cohort_harness::lab::{self, Event};
use cohort_harness::protocol::{self, CheckResult};
use cohort_harness::suites::{self, Suite};
use cohort_harness::{artifacts, qemu, suite, summary, tap, xensuite};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};

/// What the tests share: the builds, the tap run, the lab run, and what the
/// summary says at the end.
struct Shared {
    suites: BTreeSet<Suite>,
    qemu: Option<String>,
    verbose: bool,
    kernel: OnceLock<Result<PathBuf, String>>,
    daemon: OnceLock<Result<PathBuf, String>>,
    net: OnceLock<Vec<CheckResult>>,
    xen_files: Result<Vec<xensuite::File>, String>,
    /// Per scenario file: whether one of its tests is selected.
    xen_selected: OnceLock<Vec<bool>>,
    xen: OnceLock<Result<lab::Run, String>>,
    reruns: Mutex<Vec<String>>,
    retries: Mutex<Vec<String>>,
    /// Every test's outcome, for target/test-results/emulator.json.
    tests: Mutex<Vec<summary::Test>>,
}

/// A test whose outcome is also kept for the JSON summary.
fn trial(shared: &Arc<Shared>, name: String, run: impl FnOnce(&Shared) -> Result<Completion, Failed> + Send + 'static) -> Trial {
    let (shared, kept) = (Arc::clone(shared), name.clone());
    Trial::ignorable_test(name, move || {
        let result = run(&shared);
        let (outcome, detail) = match &result {
            Ok(Completion::Completed) => (summary::Outcome::Passed, String::new()),
            Ok(Completion::Ignored { reason }) => (summary::Outcome::Ignored, reason.clone().unwrap_or_default()),
            Err(e) => (summary::Outcome::Failed, e.message().unwrap_or_default().to_string()),
        };
        let mut tests = shared.tests.lock().unwrap_or_else(|e| e.into_inner());
        tests.push(summary::Test { name: kept, outcome, detail });
        result
    })
}

impl Shared {
    /// `Some(reason)` when `suite`'s tests must be skipped.
    fn skip(&self, suite: Suite) -> Option<String> {
        if !self.suites.contains(&suite) {
            return Some(format!("COHORT_SUITES=all (or {}) runs it", suite.name()));
        }
        self.qemu.clone()
    }

    fn kernel(&self) -> Result<PathBuf, Failed> {
        self.kernel.get_or_init(artifacts::kernel).clone().map_err(Failed::from)
    }

    fn daemon(&self) -> Result<PathBuf, Failed> {
        self.daemon.get_or_init(artifacts::daemon).clone().map_err(Failed::from)
    }

    fn net(&self) -> Result<&[CheckResult], Failed> {
        if let Some(results) = self.net.get() {
            return Ok(results);
        }
        let kernel = self.kernel()?;
        Ok(self.net.get_or_init(|| {
            let results = tap::run(&tap::Config::new(&kernel), self.verbose);
            results.iter().for_each(|r| eprintln!("[tap] {}", r.human()));
            results
        }))
    }

    fn lab_once(&self, config: &lab::Config, n: usize) -> Result<lab::Run, String> {
        let verbose = self.verbose;
        let run = lab::run(
            config,
            // RESULT and RETRY lines are shown as events.
            &mut |line, phase| {
                if lab::shown(line, phase, verbose) && protocol::parse(line).is_none() {
                    eprintln!("    | {line}");
                }
            },
            &mut |event| match event {
                Event::Result { result, .. } => eprintln!("[xen] {}", result.human()),
                Event::Retry(r) => eprintln!("[xen] retried: {}: {}", r.what, r.why),
                Event::Garbled { file, error } => eprintln!("[xen] {file}: a RESULT line that does not parse: {error}"),
                _ => {}
            },
        )?;
        let mut retries = self.retries.lock().unwrap_or_else(|e| e.into_inner());
        retries.extend(run.retries.iter().map(|r| format!("lab run {n}: {}: {}", r.what, r.why)));
        Ok(run)
    }

    /// The lab, run once for every selected scenario file; once more when
    /// the first run failed with a failure dom0 traced to the lab.
    fn xen(&self) -> Result<&lab::Run, Failed> {
        if let Some(run) = self.xen.get() {
            return run.as_ref().map_err(|e| Failed::from(e.clone()));
        }
        let (kernel, daemon) = (self.kernel()?, self.daemon()?);
        let files = self.xen_files.as_ref().map_err(|e| Failed::from(e.clone()))?;
        let selected = self.xen_selected.get().cloned().unwrap_or_default();
        let chosen: Vec<&xensuite::File> = files.iter().zip(&selected).filter(|(_, s)| **s).map(|(f, _)| f).collect();
        let config = xensuite::config(&chosen, &kernel, &daemon);
        let run = self.xen.get_or_init(|| {
            let first = self.lab_once(&config, 1)?;
            let Some(reason) = (!first.ok()).then(|| xensuite::rerun_reason(&first)).flatten() else {
                return Ok(first);
            };
            let names: Vec<String> = chosen.iter().map(|f| f.scenario.name()).collect();
            let (passed, failed) = first.counts();
            let failures: Vec<String> = first
                .files
                .iter()
                .flat_map(|f| f.results.iter().chain(f.verdict.iter()))
                .filter(|r| !r.ok)
                .map(|r| r.name.clone())
                .collect();
            let note = format!(
                "the real-Xen lab ({}) ran twice: the first run ({passed} passed, {failed} failed: {}) had failures \
                 dom0 traced to the lab ({reason}); only the second run counts",
                names.join(", "),
                failures.join(", ")
            );
            eprintln!("\n[xen] LAB FAULT: {note}\n");
            self.reruns.lock().unwrap_or_else(|e| e.into_inner()).push(note);
            self.lab_once(&config, 2)
        });
        run.as_ref().map_err(|e| Failed::from(e.clone()))
    }
}

fn kernel_trials(shared: &Arc<Shared>) -> Vec<Trial> {
    suite::cases()
        .into_iter()
        .map(|case| {
            trial(shared, case.name.clone(), move |shared| {
                if let Some(why) = shared.skip(Suite::Kernel) {
                    return Ok(Completion::ignored_with(why));
                }
                case.run(&shared.kernel()?, shared.verbose)?;
                Ok(Completion::Completed)
            })
        })
        .collect()
}

fn net_trials(shared: &Arc<Shared>) -> Vec<Trial> {
    (0..tap::CHECKS.len())
        .map(|i| {
            trial(shared, format!("net::{}", tap::CHECKS[i]), move |shared| {
                if let Some(why) = shared.skip(Suite::Net) {
                    return Ok(Completion::ignored_with(why));
                }
                match &shared.net()?[i] {
                    r if r.ok => Ok(Completion::Completed),
                    r => Err(r.detail.clone().into()),
                }
            })
        })
        .collect()
}

/// The trials of the Xen suite, each with the index of its scenario file.
fn xen_trials(shared: &Arc<Shared>) -> Vec<(Trial, Option<usize>)> {
    let files = match &shared.xen_files {
        Ok(files) => files,
        Err(e) => {
            let e = e.clone();
            let t = trial(shared, "xen::scenario-files".into(), move |shared| match shared.skip(Suite::Xen) {
                Some(why) => Ok(Completion::ignored_with(why)),
                None => Err(e.into()),
            });
            return vec![(t, None)];
        }
    };
    let mut trials = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let checks = std::iter::once(None).chain(file.checks.iter().map(|c| Some(c.clone())));
        for check in checks {
            let name = xensuite::test_name(file, check.as_deref());
            let t = trial(shared, name, move |shared| {
                if let Some(why) = shared.skip(Suite::Xen) {
                    return Ok(Completion::ignored_with(why));
                }
                let run = shared.xen()?;
                let files = shared.xen_files.as_ref().map_err(|e| Failed::from(e.clone()))?;
                xensuite::verdict(&files[index], check.as_deref(), run)?;
                Ok(Completion::Completed)
            });
            trials.push((t, Some(index)));
        }
    }
    trials
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    // One QEMU at a time: the machine's cores are few and the boots time things.
    args.test_threads.get_or_insert(1);
    let suites = match suites::parse(std::env::var("COHORT_SUITES").ok().as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("emulator: {e}");
            return ExitCode::from(2);
        }
    };
    let qemu = qemu::qemu_binary().err().map(|e| format!("{e}; every QEMU boot is ignored"));
    if let (Some(why), false) = (&qemu, args.list) {
        eprintln!("emulator: {why}");
    }
    let shared = Arc::new(Shared {
        suites,
        qemu,
        verbose: std::env::var("COHORT_VERBOSE").is_ok_and(|v| v == "1"),
        kernel: OnceLock::new(),
        daemon: OnceLock::new(),
        net: OnceLock::new(),
        xen_files: xensuite::files(&artifacts::root()),
        xen_selected: OnceLock::new(),
        xen: OnceLock::new(),
        reruns: Mutex::new(Vec::new()),
        retries: Mutex::new(Vec::new()),
        tests: Mutex::new(Vec::new()),
    });

    let mut trials = kernel_trials(&shared);
    trials.extend(net_trials(&shared));
    let xen = xen_trials(&shared);
    let nfiles = shared.xen_files.as_ref().map_or(0, Vec::len);
    let mut selected = vec![false; nfiles];
    for (trial, file) in &xen {
        if let Some(i) = file {
            selected[*i] |= !args.is_filtered_out(trial) && !args.is_ignored(trial);
        }
    }
    let _ = shared.xen_selected.set(selected);
    trials.extend(xen.into_iter().map(|(t, _)| t));

    let conclusion = libtest_mimic::run(&args, trials);
    if args.list {
        return conclusion.exit_code();
    }
    let lock = |m: &Mutex<Vec<String>>| m.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let summary = summary::Summary {
        suites: shared.suites.iter().map(|s| s.name().to_string()).collect(),
        tests: shared.tests.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        reruns: lock(&shared.reruns),
        retries: lock(&shared.retries),
    };
    if shared.xen.get().is_some() {
        println!("reruns: {}", summary.reruns.len());
        summary.reruns.iter().for_each(|r| println!("  {r}"));
        println!("retried inside dom0: {}", summary.retries.len());
        summary.retries.iter().for_each(|r| println!("  {r}"));
        if let Some(Ok(lab::Run { log: Some(log), .. })) = shared.xen.get() {
            println!("serial log of the lab: {}", log.display());
        }
    }
    let path = artifacts::target_dir("test-results").join("emulator.json");
    match summary.write(&path) {
        Ok(()) => println!("the emulator tests' outcomes: {}", path.display()),
        Err(e) => eprintln!("emulator: {e}"),
    }
    conclusion.exit_code()
}
