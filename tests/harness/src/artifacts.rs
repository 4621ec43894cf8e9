//! Building what the emulators boot: the kernel and the dom0 discovery
//! daemon, each into a target directory of its own under the repository's
//! `target/`, so that a build started from inside `cargo test` never waits
//! on the lock of the `cargo test` that runs it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The repository's top folder (this crate is `tests/harness`).
pub fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = here.join("../..");
    root.canonicalize().unwrap_or(root)
}

/// `target/NAME` of the repository, whatever CARGO_TARGET_DIR says: these
/// builds must not share the outer cargo's target directory.
pub fn target_dir(name: &str) -> PathBuf {
    root().join("target").join(name)
}

/// The cargo that runs us, if any (`cargo test` sets CARGO).
fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn run(mut command: Command, what: &str) -> Result<(), String> {
    eprintln!("[harness] building {what}");
    let out = command.output().map_err(|e| format!("cannot run cargo to build {what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "building {what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Builds the kernel (release) into `target/kernel` and returns the image.
/// Cargo runs from `kernel/cohort`, so `kernel/.cargo/config.toml` (the
/// freestanding flags) applies; RUSTFLAGS from the environment would replace
/// those flags, so they are dropped.
pub fn kernel() -> Result<PathBuf, String> {
    let dir = target_dir("kernel");
    let mut command = Command::new(cargo());
    command
        .current_dir(root().join("kernel/cohort"))
        .args(["build", "--release", "--quiet", "--target", TARGET, "--target-dir"])
        .arg(&dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS");
    run(command, "the kernel (release, target/kernel)")?;
    Ok(dir.join(TARGET).join("release/cohort"))
}

/// Builds the dom0 discovery daemon and the scenarios' event reader
/// (`cohort-event`, next to it: see [`event_tool`]), static so that they
/// run on the lab dom0's libc, into `target/dom0` and returns the daemon.
pub fn daemon() -> Result<PathBuf, String> {
    let dir = target_dir("dom0");
    let mut command = Command::new(cargo());
    command
        .current_dir(root())
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "discoveryd",
            "-p",
            "cohort-event",
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(&dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS");
    run(command, "the dom0 discovery daemon and cohort-event (static, target/dom0)")?;
    Ok(dir.join(TARGET).join("release/cohort-discoveryd"))
}

/// `cohort-event`, which [`daemon`] builds next to the daemon it returns.
pub fn event_tool(daemon: &Path) -> PathBuf {
    daemon.with_file_name("cohort-event")
}
