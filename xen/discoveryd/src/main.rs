//! `cohort-discoveryd [--socket PATH] [--policy PATH] [--rescan SECONDS] [--once] [--clock virtual|wall]`
//!
//! Runs in dom0 (as root: xenstored's socket is root-only) and keeps, for
//! every Cohort guest, the list of co-resident guests of its group at
//! `/local/domain/0/cohort/peers/<domid>`. See the crate documentation.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use discoveryd::cli::{self, Command};
use discoveryd::run::{run, Connector, Event};
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

fn main() -> ExitCode {
    let default_socket = std::env::var_os("XENSTORED_PATH").map_or_else(|| PathBuf::from(DEFAULT_SOCKET), PathBuf::from);
    let (socket, policy, opts, clock) = match cli::parse(std::env::args_os().skip(1), default_socket) {
        Ok(Command::Run { socket, policy, opts, clock }) => (socket, policy, opts, clock),
        Ok(Command::Help) => {
            print!("{}", cli::HELP);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("cohort-discoveryd: {e}");
            eprintln!("{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    println!("{} cohort-discoveryd: xenstored at {}", stamp(), socket.display());
    // The trust model, said once at start.
    match &policy {
        None => println!(
            "{} cohort-discoveryd: no --policy: groups are the guests' own claims (any guest may join any group its advert names)",
            stamp()
        ),
        Some(path) => match discoveryd::policy::load(path) {
            // A policy broken at start is a mistake to fix now; one broken
            // later fails closed (see discoveryd::policy).
            Err(e) => {
                eprintln!("cohort-discoveryd: policy {}: {e}", path.display());
                return ExitCode::from(2);
            }
            Ok(p) => println!(
                "{} cohort-discoveryd: policy {} ({} entries): groups are dom0's; a guest it does not list, or whose advert names another group, gets no peers",
                stamp(),
                path.display(),
                p.len()
            ),
        },
    }
    let mut log = |event: Event<'_>| match event {
        Event::Connected => println!("{} cohort-discoveryd: connected; watching /local/domain", stamp()),
        Event::ConnectFailed(e, pause) => {
            eprintln!("{} cohort-discoveryd: {e}; retrying in {} ms", stamp(), pause.as_millis())
        }
        Event::Lost(e) => eprintln!("{} cohort-discoveryd: {e}; reconnecting", stamp()),
        Event::Scanned { report, took } => {
            if let Some(news) = &report.policy {
                println!("{} cohort-discoveryd: {news}", stamp());
            }
            for (domid, why) in &report.rejected {
                eprintln!("{} cohort-discoveryd: dom{domid} not listed: {why}", stamp());
            }
            for (domid, list) in &report.published {
                println!("{} cohort-discoveryd: dom{domid} peers: {list} ({} us)", stamp(), took.as_micros());
            }
            for domid in &report.removed {
                println!("{} cohort-discoveryd: dom{domid} gone: list removed", stamp());
            }
            // The scan alone, not connecting or watching (run::serve times it).
            if opts.once {
                println!("{}", discoveryd::bench::scan_line(report.domains, took, clock));
            }
        }
    };
    run(&mut Socket(socket), opts, policy, &mut log, &mut || false);
    ExitCode::SUCCESS
}
