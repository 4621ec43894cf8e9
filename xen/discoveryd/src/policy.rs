//! dom0's group policy file (`--policy PATH`; the format is
//! [`discovery::Policy`]'s), read again at every scan.
//!
//! Reading it at each scan, rather than on SIGHUP, needs no signal handling
//! and no step to forget: an edit counts from the next scan (at most
//! `--rescan` seconds later, 10 by default), and a deleted or broken file is
//! noticed just as soon. The file is small (at most
//! [`discovery::MAX_POLICY_LEN`] bytes) and scans come at most 5 times a
//! second, so the cost is nothing next to the scan's xenstore requests.
//!
//! A file that cannot be read or parsed fails closed: no guest is given
//! any group until it is fixed (their channels fall back to netfront), and
//! the daemon never falls back to trusting the guests' own claims.

use std::io::Read;
use std::path::{Path, PathBuf};

use discovery::{Policy, MAX_POLICY_LEN};

/// Reads and parses the policy at `path`, reading at most one byte more
/// than the limit.
pub fn load(path: &Path) -> Result<Policy, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let mut text = Vec::new();
    file.take(MAX_POLICY_LEN as u64 + 1).read_to_end(&mut text).map_err(|e| e.to_string())?;
    Policy::parse(&text).map_err(|e| e.to_string())
}

/// The policy file and what the log last said about it.
#[derive(Debug)]
pub struct PolicyFile {
    path: PathBuf,
    /// The last load: the policy in canonical form, or the error.
    last: Option<Result<String, String>>,
}

impl PolicyFile {
    pub fn new(path: PathBuf) -> PolicyFile {
        PolicyFile { path, last: None }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The policy as the file has it now (or why there is none), and a
    /// line for the log when that differs from the last load's.
    pub fn load(&mut self) -> (Result<Policy, String>, Option<String>) {
        let policy = load(&self.path);
        let now = policy.as_ref().map(|p| p.to_string()).map_err(Clone::clone);
        if self.last.as_ref() == Some(&now) {
            return (policy, None);
        }
        self.last = Some(now);
        let news = match &policy {
            Ok(p) => format!("policy {}: {} entries; groups are dom0's", self.path.display(), p.len()),
            Err(e) => format!("policy {}: {e}; no guest gets peers until it is fixed", self.path.display()),
        };
        (policy, Some(news))
    }
}
