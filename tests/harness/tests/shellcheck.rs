//! Every shell script of the test harness passes shellcheck: one test per
//! script (run.sh, .ci/run, tests/xen/**, tests/net/**). Scripts that run
//! in the lab's busybox say `# shellcheck shell=sh`; a warning that stays is
//! disabled on its line with the reason. Without shellcheck on the machine
//! the tests are ignored, saying so, unless COHORT_SUITES selects the lint
//! suite (tests/lint.rs; `./run.sh test` selects it and installs
//! shellcheck): then they fail.

use cohort_harness::artifacts;
use cohort_harness::suites::{self, Suite};
use libtest_mimic::{Arguments, Completion, Trial};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Where the scripts are, from the repository's top.
const PLACES: [&str; 4] = ["run.sh", ".ci/run", "tests/xen", "tests/net"];

/// Whether `path` is a shell script: a `.sh` name, or a `#!` line naming
/// sh, bash or ash.
fn is_shell(path: &Path) -> bool {
    if path.extension().is_some_and(|e| e == "sh") {
        return true;
    }
    let Ok(text) = std::fs::read(path) else { return false };
    let first = text.split(|b| *b == b'\n').next().unwrap_or_default();
    let Some(line) = std::str::from_utf8(first).ok().and_then(|l| l.strip_prefix("#!")) else { return false };
    let mut words = line.split_whitespace();
    let program = words.next().unwrap_or("");
    let program = if program.ends_with("/env") { words.next().unwrap_or("") } else { program };
    matches!(program.rsplit('/').next(), Some("sh" | "bash" | "ash"))
}

fn scripts(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo: Vec<PathBuf> = PLACES.iter().map(|p| root.join(p)).collect();
    while let Some(path) = todo.pop() {
        if path.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                todo.extend(entries.flatten().map(|e| e.path()));
            }
        } else if path.is_file() && is_shell(&path) {
            found.push(path);
        }
    }
    found.sort();
    found
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let root = artifacts::root();
    let missing = Command::new("shellcheck").arg("--version").output().is_err();
    // A gate must not pass for want of its tool (an unknown suite name is
    // reported by the other test binaries).
    let gate = suites::parse(std::env::var("COHORT_SUITES").ok().as_deref()).is_ok_and(|s| s.contains(&Suite::Lint));
    let trials = scripts(&root)
        .into_iter()
        .map(|path| {
            let name = path.strip_prefix(&root).unwrap_or(&path).display().to_string();
            Trial::ignorable_test(format!("shellcheck::{name}"), move || {
                if missing && gate {
                    return Err("no shellcheck here: install Debian's shellcheck (./run.sh test does)".into());
                }
                if missing {
                    return Ok(Completion::ignored_with("no shellcheck here: install Debian's shellcheck"));
                }
                let dir = path.parent().unwrap_or(Path::new("."));
                let out = Command::new("shellcheck")
                    .args(["--external-sources", "--source-path=SCRIPTDIR", "--format=gcc"])
                    .arg(path.file_name().unwrap_or_default())
                    .current_dir(dir)
                    .output()
                    .map_err(|e| format!("cannot run shellcheck: {e}"))?;
                if out.status.success() {
                    Ok(Completion::Completed)
                } else {
                    Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)).into())
                }
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
