//! COHORT_SUITES: which suites `cargo test` runs (the emulator suites of
//! tests/emulator.rs and the lint gates of tests/lint.rs).

use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Suite {
    /// The kernel suite: one plain-QEMU boot per test.
    Kernel,
    /// The plain-QEMU network test (tap in a network namespace, as root).
    Net,
    /// Real Xen in QEMU (about ten minutes).
    Xen,
    /// The gates: clippy on the host crates and on the kernel, rustfmt, and
    /// shellcheck failing for want of the tool (tests/lint.rs).
    Lint,
}

pub const ALL: [Suite; 4] = [Suite::Kernel, Suite::Net, Suite::Xen, Suite::Lint];

impl Suite {
    pub fn name(self) -> &'static str {
        match self {
            Suite::Kernel => "kernel",
            Suite::Net => "net",
            Suite::Xen => "xen",
            Suite::Lint => "lint",
        }
    }
}

/// COHORT_SUITES's value: unset is `kernel`; otherwise a comma-separated
/// list of `kernel`, `net`, `xen`, `lint`, or `all`, or `none`.
pub fn parse(value: Option<&str>) -> Result<BTreeSet<Suite>, String> {
    let Some(value) = value else { return Ok([Suite::Kernel].into()) };
    let mut set = BTreeSet::new();
    for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match word {
            "all" => set.extend(ALL),
            "none" => {}
            w => {
                let suite = ALL
                    .into_iter()
                    .find(|s| s.name() == w)
                    .ok_or_else(|| format!("COHORT_SUITES: unknown suite `{w}` (kernel, net, xen, lint, all or none)"))?;
                set.insert(suite);
            }
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse(None).unwrap(), [Suite::Kernel].into());
        assert_eq!(parse(Some("all")).unwrap().len(), 4);
        assert_eq!(parse(Some("lint")).unwrap(), [Suite::Lint].into());
        assert_eq!(parse(Some("net, xen")).unwrap(), [Suite::Net, Suite::Xen].into());
        assert!(parse(Some("none")).unwrap().is_empty());
        assert!(parse(Some("")).unwrap().is_empty());
        assert!(parse(Some("qemu")).is_err());
    }
}
