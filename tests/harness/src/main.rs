//! `cohort-harness`: what run.sh runs besides `cargo test`. `cohort-harness
//! help` lists the commands; `cargo test` runs the test suites
//! (tests/emulator.rs).

use clap::{Args, Parser, Subcommand};
use cohort_harness::protocol::Line;
use cohort_harness::{artifacts, bench, compare, lab, protocol, qemu, report, study, tap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "cohort-harness", about = "Boots Cohort under QEMU and under Xen in QEMU; benchmarks and reports")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the kernel and boot it once under plain QEMU (TCG) with CMDLINE
    /// as its command line; exits with the guest's status (0 = success).
    Run {
        /// Boot this image instead of building the kernel.
        #[arg(long)]
        kernel: Option<PathBuf>,
        /// Deterministic virtual time (-icount shift=0,sleep=off).
        #[arg(long, env = "COHORT_ICOUNT", value_parser = clap::builder::FalseyValueParser::new())]
        icount: bool,
        /// Seconds before the boot counts as hung.
        #[arg(long, env = "COHORT_TIMEOUT", default_value_t = 120)]
        timeout: u64,
        /// The kernel command line, KEY=VALUE words.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cmdline: Vec<String>,
    },
    /// Xen 4.17 and a Debian dom0 under QEMU: run scenario files in dom0, or
    /// an interactive dom0 shell (tests/xen/README.md). Exits 0 when every
    /// check passed, 1 otherwise, 124 on the timeout.
    Lab(LabArgs),
    /// The interactive lab with Cohort's kernel and daemon: `lab --shell --cohort`.
    XenLab(LabArgs),
    /// The plain-QEMU network test: virtio-net on a tap device in a network
    /// namespace (as root).
    Tap {
        #[arg(long)]
        kernel: Option<PathBuf>,
        /// The guest's command line.
        #[arg(trailing_var_arg = true)]
        cmdline: Vec<String>,
    },
    /// The demo: two Cohort guests on Xen, one transfer over their channel
    /// and over netfront, side by side (virtual time).
    Demo,
    /// Every benchmark; figures in target/bench/ and a report. With a clock,
    /// only the Xen benchmarks of that clock (wall-clock figures mean little
    /// on a shared, busy machine).
    Bench {
        #[arg(value_parser = ["wall", "virtual"])]
        clock: Option<String>,
    },
    /// The measurement study (issue 16): its matrix of points, each the
    /// median of 5 repetitions under the virtual clock, in one lab boot;
    /// points kept in target/study/points.jsonl as they complete, then
    /// target/study/report.md with SVG and PNG figures, its structure
    /// checked. Exits 0 when every point was measured and the report holds.
    Study {
        /// The reduced matrix (a few minutes of measuring, for CI).
        #[arg(long)]
        quick: bool,
        /// Keep the points already in target/study/points.jsonl; measure the rest.
        #[arg(long)]
        resume: bool,
        /// No lab: only write the report from the points kept.
        #[arg(long, conflicts_with = "resume")]
        report: bool,
        /// Measure only these factors (comma-separated, e.g. `type`), adding
        /// them to the points kept (so it needs --resume).
        #[arg(long, value_delimiter = ',', requires = "resume")]
        only: Vec<String>,
    },
    /// 100 (or CYCLES) peer destroy/re-create cycles under real Xen: the
    /// survivor guest's grant, port, page and memory counts after every
    /// cycle, which must stay constant (tests/xen/scenarios/cohort-cycles.sh).
    Cycles {
        #[arg(default_value_t = 100)]
        cycles: u32,
    },
    /// The churn soak under real Xen for MINUTES (default 30): stream and RR
    /// clients while peers are destroyed, re-created and shut down and the
    /// discovery daemon restarted, at random (tests/xen/scenarios/cohort-soak.sh).
    Soak {
        #[arg(default_value_t = 30)]
        minutes: u32,
        /// The PRNG's seed (default: from dom0's clock; printed).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Build the kernel and/or the dom0 daemon and print their paths.
    Build {
        #[arg(value_parser = ["kernel", "daemon"], required = true)]
        what: Vec<String>,
    },
    /// BENCH lines of FILE as Markdown tables (medians of the repetitions,
    /// with min-max), and with PREFIX SVG and PNG charts, one of each per clock.
    Report { file: PathBuf, prefix: Option<String> },
    /// Sets each figure of the bench log NEW beside every repetition in the
    /// EARLIER logs: how many medians fall inside, and those outside, as Markdown.
    Compare {
        new: PathBuf,
        #[arg(required = true)]
        earlier: Vec<PathBuf>,
    },
}

#[derive(Args, Clone, Default)]
struct LabArgs {
    /// Copy host file SRC into dom0 as /cohort/DEST (DEST defaults to its name).
    #[arg(long = "file", value_name = "SRC[:DEST]")]
    files: Vec<String>,
    /// Run scenario FILE (copied to /cohort/scenarios/) with ARGS in dom0; in order.
    #[arg(long = "scenario", value_name = "FILE [ARGS...]")]
    scenarios: Vec<String>,
    /// Build Cohort's kernel and discovery daemon and inject them as
    /// /cohort/cohort and /cohort/cohort-discoveryd.
    #[arg(long)]
    cohort: bool,
    /// Also inject dom0's kernel and initramfs for Linux reference guests.
    #[arg(long)]
    linux_guest: bool,
    /// An interactive dom0 shell on this terminal (an xl config
    /// /cohort/NAME.cfg is written for each injected ELF image).
    #[arg(long)]
    shell: bool,
    /// Seconds for the whole QEMU run.
    #[arg(long, default_value_t = 180)]
    timeout: u64,
    /// Seconds for each scenario file, enforced in dom0.
    #[arg(long, default_value_t = 120)]
    scenario_timeout: u64,
    /// Deterministic virtual time: one instruction = 1 ns (slower).
    #[arg(long)]
    icount: bool,
    #[arg(long, value_name = "MIB", default_value_t = 2048)]
    mem: u32,
    #[arg(long, value_name = "MIB", default_value_t = 512)]
    dom0_mem: u32,
    #[arg(long, value_name = "N", default_value_t = 2)]
    smp: u32,
    /// Extra Xen command-line arguments.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    xen_args: String,
    /// Extra dom0 kernel arguments (no commas).
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    dom0_args: String,
    /// Keep the serial log here (by default under target/lab/, deleted after
    /// a passing run unless COHORT_XEN_KEEP_LOGS=1).
    #[arg(long)]
    log: Option<PathBuf>,
    /// Show the whole serial console (by default: progress, dom0's scenario
    /// output, and the log's tail on failure).
    #[arg(short, long)]
    verbose: bool,
}

fn kernel_or_build(kernel: Option<PathBuf>) -> Result<PathBuf, String> {
    match kernel {
        Some(k) => Ok(k),
        None => artifacts::kernel(),
    }
}

fn say(msg: &str) {
    eprintln!("\x1b[1mcohort-harness:\x1b[0m {msg}");
}

fn run(kernel: Option<PathBuf>, icount: bool, timeout: u64, cmdline: &[String]) -> Result<ExitCode, String> {
    let kernel = kernel_or_build(kernel)?;
    let mut config = qemu::Config::new(&kernel, &cmdline.join(" "));
    config.icount = icount;
    config.timeout = Duration::from_secs(timeout);
    say(&format!(
        "booting {} under QEMU TCG, -m 32M; command line: {}",
        kernel.display(),
        if cmdline.is_empty() { "(empty)".into() } else { cmdline.join(" ") }
    ));
    let boot = qemu::boot(&config, |line| println!("{line}"))?;
    if boot.outcome != qemu::Outcome::Success {
        eprintln!("cohort: {}", boot.outcome.describe());
    }
    Ok(ExitCode::from(boot.outcome.exit_code() as u8))
}

/// An xl config for each injected ELF image (not the dom0 tools), for the shell.
fn shell_configs(config: &mut lab::Config) -> Result<(), String> {
    let dir = artifacts::target_dir("lab").join(format!("cfg-{}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut cfgs = Vec::new();
    for f in &config.files {
        let elf = fs::read(&f.src).map(|b| b.starts_with(b"\x7fELF")).unwrap_or(false);
        if !elf || f.dest == "cohort-discoveryd" || f.dest == "cohort-event" {
            continue;
        }
        let name = Path::new(&f.dest).file_stem().unwrap_or_default().to_string_lossy().into_owned();
        let cfg = dir.join(format!("{name}.cfg"));
        let text = format!(
            "name = \"{name}\"\ntype = \"pvh\"\nkernel = \"/cohort/{}\"\nmemory = 64\nvcpus = 1\n\
             on_poweroff = \"destroy\"\non_crash = \"preserve\"\nvif = [ \"bridge=xenbr0\" ]\n",
            f.dest
        );
        fs::write(&cfg, text).map_err(|e| format!("{}: {e}", cfg.display()))?;
        cfgs.push(lab::Inject { src: cfg, dest: format!("{name}.cfg") });
    }
    config.files.extend(cfgs);
    Ok(())
}

fn lab_config(args: &LabArgs) -> Result<lab::Config, String> {
    let mut config = lab::Config {
        files: args.files.iter().map(|f| lab::Inject::parse(f)).collect(),
        scenarios: args.scenarios.iter().map(|s| lab::Scenario::parse(s)).collect(),
        linux_guest: args.linux_guest,
        timeout: Duration::from_secs(args.timeout),
        scenario_timeout: Duration::from_secs(args.scenario_timeout),
        icount: args.icount,
        mem_mib: args.mem,
        dom0_mem_mib: args.dom0_mem,
        smp: args.smp,
        xen_args: args.xen_args.clone(),
        dom0_args: args.dom0_args.clone(),
        log: args.log.clone(),
        verbose: args.verbose,
        single_thread: false,
    };
    if args.cohort {
        config = config.with_cohort(&artifacts::kernel()?, &artifacts::daemon()?);
    }
    Ok(config)
}

/// Runs the lab, echoing through `show`; prints the failed checks, every
/// retry and `N passed, M failed`.
fn lab_run(config: &lab::Config, show: &mut dyn FnMut(&str, bool)) -> Result<lab::Run, String> {
    let run = lab::run(config, show, &mut |_| {})?;
    for f in &run.files {
        for r in f.results.iter().chain(f.verdict.iter()).filter(|r| !r.ok) {
            say(&format!("failed: {}", r.human()));
        }
        for g in &f.garbled {
            say(&format!("failed: {}: a RESULT line that does not parse: {g}", f.name));
        }
    }
    for r in &run.retries {
        say(&format!("retried in dom0: {}: {}", r.what, r.why));
    }
    if let Some(log) = &run.log {
        say(&format!("serial log: {}", log.display()));
    }
    let (passed, failed) = run.counts();
    println!("{passed} passed, {failed} failed");
    Ok(run)
}

fn lab_exit(run: &lab::Run) -> ExitCode {
    match run.end {
        _ if run.ok() => ExitCode::SUCCESS,
        lab::End::Timeout(_) => ExitCode::from(124),
        _ => ExitCode::FAILURE,
    }
}

fn lab_command(args: &LabArgs) -> Result<ExitCode, String> {
    let mut config = lab_config(args)?;
    if args.shell {
        shell_configs(&mut config)?;
        lab::shell(&config)?;
        return Ok(ExitCode::SUCCESS);
    }
    if config.scenarios.is_empty() {
        return Err("give at least one --scenario (or --shell)".into());
    }
    let verbose = args.verbose;
    let run = lab_run(&config, &mut |line, phase| {
        if lab::shown(line, phase, verbose) {
            println!("{line}");
        }
    })?;
    Ok(lab_exit(&run))
}

fn tap_command(kernel: Option<PathBuf>, cmdline: &[String]) -> Result<ExitCode, String> {
    let mut config = tap::Config::new(&kernel_or_build(kernel)?);
    if !cmdline.is_empty() {
        config.cmdline = cmdline.join(" ");
    }
    let results = tap::run(&config, false);
    for r in &results {
        println!("{}", r.human());
    }
    let failed = results.iter().filter(|r| !r.ok).count();
    println!("{} passed, {failed} failed", results.len() - failed);
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn scenario(spec: &str) -> lab::Scenario {
    let mut s = lab::Scenario::parse(spec);
    s.file = artifacts::root().join(&s.file);
    s
}

/// What the demo does not show: guests' port-0xe9 banners and dom0's
/// "running scenario file" lines; RESULT lines as `NAME ... ok`.
fn demo() -> Result<ExitCode, String> {
    let config = lab::Config {
        scenarios: vec![scenario("tests/xen/scenarios/cohort-demo.sh /cohort/cohort 16777216 1000 bench.clock=virtual")],
        icount: true,
        scenario_timeout: Duration::from_secs(900),
        timeout: Duration::from_secs(1000),
        ..lab::Config::default()
    }
    .with_cohort(&artifacts::kernel()?, &artifacts::daemon()?);
    say("demo: Xen 4.17 and a Debian dom0 under QEMU TCG, virtual time (-icount); about 90 s, and the first run downloads ~76 MB of Debian packages");
    let run = lab::run(
        &config,
        &mut |line, phase| {
            if !lab::shown(line, phase, false) || line.starts_with("cohort-dom0: running") {
                return;
            }
            if line.starts_with("(d") && line.contains(") Cohort") {
                return;
            }
            match protocol::parse(line) {
                Some(Ok(Line::Result(r))) => println!("{}", r.human()),
                _ => println!("{line}"),
            }
        },
        &mut |_| {},
    )?;
    Ok(lab_exit(&run))
}

/// Lines of the Xen benchmarks kept in the figures file.
fn kept(line: &str) -> bool {
    ["BENCH", "RESULT", "RETRY", "SCENARIO", "bench:", "netbench", "netref", "dom0 ->", "Linux guest"]
        .iter()
        .any(|p| line.starts_with(p))
        || line.contains("passed")
        || line.contains("round-trip")
}

/// The figures of a bench log; lines that do not parse are named and skipped.
fn read_figures(file: &Path) -> Result<Vec<report::Figure>, String> {
    let text = fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let (figures, skipped) = report::parse_text(&text);
    for s in &skipped {
        eprintln!("{}:{}: BENCH line skipped: {}", file.display(), s.line, s.error);
    }
    if figures.is_empty() {
        return Err(format!("no BENCH lines in {}", file.display()));
    }
    Ok(figures)
}

fn compare_to(new: &Path, earlier: &[PathBuf], out: &mut dyn Write) -> Result<(), String> {
    let same = |a: &Path, b: &Path| matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b);
    let mut before = Vec::new();
    for file in earlier {
        // `compare NEW docs/bench/*.txt` once NEW is kept there too.
        if same(file, new) {
            eprintln!("compare: {} is the new run; left out of the earlier ones", file.display());
            continue;
        }
        before.extend(read_figures(file).map_err(|e| format!("compare: {e}"))?);
    }
    if before.is_empty() {
        return Err("compare: no earlier run besides the new one".into());
    }
    let new = read_figures(new).map_err(|e| format!("compare: {e}"))?;
    out.write_all(compare::markdown(&compare::compare(&new, &before)).as_bytes()).map_err(|e| format!("compare: {e}"))
}

fn report_to(file: &Path, prefix: Option<&str>, out: &mut dyn Write) -> Result<(), String> {
    let figures = read_figures(file).map_err(|e| format!("report: {e}"))?;
    out.write_all(report::markdown(&figures).as_bytes()).map_err(|e| format!("report: {e}"))?;
    if let Some(prefix) = prefix {
        let written = report::write_charts(&figures, prefix).map_err(|e| format!("report: {e}"))?;
        written.iter().for_each(|path| eprintln!("report: wrote {path}"));
    }
    Ok(())
}

/// The boot benchmark, then the Xen benchmarks under the wall clock and
/// under -icount; every figure to the terminal and to
/// target/bench/bench-TIME.txt (and latest.txt), then report.md and charts.
fn bench(only: Option<&str>) -> Result<ExitCode, String> {
    let kernel = artifacts::kernel()?;
    let daemon = artifacts::daemon()?;
    let dir = artifacts::target_dir("bench");
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!("[year][month][day]-[hour][minute][second]"))
        .map_err(|e| e.to_string())?;
    let path = dir.join(format!("bench-{stamp}.txt"));
    let mut file = fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = |line: &str| {
        println!("{line}");
        let _ = writeln!(file, "{line}");
    };
    // A failed run is reported and the others still run.
    let mut status = String::new();
    if only.is_none() {
        match bench::run(&kernel, &mut out) {
            Ok(()) => status.push('0'),
            Err(e) => {
                eprintln!("bench: {e}");
                status.push('1');
            }
        }
    }
    let clocks = [("wall", false, 1800, 2100), ("virtual", true, 3000, 3300)];
    for (clock, icount, scen, total) in clocks.into_iter().filter(|c| only.is_none_or(|o| o == c.0)) {
        say(&if icount {
            "Xen benchmarks, virtual clock (-icount: 1 instruction = 1 ns)".to_string()
        } else {
            "Xen benchmarks, wall clock".to_string()
        });
        let config = lab::Config {
            scenarios: vec![scenario(&format!("tests/xen/scenarios/cohort-bench.sh {clock} /cohort/cohort"))],
            linux_guest: true,
            icount,
            scenario_timeout: Duration::from_secs(scen),
            timeout: Duration::from_secs(total),
            ..lab::Config::default()
        }
        .with_cohort(&kernel, &daemon);
        let (started, mut progress) = (std::time::Instant::now(), bench::Progress::default());
        let ok = match lab::run(
            &config,
            &mut |line, phase| {
                if phase && kept(line) {
                    out(line);
                    if let Some(p) = progress.on_line(line, started.elapsed()) {
                        say(&p)
                    }
                }
            },
            &mut |_| {},
        ) {
            Ok(run) => {
                let (passed, failed) = run.counts();
                out(&format!("{passed} passed, {failed} failed"));
                run.ok()
            }
            Err(e) => {
                say(&format!("error: {e}"));
                false
            }
        };
        status.push(if ok { '0' } else { '1' });
    }
    drop(file);
    let _ = fs::write(dir.join("status"), format!("{status}\n"));
    let _ = fs::copy(&path, dir.join("latest.txt"));
    let prefix = dir.join("net").display().to_string();
    let mut md = Vec::new();
    match report_to(&path, Some(&prefix), &mut md) {
        Ok(()) => {
            let _ = fs::write(dir.join("report.md"), md);
            say(&format!(
                "figures: {}; tables: target/bench/report.md; charts: target/bench/net-virtual.svg, target/bench/net-wall.svg",
                path.display()
            ));
        }
        Err(e) => say(&e),
    }
    if status.chars().all(|c| c == '0') {
        Ok(ExitCode::SUCCESS)
    } else {
        say("error: some benchmarks failed (see above)");
        Ok(ExitCode::FAILURE)
    }
}

/// Lines of the long runs (cycles, soak) kept in their file.
fn kept_long(line: &str) -> bool {
    ["RESULT", "RETRY", "LAB FAULT", "cycle", "soak:", "---", "cohort-dom0: running"].iter().any(|p| line.starts_with(p))
        || line.contains("passed")
}

/// One long scenario in the lab: dom0's output on the terminal, its
/// RESULT, RETRY and progress lines also in target/long/NAME-TIME.txt;
/// the exit status from the RESULT lines.
fn long_run(name: &str, spec: &str, seconds: u64) -> Result<ExitCode, String> {
    let config = lab::Config {
        scenarios: vec![scenario(spec)],
        scenario_timeout: Duration::from_secs(seconds),
        timeout: Duration::from_secs(seconds + 600),
        // Many peers destroyed: what the lab fault came with, multi-threaded.
        single_thread: true,
        ..lab::Config::default()
    }
    .with_cohort(&artifacts::kernel()?, &artifacts::daemon()?);
    let dir = artifacts::target_dir("long");
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!("[year][month][day]-[hour][minute][second]"))
        .map_err(|e| e.to_string())?;
    let path = dir.join(format!("{name}-{stamp}.txt"));
    let mut file = fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    say(&format!("{name}: Xen 4.17 and a Debian dom0 under QEMU TCG (one thread), wall clock; lines kept in {}", path.display()));
    let run = lab_run(&config, &mut |line, phase| {
        if lab::shown(line, phase, false) {
            println!("{line}");
            if kept_long(line) {
                let _ = writeln!(file, "{line}");
            }
        }
    })?;
    let (passed, failed) = run.counts();
    let _ = writeln!(file, "{passed} passed, {failed} failed ({})", run.end.describe());
    for fault in run.lab_faults() {
        say(&format!("lab fault: {fault}"));
    }
    say(&format!("{name}: kept in {}", path.display()));
    Ok(lab_exit(&run))
}

fn build(what: &[String]) -> Result<ExitCode, String> {
    for w in what {
        let path = if w == "kernel" { artifacts::kernel()? } else { artifacts::daemon()? };
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run { kernel, icount, timeout, cmdline } => run(kernel, icount, timeout, &cmdline),
        Cmd::Lab(args) => lab_command(&args),
        Cmd::XenLab(args) => lab_command(&LabArgs { shell: true, cohort: true, ..args }),
        Cmd::Tap { kernel, cmdline } => tap_command(kernel, &cmdline),
        Cmd::Demo => demo(),
        Cmd::Bench { clock } => bench(clock.as_deref()),
        Cmd::Cycles { cycles } => long_run(
            "cycles",
            &format!("tests/xen/scenarios/cohort-cycles.sh /cohort/cohort {cycles}"),
            600 + 60 * u64::from(cycles),
        ),
        Cmd::Soak { minutes, seed } => long_run(
            "soak",
            &format!(
                "tests/xen/scenarios/cohort-soak.sh /cohort/cohort {minutes}{}",
                seed.map(|s| format!(" {s}")).unwrap_or_default()
            ),
            900 + 60 * u64::from(minutes),
        ),
        Cmd::Build { what } => build(&what),
        Cmd::Study { quick, resume, report, only } => study::run(study::Options { quick, resume, report_only: report, only })
            .map(|ok| if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }),
        Cmd::Report { file, prefix } => report_to(&file, prefix.as_deref(), &mut std::io::stdout()).map(|()| ExitCode::SUCCESS),
        Cmd::Compare { new, earlier } => compare_to(&new, &earlier, &mut std::io::stdout()).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            say(&format!("error: {e}"));
            // Exit statuses 1 and 124 are the lab's verdicts; 4 is "could
            // not run" (as a QEMU that fails to start in `run`).
            ExitCode::from(4)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn kernel_command_lines_pass_through() {
        let cli = Cli::try_parse_from(["h", "run", "--icount", "app=echo", "net.ip=198.18.1.2/24"]).unwrap();
        let Cmd::Run { icount, cmdline, .. } = cli.command else { panic!() };
        assert!(icount);
        assert_eq!(cmdline, ["app=echo", "net.ip=198.18.1.2/24"]);
        let cli = Cli::try_parse_from(["h", "lab", "--scenario", "s.sh a b", "--file", "k:cohort", "--linux-guest"]).unwrap();
        let Cmd::Lab(args) = cli.command else { panic!() };
        let config = lab_config(&args).unwrap();
        assert_eq!(config.scenarios[0].args, "a b");
        assert!(config.linux_guest && config.files[0].dest == "cohort");
    }

    #[test]
    fn long_runs_parse_and_keep_progress() {
        let Cmd::Soak { minutes, seed } = Cli::try_parse_from(["h", "soak"]).unwrap().command else { panic!() };
        assert_eq!((minutes, seed), (30, None));
        let Cmd::Soak { minutes, seed } = Cli::try_parse_from(["h", "soak", "10", "--seed", "7"]).unwrap().command else {
            panic!()
        };
        assert_eq!((minutes, seed), (10, Some(7)));
        let Cmd::Cycles { cycles } = Cli::try_parse_from(["h", "cycles"]).unwrap().command else { panic!() };
        assert_eq!(cycles, 100);
        assert!(kept_long("cycles: 10 of 100, 120 s") && kept_long("cycle 3: dom7 ...") && kept_long("soak: minute 1 of 10"));
        assert!(kept_long(r#"RESULT {"name":"x","ok":true}"#) && !kept_long("(XEN) HVM d1 save") && !kept_long("(d3) EVENT"));
    }

    #[test]
    fn study_options_parse() {
        let Cmd::Study { quick, resume, report, only } =
            Cli::try_parse_from(["h", "study", "--quick", "--resume"]).unwrap().command
        else {
            panic!()
        };
        assert!(quick && resume && !report && only.is_empty());
        let Cmd::Study { only, .. } = Cli::try_parse_from(["h", "study", "--resume", "--only", "type,pages"]).unwrap().command
        else {
            panic!()
        };
        assert_eq!(only, ["type", "pages"]);
        // Without --resume it would set the points kept aside.
        assert!(Cli::try_parse_from(["h", "study", "--only", "type"]).is_err());
        assert!(Cli::try_parse_from(["h", "study", "--report", "--resume"]).is_err());
    }

    #[test]
    fn compare_reads_bench_logs() {
        assert!(Cli::try_parse_from(["h", "compare", "new.txt"]).is_err(), "an earlier run is required");
        let dir = std::env::temp_dir().join(format!("cohort-compare-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let line =
            |v: f64| format!("(d1) BENCH {{\"name\":\"n\",\"path\":\"p\",\"value\":{v},\"unit\":\"u\",\"clock\":\"virtual\"}}\n");
        let (new, old, empty) = (dir.join("new.txt"), dir.join("old.txt"), dir.join("empty.txt"));
        fs::write(&new, [5.0, 6.0, 7.0].map(line).concat()).unwrap();
        fs::write(&old, [1.0, 2.0, 3.0].map(line).concat() + "BENCH {broken\n").unwrap();
        fs::write(&empty, "no figures\n").unwrap();
        let mut out = Vec::new();
        compare_to(&new, std::slice::from_ref(&old), &mut out).unwrap();
        let md = String::from_utf8(out).unwrap();
        assert!(md.starts_with("0 of 1 medians") && md.contains("| +100.0 % |"), "{md}");
        let e = compare_to(&new, &[old, empty], &mut Vec::new()).unwrap_err();
        assert!(e.contains("no BENCH lines") && e.contains("empty.txt"), "{e}");
        let e = compare_to(&new, &[dir.join(".").join("new.txt")], &mut Vec::new()).unwrap_err();
        assert!(e.contains("no earlier run besides the new one"), "itself is no earlier run: {e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bench_keeps_figures_and_results() {
        assert!(kept(r#"BENCH {"name":"x"}"#) && kept(r#"RESULT {"name":"x","ok":true}"#) && kept("netbench: x"));
        assert!(!kept("(XEN) HVM d1 save") && !kept("cohort-dom0: running"));
    }
}
