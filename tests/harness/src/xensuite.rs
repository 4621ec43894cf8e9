//! The real-Xen test suite: which scenario files `cargo test` runs, the
//! checks each declares, and each check's verdict from a lab run.
//!
//! A scenario file declares its checks in comment lines,
//!
//! ```text
//! # result: xen-net-dom0-pings-guest
//! # result pvh: xen-ist-something
//! ```
//!
//! (the second only where its Cohort guests are PVH: for a check that
//! cannot apply to PV guests; none is declared so now),
//! so that the test runner knows every check's name before the lab boots:
//! each becomes a named test (`xen::cohort-net.sh::xen-net-dom0-pings-guest`),
//! and so does the file itself (`xen::cohort-net.sh`: it ran to its end,
//! exit status 0, within its timeout, and reported no check it does not
//! declare). The lab boots once for every selected file.

use crate::lab::{self, FileRun, Run, Scenario};
use std::path::Path;
use std::time::Duration;

/// The scenario files `cargo test` runs on real Xen, in this order, with
/// Linux reference guests: what `./run.sh test` ran before, the same
/// image as a PV guest (`cohort-pv.sh`), then the PVH files again with
/// every Cohort guest PV (`@pv`: the PV/PVH matrix).
pub const FILES: [&str; 11] = [
    "tests/xen/scenarios/cohort.sh /cohort/cohort",
    "tests/xen/scenarios/cohort-pv.sh /cohort/cohort",
    "tests/xen/scenarios/cohort-net.sh /cohort/cohort",
    "tests/xen/scenarios/cohort-channel.sh /cohort/cohort",
    "tests/xen/scenarios/cohort-linux.sh /cohort/cohort",
    "tests/xen/scenarios/cohort-iperf3.sh /cohort/cohort",
    "tests/xen/scenarios/cohort.sh@pv /cohort/cohort",
    "tests/xen/scenarios/cohort-net.sh@pv /cohort/cohort",
    "tests/xen/scenarios/cohort-channel.sh@pv /cohort/cohort",
    "tests/xen/scenarios/cohort-linux.sh@pv /cohort/cohort",
    "tests/xen/scenarios/cohort-iperf3.sh@pv /cohort/cohort",
];
pub const SCENARIO_TIMEOUT: Duration = Duration::from_secs(900);
pub const TIMEOUT: Duration = Duration::from_secs(2400);

/// A scenario file and the checks it declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub scenario: Scenario,
    pub checks: Vec<String>,
}

/// The checks a scenario script declares for Cohort guests of
/// `guest_type` (`None`: PVH): its `# result: NAME` lines, and its
/// `# result pvh: NAME` lines unless the guests are PV.
pub fn declared(text: &str, guest_type: Option<&str>) -> Vec<String> {
    let pvh = guest_type.is_none_or(|t| t == "pvh");
    text.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            l.strip_prefix("# result:").or_else(|| l.strip_prefix("# result pvh:").filter(|_| pvh))
        })
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Reads the declarations of `FILES` (paths relative to `root`).
pub fn files(root: &Path) -> Result<Vec<File>, String> {
    let mut files: Vec<File> = Vec::new();
    for spec in FILES {
        let mut scenario = Scenario::parse(spec);
        scenario.file = root.join(&scenario.file);
        let text = std::fs::read_to_string(&scenario.file).map_err(|e| format!("{}: {e}", scenario.file.display()))?;
        let checks = declared(&text, scenario.guest_type.as_deref());
        if checks.is_empty() {
            return Err(format!("{} declares no check (`# result: NAME` lines)", scenario.file.display()));
        }
        for c in &checks {
            // Unique among the files of one guest type (the matrix runs a
            // file's checks once per type, under the file's name).
            let same_type = |f: &&File| f.scenario.guest_type == scenario.guest_type;
            if files.iter().filter(same_type).any(|f| f.checks.contains(c)) || checks.iter().filter(|d| *d == c).count() > 1 {
                return Err(format!("check `{c}` is declared twice"));
            }
        }
        files.push(File { scenario, checks });
    }
    Ok(files)
}

/// A test's name: `xen::FILE` or `xen::FILE::CHECK`.
pub fn test_name(file: &File, check: Option<&str>) -> String {
    match check {
        Some(c) => format!("xen::{}::{c}", file.scenario.name()),
        None => format!("xen::{}", file.scenario.name()),
    }
}

fn lab_note(r: &crate::protocol::CheckResult) -> String {
    r.lab_fault.as_ref().map(|l| format!("\n(dom0 saw a lab fault: {})", l.replace('\n', "; "))).unwrap_or_default()
}

/// What the file printed before a failed check's RESULT, for the failure's
/// message.
fn context(file: Option<&FileRun>, check: &str) -> String {
    match file.and_then(|f| f.context.get(check)) {
        Some(lines) if !lines.is_empty() => {
            let lines: String = lines.iter().map(|l| format!("\n    | {l}")).collect();
            format!("\nwhat the scenario printed before it:{lines}")
        }
        _ => String::new(),
    }
}

/// Why a file's checks have no RESULT: how the file or the lab ended.
fn missing(file: Option<&FileRun>, run: &Run) -> String {
    match file.and_then(|f| f.verdict.as_ref()) {
        Some(v) => format!("the file ended without reporting it: {}", v.detail),
        None if file.is_none() => "the lab did not run this file".into(),
        None => format!("the lab ended before the file did: {}", run.end.describe()),
    }
}

/// The verdict of one check (`Some(name)`) or of the file itself (`None`).
pub fn verdict(file: &File, check: Option<&str>, run: &Run) -> Result<(), String> {
    let name = file.scenario.name();
    let got = run.file(&name);
    let Some(check) = check else {
        let f = got.ok_or("the lab did not run this file")?;
        let v = f.verdict.as_ref().ok_or_else(|| missing(Some(f), run))?;
        let mut problems = Vec::new();
        if !v.ok {
            problems.push(format!("{}{}{}", v.detail, lab_note(v), context(Some(f), &name)));
        }
        for r in f.results.iter().filter(|r| !file.checks.contains(&r.name)) {
            problems.push(format!("it reported `{}`, which it does not declare: {}", r.human(), lab_note(r)));
        }
        for g in &f.garbled {
            problems.push(format!("a RESULT line that does not parse: {g}"));
        }
        return if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) };
    };
    let reported: Vec<_> = got.iter().flat_map(|f| f.results.iter()).filter(|r| r.name == check).collect();
    match reported.as_slice() {
        [] => Err(format!("no RESULT: {}", missing(got, run))),
        [r] if r.ok => Ok(()),
        [r] => Err(format!("{}{}{}", r.detail, lab_note(r), context(got, check))),
        many => Err(format!("reported {} times: {}", many.len(), many.iter().map(|r| r.human()).collect::<Vec<_>>().join("; "))),
    }
}

/// Whether a run whose selected checks did not all pass gets a second run:
/// only when dom0 traced a failure to the lab (`LAB FAULT`); the reason.
pub fn rerun_reason(run: &Run) -> Option<String> {
    let faults = run.lab_faults();
    (!faults.is_empty()).then(|| faults.join("; "))
}

/// The lab configuration of the suite for `selected` files.
pub fn config(selected: &[&File], kernel: &Path, daemon: &Path) -> lab::Config {
    lab::Config {
        scenarios: selected.iter().map(|f| f.scenario.clone()).collect(),
        linux_guest: true,
        // One host thread: no Cohort guest has faulted that way (README,
        // "What the nested lab taught us"), and the suite takes about as
        // long as multi-threaded.
        single_thread: true,
        timeout: TIMEOUT,
        scenario_timeout: SCENARIO_TIMEOUT,
        ..lab::Config::default()
    }
    .with_cohort(kernel, daemon)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::End;
    use crate::protocol::CheckResult;

    #[test]
    fn the_suite_declares_its_checks() {
        let files = files(&crate::artifacts::root()).unwrap();
        let count: usize = files.iter().map(|f| f.checks.len()).sum();
        assert_eq!(count, 44 + 33, "{files:?}");
        assert!(files[1].checks.contains(&"xen-pv-boots-and-powers-off".to_string()));
        assert!(files[2].checks.contains(&"xen-net-dom0-echo-16MiB".to_string()));
        assert_eq!(test_name(&files[2], Some("x")), "xen::cohort-net.sh::x");
        // The matrix: the PVH files again with PV guests, named apart, with
        // the same checks (the stack overflow's checked from dom0 on PV).
        assert_eq!(test_name(&files[7], Some("x")), "xen::cohort-net.pv.sh::x");
        assert_eq!(files[7].checks, files[2].checks);
        assert_eq!(files[6].checks, files[0].checks);
        assert!(files[6].checks.contains(&"xen-stack-overflow-caught".to_string()));
        let text = "#!/bin/sh\n# result: a  what a checks\n  # result: b\n# results: c\n# result pvh: d  PVH only\n";
        assert_eq!(declared(text, None), ["a", "b", "d"]);
        assert_eq!(declared(text, Some("pv")), ["a", "b"]);
    }

    fn file() -> File {
        File { scenario: Scenario::parse("s/f.sh"), checks: vec!["a".into(), "b".into()] }
    }

    fn run(results: Vec<CheckResult>, verdict: Option<CheckResult>, end: End) -> Run {
        let context = [("b".to_string(), vec!["guest x: no reply".to_string()])].into();
        let f = FileRun { name: "f.sh".into(), results, verdict, garbled: vec![], context };
        Run { files: vec![f], retries: vec![], end, log: None, elapsed: Duration::ZERO }
    }

    #[test]
    fn verdicts() {
        let f = file();
        let mut bad = CheckResult::fail("b", "broke");
        bad.lab_fault = Some("LAB FAULT: x".into());
        let r = run(
            vec![CheckResult::pass("a", ""), bad, CheckResult::fail("z", "odd")],
            Some(CheckResult::pass("f.sh", "exit 0")),
            End::Done,
        );
        assert_eq!(verdict(&f, Some("a"), &r), Ok(()));
        let err = verdict(&f, Some("b"), &r).unwrap_err();
        assert!(err.starts_with("broke") && err.contains("LAB FAULT: x"), "{err}");
        assert!(err.ends_with("printed before it:\n    | guest x: no reply"), "{err}");
        assert!(verdict(&f, None, &r).unwrap_err().contains("does not declare"));
        assert_eq!(rerun_reason(&r).as_deref(), Some("b: LAB FAULT: x"));

        let timeout = CheckResult::fail("f.sh", "timed out after 900s");
        let r = run(vec![CheckResult::pass("a", "")], Some(timeout), End::Done);
        assert!(verdict(&f, Some("b"), &r).unwrap_err().contains("timed out after 900s"));
        assert!(verdict(&f, None, &r).unwrap_err().contains("timed out"));
        assert_eq!(rerun_reason(&r), None);

        let r =
            run(vec![CheckResult::pass("a", ""), CheckResult::pass("a", "")], None, End::Panic("(XEN) Panic on CPU 1".into()));
        assert!(verdict(&f, Some("a"), &r).unwrap_err().contains("2 times"));
        assert!(verdict(&f, Some("b"), &r).unwrap_err().contains("Panic on CPU 1"));
        assert!(verdict(&f, None, &r).unwrap_err().contains("Panic on CPU 1"));
        let other = File { scenario: Scenario::parse("s/g.sh"), checks: vec!["c".into()] };
        assert!(verdict(&other, Some("c"), &r).unwrap_err().contains("did not run"));
    }
}
