//! Reading the libtest-style lines the kernel's test runner prints.

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Failed,
    /// `ignored, REASON`.
    Ignored(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestLine {
    pub name: String,
    pub status: Status,
}

/// Parses `test NAME ... ok|FAILED|ignored[, reason]`.
pub fn parse_test_line(line: &str) -> Option<TestLine> {
    let rest = line.strip_prefix("test ")?;
    let (name, status) = rest.split_once(" ... ")?;
    if name.is_empty() || name.contains(' ') {
        return None;
    }
    let status = match status {
        "ok" => Status::Ok,
        "FAILED" => Status::Failed,
        "ignored" => Status::Ignored(String::new()),
        s => Status::Ignored(s.strip_prefix("ignored, ")?.to_string()),
    };
    Some(TestLine { name: name.to_string(), status })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub ok: bool,
    pub passed: usize,
    pub failed: usize,
    pub ignored: usize,
}

/// Parses `test result: ok. 9 passed; 0 failed; 3 ignored; ...`.
pub fn parse_summary(line: &str) -> Option<Summary> {
    let rest = line.strip_prefix("test result: ")?;
    let (verdict, counts) = rest.split_once(". ")?;
    let ok = match verdict {
        "ok" => true,
        "FAILED" => false,
        _ => return None,
    };
    let count =
        |word: &str| -> Option<usize> { counts.split(';').find_map(|part| part.trim().strip_suffix(word)?.trim().parse().ok()) };
    Some(Summary { ok, passed: count(" passed")?, failed: count(" failed")?, ignored: count(" ignored")? })
}

/// What one boot of the kernel's test runner reported.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub tests: Vec<TestLine>,
    pub summary: Option<Summary>,
}

impl Report {
    pub fn from_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Report {
        let mut report = Report::default();
        for line in lines {
            if let Some(test) = parse_test_line(line) {
                report.tests.push(test);
            } else if let Some(summary) = parse_summary(line) {
                report.summary = Some(summary);
            }
        }
        report
    }

    pub fn count(&self, status: fn(&Status) -> bool) -> usize {
        self.tests.iter().filter(|t| status(&t.status)).count()
    }

    /// Checks that the summary exists and agrees with the per-test lines.
    pub fn consistent(&self) -> Result<Summary, String> {
        let summary = self.summary.ok_or("no `test result:` line")?;
        let passed = self.count(|s| *s == Status::Ok);
        let failed = self.count(|s| *s == Status::Failed);
        let ignored = self.count(|s| matches!(s, Status::Ignored(_)));
        if (summary.passed, summary.failed, summary.ignored) != (passed, failed, ignored) {
            return Err(format!(
                "summary says {}/{}/{} passed/failed/ignored, lines say {passed}/{failed}/{ignored}",
                summary.passed, summary.failed, summary.ignored
            ));
        }
        if summary.ok != (failed == 0) {
            return Err(format!("summary verdict ok={} with {failed} failures", summary.ok));
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_test_lines() {
        assert_eq!(parse_test_line("test heap_alloc ... ok"), Some(TestLine { name: "heap_alloc".into(), status: Status::Ok }));
        assert_eq!(parse_test_line("test x ... FAILED").unwrap().status, Status::Failed);
        assert_eq!(
            parse_test_line("test so ... ignored, isolated: boot with test=so").unwrap().status,
            Status::Ignored("isolated: boot with test=so".into())
        );
        assert_eq!(parse_test_line("test result: ok. 1 passed; 0 failed; 0 ignored"), None);
        assert_eq!(parse_test_line("test x ... maybe"), None);
        assert_eq!(parse_test_line("testing things"), None);
    }

    #[test]
    fn parses_summaries() {
        let s = parse_summary("test result: FAILED. 8 passed; 1 failed; 3 ignored; 0 measured; 0 filtered out; finished in 0.2s");
        assert_eq!(s, Some(Summary { ok: false, passed: 8, failed: 1, ignored: 3 }));
        assert_eq!(parse_summary("test result: meh. 1 passed; 0 failed; 0 ignored"), None);
        assert_eq!(parse_summary("test result: ok. 1 passed"), None);
    }

    #[test]
    fn report_detects_inconsistency() {
        let good = ["test a ... ok", "test b ... ignored, isolated", "test result: ok. 1 passed; 0 failed; 1 ignored;"];
        assert_eq!(Report::from_lines(good).consistent().unwrap().passed, 1);
        let lying = ["test a ... FAILED", "test result: ok. 1 passed; 0 failed; 0 ignored;"];
        assert!(Report::from_lines(lying).consistent().is_err());
        let verdict = ["test a ... FAILED", "test result: ok. 0 passed; 1 failed; 0 ignored;"];
        assert!(Report::from_lines(verdict).consistent().is_err());
        assert!(Report::from_lines(["test a ... ok"]).consistent().is_err());
    }
}
