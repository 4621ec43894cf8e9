//! The structured lines the lab's dom0 prints for the harness, defined once.
//!
//! `tests/xen/dom0/scenario-lib.sh` prints them (`ok`, `fail`, `retry`), and
//! so does dom0's `/init` for each scenario file it ran:
//!
//! ```text
//! RESULT {"name":"xen-net-dom0-echo-16MiB","ok":true,"detail":"16777216 bytes back in 2310 ms"}
//! RESULT {"name":"xen-channel-up-64MiB","ok":false,"detail":"...","lab_fault":"LAB FAULT (suspected): cli triple-faulted ..."}
//! RESULT {"name":"cohort-net.sh","ok":true,"detail":"exit status 0 after 312 s, 4 results"}
//! RETRY {"what":"xl create /tmp/srv.cfg","why":"try 1, exit 1: ..."}
//! ```
//!
//! Pass and fail are decided from `RESULT` lines only. A `RETRY` line names
//! something dom0 did again (an `xl create` that crashed, a Linux guest that
//! triple-faulted while booting): it decides nothing, and the summaries list
//! it.

use serde::{Deserialize, Serialize};

/// One check's outcome: a `RESULT {...}` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckResult {
    /// The check's name (a scenario file's own verdict is named after the
    /// file, `cohort-net.sh`).
    pub name: String,
    pub ok: bool,
    /// What was measured, or why it failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Set on a failure when a guest was seen running with the
    /// hypervisor's registers or triple-faulting before it: the `LAB FAULT`
    /// lines `guest_explain` printed (see tests/xen/README.md). The test
    /// suite then runs the real-Xen scenarios once more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lab_fault: Option<String>,
}

/// Something dom0 did again: a `RETRY {...}` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    pub what: String,
    pub why: String,
}

/// One structured line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    Result(CheckResult),
    Retry(Retry),
}

impl CheckResult {
    pub fn pass(name: &str, detail: impl Into<String>) -> CheckResult {
        CheckResult { name: name.to_string(), ok: true, detail: detail.into(), lab_fault: None }
    }

    pub fn fail(name: &str, detail: impl Into<String>) -> CheckResult {
        CheckResult { name: name.to_string(), ok: false, detail: detail.into(), lab_fault: None }
    }

    /// The `RESULT {...}` line.
    pub fn line(&self) -> String {
        format!("RESULT {}", serde_json::to_string(self).unwrap_or_default())
    }

    /// `NAME ... ok` or `NAME ... FAILED: DETAIL`, for people.
    pub fn human(&self) -> String {
        match (self.ok, self.detail.is_empty()) {
            (true, true) => format!("{} ... ok", self.name),
            (true, false) => format!("{} ... ok ({})", self.name, self.detail),
            (false, _) => format!("{} ... FAILED: {}", self.name, self.detail),
        }
    }
}

/// The first JSON value after `TAG ` in `line`, wherever the tag stands (a
/// console can put other output before it on the same line).
fn after<'a>(line: &'a str, tag: &str) -> Option<&'a str> {
    let at = line.find(tag)?;
    Some(&line[at + tag.len()..])
}

fn first_value<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, String> {
    match serde_json::Deserializer::from_str(json).into_iter::<T>().next() {
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("no JSON object".into()),
    }
}

/// `None` for a line that is neither kind; `Some(Err)` with serde_json's
/// reason for one whose object does not parse (the caller counts that as a
/// failure: a check whose verdict cannot be read did not pass).
pub fn parse(line: &str) -> Option<Result<Line, String>> {
    if let Some(json) = after(line, "RESULT {") {
        return Some(first_value(&format!("{{{json}")).map(Line::Result));
    }
    if let Some(json) = after(line, "RETRY {") {
        return Some(first_value(&format!("{{{json}")).map(Line::Retry));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_results_and_retries() {
        let line = r#"RESULT {"name":"xen-net-dom0-echo-16MiB","ok":true,"detail":"x \"y\" \\ z\nw"}"#;
        let Some(Ok(Line::Result(r))) = parse(line) else { panic!("{line}") };
        assert_eq!(r, CheckResult::pass("xen-net-dom0-echo-16MiB", "x \"y\" \\ z\nw"));
        let line = r#"(XEN) noise RESULT {"name":"a","ok":false,"lab_fault":"LAB FAULT: x"} trailing"#;
        let Some(Ok(Line::Result(r))) = parse(line) else { panic!("{line}") };
        assert_eq!((r.ok, r.detail.as_str(), r.lab_fault.as_deref()), (false, "", Some("LAB FAULT: x")));
        let Some(Ok(Line::Retry(r))) = parse(r#"RETRY {"what":"xl create /tmp/a.cfg","why":"exit 1"}"#) else { panic!() };
        assert_eq!(r.what, "xl create /tmp/a.cfg");
        assert_eq!(parse("SCENARIO x ... ok"), None);
        assert_eq!(parse("test result: ok. RESULTS"), None);
    }

    #[test]
    fn malformed_results_are_errors() {
        for bad in [
            r#"RESULT {"name":"a"}"#,
            r#"RESULT {"name":"a","ok":"yes"}"#,
            r#"RESULT {"name":"a","ok":true,"extra":1}"#,
            r#"RESULT {"name":"a","ok":tr"#,
        ] {
            assert!(matches!(parse(bad), Some(Err(_))), "{bad}");
        }
    }

    /// The shells that run tests/xen/dom0/scenario-lib.sh here: `sh`, and
    /// busybox's (dom0's) when this machine has it (on PATH or in the lab's
    /// package cache).
    fn shells() -> Vec<Vec<String>> {
        let mut shells = vec![vec!["sh".to_string()]];
        let cache = std::env::var("HOME").map(|h| format!("{h}/.cache/cohort/xen/current/bin/busybox")).unwrap_or_default();
        for bb in ["busybox", cache.as_str()] {
            if std::process::Command::new(bb).arg("true").output().is_ok_and(|o| o.status.success()) {
                shells.push(vec![bb.to_string(), "sh".to_string()]);
                break;
            }
        }
        shells
    }

    /// Runs `script` in `shell` with scenario-lib.sh as `$1` (then `args`)
    /// and LAB_FAULTS at `faults`; what it printed.
    fn with_lib(shell: &[String], script: &str, args: &[&str], faults: &std::path::Path) -> String {
        let lib = crate::artifacts::root().join("tests/xen/dom0/scenario-lib.sh");
        let out = std::process::Command::new(&shell[0])
            .args(&shell[1..])
            .arg("-c")
            .arg(script)
            .args(["sh", lib.to_str().unwrap()])
            .args(args)
            .env("LAB_FAULTS", faults)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    /// `ok`, `fail`, `retry` and `lab_fault` of scenario-lib.sh print lines
    /// this schema reads back exactly, whatever the reason holds.
    #[test]
    fn scenario_lib_prints_this_schema() {
        let reason = "a\\b \"q\" tab\there\u{1} é 100% %s\nline2";
        for shell in shells() {
            let faults = std::env::temp_dir().join(format!("cohort-lab-faults-{}-{}", std::process::id(), shell.len()));
            let _ = std::fs::remove_file(&faults);
            let script = r#". "$1"; ok a; ok b "12 ms"; lab_fault "LAB FAULT: x"; fail c "$2"; fail d plain; retry "xl create /tmp/a.cfg" "$2""#;
            let text = with_lib(&shell, script, &[reason], &faults);
            let parsed: Vec<Line> = text.lines().filter_map(parse).map(|l| l.unwrap()).collect();
            let mut c = CheckResult::fail("c", reason);
            c.lab_fault = Some("LAB FAULT: x".into());
            let expected = vec![
                Line::Result(CheckResult::pass("a", "")),
                Line::Result(CheckResult::pass("b", "12 ms")),
                Line::Result(c),
                Line::Result(CheckResult::fail("d", "plain")),
                Line::Retry(Retry { what: "xl create /tmp/a.cfg".into(), why: reason.into() }),
            ];
            assert_eq!(parsed, expected, "{shell:?}:\n{text}");
            assert!(text.contains("\nLAB FAULT: x\n"), "{text}");
            assert!(!faults.exists(), "the failure took the lab fault");
        }
    }

    /// A wait gives up at once (status 2, said) when a guest named by
    /// `needs` has ended or is gone, times out (1) while it runs, and
    /// ignores it after `needs` alone. `dom_state` is stubbed: no Xen here.
    #[test]
    fn needs_ends_a_wait_at_once() {
        let script = r#". "$1"
            dom_state() { case $1 in srv) echo "$STATE" ;; *) echo "-b----" ;; esac; }
            needs srv
            STATE=-b----; wait_until 1 false; echo "running $?"
            STATE=--ps--; wait_until 60 false; echo "shutdown $?"
            STATE=; wait_quietly 60 false; echo "gone $?"
            STATE=-----c; wait_until 60 false; echo "crashed $?"
            needs; wait_until 1 false; echo "none $?""#;
        for shell in shells() {
            let started = std::time::Instant::now();
            let text = with_lib(&shell, script, &[], &std::env::temp_dir().join("cohort-needs-unused"));
            let codes: Vec<&str> = text.lines().filter(|l| !l.starts_with("wait: ")).collect();
            assert_eq!(codes, ["running 1", "shutdown 2", "gone 2", "crashed 2", "none 1"], "{shell:?}:\n{text}");
            assert!(text.contains("wait: srv, which this waits on, is gone: giving up at once"), "{text}");
            assert!(started.elapsed().as_secs() < 30, "the waits on an ended guest did not end at once");
        }
    }

    /// `linux_up` waits for a Linux guest's event (cohort-event, stubbed,
    /// is asked for exactly the kind and fields given), re-creates a guest
    /// that crashed while booting twice at most, each said in a `RETRY`
    /// line, and gives up at once when a guest named by `needs` is gone.
    #[test]
    fn linux_up_waits_for_an_event() {
        let script = r#". "$1"
            xl_create() { echo "create $1"; }
            guest_finish() { :; }
            dom_state() { case $1 in srv) echo "$SRV" ;; *) echo "$CLI" ;; esac; }
            ask() { [ "$*" = "/var/log/xen/console/guest-cli.log listening service=sink" ] && [ "$UP" = yes ]; }
            COHORT_EVENT=ask
            SRV=-b---- CLI=-b---- UP=yes; linux_up cli 5 listening service=sink; echo "up $?"
            CLI=---sr- UP=no; linux_up cli 1 listening service=sink; echo "crashing $?"
            CLI=--ps-- UP=no; linux_up cli 60 listening service=sink; echo "ended $?"
            needs srv; SRV= CLI=-b---- UP=no; linux_up cli 60 listening service=sink; echo "needed gone $?""#;
        for shell in shells() {
            let started = std::time::Instant::now();
            let text = with_lib(&shell, script, &[], &std::env::temp_dir().join("cohort-linux-up-unused"));
            let outcomes: Vec<&str> = text.lines().filter(|l| l.ends_with(" 0") || l.ends_with(" 1")).collect();
            assert_eq!(outcomes, ["up 0", "crashing 1", "ended 1", "needed gone 1"], "{shell:?}:\n{text}");
            // 1 + 3 + 1 + 1 boots; the two re-creations of the crashing one said.
            assert_eq!(text.lines().filter(|l| *l == "create /tmp/cli.cfg").count(), 6, "{text}");
            let retries: Vec<Line> = text.lines().filter_map(parse).map(|l| l.unwrap()).collect();
            assert_eq!(retries.len(), 2, "{text}");
            assert!(retries.iter().all(|l| matches!(l, Line::Retry(r) if r.what == "Linux guest cli")), "{text}");
            assert!(text.contains("wait: srv, which this waits on, is gone: giving up at once"), "{text}");
            assert!(started.elapsed().as_secs() < 30, "linux_up waited out a timeout");
        }
    }

    /// `cohort_cfg`'s type and memory lines: the defaults, or the
    /// EXTRA-LINE's instead (never both: xl would take either).
    #[test]
    fn cohort_cfg_takes_type_and_memory_from_its_extra_lines() {
        let name = format!("cohort-cfg-test-{}", std::process::id());
        let script = r#". "$1"; cohort_cfg "$2" /k "app=echo" "$3"; cat "/tmp/$2.cfg"; rm -f "/tmp/$2.cfg""#;
        for shell in shells() {
            let unused = std::env::temp_dir().join("cohort-cfg-unused");
            let cfg = |extra: &str| -> Vec<String> {
                let text = with_lib(&shell, script, &[&name, extra], &unused);
                text.lines().filter(|l| l.starts_with("type") || l.starts_with("memory")).map(String::from).collect()
            };
            assert_eq!(cfg(""), ["type = \"pvh\"", "memory = 32"], "{shell:?}");
            assert_eq!(cfg("memory = 128"), ["type = \"pvh\"", "memory = 128"], "{shell:?}");
            assert_eq!(cfg("type = \"pv\""), ["memory = 32", "type = \"pv\""], "{shell:?}");
            let both = "vif = [ \"bridge=xenbr0\" ]\ntype = \"pv\"\nmemory = 64";
            assert_eq!(cfg(both), ["type = \"pv\"", "memory = 64"], "{shell:?}");
        }
    }

    #[test]
    fn lines_round_trip() {
        let mut r = CheckResult::fail("n", "why: \"quoted\"\ttab");
        r.lab_fault = Some("LAB FAULT (suspected): x".into());
        assert_eq!(parse(&r.line()), Some(Ok(Line::Result(r.clone()))));
        assert_eq!(r.human(), "n ... FAILED: why: \"quoted\"\ttab");
        assert_eq!(CheckResult::pass("n", "").line(), r#"RESULT {"name":"n","ok":true}"#);
    }
}
