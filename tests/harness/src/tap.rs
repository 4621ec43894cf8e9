//! Cohort on plain QEMU with virtio-net on a tap device, in a network
//! namespace of its own: nothing outside the namespace is reachable (no
//! route, no bridge, no forwarding). The namespace (made with `ip`), the tap
//! and QEMU are removed when the run ends. The host side's ICMP and TCP
//! checks are tests/net/netcheck.py, run inside the namespace. Needs root.
//!
//! Four checks, in order, each a `CheckResult`:
//!   qemu-tap-boot         QEMU starts, the guest brings up the virtio-net
//!                         device (its `net_device` event)
//!   qemu-tap-ping         the guest answers ICMP echo from the host side
//!   qemu-tap-tcp-echo     16 MiB of random bytes through the guest's TCP
//!                         echo come back with the same SHA-256
//!   qemu-tap-guest-alive  the guest still runs, with no `panic`, `fault`,
//!                         `boot_failed` or failed `app` event

use crate::console::{self, Console, Next};
use crate::kernel_events::events;
use crate::protocol::CheckResult;
use crate::{artifacts, qemu};
use figures::Event;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const CHECKS: [&str; 4] = ["qemu-tap-boot", "qemu-tap-ping", "qemu-tap-tcp-echo", "qemu-tap-guest-alive"];
pub const CMDLINE: &str = "app=echo net.ip=198.18.1.2/24 net.port=7";
const HOST_ADDR: &str = "198.18.1.1/24";
const GUEST_MAC: &str = "52:54:00:c6:12:02";
const NS_PREFIX: &str = "cohort-net-";

#[derive(Clone, Debug)]
pub struct Config {
    pub kernel: PathBuf,
    /// The guest's command line: its address and echo port are read from
    /// `net.ip=` and `net.port=`.
    pub cmdline: String,
    /// For the whole run.
    pub timeout: Duration,
    pub echo_bytes: u64,
}

impl Config {
    pub fn new(kernel: &Path) -> Config {
        Config { kernel: kernel.into(), cmdline: CMDLINE.into(), timeout: Duration::from_secs(600), echo_bytes: 16 << 20 }
    }
}

fn option<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline.split_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// The guest's address and echo port from its command line.
pub fn guest_endpoint(cmdline: &str) -> Result<(String, u16), String> {
    let addr = option(cmdline, "net.ip").and_then(|cidr| cidr.split('/').next()).unwrap_or("198.18.1.2");
    let port = option(cmdline, "net.port").map_or(Ok(7), |p| p.parse().map_err(|_| format!("bad net.port `{p}`")))?;
    // Only the benchmarking range, which nothing routes.
    if !(addr.starts_with("198.18.") || addr.starts_with("198.19.")) {
        return Err(format!("guest address {addr} is outside 198.18.0.0/15"));
    }
    Ok((addr.to_string(), port))
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// A network namespace, deleted when dropped.
struct Namespace(String);

impl Namespace {
    fn create(name: &str) -> Result<Namespace, String> {
        // Namespaces of earlier runs that were killed before they could clean up.
        if let Ok(out) = Command::new("ip").args(["netns", "list"]).output() {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let ns = line.split_whitespace().next().unwrap_or("");
                if let Some(pid) = ns.strip_prefix(NS_PREFIX) {
                    if !Path::new("/proc").join(pid).exists() {
                        let _ = ip(&["netns", "del", ns]);
                    }
                }
            }
        }
        ip(&["netns", "add", name])?;
        Ok(Namespace(name.to_string()))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
    }
}

fn which(tool: &str) -> bool {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|d| d.join(tool).is_file())
}

/// Everything the run needs, or why it cannot run.
fn preflight() -> Result<(), String> {
    if std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) != 0 {
        return Err("must run as root (a network namespace and a tap device)".into());
    }
    for tool in ["ip", "python3"] {
        if !which(tool) {
            return Err(format!("`{tool}` is required (./run.sh test installs Debian's iproute2 and python3)"));
        }
    }
    qemu::qemu_binary().map(|_| ())
}

/// Runs the four checks; the results come in `CHECKS` order.
pub fn run(config: &Config, verbose: bool) -> Vec<CheckResult> {
    match try_run(config, verbose) {
        Ok(results) => results,
        Err(why) => CHECKS.iter().map(|c| CheckResult::fail(c, why.clone())).collect(),
    }
}

fn try_run(config: &Config, verbose: bool) -> Result<Vec<CheckResult>, String> {
    let started = Instant::now();
    let deadline = started + config.timeout;
    let (addr, port) = guest_endpoint(&config.cmdline)?;
    preflight()?;
    let pid = std::process::id();
    let ns = Namespace::create(&format!("{NS_PREFIX}{pid}"))?;
    let tap: String = format!("ctap{pid}").chars().take(15).collect();
    ip(&["-n", &ns.0, "link", "set", "lo", "up"])?;
    ip(&["-n", &ns.0, "tuntap", "add", "dev", &tap, "mode", "tap"])?;
    ip(&["-n", &ns.0, "addr", "add", HOST_ADDR, "dev", &tap])?;
    ip(&["-n", &ns.0, "link", "set", &tap, "up"])?;
    eprintln!("[tap] namespace {}, {tap} {HOST_ADDR}; guest {addr} port {port}; cmdline: {}", ns.0, config.cmdline);

    let mut qconfig = qemu::Config::new(&config.kernel, &config.cmdline);
    qconfig.extra_args = vec![
        "-netdev".into(),
        format!("tap,id=n0,ifname={tap},script=no,downscript=no"),
        "-device".into(),
        format!("virtio-net-pci,netdev=n0,disable-legacy=on,mac={GUEST_MAC}"),
    ];
    // `ip netns exec` execs QEMU: the child is QEMU itself.
    let mut guest = Console::spawn(qemu::command(&qconfig, &["ip", "netns", "exec", &ns.0])?, None)?;
    let mut lines: Vec<String> = Vec::new();
    let show = |lines: &[String]| format!("\n    --- guest console (last 20 lines):\n{}", console::tail(lines, 20, "    | "));
    let mut results = Vec::new();

    // 1. Boot: the kernel's `net_device` event for virtio-net, within 30 s.
    let boot_deadline = (Instant::now() + Duration::from_secs(30)).min(deadline);
    let device_up = |line: &str| {
        events([line]).into_iter().find_map(|e| match e {
            Event::NetDevice { device, mac, link_up } if device == "virtio-net" => Some((mac, link_up)),
            _ => None,
        })
    };
    let mut up = None;
    while let Next::Line(_, line) = guest.next(boot_deadline) {
        if verbose {
            eprintln!("    | {line}");
        }
        up = device_up(&line);
        lines.push(line);
        if up.is_some() {
            break;
        }
    }
    let booted = match up {
        _ if !guest.running() => {
            results.push(CheckResult::fail(CHECKS[0], format!("QEMU exited before the device was up{}", show(&lines))));
            false
        }
        Some((mac, link_up)) => {
            results.push(CheckResult::pass(
                CHECKS[0],
                format!("virtio-net MAC {mac}, link {}", if link_up { "up" } else { "down" }),
            ));
            true
        }
        None => {
            let why = "no `net_device` event for virtio-net within 30 s";
            results.push(CheckResult::fail(CHECKS[0], format!("{why}{}", show(&lines))));
            false
        }
    };

    let netcheck = artifacts::root().join("tests/net/netcheck.py");
    let check = |args: &[String], until: Instant| -> (bool, String) {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &ns.0, "python3"]).arg(&netcheck).args(args);
        match console::output_until(c, until) {
            Ok((Some(0), out)) => (true, out.trim().to_string()),
            Ok((Some(s), out)) => (false, format!("{} (exit status {s})", out.trim())),
            Ok((None, out)) => (false, format!("{} (killed at the overall timeout)", out.trim())),
            Err(e) => (false, e),
        }
    };

    // 2. Ping from the host side of the tap.
    if booted {
        let args: Vec<String> = ["ping", &addr, "--count", "3", "--deadline", "60"].map(String::from).to_vec();
        let (ok, out) = check(&args, deadline);
        guest.drain(&mut lines);
        results.push(if ok { CheckResult::pass(CHECKS[1], out) } else { CheckResult::fail(CHECKS[1], out + &show(&lines)) });
    } else {
        results.push(CheckResult::fail(CHECKS[1], "not booted"));
    }

    // 3. TCP echo of echo_bytes random bytes, SHA-256 compared.
    if booted && guest.running() {
        let left = deadline.saturating_duration_since(Instant::now()).as_secs().saturating_sub(15).max(1);
        let args: Vec<String> = vec![
            "echo".into(),
            addr.clone(),
            port.to_string(),
            "--bytes".into(),
            config.echo_bytes.to_string(),
            "--deadline".into(),
            left.to_string(),
        ];
        let (ok, out) = check(&args, deadline);
        guest.drain(&mut lines);
        results.push(if ok { CheckResult::pass(CHECKS[2], out) } else { CheckResult::fail(CHECKS[2], out + &show(&lines)) });
    } else {
        results.push(CheckResult::fail(CHECKS[2], "guest not running"));
    }

    // 4. Still alive, and nothing went wrong on the way.
    guest.drain(&mut lines);
    // A panic, a CPU exception, a refused boot or a failed app, as events.
    let bad = events(lines.iter().map(String::as_str)).into_iter().find(|e| {
        matches!(e, Event::Panic { .. } | Event::Fault { .. } | Event::BootFailed { .. } | Event::App { ok: false, .. })
    });
    results.push(if !guest.running() {
        CheckResult::fail(CHECKS[3], format!("QEMU is gone{}", show(&lines)))
    } else if let Some(e) = bad {
        CheckResult::fail(CHECKS[3], format!("{e:?}{}", show(&lines)))
    } else if Instant::now() > deadline {
        CheckResult::fail(CHECKS[3], format!("the run took more than {} s", config.timeout.as_secs()))
    } else {
        let counters = lines.iter().rev().find_map(|l| l.find("virtio-net: rx").map(|at| l[at..].to_string()));
        CheckResult::pass(CHECKS[3], counters.unwrap_or_default())
    });
    guest.kill();
    let (_, stderr) = guest.finish();
    if results.iter().any(|r| !r.ok) && !stderr.trim().is_empty() {
        eprintln!("[tap] QEMU's standard error:\n{}", stderr.trim());
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_from_the_command_line() {
        assert_eq!(guest_endpoint(CMDLINE), Ok(("198.18.1.2".into(), 7)));
        assert_eq!(guest_endpoint("app=echo net.ip=198.19.0.5/16 net.port=7007"), Ok(("198.19.0.5".into(), 7007)));
        assert_eq!(guest_endpoint("app=echo"), Ok(("198.18.1.2".into(), 7)));
        assert!(guest_endpoint("net.ip=10.0.0.2/24").is_err());
        assert!(guest_endpoint("net.port=x").is_err());
    }
}
