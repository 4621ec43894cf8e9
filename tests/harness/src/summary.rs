//! What one `cargo test` run of the emulator tests did, as JSON
//! (`target/test-results/emulator.json`): every test's outcome and detail,
//! every rerun of the lab and every retry inside dom0.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed,
    Ignored,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Test {
    pub name: String,
    pub outcome: Outcome,
    /// Why it failed or was ignored.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// COHORT_SUITES, as understood.
    pub suites: Vec<String>,
    /// The tests that ran or were ignored at run time, in order (those the
    /// filter left out are not here).
    pub tests: Vec<Test>,
    /// Each time the lab was booted again, and why.
    pub reruns: Vec<String>,
    /// Each thing dom0 did again (RETRY lines).
    pub retries: Vec<String>,
}

impl Summary {
    pub fn count(&self, outcome: Outcome) -> usize {
        self.tests.iter().filter(|t| t.outcome == outcome).count()
    }

    /// Writes the JSON to `path` (its folder made if needed).
    pub fn write(&self, path: &std::path::Path) -> Result<(), String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let json = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(path, json + "\n").map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes() {
        let s = Summary {
            suites: vec!["kernel".into()],
            tests: vec![
                Test { name: "kernel::a".into(), outcome: Outcome::Passed, detail: String::new() },
                Test { name: "xen::b".into(), outcome: Outcome::Ignored, detail: "COHORT_SUITES".into() },
            ],
            ..Summary::default()
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["tests"][0], serde_json::json!({"name": "kernel::a", "outcome": "passed"}));
        assert_eq!(json["tests"][1]["outcome"], "ignored");
        assert_eq!((s.count(Outcome::Passed), s.count(Outcome::Failed)), (1, 0));
    }
}
