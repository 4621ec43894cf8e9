//! A completed point and the file that keeps them: `target/study/points.jsonl`,
//! one JSON object a line, appended as each point completes, so that an
//! interrupted run loses at most the point it was measuring.

use super::matrix::{Path as FramePath, Point, Workload};
use crate::report::Figure;
use serde::{Deserialize, Serialize};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

/// The repetitions of one figure: median, min, max and the quartiles
/// (linear interpolation between the sorted values).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub n: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub q1: f64,
    pub q3: f64,
}

impl Spread {
    /// `None` for no values.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n == 0 {
            return None;
        }
        let at = |q: f64| {
            let pos = q * (n - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
        };
        Some(Spread { n, median: at(0.5), min: v[0], max: v[n - 1], q1: at(0.25), q3: at(0.75) })
    }
}

/// One figure of a point: every measured repetition, in order, and their spread.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub name: String,
    pub unit: String,
    pub values: Vec<f64>,
    pub spread: Spread,
}

/// A completed point, as `points.jsonl` keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub question: u8,
    pub factor: String,
    pub value: String,
    /// Which side of a comparison (question 1's `residency on`/`off`).
    #[serde(default)]
    pub series: String,
    pub workload: Workload,
    pub path: FramePath,
    /// The lab boot that measured it (its start, UTC): comparisons are
    /// made between points of one run.
    pub run: String,
    pub clock: String,
    /// Warm-up repetitions dropped before the spread.
    pub warmup: usize,
    pub figures: Vec<Measured>,
}

impl Record {
    /// The figure `name`, if the point has it.
    pub fn figure(&self, name: &str) -> Option<&Measured> {
        self.figures.iter().find(|f| f.name == name)
    }

    /// Builds the record of `point` from its client's figures: the first
    /// `warmup` repetitions of each name dropped, then at least `reps`
    /// left, every one under the virtual clock and on the point's path.
    /// A figure whose path names a peer (`peer-A.B.C.D`: one of a
    /// mixture's servers) is kept as `NAME peer-A.B.C.D`.
    pub fn from_figures(point: &Point, run: &str, figures: &[Figure], warmup: usize, reps: usize) -> Result<Record, String> {
        let mut measured: Vec<Measured> = Vec::new();
        let keyed: Vec<(String, &Figure)> = figures
            .iter()
            .map(|f| match f.path.starts_with("peer-") {
                true => (format!("{} {}", f.name, f.path), f),
                false => (f.name.clone(), f),
            })
            .collect();
        let mut names: Vec<(&str, &str)> = Vec::new();
        for (name, f) in &keyed {
            if f.clock != "virtual" {
                return Err(format!("{}: figure {} under the {} clock, not the virtual one", point.id, f.name, f.clock));
            }
            if !names.contains(&(name.as_str(), f.unit.as_str())) {
                names.push((name.as_str(), f.unit.as_str()));
            }
        }
        for (name, unit) in names {
            let all: Vec<&Figure> = keyed.iter().filter(|(n, f)| n == name && f.unit == unit).map(|(_, f)| *f).collect();
            let kept = all.get(warmup..).unwrap_or_default();
            // The warm-up may straddle a channel coming up; the rest may not.
            if let Some(f) = kept.iter().find(|f| !f.path.starts_with("peer-") && !point.path.accepts(&f.path)) {
                return Err(format!(
                    "{}: a repetition of {} took path `{}`, not {}",
                    point.id,
                    name,
                    f.path,
                    point.path.as_str()
                ));
            }
            let values: Vec<f64> = kept.iter().map(|f| f.value).collect();
            if values.len() < reps {
                return Err(format!(
                    "{}: {} has {} repetitions after the warm-up, fewer than {reps}",
                    point.id,
                    name,
                    values.len()
                ));
            }
            let spread = Spread::of(&values).ok_or("no values")?;
            measured.push(Measured { name: name.into(), unit: unit.into(), values, spread });
        }
        let (main, _) = super::matrix::main_figure(point.factor, point.workload);
        if !measured.iter().any(|m| m.name == main) {
            return Err(format!("{}: the client printed no {main} figure", point.id));
        }
        Ok(Record {
            id: point.id.clone(),
            question: point.question,
            factor: point.factor.into(),
            value: point.value.clone(),
            series: point.series.into(),
            workload: point.workload,
            path: point.path,
            run: run.into(),
            clock: "virtual".into(),
            warmup,
            figures: measured,
        })
    }
}

/// The records of `file` (none when it does not exist). A line that does
/// not parse (the last one, cut by an interruption) is left out and said.
pub fn load(file: &Path) -> Result<Vec<Record>, String> {
    let text = match fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match serde_json::from_str::<Record>(line) {
            Ok(r) => records.push(r),
            Err(e) => eprintln!("study: {}:{}: not a point, left out: {e}", file.display(), i + 1),
        }
    }
    Ok(records)
}

/// Appends `record` as one line and flushes it to the disk.
pub fn append(file: &Path, record: &Record) -> Result<(), String> {
    let err = |e: std::io::Error| format!("{}: {e}", file.display());
    let mut line = serde_json::to_string(record).map_err(|e| e.to_string())?;
    line.push('\n');
    let mut f = OpenOptions::new().create(true).append(true).open(file).map_err(err)?;
    f.write_all(line.as_bytes()).map_err(err)?;
    f.sync_data().map_err(err)
}

/// What the scenario said about a point, from one console line.
#[derive(Clone, Debug, PartialEq)]
pub enum Said {
    /// `STUDY-BENCH ID BENCH {...}`: one of the client's figures.
    Figure { id: String, figure: Figure },
    /// `STUDY-END ID ok`, or `STUDY-END ID fail REASON`.
    End { id: String, ok: bool, why: String },
}

/// Reads a console line of cohort-study.sh; `None` for other lines (and
/// for a figure that does not parse: its point then lacks a repetition).
pub fn said(line: &str) -> Option<Said> {
    if let Some(rest) = line.strip_prefix("STUDY-BENCH ") {
        let (id, bench) = rest.split_once(' ')?;
        let figure = crate::report::parse(bench)?;
        return Some(Said::Figure { id: id.into(), figure });
    }
    let rest = line.strip_prefix("STUDY-END ")?;
    let mut words = rest.splitn(3, ' ');
    let id = words.next()?.to_string();
    let ok = match words.next()? {
        "ok" => true,
        "fail" => false,
        _ => return None,
    };
    Some(Said::End { id, ok, why: words.next().unwrap_or("").to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::matrix::matrix;

    fn fig(name: &str, path: &str, value: f64) -> Figure {
        Figure { name: name.into(), path: path.into(), value, unit: "Mbit/s".into(), clock: "virtual".into() }
    }

    #[test]
    fn spread_has_quartiles() {
        let s = Spread::of(&[5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!((s.n, s.median, s.min, s.max, s.q1, s.q3), (5, 3.0, 1.0, 5.0, 2.0, 4.0));
        let s = Spread::of(&[1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.q1, s.q3), (1.5, 1.25, 1.75));
        assert_eq!(Spread::of(&[]), None);
    }

    fn stream_point() -> Point {
        matrix(true).into_iter().find(|p| p.id == "q2/residency=on/stream/netfront").unwrap()
    }

    #[test]
    fn a_record_drops_the_warm_up_and_needs_every_repetition_on_its_path() {
        let p = stream_point();
        let figs: Vec<_> = [9.0, 1.0, 2.0, 3.0, 4.0, 5.0].iter().map(|&v| fig("net.tcp_stream", "netfront", v)).collect();
        let r = Record::from_figures(&p, "run", &figs, 1, 5).unwrap();
        assert_eq!(r.figure("net.tcp_stream").unwrap().values, [1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(r.figure("net.tcp_stream").unwrap().spread.median, 3.0);
        // One repetition short.
        assert!(Record::from_figures(&p, "run", &figs[..5], 1, 5).unwrap_err().contains("fewer than 5"));
        // One repetition on another path; the warm-up may take any.
        let mut other = figs.clone();
        other[3].path = "channel+netfront".into();
        assert!(Record::from_figures(&p, "run", &other, 1, 5).unwrap_err().contains("took path"));
        let mut warm = figs.clone();
        warm[0].path = "channel+netfront".into();
        assert!(Record::from_figures(&p, "run", &warm, 1, 5).is_ok());
        // The wall clock.
        let mut wall = figs.clone();
        wall[0].clock = "wall".into();
        assert!(Record::from_figures(&p, "run", &wall, 1, 5).is_err());
        // No figure of the workload.
        let rr: Vec<_> = figs.iter().map(|f| Figure { name: "net.tcp_rr".into(), ..f.clone() }).collect();
        assert!(Record::from_figures(&p, "run", &rr, 1, 5).unwrap_err().contains("no net.tcp_stream"));
    }

    #[test]
    fn a_mixtures_per_peer_figures_are_kept_apart_by_peer() {
        let p = matrix(true).into_iter().find(|p| p.id == "q1/local=50%/on/mix-rr").unwrap();
        let mut figs: Vec<Figure> = Vec::new();
        for v in 0..6 {
            figs.push(fig("net.mix_rr_aggregate", "channel+netfront", 100.0 + v as f64));
            figs.push(fig("net.mix_rr_peer_latency_p50", "peer-198.18.0.40", 50.0 + v as f64));
            figs.push(fig("net.mix_rr_peer_latency_p50", "peer-198.18.0.41", 250.0 + v as f64));
        }
        let r = Record::from_figures(&p, "run", &figs, 1, 5).unwrap();
        assert_eq!(r.figure("net.mix_rr_peer_latency_p50 peer-198.18.0.40").unwrap().spread.median, 53.0);
        assert_eq!(r.figure("net.mix_rr_peer_latency_p50 peer-198.18.0.41").unwrap().spread.median, 253.0);
        assert!(r.figure("net.mix_rr_peer_latency_p50").is_none());
        // A peer's figure one repetition short fails the point.
        figs.pop();
        assert!(Record::from_figures(&p, "run", &figs, 1, 5).unwrap_err().contains("peer-198.18.0.41"));
    }

    #[test]
    fn records_append_and_load_and_a_cut_line_is_left_out() {
        let dir = std::env::temp_dir().join(format!("cohort-study-points-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("points.jsonl");
        let _ = fs::remove_file(&file);
        assert!(load(&file).unwrap().is_empty());
        let p = stream_point();
        let figs: Vec<_> = (0..6).map(|v| fig("net.tcp_stream", "netfront", v as f64)).collect();
        let r = Record::from_figures(&p, "run", &figs, 1, 5).unwrap();
        append(&file, &r).unwrap();
        append(&file, &r).unwrap();
        let mut f = OpenOptions::new().append(true).open(&file).unwrap();
        f.write_all(b"{\"id\":\"q2/cut").unwrap();
        let loaded = load(&file).unwrap();
        assert_eq!(loaded, vec![r.clone(), r]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn scenario_lines_parse() {
        let line = r#"STUDY-BENCH q3/msg=1/rr/channel BENCH {"name":"net.tcp_rr","path":"channel","value":8.5,"unit":"transactions/s","clock":"virtual"}"#;
        let Some(Said::Figure { id, figure }) = said(line) else { panic!() };
        assert_eq!((id.as_str(), figure.value), ("q3/msg=1/rr/channel", 8.5));
        assert_eq!(said("STUDY-END a ok"), Some(Said::End { id: "a".into(), ok: true, why: String::new() }));
        assert_eq!(
            said("STUDY-END a fail the client did not finish"),
            Some(Said::End { id: "a".into(), ok: false, why: "the client did not finish".into() })
        );
        assert_eq!(said("STUDY-END a maybe"), None);
        assert_eq!(said("study: point 1 of 3: a"), None);
        assert_eq!(said("STUDY-BENCH a BENCH {garbled"), None);
    }
}
