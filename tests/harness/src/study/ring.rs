//! The host ring benchmark as part of a full study: `tests/ringbench`
//! (release build, no QEMU) run with `--out target/study/ringbench.jsonl`,
//! its progress lines relayed, so the report's limits section is filled in
//! the same command.

use super::report::ring_figures;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

/// The file the report reads the ring figures from.
pub const FILE: &str = "ringbench.jsonl";

/// Whether this run measures the ring: a full run does, but for one that
/// resumes and already has ring figures (`kept`: the file's text). A quick
/// run leaves it out (it stays a check of the lab, in CI).
pub fn wanted(quick: bool, resume: bool, kept: Option<&str>) -> bool {
    !quick && (!resume || kept.is_none_or(|t| ring_figures(t).is_empty()))
}

/// `cargo run --release -p cohort-ringbench -- --out OUT`, with `cargo`
/// the one running the harness when there is one.
pub fn command(out: &Path) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut c = Command::new(cargo);
    c.args(["run", "--release", "--quiet", "-p", "cohort-ringbench", "--", "--out"]).arg(out);
    c
}

/// Runs the benchmark into `dir`/[`FILE`], relaying its progress to
/// `say`; an error if it fails or writes no ring figure.
pub fn run(dir: &Path, say: &mut dyn FnMut(&str)) -> Result<usize, String> {
    let out = dir.join(FILE);
    let mut cmd = command(&out);
    cmd.current_dir(crate::artifacts::root()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot start the ring benchmark: {e}"))?;
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let line = line.trim_end();
            if !line.is_empty() {
                say(&format!("ringbench: {}", line.trim_start_matches("ringbench: ")));
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("the ring benchmark failed ({status})"));
    }
    let text = std::fs::read_to_string(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    match ring_figures(&text).len() {
        0 => Err(format!("the ring benchmark wrote no ring.* figure to {}", out.display())),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_run_measures_the_ring_unless_resumed_with_its_figures() {
        let kept = r#"{"name":"ring.channel.throughput.64","path":"host","value":1,"unit":"Gbit/s","clock":"wall"}"#;
        assert!(wanted(false, false, None));
        assert!(wanted(false, false, Some(kept)), "a new run measures again");
        assert!(!wanted(false, true, Some(kept)));
        assert!(wanted(false, true, Some("noise")), "resumed without ring figures");
        assert!(wanted(false, true, None));
        assert!(!wanted(true, false, None) && !wanted(true, true, None), "never in a quick run");
    }

    #[test]
    fn the_command_is_the_release_ringbench_writing_the_study_file() {
        let c = command(Path::new("/x/ringbench.jsonl"));
        let args: Vec<_> = c.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args, ["run", "--release", "--quiet", "-p", "cohort-ringbench", "--", "--out", "/x/ringbench.jsonl"]);
    }
}
