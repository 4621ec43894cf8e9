//! A child process whose standard output is a serial console (QEMU with
//! `-serial stdio`): its lines as they come, with deadlines; a copy in a log
//! file, written as they come; the process killed when this is dropped.
//! Every QEMU the harness starts is followed through this.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wait_timeout::ChildExt;

pub struct Console {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
    stderr: Option<JoinHandle<String>>,
    status: Option<ExitStatus>,
    pub started: Instant,
}

/// What [`Console::next`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Line(Instant, String),
    /// The deadline passed first.
    Timeout,
    /// The process closed its output (it exited, as a rule).
    Closed,
}

impl Console {
    /// Starts `command` with standard input from /dev/null and both outputs
    /// piped; every line of standard output also goes to `log`.
    pub fn spawn(mut command: Command, log: Option<&Path>) -> Result<Console, String> {
        let program = command.get_program().to_string_lossy().into_owned();
        let mut log = match log {
            Some(path) => Some(BufWriter::new(File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?)),
            None => None,
        };
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = command.spawn().map_err(|e| format!("cannot start {program}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let mut stderr = child.stderr.take().ok_or("no stderr pipe")?;
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n') {
                let Ok(line) = line else { break };
                let text = String::from_utf8_lossy(&line).trim_end_matches('\r').to_string();
                if let Some(log) = log.as_mut() {
                    let _ = writeln!(log, "{text}");
                    let _ = log.flush();
                }
                // The receiver may be gone (a caller that stopped reading):
                // keep logging until the process closes its output.
                let _ = tx.send((Instant::now(), text));
            }
        });
        Ok(Console { child, lines, stderr: Some(stderr), status: None, started })
    }

    /// The next line, waiting until `deadline` at most.
    pub fn next(&mut self, deadline: Instant) -> Next {
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(wait) {
            Ok((at, line)) => Next::Line(at, line),
            Err(mpsc::RecvTimeoutError::Timeout) => Next::Timeout,
            Err(mpsc::RecvTimeoutError::Disconnected) => Next::Closed,
        }
    }

    /// Every line that has already arrived, without waiting.
    pub fn drain(&mut self, into: &mut Vec<String>) {
        into.extend(self.lines.try_iter().map(|(_, line)| line));
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        if self.status.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.status = Some(status);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> bool {
        if self.status.is_none() {
            if let Ok(Some(status)) = self.child.wait_timeout(timeout) {
                self.status = Some(status);
            }
        }
        self.status.is_some()
    }

    pub fn kill(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// Waits for the process (kill it first if it must not run on) and
    /// returns its exit code (`None` for a signal) and standard error.
    pub fn finish(mut self) -> (Option<i32>, String) {
        if self.status.is_none() {
            self.status = self.child.wait().ok();
        }
        let stderr = self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default();
        (self.status.and_then(|s| s.code()), stderr)
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `command` to its end or until `deadline` (then kills it and
/// whatever it started: it runs in a process group of its own); returns its
/// exit code (`None` when killed) and standard output.
pub fn output_until(mut command: Command, deadline: Instant) -> Result<(Option<i32>, String), String> {
    let program = command.get_program().to_string_lossy().into_owned();
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).process_group(0);
    let mut child = command.spawn().map_err(|e| format!("cannot start {program}: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let status = match child.wait_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(Some(status)) => status.code(),
        _ => {
            // The group: a child of the command may hold the pipe open.
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    };
    Ok((status, reader.join().unwrap_or_default()))
}

/// The last `n` lines, each behind `prefix`, for a failure message.
pub fn tail(lines: &[String], n: usize, prefix: &str) -> String {
    let from = lines.len().saturating_sub(n);
    lines[from..].iter().map(|l| format!("{prefix}{l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_lines_logs_them_and_reports_the_end() {
        let dir = std::env::temp_dir().join(format!("cohort-console-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "printf 'one\\r\\ntwo\\nthree'; echo err >&2; exit 3"]);
        let mut console = Console::spawn(cmd, Some(&log)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while let Next::Line(_, line) = console.next(deadline) {
            got.push(line);
        }
        assert_eq!(got, ["one", "two", "three"]);
        let (status, stderr) = console.finish();
        assert_eq!((status, stderr.as_str()), (Some(3), "err\n"));
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "one\ntwo\nthree\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn deadlines_and_kill() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let mut console = Console::spawn(cmd, None).unwrap();
        assert_eq!(console.next(Instant::now() + Duration::from_millis(50)), Next::Timeout);
        assert!(console.running());
        assert!(!console.wait_for_exit(Duration::from_millis(10)));
        console.kill();
        assert!(!console.running());
        assert_eq!(console.finish().0, None);
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo hi; sleep 30"]);
        let (status, out) = output_until(cmd, Instant::now() + Duration::from_millis(300)).unwrap();
        assert_eq!((status, out.as_str()), (None, "hi\n"));
    }

    #[test]
    fn tails() {
        let lines: Vec<String> = (1..=5).map(|i| i.to_string()).collect();
        assert_eq!(tail(&lines, 2, "| "), "| 4\n| 5\n");
        assert_eq!(tail(&lines[..1], 3, ""), "1\n");
    }
}
