//! The real-Xen lab: Xen 4.17 and a Debian dom0 under QEMU (TCG), running
//! scenario scripts in dom0 (tests/xen/README.md).
//!
//! The shell side prepares and runs what is naturally shell: `fetch.sh`
//! (Debian's packages, cached), `build-initramfs.sh` (the dom0 initramfs,
//! cached), dom0's `/init` and the busybox scenarios. This side adds the
//! files of one run as a second, gzipped newc archive after the cached
//! initramfs (src/cpio.rs), starts QEMU, follows the serial console,
//! enforces the timeout, recognises Xen's and dom0's panics and collects the
//! `RESULT` and `RETRY` lines (src/protocol.rs) per scenario file.

use crate::console::{self, Console, Next};
use crate::protocol::{self, CheckResult, Line, Retry};
use crate::{artifacts, cpio, qemu};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One scenario file and its arguments: `"tests/xen/scenarios/cohort.sh /cohort/cohort"`;
/// `"...cohort.sh@pv /cohort/cohort"` runs it with its Cohort guests PV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    pub file: PathBuf,
    pub args: String,
    /// `Some("pv")`: scenario-lib's `cohort_cfg` makes every Cohort guest
    /// of this type (dom0 keeps the file as `NAME.pv.sh`, which says so).
    pub guest_type: Option<String>,
}

impl Scenario {
    pub fn parse(spec: &str) -> Scenario {
        let spec = spec.trim();
        let (file, args) = spec.split_once(char::is_whitespace).unwrap_or((spec, ""));
        let (file, guest_type) = match file.rsplit_once('@') {
            Some((f, t)) => (f, Some(t.to_string())),
            None => (file, None),
        };
        Scenario { file: PathBuf::from(file), args: args.trim().to_string(), guest_type }
    }

    /// The file's name (`cohort-net.sh`, `cohort-net.pv.sh` with PV guests):
    /// where dom0 keeps it, and the name of the `RESULT` dom0's /init
    /// prints for it.
    pub fn name(&self) -> String {
        let name = self.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match (&self.guest_type, name.strip_suffix(".sh")) {
            (Some(t), Some(stem)) => format!("{stem}.{t}.sh"),
            _ => name,
        }
    }
}

/// A host file copied into dom0 as `/cohort/DEST`: `"SRC[:DEST]"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inject {
    pub src: PathBuf,
    pub dest: String,
}

impl Inject {
    pub fn parse(spec: &str) -> Inject {
        match spec.split_once(':') {
            Some((src, dest)) => Inject { src: src.into(), dest: dest.to_string() },
            None => {
                let src = PathBuf::from(spec);
                let dest = src.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                Inject { src, dest }
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub files: Vec<Inject>,
    pub scenarios: Vec<Scenario>,
    /// Also inject dom0's kernel and initramfs as `/cohort/linux/vmlinuz`
    /// and `/cohort/linux/initrd`, for Linux reference guests.
    pub linux_guest: bool,
    /// For the whole QEMU run.
    pub timeout: Duration,
    /// For each scenario file, enforced by dom0's /init.
    pub scenario_timeout: Duration,
    /// `-icount shift=0,sleep=off`: one instruction is one nanosecond.
    pub icount: bool,
    pub mem_mib: u32,
    pub dom0_mem_mib: u32,
    pub smp: u32,
    pub xen_args: String,
    pub dom0_args: String,
    /// Where to keep the serial log; by default a folder of
    /// `target/lab/`, deleted after a run that passed unless
    /// COHORT_XEN_KEEP_LOGS=1.
    pub log: Option<PathBuf>,
    /// Every console line is shown: the tail is not repeated on failure.
    pub verbose: bool,
    /// `-accel tcg,thread=single`: one host thread runs every vCPU in
    /// turn. No Cohort guest faulted that way, but the wall-clock bench
    /// then runs out of time (README, "What the nested lab taught us"):
    /// the test suite and the long runs use it, the bench does not.
    pub single_thread: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            files: Vec::new(),
            scenarios: Vec::new(),
            linux_guest: false,
            timeout: Duration::from_secs(180),
            scenario_timeout: Duration::from_secs(120),
            icount: false,
            mem_mib: 2048,
            dom0_mem_mib: 512,
            smp: 2,
            xen_args: String::new(),
            dom0_args: String::new(),
            log: None,
            verbose: false,
            single_thread: false,
        }
    }
}

impl Config {
    /// Cohort's kernel as `/cohort/cohort`, the discovery daemon as
    /// `/cohort/cohort-discoveryd` (dom0's /init starts it) and the
    /// scenarios' EVENT reader as `/cohort/cohort-event` (built next to
    /// the daemon: `artifacts::daemon`).
    pub fn with_cohort(mut self, kernel: &Path, daemon: &Path) -> Config {
        self.files.push(Inject { src: kernel.into(), dest: "cohort".into() });
        self.files.push(Inject { src: daemon.into(), dest: "cohort-discoveryd".into() });
        self.files.push(Inject { src: crate::artifacts::event_tool(daemon), dest: "cohort-event".into() });
        self
    }
}

/// Seconds since the first harness step of this run, shared with the
/// scripts through XEN_HARNESS_T0 (microseconds since the epoch, as
/// tests/xen/lib.sh keeps it).
fn t0() -> u128 {
    static T0: OnceLock<u128> = OnceLock::new();
    *T0.get_or_init(|| std::env::var("XEN_HARNESS_T0").ok().and_then(|v| v.parse().ok()).unwrap_or_else(now_micros))
}

fn now_micros() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0)
}

/// A progress line on standard error, as tests/xen/lib.sh's `log` prints.
pub fn progress(msg: &str) {
    let secs = now_micros().saturating_sub(t0()) as f64 / 1e6;
    eprintln!("[xen-harness {:>6}s] {msg}", format!("{secs:.1}"));
}

/// What the cached preparation gave: the extracted packages and the dom0
/// initramfs.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub root: PathBuf,
    pub base: PathBuf,
}

fn script_output(script: &str, args: &[&Path]) -> Result<PathBuf, String> {
    let path = artifacts::root().join("tests/xen").join(script);
    let out = Command::new(&path)
        .args(args)
        .env("XEN_HARNESS_T0", t0().to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or("").trim();
    if !out.status.success() || last.is_empty() {
        return Err(format!("{script} failed ({})", out.status));
    }
    Ok(PathBuf::from(last))
}

/// `fetch.sh` (Debian's Xen, dom0 kernel, tools; cached) and
/// `build-initramfs.sh` (the dom0 initramfs; cached).
pub fn prepare() -> Result<Prepared, String> {
    let root = script_output("fetch.sh", &[])?;
    let base = script_output("build-initramfs.sh", &[&root])?;
    Ok(Prepared { root, base })
}

/// The archive of one run's files: `/cohort/DEST` for each injected file,
/// `/cohort/scenarios/NAME.sh` and `/cohort/scenarios.list`, and with
/// `linux_guest` dom0's kernel and initramfs under `/cohort/linux`.
pub fn overlay(config: &Config, prepared: &Prepared) -> Result<Vec<u8>, String> {
    // Sorted paths: a folder before what it holds.
    let mut entries: BTreeMap<String, Option<(u32, Vec<u8>)>> = BTreeMap::new();
    let read = |p: &Path| fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let add = |entries: &mut BTreeMap<_, _>, path: String, mode: u32, data: Vec<u8>| -> Result<(), String> {
        let mut dir = Path::new(&path).parent();
        while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
            entries.entry(d.to_string_lossy().into_owned()).or_insert(None);
            dir = d.parent();
        }
        match entries.insert(path.clone(), Some((mode, data))) {
            Some(_) => Err(format!("/{path} is given twice")),
            None => Ok(()),
        }
    };
    entries.insert("cohort".into(), None);
    entries.insert("cohort/scenarios".into(), None);
    for f in &config.files {
        if f.dest.is_empty() || f.dest.starts_with('/') || f.dest.split('/').any(|c| c == "..") {
            return Err(format!("--file {}: bad destination `{}`", f.src.display(), f.dest));
        }
        let mode = fs::metadata(&f.src).map_err(|e| format!("--file {}: {e}", f.src.display()))?.permissions().mode();
        add(&mut entries, format!("cohort/{}", f.dest), mode, read(&f.src)?)?;
    }
    if config.linux_guest {
        add(&mut entries, "cohort/linux/vmlinuz".into(), 0o644, read(&prepared.root.join("vmlinuz"))?)?;
        add(&mut entries, "cohort/linux/initrd".into(), 0o644, read(&prepared.base)?)?;
    }
    let mut list = String::new();
    for s in &config.scenarios {
        let name = s.name();
        add(&mut entries, format!("cohort/scenarios/{name}"), 0o755, read(&s.file)?)?;
        list.push_str(&format!("/cohort/scenarios/{name} {}\n", s.args));
    }
    add(&mut entries, "cohort/scenarios.list".into(), 0o644, list.into_bytes())?;

    let mut w = cpio::Writer::new(Vec::new());
    for (path, entry) in &entries {
        let written = match entry {
            None => w.dir(path, 0o755),
            Some((mode, data)) => w.file(path, *mode, data),
        };
        written.map_err(|e| format!("cpio: {e}"))?;
    }
    w.finish().map_err(|e| format!("cpio: {e}"))
}

/// The cached initramfs, then the run's archive, gzipped: Linux unpacks
/// one after the other.
fn write_initrd(config: &Config, prepared: &Prepared, out: &Path) -> Result<(), String> {
    let archive = overlay(config, prepared)?;
    let mut file = File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut base = File::open(&prepared.base).map_err(|e| format!("{}: {e}", prepared.base.display()))?;
    std::io::copy(&mut base, &mut file).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut gz = GzEncoder::new(file, Compression::fast());
    gz.write_all(&archive).and_then(|_| gz.finish()).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Run the scenarios, print the DONE line, power off.
    Run,
    /// A root shell on the console (the interactive lab).
    Shell,
}

/// QEMU's arguments (without the console's). Why each setting: see
/// tests/xen/README.md, "Xen + QEMU settings and why".
pub fn qemu_args(config: &Config, prepared: &Prepared, initrd: &Path, mode: Mode) -> Vec<String> {
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let vmlinux = prepared.root.join("vmlinux");
    let kernel = if vmlinux.is_file() { vmlinux } else { prepared.root.join("vmlinuz") };
    let xen = format!(
        "console=com1 com1=115200,8n1 smap=0 bootscrub=0 dom0_mem={d}M,max:{d}M dom0_max_vcpus={smp} \
         guest_loglvl=all loglvl=all conring_size=1m x2apic=false noreboot {extra}",
        d = config.dom0_mem_mib,
        smp = config.smp,
        extra = config.xen_args
    );
    let dom0 = format!(
        "console=hvc0 earlyprintk=xen rdinit=/init loglevel=4 cohort.mode={} cohort.timeout={} {}",
        if mode == Mode::Run { "run" } else { "shell" },
        config.scenario_timeout.as_secs(),
        config.dom0_args
    );
    let mut args: Vec<String> = vec![
        "-accel".into(),
        env("COHORT_ACCEL", if config.single_thread { "tcg,thread=single" } else { "tcg" }),
        "-cpu".into(),
        env("COHORT_CPU", "max,-x2apic,-xsave"),
        "-m".into(),
        config.mem_mib.to_string(),
        "-smp".into(),
        config.smp.to_string(),
        "-no-reboot".into(),
        "-nic".into(),
        "none".into(),
        "-kernel".into(),
        prepared.root.join("xen-hypervisor").display().to_string(),
        "-append".into(),
        xen.trim().to_string(),
        "-initrd".into(),
        format!("{} {},{}", kernel.display(), dom0.trim(), initrd.display()),
        "-display".into(),
        "none".into(),
        "-vga".into(),
        "none".into(),
    ];
    if config.icount {
        args.extend(["-icount".into(), "shift=0,sleep=off".into()]);
    }
    args
}

/// Lines that mean Xen or dom0 died: the run stops at once (after two
/// seconds for the rest of the message).
const PANICS: [&str; 4] = ["Panic on CPU", "Kernel panic", "Hardware Dom0 crashed", "cohort-dom0: FATAL"];

/// What one scenario file reported.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileRun {
    /// The file's name, `cohort-net.sh`.
    pub name: String,
    /// Its checks' RESULTs, in order.
    pub results: Vec<CheckResult>,
    /// The RESULT dom0's /init printed for the file (exit status, timeout,
    /// whether it reported anything); `None` if the lab ended before.
    pub verdict: Option<CheckResult>,
    /// RESULT lines that did not parse.
    pub garbled: Vec<String>,
    /// For each failed check (and a failed verdict), the console lines
    /// printed after the RESULT before it: what the scenario explained.
    pub context: BTreeMap<String, Vec<String>>,
}

/// The most console lines kept as a failure's context.
pub const CONTEXT_LINES: usize = 80;

impl FileRun {
    /// Every check passed and the file ended well.
    pub fn ok(&self) -> bool {
        self.garbled.is_empty() && self.results.iter().all(|r| r.ok) && self.verdict.as_ref().is_some_and(|v| v.ok)
    }
}

/// What a line meant to the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    XenBooting,
    Dom0Booting,
    Dom0Ready,
    /// A check's RESULT (`verdict`: the file's own, from /init).
    Result {
        file: String,
        result: CheckResult,
        verdict: bool,
    },
    Garbled {
        file: String,
        error: String,
    },
    Retry(Retry),
    Done,
    Panic(String),
}

/// Reads the console line by line: which phase the run is in, and the
/// results of each scenario file. A check's RESULT belongs to the file that
/// was running: files run in the order given, and /init's RESULT for a file
/// closes it.
#[derive(Debug, Default)]
pub struct Collector {
    pub files: Vec<FileRun>,
    current: usize,
    pub retries: Vec<Retry>,
    pub in_scenarios: bool,
    pub done: bool,
    pub panic: Option<String>,
    seen_xen: bool,
    seen_linux: bool,
    /// The scenario phase's lines since the last RESULT (at most
    /// [`CONTEXT_LINES`]).
    recent: std::collections::VecDeque<String>,
}

impl Collector {
    pub fn new(scenarios: &[Scenario]) -> Collector {
        let files = scenarios.iter().map(|s| FileRun { name: s.name(), ..FileRun::default() }).collect();
        Collector { files, ..Collector::default() }
    }

    fn file(&mut self) -> Option<&mut FileRun> {
        let last = self.files.len().checked_sub(1)?;
        self.files.get_mut(self.current.min(last))
    }

    pub fn feed(&mut self, line: &str) -> Option<Event> {
        if let Some(parsed) = protocol::parse(line) {
            let name = self.file().map(|f| f.name.clone()).unwrap_or_default();
            return Some(match parsed {
                Ok(Line::Result(result)) => {
                    let verdict = self.current < self.files.len() && result.name == name;
                    let recent: Vec<String> = self.recent.drain(..).collect();
                    if let Some(file) = self.file() {
                        if !result.ok {
                            file.context.insert(result.name.clone(), recent);
                        }
                        if verdict {
                            file.verdict = Some(result.clone());
                        } else {
                            file.results.push(result.clone());
                        }
                    }
                    if verdict {
                        self.current += 1;
                    }
                    Event::Result { file: name, result, verdict }
                }
                Ok(Line::Retry(retry)) => {
                    self.retries.push(retry.clone());
                    Event::Retry(retry)
                }
                Err(error) => {
                    let error = format!("{error}: {line}");
                    if let Some(file) = self.file() {
                        file.garbled.push(error.clone());
                    }
                    Event::Garbled { file: name, error }
                }
            });
        }
        if self.in_scenarios && shown(line, true, false) {
            if self.recent.len() == CONTEXT_LINES {
                self.recent.pop_front();
            }
            self.recent.push_back(line.to_string());
        }
        if line.starts_with("XEN-HARNESS DONE") {
            self.done = true;
            return Some(Event::Done);
        }
        if line.contains("XEN-HARNESS DOM0-READY") {
            self.in_scenarios = true;
            return Some(Event::Dom0Ready);
        }
        if let Some(p) = PANICS.iter().find(|p| line.contains(*p)) {
            if self.panic.is_none() {
                self.panic = Some(line.to_string());
                return Some(Event::Panic(p.to_string()));
            }
            return None;
        }
        if !self.seen_xen && line.contains("Xen version ") {
            self.seen_xen = true;
            return Some(Event::XenBooting);
        }
        if !self.seen_linux && line.contains("Linux version ") {
            self.seen_linux = true;
            return Some(Event::Dom0Booting);
        }
        None
    }
}

/// How the QEMU run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// dom0 printed its DONE line.
    Done,
    Timeout(Duration),
    /// Xen or dom0 panicked: the line.
    Panic(String),
    /// QEMU exited before the DONE line.
    Exited(String),
}

impl End {
    pub fn describe(&self) -> String {
        match self {
            End::Done => "dom0 finished its scenarios".into(),
            End::Timeout(t) => format!("timeout after {} s (no XEN-HARNESS DONE line)", t.as_secs()),
            End::Panic(line) => format!("Xen or dom0 panicked: {line}"),
            End::Exited(why) => format!("QEMU exited before XEN-HARNESS DONE: {why}"),
        }
    }
}

/// One lab run.
#[derive(Clone, Debug)]
pub struct Run {
    pub files: Vec<FileRun>,
    pub retries: Vec<Retry>,
    pub end: End,
    /// The serial log, when it was kept.
    pub log: Option<PathBuf>,
    pub elapsed: Duration,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.end == End::Done && self.files.iter().all(FileRun::ok)
    }

    /// `(passed, failed)`: each check's RESULT counts one, a file's own
    /// RESULT counts one failure when it failed (timed out, exited non-zero
    /// or reported nothing), so does each line that did not parse, and the
    /// lab one more when it ended before dom0's DONE line.
    pub fn counts(&self) -> (usize, usize) {
        let mut passed = 0;
        let mut failed = usize::from(self.end != End::Done);
        for f in &self.files {
            passed += f.results.iter().filter(|r| r.ok).count();
            failed += f.results.iter().filter(|r| !r.ok).count() + f.garbled.len();
            failed += usize::from(f.verdict.as_ref().is_some_and(|v| !v.ok));
        }
        (passed, failed)
    }

    /// Every failure dom0 traced to the lab: `name: LAB FAULT ...`.
    pub fn lab_faults(&self) -> Vec<String> {
        self.files
            .iter()
            .flat_map(|f| f.results.iter().chain(f.verdict.iter()))
            .filter_map(|r| r.lab_fault.as_ref().map(|l| format!("{}: {}", r.name, l.replace('\n', "; "))))
            .collect()
    }

    pub fn file(&self, name: &str) -> Option<&FileRun> {
        self.files.iter().find(|f| f.name == name)
    }
}

/// A fresh folder under `target/lab/` for one run.
fn run_dir() -> Result<PathBuf, String> {
    let base = artifacts::target_dir("lab");
    fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!("[year][month][day]-[hour][minute][second]"))
        .unwrap_or_default();
    for n in 0.. {
        let dir = base.join(format!("{stamp}-{}-{n}", std::process::id()));
        if fs::create_dir(&dir).is_ok() {
            return Ok(dir);
        }
        if n > 100 {
            break;
        }
    }
    Err(format!("cannot create a run folder in {}", base.display()))
}

fn check_commas(config: &Config, prepared: &Prepared, dir: &Path) -> Result<(), String> {
    // QEMU splits -initrd at commas.
    if config.dom0_args.contains(',') {
        return Err("--dom0-args must not contain commas (QEMU splits -initrd at them)".into());
    }
    for p in [&prepared.root, dir] {
        if p.to_string_lossy().contains(',') {
            return Err(format!("{} has a comma (QEMU splits -initrd at them)", p.display()));
        }
    }
    Ok(())
}

/// Whether a line is shown by default: dom0's phase, less Xen's
/// `(XEN) HVM dN save: ...` chatter at every domain creation.
pub fn shown(line: &str, in_scenarios: bool, verbose: bool) -> bool {
    verbose || (in_scenarios && !line.starts_with("(XEN) HVM"))
}

/// Boots the lab, runs the scenarios, and returns what they reported.
/// `on_line` gets every console line and whether dom0's scenario phase has
/// begun; `on_event` every event (progress is already printed).
pub fn run(config: &Config, on_line: &mut dyn FnMut(&str, bool), on_event: &mut dyn FnMut(&Event)) -> Result<Run, String> {
    if config.scenarios.is_empty() {
        return Err("no scenario to run".into());
    }
    let qemu = qemu::qemu_binary()?;
    let prepared = prepare()?;
    run_prepared(config, &prepared, &qemu, on_line, on_event)
}

/// [`run`] with the packages prepared and the QEMU binary found.
pub fn run_prepared(
    config: &Config,
    prepared: &Prepared,
    qemu: &Path,
    on_line: &mut dyn FnMut(&str, bool),
    on_event: &mut dyn FnMut(&Event),
) -> Result<Run, String> {
    let dir = run_dir()?;
    check_commas(config, prepared, &dir)?;
    let initrd = dir.join("initrd.cpio.gz");
    write_initrd(config, prepared, &initrd)?;
    let log = config.log.clone().unwrap_or_else(|| dir.join("serial.log"));
    let mut command = Command::new(qemu);
    command.args(qemu_args(config, prepared, &initrd, Mode::Run)).args(["-monitor", "none", "-serial", "stdio"]);
    let xen = fs::canonicalize(prepared.root.join("xen-hypervisor")).unwrap_or_default();
    let kver = fs::read_to_string(prepared.root.join("KVER")).unwrap_or_default();
    progress(&format!(
        "starting QEMU: xen={} kernel={} timeout={}s icount={}",
        xen.file_name().unwrap_or_default().to_string_lossy(),
        kver.trim(),
        config.timeout.as_secs(),
        u8::from(config.icount)
    ));
    progress(&format!("serial log: {}", log.display()));
    let mut console = Console::spawn(command, Some(&log))?;
    let started = console.started;
    let deadline = started + config.timeout;
    let mut collector = Collector::new(&config.scenarios);
    let mut stop_at = None;
    let mut lines: Vec<String> = Vec::new();
    let end = loop {
        match console.next(stop_at.unwrap_or(deadline)) {
            Next::Line(_, line) => {
                let event = collector.feed(&line);
                on_line(&line, collector.in_scenarios);
                if lines.len() == 200 {
                    lines.drain(..100);
                }
                lines.push(line);
                let secs = started.elapsed().as_secs_f64();
                match &event {
                    Some(Event::XenBooting) => progress(&format!("Xen booting (+{secs:.1}s)")),
                    Some(Event::Dom0Booting) => progress(&format!("dom0 kernel booting (+{secs:.1}s)")),
                    Some(Event::Dom0Ready) => progress(&format!("dom0 up: xenstored, xenconsoled, xenbr0 ready (+{secs:.1}s)")),
                    Some(Event::Done) => progress(&format!("scenarios finished (+{secs:.1}s)")),
                    Some(Event::Panic(what)) => progress(&format!("`{what}` on the console: stopping")),
                    _ => {}
                }
                if let Some(event) = &event {
                    on_event(event);
                }
                if collector.done {
                    // dom0's /init prints DONE after a FATAL line too.
                    break collector.panic.as_ref().map_or(End::Done, |p| End::Panic(p.clone()));
                }
                if collector.panic.is_some() && stop_at.is_none() {
                    stop_at = Some(Instant::now() + Duration::from_secs(2));
                }
            }
            Next::Timeout => match &collector.panic {
                Some(line) => break End::Panic(line.clone()),
                None => break End::Timeout(config.timeout),
            },
            Next::Closed => match &collector.panic {
                Some(line) => break End::Panic(line.clone()),
                None => break End::Exited(String::new()),
            },
        }
    };
    // dom0 powers off after its DONE line: QEMU should exit by itself.
    if end == End::Done && !console.wait_for_exit(Duration::from_secs(5)) {
        progress("QEMU did not exit after DONE; killing it");
    }
    console.kill();
    let (status, stderr) = console.finish();
    let end = match end {
        End::Exited(_) => End::Exited(format!("exit status {status:?}; {}", stderr.trim())),
        other => other,
    };
    let _ = fs::remove_file(&initrd);
    let run = Run { files: collector.files, retries: collector.retries, end, log: Some(log.clone()), elapsed: started.elapsed() };
    if run.end != End::Done && !config.verbose {
        eprint!("----- last 60 lines of the serial log ({}) -----\n{}", log.display(), console::tail(&lines, 60, ""));
        if !stderr.trim().is_empty() {
            eprintln!("----- QEMU's standard error -----\n{}", stderr.trim());
        }
        eprintln!("-----");
    }
    let (passed, failed) = run.counts();
    progress(&format!(
        "result: {passed} passed, {failed} failed; {} (total {:.1}s)",
        run.end.describe(),
        run.elapsed.as_secs_f64()
    ));
    let keep = config.log.is_some() || std::env::var("COHORT_XEN_KEEP_LOGS").is_ok_and(|v| v == "1");
    if run.ok() && !keep {
        let _ = fs::remove_dir_all(&dir);
        return Ok(Run { log: None, ..run });
    }
    Ok(run)
}

/// The interactive lab: a root shell in dom0 on this terminal. Ctrl-t is
/// QEMU's escape key (Ctrl-t x quits, Ctrl-t c the monitor), so that Ctrl-a
/// stays Xen's and Ctrl-] `xl console`'s; Ctrl-C goes to dom0's shell.
pub fn shell(config: &Config) -> Result<(), String> {
    let qemu = qemu::qemu_binary()?;
    let prepared = prepare()?;
    let dir = run_dir()?;
    check_commas(config, &prepared, &dir)?;
    let initrd = dir.join("initrd.cpio.gz");
    write_initrd(config, &prepared, &initrd)?;
    let log = config.log.clone().unwrap_or_else(|| dir.join("serial.log"));
    progress("starting QEMU (interactive): Ctrl-t x quits QEMU, Ctrl-t h help; 'poweroff -f' in dom0 shuts down");
    progress(&format!("serial log: {}", log.display()));
    let status = Command::new(qemu)
        .args(qemu_args(config, &prepared, &initrd, Mode::Shell))
        .args(["-echr", "0x14", "-chardev"])
        .arg(format!("stdio,id=con0,mux=on,signal=off,logfile={}", log.display()))
        .args(["-serial", "chardev:con0", "-mon", "chardev=con0"])
        .status()
        .map_err(|e| format!("cannot start QEMU: {e}"))?;
    let _ = fs::remove_file(&initrd);
    progress(&format!("QEMU exited ({status})"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenarios() -> Vec<Scenario> {
        ["tests/xen/scenarios/a.sh /cohort/cohort", "b.sh"].iter().map(|s| Scenario::parse(s)).collect()
    }

    #[test]
    fn specs() {
        let s = Scenario::parse(" tests/xen/scenarios/cohort-bench.sh  wall /cohort/cohort ");
        assert_eq!((s.name().as_str(), s.args.as_str()), ("cohort-bench.sh", "wall /cohort/cohort"));
        assert_eq!(Scenario::parse("x.sh").args, "");
        let pv = Scenario::parse("tests/xen/scenarios/cohort-net.sh@pv /cohort/cohort");
        assert_eq!((pv.name().as_str(), pv.args.as_str()), ("cohort-net.pv.sh", "/cohort/cohort"));
        assert_eq!(pv.file, PathBuf::from("tests/xen/scenarios/cohort-net.sh"));
        assert_eq!(Inject::parse("target/k:cohort"), Inject { src: "target/k".into(), dest: "cohort".into() });
        assert_eq!(Inject::parse("/tmp/g/guest.elf").dest, "guest.elf");
    }

    #[test]
    fn results_belong_to_the_running_file() {
        let mut c = Collector::new(&scenarios());
        for line in [
            "Xen version 4.17",
            "(XEN) Xen version again",
            "[    0.000000] Linux version 6.1",
            "XEN-HARNESS DOM0-READY",
            r#"RESULT {"name":"one","ok":true}"#,
            r#"RETRY {"what":"xl create /tmp/x.cfg","why":"exit 1"}"#,
            "guest x: what went wrong",
            "(XEN) HVM d1v0 save: CPU",
            r#"RESULT {"name":"two","ok":false,"detail":"broke","lab_fault":"LAB FAULT: x"}"#,
            r#"RESULT {"name":"a.sh","ok":true,"detail":"exit status 0"}"#,
            r#"RESULT {"name":"three","ok":tru"#,
            r#"RESULT {"name":"b.sh","ok":false,"detail":"timed out after 120s"}"#,
        ] {
            c.feed(line);
        }
        assert!(c.in_scenarios && c.seen_xen && c.seen_linux && !c.done);
        let (a, b) = (&c.files[0], &c.files[1]);
        assert_eq!(a.results.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["one", "two"]);
        assert!(a.verdict.as_ref().unwrap().ok && !a.ok());
        // A failure keeps what was printed since the RESULT before it.
        assert_eq!(a.context.keys().collect::<Vec<_>>(), ["two"]);
        assert_eq!(a.context["two"], ["guest x: what went wrong"]);
        assert!(b.results.is_empty() && b.garbled.len() == 1 && !b.verdict.as_ref().unwrap().ok);
        assert_eq!(c.retries.len(), 1);
        assert_eq!(c.feed("XEN-HARNESS DONE files=2 results=2"), Some(Event::Done));
        let run = Run { files: c.files, retries: c.retries, end: End::Done, log: None, elapsed: Duration::ZERO };
        // one passed; two, the garbled line and b.sh's verdict failed
        assert_eq!(run.counts(), (1, 3));
        assert_eq!(run.lab_faults(), ["two: LAB FAULT: x"]);
        assert!(!run.ok());
    }

    #[test]
    fn panics_are_recognised_once() {
        let mut c = Collector::new(&scenarios());
        assert_eq!(c.feed("(XEN) Panic on CPU 0:"), Some(Event::Panic("Panic on CPU".into())));
        assert_eq!(c.feed("[ 1.0] Kernel panic - not syncing"), None);
        assert_eq!(c.panic.as_deref(), Some("(XEN) Panic on CPU 0:"));
        let run = Run { files: c.files, retries: vec![], end: End::Panic("x".into()), log: None, elapsed: Duration::ZERO };
        assert_eq!(run.counts(), (0, 1));
        assert!(!run.ok());
    }

    /// A fake QEMU: a script that prints a console and exits.
    fn fake(dir: &Path, name: &str, console: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, format!("#!/bin/sh\ncat <<'EOF'\n{console}\nEOF\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn runs_follow_the_console_to_its_end() {
        let dir = std::env::temp_dir().join(format!("cohort-lab-run-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("base"), b"base").unwrap();
        fs::write(dir.join("vmlinuz"), b"k").unwrap();
        let s = dir.join("s.sh");
        fs::write(&s, b"ok x\n").unwrap();
        let prepared = Prepared { root: dir.clone(), base: dir.join("base") };
        let config = Config {
            scenarios: vec![Scenario { file: s, args: String::new(), guest_type: None }],
            timeout: Duration::from_secs(20),
            ..Config::default()
        };
        let done = fake(
            &dir,
            "done",
            "Xen version 4.17\nXEN-HARNESS DOM0-READY\nhello\nRESULT {\"name\":\"x\",\"ok\":true}\n\
             RESULT {\"name\":\"s.sh\",\"ok\":true}\nXEN-HARNESS DONE files=1",
        );
        let (mut shown, mut events) = (Vec::new(), Vec::new());
        let run = run_prepared(&config, &prepared, &done, &mut |l, phase| shown.push((l.to_string(), phase)), &mut |e| {
            events.push(e.clone())
        })
        .unwrap();
        assert!(run.ok() && run.log.is_none(), "{run:?}");
        assert_eq!(run.counts(), (1, 0));
        assert!(shown.contains(&("hello".to_string(), true)) && shown[0] == ("Xen version 4.17".to_string(), false));
        assert_eq!(events.first(), Some(&Event::XenBooting));
        assert_eq!(events.last(), Some(&Event::Done));

        let panic = fake(&dir, "panic", "Xen version 4.17\n(XEN) Panic on CPU 0:\n(XEN) more");
        let run = run_prepared(&config, &prepared, &panic, &mut |_, _| {}, &mut |_| {}).unwrap();
        assert_eq!(run.end, End::Panic("(XEN) Panic on CPU 0:".into()));
        let log = run.log.clone().unwrap();
        assert!(fs::read_to_string(&log).unwrap().contains("(XEN) more"));
        fs::remove_dir_all(log.parent().unwrap()).unwrap();

        let exits = fake(&dir, "exits", "XEN-HARNESS DOM0-READY\nRESULT {\"name\":\"x\",\"ok\":true}");
        let run = run_prepared(&config, &prepared, &exits, &mut |_, _| {}, &mut |_| {}).unwrap();
        assert!(matches!(&run.end, End::Exited(why) if why.contains("exit status Some(0)")), "{:?}", run.end);
        assert_eq!(run.counts(), (1, 1));
        fs::remove_dir_all(run.log.unwrap().parent().unwrap()).unwrap();

        let hangs = dir.join("hangs");
        fs::write(&hangs, "#!/bin/sh\necho XEN-HARNESS DOM0-READY\nexec sleep 30\n").unwrap();
        fs::set_permissions(&hangs, fs::Permissions::from_mode(0o755)).unwrap();
        let quick = Config { timeout: Duration::from_millis(500), ..config.clone() };
        let run = run_prepared(&quick, &prepared, &hangs, &mut |_, _| {}, &mut |_| {}).unwrap();
        assert_eq!(run.end, End::Timeout(Duration::from_millis(500)));
        assert!(run.elapsed < Duration::from_secs(10));
        fs::remove_dir_all(run.log.unwrap().parent().unwrap()).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn qemu_command_line() {
        let prepared = Prepared { root: "/c/root".into(), base: "/c/base.cpio.gz".into() };
        let config = Config { icount: true, dom0_args: "x=1".into(), ..Config::default() };
        let args = qemu_args(&config, &prepared, Path::new("/r/initrd.cpio.gz"), Mode::Run).join(" ");
        assert!(args.contains("-m 2048 -smp 2 -no-reboot -nic none -kernel /c/root/xen-hypervisor"), "{args}");
        assert!(args.contains("dom0_mem=512M,max:512M dom0_max_vcpus=2"), "{args}");
        assert!(args.contains("-initrd /c/root/vmlinuz console=hvc0 earlyprintk=xen rdinit=/init loglevel=4 cohort.mode=run cohort.timeout=120 x=1,/r/initrd.cpio.gz"), "{args}");
        assert!(args.ends_with("-icount shift=0,sleep=off"), "{args}");
    }

    #[test]
    fn overlay_holds_the_run() {
        let dir = std::env::temp_dir().join(format!("cohort-overlay-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let (k, s) = (dir.join("kernel"), dir.join("s.sh"));
        fs::write(&k, b"ELF").unwrap();
        fs::write(&s, b"ok x\n").unwrap();
        let config = Config {
            files: vec![Inject { src: k.clone(), dest: "sub/cohort".into() }],
            scenarios: vec![Scenario { file: s.clone(), args: "/cohort/sub/cohort 1".into(), guest_type: None }],
            ..Config::default()
        };
        let prepared = Prepared { root: dir.clone(), base: dir.join("none") };
        let bytes = overlay(&config, &prepared).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let names: Vec<&str> = [
            "cohort\0",
            "cohort/scenarios\0",
            "cohort/scenarios.list\0",
            "cohort/scenarios/s.sh\0",
            "cohort/sub\0",
            "cohort/sub/cohort\0",
        ]
        .into_iter()
        .filter(|n| text.contains(n))
        .collect();
        assert_eq!(names.len(), 6, "{text:?}");
        let order: Vec<usize> = names.iter().map(|n| text.find(n).unwrap()).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text:?}");
        assert!(text.contains("/cohort/scenarios/s.sh /cohort/sub/cohort 1\n"));
        let twice = Config { files: vec![config.files[0].clone(), config.files[0].clone()], ..config.clone() };
        assert!(overlay(&twice, &prepared).unwrap_err().contains("twice"));
        let bad = Config { files: vec![Inject { src: k, dest: "../x".into() }], ..config };
        assert!(overlay(&bad, &prepared).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
