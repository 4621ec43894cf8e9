//! The boot benchmark: figures only the host can see (wall time from QEMU
//! start, image size) plus the guest's own `BENCH` lines, with and without
//! QEMU's deterministic -icount clock. And the Xen benchmarks' progress
//! on the host's clock ([`Progress`]).

use crate::qemu::{self, Config, Outcome};
use std::path::Path;
use std::time::Duration;

/// cohort-bench.sh says `bench: netbench configuration K of N (NAME), S s
/// so far...` on dom0's clock, which under -icount counts instructions,
/// not the time one waits. This says it again in the host's seconds.
#[derive(Default)]
pub struct Progress {
    first: Option<Duration>,
}

impl Progress {
    /// `now` is the host's time since any fixed start.
    pub fn on_line(&mut self, line: &str, now: Duration) -> Option<String> {
        let rest = line.strip_prefix("bench: netbench configuration ")?;
        let (k, rest) = rest.split_once(" of ")?;
        let n = rest.split_whitespace().next()?;
        let (k, n): (u64, u64) = (k.parse().ok()?, n.parse().ok()?);
        if k == 1 || self.first.is_none() {
            self.first = Some(now);
            return None;
        }
        let first = self.first?;
        let spent = now.saturating_sub(first).as_secs();
        let left = spent * (n + 1).saturating_sub(k) / (k - 1);
        Some(format!(
            "bench: netbench configuration {k} of {n}: {spent} s of this machine's time since the first, about {left} s left"
        ))
    }
}

pub const RUNS: usize = 5;

pub fn bench_line(name: &str, value: f64, unit: &str, clock: &str) -> String {
    format!("BENCH {{\"name\":\"{name}\",\"path\":\"boot\",\"value\":{value:.3},\"unit\":\"{unit}\",\"clock\":\"{clock}\"}}")
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Extracts (name, value) from a guest `BENCH` line (read as the shared
/// `figures::Figure`).
pub fn parse_bench(line: &str) -> Option<(String, f64)> {
    let json = figures::json_in(line)?;
    let figure: figures::Figure<String> = serde_json::Deserializer::from_str(json).into_iter().next()?.ok()?;
    Some((figure.name, figure.value))
}

/// Runs the boot benchmark; every line it reports (`BENCH` lines, then the
/// targets) goes to `out`, progress to standard error.
pub fn run(kernel: &Path, out: &mut dyn FnMut(&str)) -> Result<(), String> {
    let image = std::fs::metadata(kernel).map_err(|e| format!("{}: {e}", kernel.display()))?.len();
    out(&bench_line("image.file_size", image as f64, "bytes", "wall"));

    // Wall clock: QEMU start -> banner, median of RUNS boots; the guest's
    // figures are passed through from each boot (their clock is the TSC,
    // which follows host time under plain TCG).
    let mut to_banner = Vec::new();
    for run in 1..=RUNS {
        eprintln!("bench: boot {run}/{RUNS} (wall clock)");
        let boot = qemu::boot(&Config::new(kernel, "bench=boot"), |_| {})?;
        if boot.outcome != Outcome::Success {
            return Err(format!("bench boot failed: {}", boot.outcome.describe()));
        }
        let t = boot.to_banner.ok_or("the guest never printed its banner")?;
        to_banner.push(t.as_secs_f64() * 1000.0);
        if run == RUNS {
            boot.lines.iter().filter(|l| l.starts_with("BENCH ")).for_each(|l| out(l));
        }
    }
    let wall = median(&mut to_banner);
    out(&bench_line("boot.qemu_start_to_kernel_main", wall, "ms", "wall"));

    // Virtual clock: one instruction = 1 ns, the same on every run.
    eprintln!("bench: boot under -icount (virtual clock)");
    let mut config = Config::new(kernel, "bench=boot bench.clock=virtual");
    config.icount = true;
    let boot = qemu::boot(&config, |_| {})?;
    if boot.outcome != Outcome::Success {
        return Err(format!("icount bench boot failed: {}", boot.outcome.describe()));
    }
    let mut guest = Vec::new();
    for line in boot.lines.iter().filter(|l| l.starts_with("BENCH ")) {
        out(line);
        guest.extend(parse_bench(line));
    }

    let entry_us = guest.iter().find(|(n, _)| n == "boot.pvh_entry_to_kernel_main").map(|(_, v)| *v);
    out("");
    out("targets (from issue 3):");
    out(&format!("  image size {:.0} KiB (target <= 1024 KiB)", image as f64 / 1024.0));
    out(&format!("  runs with -m 32M: {}", if boot.outcome == Outcome::Success { "yes" } else { "no" }));
    if let Some(us) = entry_us {
        out(&format!("  PVH entry -> kernel_main {:.3} ms virtual (target <= 5 ms)", us / 1000.0));
    }
    out(&format!("  QEMU start -> kernel_main {wall:.1} ms wall, median of {RUNS}"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_lines_round_trip() {
        let line = bench_line("boot.x", 12.5, "ms", "wall");
        assert_eq!(line, r#"BENCH {"name":"boot.x","path":"boot","value":12.500,"unit":"ms","clock":"wall"}"#);
        assert_eq!(parse_bench(&line), Some(("boot.x".to_string(), 12.5)));
        assert_eq!(parse_bench("BENCH {\"name\":\"a\"}"), None);
        assert_eq!(parse_bench("no"), None);
    }

    #[test]
    fn guest_lines_parse() {
        // As the kernel writes them (figures::Figure with serde-json-core).
        let guest =
            figures::Figure { name: "boot.pvh_entry_to_kernel_main", path: "boot", value: 137.25, unit: "us", clock: "virtual" };
        assert_eq!(parse_bench(&guest.to_string()), Some(("boot.pvh_entry_to_kernel_main".to_string(), 137.25)));
        // Escaped names, and a value that is no number.
        assert_eq!(
            parse_bench(r#"BENCH {"name":"a\"b","path":"p","value":1,"unit":"u","clock":"wall"}"#),
            Some(("a\"b".to_string(), 1.0))
        );
        assert_eq!(parse_bench(r#"BENCH {"name":"a","path":"p","value":null,"unit":"u","clock":"wall"}"#), None);
    }

    #[test]
    fn progress_in_host_seconds() {
        let mut p = Progress::default();
        let s = Duration::from_secs;
        assert_eq!(p.on_line("bench: netbench configuration 1 of 17 (default), 0 s so far", s(100)), None);
        assert_eq!(p.on_line("BENCH {}", s(120)), None);
        let line = p.on_line("bench: netbench configuration 3 of 17 (pv), 9 s so far, about 67 s left", s(180)).unwrap();
        // 80 s for 2 configurations: 15 more to go, 40 s each.
        assert_eq!(line, "bench: netbench configuration 3 of 17: 80 s of this machine's time since the first, about 600 s left");
        assert_eq!(p.on_line("bench: netbench configuration x of 17", s(200)), None);
        // The next half starts again at 1.
        assert_eq!(p.on_line("bench: netbench configuration 1 of 2 (default), 0 s so far", s(1000)), None);
        let line = p.on_line("bench: netbench configuration 2 of 2 (pv)", s(1030)).unwrap();
        assert!(line.ends_with("30 s of this machine's time since the first, about 30 s left"), "{line}");
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 3.0);
    }
}
