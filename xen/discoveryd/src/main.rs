//! `cohort-discoveryd [--socket PATH] [--rescan SECONDS] [--once]`
//!
//! Runs in dom0 (as root: xenstored's socket is root-only) and keeps, for
//! every Cohort guest, the list of co-resident guests of its group at
//! `/local/domain/0/cohort/peers/<domid>`. See the crate documentation.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use discoveryd::run::{run, Connector, Event, Options};
use discoveryd::store::{SocketStore, StoreError, DEFAULT_SOCKET};

struct Socket(PathBuf);

impl Connector for Socket {
    type Store = SocketStore;
    fn connect(&mut self) -> Result<SocketStore, StoreError> {
        SocketStore::connect(&self.0)
    }
}

fn stamp() -> String {
    let t = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}", t.as_secs(), t.subsec_millis())
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("cohort-discoveryd: {problem}");
    eprintln!("usage: cohort-discoveryd [--socket PATH] [--rescan SECONDS] [--once]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut socket = PathBuf::from(std::env::var("XENSTORED_PATH").unwrap_or_else(|_| DEFAULT_SOCKET.into()));
    let mut opts = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--socket" => match args.next() {
                Some(p) => socket = PathBuf::from(p),
                None => return usage("--socket needs a path"),
            },
            "--rescan" => match args.next().and_then(|s| s.parse::<u64>().ok()).filter(|&s| s > 0) {
                Some(s) => opts.rescan = Duration::from_secs(s),
                None => return usage("--rescan needs a whole number of seconds > 0"),
            },
            "--once" => opts.once = true,
            "-h" | "--help" => {
                usage("publishes co-resident Cohort peers in xenstore");
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument `{other}`")),
        }
    }
    println!("{} cohort-discoveryd: xenstored at {}", stamp(), socket.display());
    let mut log = |event: Event<'_>| match event {
        Event::Connected => println!("{} cohort-discoveryd: connected; watching /local/domain", stamp()),
        Event::ConnectFailed(e, pause) => {
            eprintln!("{} cohort-discoveryd: {e}; retrying in {} ms", stamp(), pause.as_millis())
        }
        Event::Lost(e) => eprintln!("{} cohort-discoveryd: {e}; reconnecting", stamp()),
        Event::Scanned { report, took } => {
            for (domid, why) in &report.rejected {
                eprintln!("{} cohort-discoveryd: dom{domid} not listed: {why}", stamp());
            }
            for (domid, list) in &report.published {
                println!("{} cohort-discoveryd: dom{domid} peers: {list} ({} us)", stamp(), took.as_micros());
            }
            for domid in &report.removed {
                println!("{} cohort-discoveryd: dom{domid} gone: list removed", stamp());
            }
        }
    };
    run(&mut Socket(socket), opts, &mut log, &mut || false);
    ExitCode::SUCCESS
}
