//! `ringbench`: the host ring benchmark (see the library's doc).
//!
//! ```text
//! ringbench [--quick] [--reps N] [--bytes N] [--sizes A,B,..] [--only KIND,..]
//!           [--ring-bytes N] [--no-same-core] [--out PATH] [--diagnose]
//! ```
//!
//! `BENCH` lines on standard output (and, with `--out`, the same figures
//! as bare JSON objects, one a line, in PATH); progress and a summary on
//! standard error.

use std::io::Write;
use std::process::ExitCode;

use cohort_ringbench::run::Placement;
use cohort_ringbench::transport::Kind;
use cohort_ringbench::{cores, diagnose, run_plan, summary, Plan, RING_BYTES, SIZES};

const USAGE: &str = "usage: ringbench [--quick] [--reps N] [--bytes N] [--sizes A,B,..] [--only KIND,..] \
[--ring-bytes N] [--no-same-core] [--out PATH] [--diagnose]

  --quick         3 repetitions of 8 MiB per transfer (a check, not figures)
  --reps N        repetitions (default 5)
  --bytes N       bytes per transfer (default 32 MiB; at least 1000 frames)
  --sizes A,B     frame sizes in bytes (default 64,1500,1514,9000)
  --only K,..     transports: channel, channel_atomic, memcpy, rtrb (default all)
  --ring-bytes N  shared buffer per transport (default 65536: the channel's 16 pages)
  --no-same-core  leave out the runs with both threads on one core
  --out PATH      also write the figures to PATH, one JSON object a line
  --diagnose      instead: where a frame's time goes (ns per frame on one thread
                  and across cores, with memcpy_eager; no figures)";

struct Args {
    plan: Plan,
    out: Option<std::path::PathBuf>,
    diagnose: bool,
}

fn parse() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let (a, b) = cores();
    let mut plan = Plan {
        sizes: SIZES.to_vec(),
        kinds: Kind::ALL.to_vec(),
        reps: 5,
        bytes: 32 << 20,
        ring_bytes: RING_BYTES,
        cross: b.map(|_| Placement { tx_core: a, rx_core: b }),
        same: Some(Placement { tx_core: a, rx_core: a }),
    };
    let mut out = None;
    let mut diagnose = false;
    let mut parser = lexopt::Parser::from_env();
    let list = |v: String| -> Result<Vec<String>, lexopt::Error> { Ok(v.split(',').map(str::to_string).collect()) };
    while let Some(arg) = parser.next()? {
        match arg {
            Long("quick") => {
                plan.reps = 3;
                plan.bytes = 8 << 20;
            }
            Long("reps") => plan.reps = parser.value()?.parse()?,
            Long("bytes") => plan.bytes = parser.value()?.parse()?,
            Long("ring-bytes") => plan.ring_bytes = parser.value()?.parse()?,
            Long("sizes") => {
                plan.sizes = list(parser.value()?.string()?)?
                    .iter()
                    .map(|s| s.parse().map_err(|e| lexopt::Error::from(format!("--sizes {s}: {e}"))))
                    .collect::<Result<_, _>>()?
            }
            Long("only") => {
                plan.kinds = list(parser.value()?.string()?)?
                    .iter()
                    .map(|s| Kind::parse(s).ok_or_else(|| lexopt::Error::from(format!("--only: no transport `{s}`"))))
                    .collect::<Result<_, _>>()?
            }
            Long("no-same-core") => plan.same = None,
            Long("diagnose") => diagnose = true,
            Long("out") => out = Some(parser.value()?.into()),
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    if plan.reps == 0 {
        return Err("--reps must be at least 1".into());
    }
    Ok(Args { plan, out, diagnose })
}

fn main() -> ExitCode {
    let Args { plan, out, diagnose: diag } = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ringbench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (a, b) = cores();
    match (plan.cross, b) {
        (Some(_), Some(b)) => {
            eprintln!("ringbench: threads on cores {} and {b} (and both on {} for same-core)", a.unwrap_or(0), a.unwrap_or(0))
        }
        _ => eprintln!("ringbench: fewer than two cores to pin to: same-core runs only"),
    }
    if diag {
        return match diagnose(&plan, &mut |p| eprintln!("ringbench: {p}")) {
            Ok(table) => {
                eprint!("\n{table}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ringbench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let mut file = match &out {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if let Err(e) = std::fs::create_dir_all(dir) {
                    eprintln!("ringbench: {}: {e}", dir.display());
                    return ExitCode::FAILURE;
                }
            }
            match std::fs::File::create(path) {
                Ok(f) => Some(f),
                Err(e) => {
                    eprintln!("ringbench: {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
        }
        None => None,
    };
    let mut write_error = None;
    let result = run_plan(
        &plan,
        &mut |f| {
            println!("{}", f.line());
            if let Some(file) = &mut file {
                if let Err(e) = writeln!(file, "{}", f.json()) {
                    write_error.get_or_insert(e);
                }
            }
        },
        &mut |p| eprintln!("ringbench: {p}"),
    );
    match result {
        Ok(all) => {
            eprint!("\n{}", summary(&all));
            if let (Some(e), Some(path)) = (write_error, &out) {
                eprintln!("ringbench: writing {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ringbench: {e}");
            ExitCode::FAILURE
        }
    }
}
