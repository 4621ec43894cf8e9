//! Booting a Cohort kernel under QEMU TCG and classifying how it ended.

use crate::console::{Console, Next};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// QEMU's exit status for the guest's isa-debug-exit writes (value 0x10 and
/// 0x11; QEMU exits with `(value << 1) | 1`). See kernel/cohort/src/platform/.
pub const GUEST_SUCCESS: i32 = 33;
pub const GUEST_FAILURE: i32 = 35;

/// The first line `kernel_main` prints; boot time is measured to it.
pub const BANNER_PREFIX: &str = "Cohort ";

#[derive(Clone, Debug)]
pub struct Config {
    pub kernel: PathBuf,
    pub cmdline: String,
    pub memory_mib: u32,
    /// Deterministic virtual time: one instruction = 1 ns.
    pub icount: bool,
    pub timeout: Duration,
    /// More QEMU arguments (devices), after the standard ones.
    pub extra_args: Vec<String>,
}

impl Config {
    pub fn new(kernel: &Path, cmdline: &str) -> Config {
        Config {
            kernel: kernel.to_path_buf(),
            cmdline: cmdline.to_string(),
            memory_mib: 32,
            icount: false,
            timeout: Duration::from_secs(120),
            extra_args: Vec::new(),
        }
    }

    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "-machine",
            "q35",
            "-cpu",
            "max",
            "-m",
            &format!("{}M", self.memory_mib),
            "-nodefaults",
            "-display",
            "none",
            "-no-reboot",
            "-serial",
            "stdio",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // TCG always: KVM here emulates every instruction and fails on SSE.
        args.extend(["-accel".into(), "tcg".into()]);
        if self.icount {
            args.extend(["-icount".into(), "shift=0,sleep=off".into()]);
        }
        args.extend(self.extra_args.iter().cloned());
        args.extend(["-kernel".into(), self.kernel.display().to_string()]);
        args.extend(["-append".into(), self.cmdline.clone()]);
        args
    }
}

/// How a boot ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The guest reported success through isa-debug-exit.
    Success,
    /// The guest reported failure.
    Failure,
    /// QEMU stopped without a report: with -no-reboot that is a reset, most
    /// often a triple fault.
    Reset,
    Timeout,
    /// QEMU itself failed (bad arguments, missing file...).
    QemuError {
        status: Option<i32>,
        stderr: String,
    },
}

impl Outcome {
    pub fn from_status(status: Option<i32>, stderr: String) -> Outcome {
        match status {
            Some(GUEST_SUCCESS) => Outcome::Success,
            Some(GUEST_FAILURE) => Outcome::Failure,
            Some(0) => Outcome::Reset,
            other => Outcome::QemuError { status: other, stderr },
        }
    }

    /// The exit status `cohort-harness run` (`./run.sh qemu`) returns: 0 only for reported success.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Success => 0,
            Outcome::Failure => 1,
            Outcome::Reset => 2,
            Outcome::Timeout => 3,
            Outcome::QemuError { .. } => 4,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Outcome::Success => "guest reported success".into(),
            Outcome::Failure => "guest reported failure".into(),
            Outcome::Reset => "guest reset without reporting a result (triple fault?)".into(),
            Outcome::Timeout => "no result before the timeout (guest hung?)".into(),
            Outcome::QemuError { status, stderr } => {
                format!("QEMU failed (exit status {status:?}): {}", stderr.trim())
            }
        }
    }
}

#[derive(Debug)]
pub struct Boot {
    pub outcome: Outcome,
    pub lines: Vec<String>,
    /// Wall time from spawning QEMU to the banner line.
    pub to_banner: Option<Duration>,
    pub elapsed: Duration,
}

impl Boot {
    pub fn has_line(&self, needle: &str) -> bool {
        self.lines.iter().any(|l| l.contains(needle))
    }
}

pub fn qemu_binary() -> Result<PathBuf, String> {
    let name = std::env::var("COHORT_QEMU").unwrap_or_else(|_| "qemu-system-x86_64".into());
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(&name))
        .find(|p| p.is_file())
        .or_else(|| Path::new(&name).is_file().then(|| PathBuf::from(&name)))
        .ok_or_else(|| format!("`{name}` not found: install Debian's qemu-system-x86 (`./run.sh test` installs it)"))
}

/// The QEMU command for `config`: `qemu-system-x86_64 ARGS`, or with
/// `wrapper` in front (`ip netns exec NS` for the tap test).
pub fn command(config: &Config, wrapper: &[&str]) -> Result<Command, String> {
    let qemu = qemu_binary()?;
    if !config.kernel.is_file() {
        return Err(format!("kernel image {} does not exist", config.kernel.display()));
    }
    let mut command = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(qemu);
            c
        }
        None => Command::new(qemu),
    };
    command.args(config.args());
    Ok(command)
}

/// Boots once, passing each console line (without CR/LF) to `on_line` as it
/// arrives, and kills QEMU when `config.timeout` passes.
pub fn boot(config: &Config, mut on_line: impl FnMut(&str)) -> Result<Boot, String> {
    let mut console = Console::spawn(command(config, &[])?, None)?;
    let started = console.started;
    let deadline = started + config.timeout;
    let mut lines = Vec::new();
    let mut to_banner = None;
    let timed_out = loop {
        match console.next(deadline) {
            Next::Line(at, line) => {
                if to_banner.is_none() && line.starts_with(BANNER_PREFIX) {
                    to_banner = Some(at - started);
                }
                on_line(&line);
                lines.push(line);
            }
            Next::Timeout => break true,
            Next::Closed => break false,
        }
    };
    if timed_out {
        console.kill();
    }
    let (status, stderr) = console.finish();
    let outcome = if timed_out { Outcome::Timeout } else { Outcome::from_status(status, stderr) };
    Ok(Boot { outcome, lines, to_banner, elapsed: started.elapsed() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reported_success_maps_to_zero() {
        assert_eq!(Outcome::from_status(Some(33), String::new()), Outcome::Success);
        assert_eq!(Outcome::from_status(Some(35), String::new()), Outcome::Failure);
        assert_eq!(Outcome::from_status(Some(0), String::new()), Outcome::Reset);
        assert!(matches!(Outcome::from_status(Some(1), "x".into()), Outcome::QemuError { .. }));
        assert!(matches!(Outcome::from_status(None, String::new()), Outcome::QemuError { .. }));
        let codes: Vec<i32> = [
            Outcome::Success,
            Outcome::Failure,
            Outcome::Reset,
            Outcome::Timeout,
            Outcome::QemuError { status: Some(1), stderr: String::new() },
        ]
        .iter()
        .map(Outcome::exit_code)
        .collect();
        assert_eq!(codes, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn args_select_tcg_and_icount() {
        let mut config = Config::new(Path::new("/k"), "test=all");
        let args = config.args().join(" ");
        assert!(args.contains("-accel tcg") && args.contains("-m 32M") && args.ends_with("-append test=all"));
        assert!(!args.contains("icount"));
        config.icount = true;
        assert!(config.args().join(" ").contains("-icount shift=0,sleep=off"));
    }

    #[test]
    fn missing_kernel_is_a_clear_error() {
        if qemu_binary().is_err() {
            return; // the error under test needs QEMU present to be reached
        }
        let err = boot(&Config::new(Path::new("/nonexistent/cohort"), ""), |_| {}).unwrap_err();
        assert!(err.contains("/nonexistent/cohort"), "{err}");
    }
}
