//! Reading a Cohort console's `EVENT {json}` lines (`figures::Event`), and
//! what the kernel's test runner reported through them.

use figures::{event_json_in, Event};

pub type KernelEvent = Event<String>;

/// Every event on the console, in order. A line whose object does not
/// read as an event (cut short, or of a kind this build does not know)
/// is skipped: the checks then miss the event and say what they expected.
pub fn events<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<KernelEvent> {
    lines
        .into_iter()
        .filter_map(event_json_in)
        .filter_map(|json| serde_json::Deserializer::from_str(json).into_iter::<KernelEvent>().next()?.ok())
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Failed,
    /// Not run in this boot, and why (`isolated`, or what it needs).
    Ignored(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub ok: bool,
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

/// What one boot of the kernel's test runner reported: its `test` and
/// `test_ignored` events and the `test_result` that ends them.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub tests: Vec<(String, Status)>,
    pub summary: Option<Summary>,
}

impl Report {
    pub fn from_events(events: &[KernelEvent]) -> Report {
        let mut report = Report::default();
        for event in events {
            match event {
                Event::Test { name, ok } => {
                    report.tests.push((name.clone(), if *ok { Status::Ok } else { Status::Failed }));
                }
                Event::TestIgnored { name, why } => report.tests.push((name.clone(), Status::Ignored(why.clone()))),
                Event::TestResult { ok, passed, failed, ignored } => {
                    report.summary = Some(Summary { ok: *ok, passed: *passed, failed: *failed, ignored: *ignored });
                }
                _ => {}
            }
        }
        report
    }

    pub fn count(&self, status: fn(&Status) -> bool) -> u64 {
        self.tests.iter().filter(|(_, s)| status(s)).count() as u64
    }

    pub fn named(&self, status: fn(&Status) -> bool) -> Vec<&str> {
        self.tests.iter().filter(|(_, s)| status(s)).map(|(n, _)| n.as_str()).collect()
    }

    /// Checks that the summary exists and agrees with the per-test events.
    pub fn consistent(&self) -> Result<Summary, String> {
        let summary = self.summary.ok_or("no `test_result` event")?;
        let passed = self.count(|s| *s == Status::Ok);
        let failed = self.count(|s| *s == Status::Failed);
        let ignored = self.count(|s| matches!(s, Status::Ignored(_)));
        if (summary.passed, summary.failed, summary.ignored) != (passed, failed, ignored) {
            return Err(format!(
                "test_result says {}/{}/{} passed/failed/ignored, the test events say {passed}/{failed}/{ignored}",
                summary.passed, summary.failed, summary.ignored
            ));
        }
        if summary.ok != (failed == 0) {
            return Err(format!("test_result ok={} with {failed} failures", summary.ok));
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(lines: &[&str]) -> Report {
        Report::from_events(&events(lines.iter().copied()))
    }

    #[test]
    fn reads_events_anywhere_on_a_line_and_skips_the_rest() {
        let lines = [
            r#"EVENT {"kind":"test","name":"heap_alloc","ok":true}"#,
            r#"(d3) EVENT {"kind":"test_ignored","name":"so","why":"isolated"}"#,
            "test heap_alloc ... ok",
            r#"EVENT {"kind":"test","name":"cut"#,
            r#"EVENT {"kind":"no_such_kind"}"#,
            r#"EVENT {"kind":"panic","file":null,"line":0}"#,
        ];
        let read = events(lines);
        assert_eq!(read.len(), 3, "{read:?}");
        assert_eq!(read[2], Event::Panic { file: None, line: 0 });
        assert_eq!(report(&lines).tests, [("heap_alloc".into(), Status::Ok), ("so".into(), Status::Ignored("isolated".into()))]);
    }

    #[test]
    fn free_text_alone_reports_nothing() {
        let text = ["test a ... ok", "test result: ok. 1 passed; 0 failed; 0 ignored;"];
        let r = report(&text);
        assert!(r.tests.is_empty());
        assert!(r.consistent().is_err());
    }

    #[test]
    fn report_detects_inconsistency() {
        let good = [
            r#"EVENT {"kind":"test","name":"a","ok":true}"#,
            r#"EVENT {"kind":"test_ignored","name":"b","why":"isolated"}"#,
            r#"EVENT {"kind":"test_result","ok":true,"passed":1,"failed":0,"ignored":1}"#,
        ];
        assert_eq!(report(&good).consistent().unwrap().passed, 1);
        let lying = [
            r#"EVENT {"kind":"test","name":"a","ok":false}"#,
            r#"EVENT {"kind":"test_result","ok":true,"passed":1,"failed":0,"ignored":0}"#,
        ];
        assert!(report(&lying).consistent().is_err());
        let verdict = [
            r#"EVENT {"kind":"test","name":"a","ok":false}"#,
            r#"EVENT {"kind":"test_result","ok":true,"passed":0,"failed":1,"ignored":0}"#,
        ];
        assert!(report(&verdict).consistent().unwrap_err().contains("ok=true"));
        assert!(report(&good[..1]).consistent().is_err());
    }
}
