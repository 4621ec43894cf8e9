//! The lint suite: gates that fail `./run.sh test` (COHORT_SUITES=all, or
//! `lint`) when the code is not clean, one test each:
//!
//!   lint::clippy-host    `cargo clippy --workspace --exclude cohort
//!                        --all-targets -- -D warnings`: every host crate,
//!                        with its tests
//!   lint::clippy-kernel  the kernel as it is built (from kernel/cohort, so
//!                        kernel/.cargo's freestanding config applies;
//!                        release; --target x86_64-unknown-linux-gnu), with
//!                        -D warnings: the kernel and every crate in it
//!   lint::fmt            `cargo fmt --all --check` (settings: rustfmt.toml)
//!
//! The workspace's lints (Cargo.toml, [workspace.lints]) apply to both
//! clippy runs: among them `clippy::undocumented_unsafe_blocks`, denied
//! (every `unsafe` block says why it is sound in a `// SAFETY:` comment).
//! Shell scripts are checked by tests/shellcheck.rs, one test per script;
//! with the lint suite selected, a missing shellcheck fails there too.
//!
//! The clippy runs have target directories of their own (target/lint-host,
//! target/lint-kernel): the `cargo test` that runs them holds target/'s lock.
//! Without COHORT_SUITES selecting `lint` the tests are ignored, saying so.
//! Alone: `COHORT_SUITES=lint cargo test -p cohort-harness --test lint
//! --test shellcheck` (or `./run.sh lint`).

use cohort_harness::artifacts;
use cohort_harness::suites::{self, Suite};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, ExitCode, Output};

/// One gate, run from the repository's top.
type Gate = fn(&Path) -> Result<Completion, Failed>;

/// How many lines of `cargo fmt --check`'s diff a failure shows.
const FMT_LINES: usize = 200;

/// The cargo that runs us (`cargo test` sets CARGO), so that the gates use
/// the toolchain the tests were built with.
fn cargo(dir: &Path) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")));
    command.current_dir(dir);
    command
}

fn output(mut command: Command, what: &str) -> Result<Output, Failed> {
    eprintln!("[lint] {what}");
    command.output().map_err(|e| Failed::from(format!("cannot run {what}: {e}")))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A clippy run passes when it exits 0; `-D warnings` makes any warning an
/// error.
fn clippy(command: Command, what: &str) -> Result<Completion, Failed> {
    let out = output(command, what)?;
    if out.status.success() {
        return Ok(Completion::Completed);
    }
    let text = text(&out);
    if text.contains("no such command") || text.contains("is not installed") {
        return Err(
            format!("{what}: clippy is missing (rust-toolchain.toml lists it; `rustup component add clippy`):\n{text}").into()
        );
    }
    Err(format!("{what} failed ({}):\n{text}", out.status).into())
}

fn clippy_host(root: &Path) -> Result<Completion, Failed> {
    let mut command = cargo(root);
    command
        .args(["clippy", "--quiet", "--workspace", "--exclude", "cohort", "--all-targets", "--target-dir"])
        .arg(artifacts::target_dir("lint-host"))
        .args(["--", "-D", "warnings"]);
    clippy(command, "cargo clippy --workspace --exclude cohort --all-targets -- -D warnings")
}

/// Like artifacts::kernel: from kernel/cohort, without RUSTFLAGS from the
/// environment (they would replace the freestanding flags).
fn clippy_kernel(root: &Path) -> Result<Completion, Failed> {
    let mut command = cargo(&root.join("kernel/cohort"));
    command
        .args(["clippy", "--quiet", "--release", "--target", artifacts::TARGET, "--target-dir"])
        .arg(artifacts::target_dir("lint-kernel"))
        .args(["--", "-D", "warnings"])
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS");
    clippy(command, "cargo clippy (kernel/cohort) --release --target x86_64-unknown-linux-gnu -- -D warnings")
}

/// rustfmt's diff is long when much is off: the failure names every file
/// and shows the diff's first lines.
fn fmt(root: &Path) -> Result<Completion, Failed> {
    let mut command = cargo(root);
    command.args(["fmt", "--all", "--check"]);
    let out = output(command, "cargo fmt --all --check")?;
    if out.status.success() {
        return Ok(Completion::Completed);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut files: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("Diff in "))
        .map(|l| l.trim_end_matches(':').rsplit_once(':').map_or(l, |(file, _line)| file))
        .collect();
    // A file that several targets include is reported once for each.
    files.sort_unstable();
    files.dedup();
    if files.is_empty() {
        // Not a formatting diff: rustfmt is missing or did not parse a file.
        return Err(format!("cargo fmt --all --check failed ({}):\n{stdout}{stderr}", out.status).into());
    }
    let lines: Vec<&str> = stdout.lines().collect();
    let shown = lines.iter().take(FMT_LINES).copied().collect::<Vec<_>>().join("\n");
    let more = match lines.len().saturating_sub(FMT_LINES) {
        0 => String::new(),
        n => format!("\n... and {n} more lines of diff"),
    };
    let root = format!("{}/", root.display());
    let names: Vec<&str> = files.iter().map(|f| f.strip_prefix(root.as_str()).unwrap_or(f)).collect();
    Err(format!(
        "cargo fmt --all --check: {} files are not formatted (`cargo fmt --all` formats them):\n  {}\n\n{shown}{more}\n{stderr}",
        names.len(),
        names.join("\n  ")
    )
    .into())
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let skip = match suites::parse(std::env::var("COHORT_SUITES").ok().as_deref()) {
        Ok(s) if s.contains(&Suite::Lint) => None,
        Ok(_) => Some("COHORT_SUITES=all (or lint) runs it".to_string()),
        Err(e) => {
            eprintln!("lint: {e}");
            return ExitCode::from(2);
        }
    };
    let gates: [(&str, Gate); 3] =
        [("lint::clippy-host", clippy_host), ("lint::clippy-kernel", clippy_kernel), ("lint::fmt", fmt)];
    let trials = gates
        .into_iter()
        .map(|(name, gate)| {
            let skip = skip.clone();
            Trial::ignorable_test(name, move || match skip {
                Some(why) => Ok(Completion::ignored_with(why)),
                None => gate(&artifacts::root()),
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
