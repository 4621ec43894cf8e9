//! `./run.sh study [--quick] [--resume]`: the measurement study (issue 16).
//!
//! The matrix ([`matrix`]) is run in as few lab boots as it can be (one,
//! unless points fail and are tried once more): the points go to dom0 as a
//! plan file, tests/xen/scenarios/cohort-study.sh measures them one after
//! another under the virtual clock, and each completed point is appended
//! at once to `target/study/points.jsonl` ([`points`]); `--resume` skips
//! the points already there. Then `target/study/report.md` with its
//! figures ([`report`], [`chart`]), whose structure is checked
//! ([`structure`]). A full run (not `--quick`) also runs the host ring
//! benchmark ([`ring`]) for the report's limits section.

pub mod anchors;
pub mod chart;
mod cost;
mod handover;
pub mod matrix;
mod mix_rr;
pub mod points;
mod remote_peers;
pub mod report;
pub mod ring;
pub mod structure;
pub mod workloads;

use crate::lab::{self, Inject};
use crate::{artifacts, report::Figure};
use matrix::{Point, FULL, QUICK};
use points::{Record, Said};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Lab boots at most: the first, and one more for points that failed.
const BOOTS: usize = 2;

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub quick: bool,
    pub resume: bool,
    /// Only write the report from the points kept.
    pub report_only: bool,
    /// Measure only these factors' points (all when empty).
    pub only: Vec<String>,
}

/// The points of `all` whose factor is in `only` (all when it is empty);
/// an error names a factor the matrix does not vary.
pub fn selected(all: Vec<Point>, only: &[String]) -> Result<Vec<Point>, String> {
    if only.is_empty() {
        return Ok(all);
    }
    let known = matrix::factors(&all);
    if let Some(bad) = only.iter().find(|f| !known.contains(&f.as_str())) {
        return Err(format!("the matrix has no factor `{bad}`; its factors: {}", known.join(", ")));
    }
    Ok(all.into_iter().filter(|p| only.iter().any(|f| f == p.factor)).collect())
}

fn say(msg: &str) {
    eprintln!("\x1b[1mstudy:\x1b[0m {msg}");
}

/// Points done out of all, and the time left at the pace so far.
struct Progress {
    total: usize,
    done: usize,
    started: Instant,
    done_here: usize,
}

impl Progress {
    fn line(&mut self, id: &str) -> String {
        self.done += 1;
        self.done_here += 1;
        let elapsed = self.started.elapsed().as_secs();
        let left = (self.total - self.done) as u64 * elapsed / self.done_here as u64;
        format!(
            "{} of {} points done ({id}); {} min {} s so far, about {} min {} s left",
            self.done,
            self.total,
            elapsed / 60,
            elapsed % 60,
            left / 60,
            left % 60
        )
    }
}

/// The questions a matrix measures.
pub fn questions(points: &[Point]) -> Vec<u8> {
    let mut q: Vec<u8> = points.iter().map(|p| p.question).collect();
    q.sort_unstable();
    q.dedup();
    q
}

fn stamp() -> String {
    time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"))
        .unwrap_or_default()
}

/// One lab boot measuring `todo`; completed points are appended to `file`
/// as they come. The ids that failed, with why.
/// Whether a point runs a Linux reference guest: a `linux:` server among
/// its servers, or a `linux:` client.
fn needs_linux(p: &Point) -> bool {
    p.client.starts_with("linux:") || p.server.split(';').any(|s| s.starts_with("linux:"))
}

fn boot(dir: &Path, file: &Path, todo: &[Point], quick: bool, progress: &mut Progress) -> Result<Vec<(String, String)>, String> {
    let scale = if quick { &QUICK } else { &FULL };
    let plan = dir.join("plan.tsv");
    fs::write(&plan, matrix::plan(todo)).map_err(|e| format!("{}: {e}", plan.display()))?;
    let scenario_secs = 300 + scale.point_timeout * todo.len() as u64;
    let config = lab::Config {
        scenarios: vec![lab::Scenario {
            file: artifacts::root().join("tests/xen/scenarios/cohort-study.sh"),
            args: format!("/cohort/study-plan.tsv /cohort/cohort {}", scale.point_timeout),
            guest_type: None,
        }],
        files: vec![Inject { src: plan, dest: "study-plan.tsv".into() }],
        icount: true,
        // Question 1's Linux peer and question 3's baseline boot Linux guests (`linux:`).
        linux_guest: todo.iter().any(needs_linux),
        scenario_timeout: Duration::from_secs(scenario_secs),
        timeout: Duration::from_secs(scenario_secs + 900),
        ..lab::Config::default()
    }
    .with_cohort(&artifacts::kernel()?, &artifacts::daemon()?);
    let run_id = stamp();
    let by_id: HashMap<&str, &Point> = todo.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut figures: HashMap<String, Vec<Figure>> = HashMap::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut finished: Vec<String> = Vec::new();
    let mut on_line = |line: &str, phase: bool| match points::said(line) {
        Some(Said::Figure { id, figure }) => figures.entry(id).or_default().push(figure),
        Some(Said::End { id, ok, why }) => {
            finished.push(id.clone());
            let Some(point) = by_id.get(id.as_str()) else {
                say(&format!("the scenario measured `{id}`, which is not in the plan"));
                return;
            };
            let got = figures.remove(&id).unwrap_or_default();
            let record = if ok { Record::from_figures(point, &run_id, &got, 1, scale.reps as usize) } else { Err(why) };
            match record.and_then(|r| points::append(file, &r)) {
                Ok(()) => say(&progress.line(&id)),
                Err(e) => {
                    let seen: Vec<String> = got.iter().map(|f| format!("{} {:.1} over {}", f.name, f.value, f.path)).collect();
                    say(&format!("point {id} failed: {e}; its figures: {}", seen.join(", ")));
                    failed.push((id, e));
                }
            }
        }
        None if lab::shown(line, phase, false) => println!("{line}"),
        None => {}
    };
    let run = lab::run(&config, &mut on_line, &mut |_| {})?;
    say(&format!("lab boot ended: {}", run.end.describe()));
    for fault in run.lab_faults() {
        say(&format!("lab fault: {fault}"));
    }
    for p in todo.iter().filter(|p| !finished.contains(&p.id)) {
        failed.push((p.id.clone(), "not measured: the lab boot ended first".into()));
    }
    Ok(failed)
}

/// The points of `all` that `kept` has no record of, in order.
pub fn not_kept(all: &[Point], kept: &[Record]) -> Vec<Point> {
    all.iter().filter(|p| !kept.iter().any(|r| r.id == p.id)).cloned().collect()
}

/// Writes report.md from the kept points and checks its structure; the
/// problems found.
pub fn write_report(dir: &Path, quick: bool) -> Result<Vec<String>, String> {
    let all = matrix::matrix(quick);
    let records = points::load(&dir.join("points.jsonl"))?;
    let ring = fs::read_to_string(dir.join(ring::FILE)).map(|t| report::ring_figures(&t)).unwrap_or_default();
    let reps = if quick { QUICK.reps } else { FULL.reps };
    let info = report::RunInfo { quick, planned: all.len(), reps };
    let text = report::write(dir, &info, &records, &ring)?;
    let path = dir.join("report.md");
    fs::write(&path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
    say(&format!("report: {}", path.display()));
    let mut problems = structure::check(&text, dir, &questions(&all), reps as usize);
    if !quick && ring.is_empty() {
        problems.push(format!("a full run's report has no ring figures (no {} with ring.* figures)", ring::FILE));
    }
    Ok(problems)
}

/// The matrix a points file belongs to, kept beside it.
fn matrix_marker(dir: &Path) -> PathBuf {
    dir.join("matrix")
}

/// Runs the study; `Ok(true)` when every point was measured and the
/// report's structure holds.
pub fn run(options: Options) -> Result<bool, String> {
    let dir = artifacts::target_dir("study");
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = dir.join("points.jsonl");
    let kind = if options.quick { "quick" } else { "full" };
    let mut ring_failed = false;
    if !options.report_only {
        // An unknown factor is refused before anything kept is touched.
        let all = selected(matrix::matrix(options.quick), &options.only)?;
        if options.resume {
            let kept = fs::read_to_string(matrix_marker(&dir)).unwrap_or_default();
            if !kept.trim().is_empty() && kept.trim() != kind {
                return Err(format!("the points kept are of the {} matrix: resume it with the same options", kept.trim()));
            }
        } else if file.exists() {
            let prev = dir.join("points.prev.jsonl");
            fs::rename(&file, &prev).map_err(|e| format!("{}: {e}", file.display()))?;
            say(&format!("the last run's points moved to {}", prev.display()));
        }
        fs::write(matrix_marker(&dir), kind).map_err(|e| e.to_string())?;
        let done: Vec<String> = points::load(&file)?.into_iter().map(|r| r.id).collect();
        let mut progress = Progress { total: all.len(), done: 0, started: Instant::now(), done_here: 0 };
        progress.done = all.iter().filter(|p| done.contains(&p.id)).count();
        let only = if options.only.is_empty() { String::new() } else { format!(" (only {})", options.only.join(", ")) };
        say(&format!(
            "{kind} matrix{only}: {} points, {} already kept; each point {} repetitions after a warm-up, virtual clock; points in {}",
            all.len(),
            progress.done,
            if options.quick { QUICK.reps } else { FULL.reps },
            file.display()
        ));
        for attempt in 1..=BOOTS {
            let todo = not_kept(&all, &points::load(&file)?);
            if todo.is_empty() {
                break;
            }
            say(&format!("lab boot {attempt} of at most {BOOTS}: {} points", todo.len()));
            // A boot that could not run is said; the report is still written.
            let failed = match boot(&dir, &file, &todo, options.quick, &mut progress) {
                Ok(failed) => failed,
                Err(e) => {
                    say(&format!("the lab could not run: {e}"));
                    break;
                }
            };
            for (id, why) in &failed {
                say(&format!("not measured: {id}: {why}"));
            }
            if failed.len() == todo.len() {
                break;
            }
        }
        let kept = fs::read_to_string(dir.join(ring::FILE)).ok();
        if !options.only.is_empty() {
            say("ring benchmark: not run with --only");
        } else if ring::wanted(options.quick, options.resume, kept.as_deref()) {
            say("host ring benchmark (tests/ringbench, no QEMU): ./run.sh ringbench --out target/study/ringbench.jsonl");
            let started = Instant::now();
            match ring::run(&dir, &mut |line| say(line)) {
                Ok(n) => say(&format!("ring benchmark done: {n} figures in {} s", started.elapsed().as_secs())),
                Err(e) => {
                    say(&format!("ring benchmark: {e}"));
                    ring_failed = true;
                }
            }
        } else if !options.quick {
            say("ring benchmark: its figures are kept from the run resumed");
        }
    }
    let problems = write_report(&dir, options.quick)?;
    for p in &problems {
        say(&format!("report structure: {p}"));
    }
    // With --only, the points asked for; a partial run succeeds when they
    // were measured (the report says what else it lacks).
    let all = selected(matrix::matrix(options.quick), &options.only)?;
    let kept: Vec<String> = points::load(&file)?.into_iter().map(|r| r.id).collect();
    let missing = all.iter().filter(|p| !kept.contains(&p.id)).count();
    if missing > 0 {
        say(&format!(
            "{missing} of {} points not measured (`./run.sh study{} --resume` measures them)",
            all.len(),
            if options.quick { " --quick" } else { "" }
        ));
    }
    Ok(missing == 0 && (!options.only.is_empty() || (problems.is_empty() && !ring_failed)))
}

#[cfg(test)]
mod tests {
    use super::matrix::{matrix, Path as FramePath, Workload};
    use super::*;

    /// A record of `point` with five repetitions of each of its figures.
    fn record(point: &Point, base: f64) -> Record {
        let names: &[(&str, &str)] = match point.workload {
            Workload::Stream if point.factor == matrix::BASELINE => &[("net.iperf3_tcp", "Mbit/s")],
            Workload::Stream => &[("net.tcp_stream", "Mbit/s")],
            Workload::Rr => {
                &[("net.tcp_rr", "transactions/s"), ("net.tcp_rr_latency_p50", "us"), ("net.tcp_rr_latency_p99", "us")]
            }
            Workload::Mix => &[("net.mix_aggregate", "Mbit/s"), ("net.mix_flow_slowest", "Mbit/s")],
            Workload::Maerts => &[("net.tcp_maerts", "Mbit/s")],
            Workload::Crr => &[("net.tcp_crr", "transactions/s"), ("net.tcp_crr_latency_p50", "us")],
            Workload::UdpRr => &[("net.udp_rr", "transactions/s"), ("net.udp_rr_lost", "datagrams")],
            Workload::UdpStream => &[("net.iperf3_udp", "Mbit/s"), ("net.iperf3_udp_loss", "%")],
            Workload::MixRr => &[
                ("net.mix_rr_aggregate", "transactions/s"),
                ("net.mix_rr_latency_p50", "us"),
                ("net.mix_rr_latency_p99", "us"),
            ],
            Workload::Discoveryd => &[("discoveryd.scan", "us")],
            Workload::Handover => &[
                ("handover.detect", "ms"),
                ("handover.detect_advert", "ms"),
                ("handover.advert_listed", "ms"),
                ("handover.listed_up", "ms"),
                ("handover.to_netfront", "ms"),
                ("handover.channel_back", "ms"),
                ("handover.to_channel", "ms"),
                ("handover.stall_to_netfront", "ms"),
                ("handover.stall_to_channel", "ms"),
                ("handover.retransmitted", "bytes"),
                ("handover.payload_sent", "bytes"),
                ("handover.received_out_of_order", "bytes"),
                ("handover.payload_received", "bytes"),
                ("net.tcp_stream", "Mbit/s"),
            ],
        };
        let figures: Vec<Figure> = names
            .iter()
            .flat_map(|(name, unit)| {
                (0..6).map(move |i| Figure {
                    name: name.to_string(),
                    path: match point.path {
                        FramePath::Dom0 => format!("domains-{}", point.value),
                        path => path.as_str().into(),
                    },
                    value: base + i as f64,
                    unit: unit.to_string(),
                    clock: "virtual".into(),
                })
            })
            .collect();
        Record::from_figures(point, "2026-01-01T00:00:00Z", &figures, 1, 5).unwrap()
    }

    #[test]
    fn a_quick_reports_structure_holds_and_fails_without_a_question_or_its_spread() {
        let dir = std::env::temp_dir().join(format!("cohort-study-report-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let all = matrix(true);
        let records: Vec<Record> = all.iter().enumerate().map(|(i, p)| record(p, 100.0 + i as f64)).collect();
        let info = report::RunInfo { quick: true, planned: all.len(), reps: 5 };
        let text = report::write(&dir, &info, &records, &[]).unwrap();
        assert_eq!(structure::check(&text, &dir, &questions(&all), 5), Vec::<String>::new(), "{text}");
        for q in [
            "## Question 1:",
            "## Question 2:",
            "## Question 3:",
            "### Factor: message size",
            "### Factor: notification mode",
            "### Factor: workload (STREAM, MAERTS, RR, CRR, UDP RR, UDP stream)",
            "![Question 3: the workloads over each path (virtual clock)](q3-workload.svg)",
            "![Question 2: detection and the switch under load](q2-handover.svg)",
            "## Published anchors",
        ] {
            assert!(text.contains(q), "{q}");
        }
        assert!(text.contains("overhead"), "{text}");
        // Without the question 2 points the section has no figure.
        let no_q2: Vec<Record> = records.iter().filter(|r| r.question != 2).cloned().collect();
        let text = report::write(&dir, &info, &no_q2, &[]).unwrap();
        assert!(structure::check(&text, &dir, &questions(&all), 5).iter().any(|p| p.contains("has no figure")));
        // A point with fewer repetitions than the run asks for.
        assert!(!structure::check(&report::write(&dir, &info, &records, &[]).unwrap(), &dir, &[2, 3], 6).is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_workload_factor_compares_maerts_with_stream_and_crr_with_rr_per_pair() {
        let dir = std::env::temp_dir().join(format!("cohort-study-workload-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let all = matrix(true);
        let find = |id: &str| all.iter().find(|p| p.id == id).unwrap();
        // After the warm-up: MAERTS 200..204, STREAM 100..104; CRR 50..54, RR 100..104.
        let records = [
            record(find("q3/workload=maerts/maerts/channel"), 199.0),
            record(find("q3/workload=stream/stream/channel"), 99.0),
            record(find("q3/workload=crr/crr/netfront"), 49.0),
            record(find("q3/workload=rr/rr/netfront"), 99.0),
            record(find("q3/workload=udp-rr/udp-rr/netfront"), 149.0),
            record(find("q3/workload=udp-stream/udp-stream/netfront"), 9.0),
        ];
        let info = report::RunInfo { quick: true, planned: all.len(), reps: 5 };
        let text = report::write(&dir, &info, &records, &[]).unwrap();
        assert!(
            text.contains(
                "- MAERTS (the server sends) against STREAM over channel: 202.0 (200.0–204.0) against 102.0 (100.0–104.0) \
                 Mbit/s; 1.98x per repetition pair (1.96–2.00)."
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "- CRR (a connection each) against RR over netfront: 52.0 (50.0–54.0) against 102.0 (100.0–104.0) \
                 transactions/s; 0.51x per repetition pair (0.50–0.52)."
            ),
            "{text}"
        );
        // Each point's spread is in the figure's table: median, min, max, q1, q3.
        assert!(
            text.contains(
                "- UDP RR against TCP RR over netfront: 152.0 (150.0–154.0) against 102.0 (100.0–104.0) \
                 transactions/s; 1.49x per repetition pair (1.48–1.50)."
            ),
            "{text}"
        );
        // The UDP stream's figures: its rate and its loss (10..14 here).
        assert!(
            text.contains(
                "- UDP stream sent at 1G bit/s over netfront: 12.0 (10.0–14.0) Mbit/s received, 12.00% (10.00–14.00%) of \
                 the datagrams lost."
            ),
            "{text}"
        );
        assert!(
            text.contains("| Streams (received) | channel | maerts | 5 | 202.0 | 200.0 | 204.0 | 201.0 | 203.0 | Mbit/s |"),
            "{text}"
        );
        assert!(
            text.contains("| UDP stream loss | netfront | udp-stream | 5 | 12.0 | 10.0 | 14.0 | 11.0 | 13.0 | % |"),
            "{text}"
        );
        assert!(
            text.contains("| Transaction latency p50 | netfront | crr | 5 | 52.0 | 50.0 | 54.0 | 51.0 | 53.0 | us |"),
            "{text}"
        );
        assert!(!text.contains("- Workloads:"), "no workload is listed as not measured any more");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_full_runs_report_needs_the_ring_figures_and_a_quick_ones_does_not() {
        let dir = std::env::temp_dir().join(format!("cohort-study-ringcheck-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let lacks = |quick| write_report(&dir, quick).unwrap().iter().any(|p| p.contains("has no ring figures"));
        assert!(lacks(false));
        assert!(!lacks(true));
        let figure = r#"{"name":"ring.channel.throughput.64","path":"host","value":20,"unit":"Gbit/s","clock":"wall"}"#;
        fs::write(dir.join(ring::FILE), (0..5).map(|_| format!("{figure}\n")).collect::<String>()).unwrap();
        assert!(!lacks(false));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_keeps_the_named_factors_and_refuses_an_unknown_one() {
        let only = |f: &[&str]| selected(matrix(false), &f.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(only(&[]).unwrap().len(), matrix(false).len());
        let t = only(&["type", "pages"]).unwrap();
        assert_eq!(t.len(), 10);
        assert!(t.iter().all(|p| p.factor == "type" || p.factor == "pages"));
        let e = only(&["tpye"]).unwrap_err();
        assert!(e.contains("`tpye`") && e.contains("type"), "{e}");
        assert!(selected(matrix(true), &["type".to_string()]).is_err());
    }

    #[test]
    fn resuming_measures_only_the_points_not_kept() {
        let all = matrix(true);
        let kept: Vec<Record> = all.iter().take(5).map(|p| record(p, 1.0)).collect();
        let todo = not_kept(&all, &kept);
        assert_eq!(todo.len(), all.len() - 5);
        assert_eq!(todo, all[5..].to_vec());
        assert!(not_kept(&all, &all.iter().map(|p| record(p, 1.0)).collect::<Vec<_>>()).is_empty());
    }

    #[test]
    fn the_linux_baseline_sits_beside_cohorts_netfront_and_channel_and_says_other_boots() {
        let dir = std::env::temp_dir().join(format!("cohort-study-baseline-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let all = matrix(false);
        let find = |id: &str| all.iter().find(|p| p.id == id).unwrap();
        // After the warm-up: Linux 101..105 (median 103), Cohort over
        // netfront 201..205 (203), over the channel 401..405 (403).
        let mut records = vec![
            record(find("q3/baseline=linux-gso/stream/netfront"), 100.0),
            record(find("q3/baseline=linux-nogso/stream/netfront"), 50.0),
            record(find("q3/baseline=linux/rr/netfront"), 100.0),
            record(find("q3/workload=stream/stream/netfront"), 200.0),
            record(find("q3/workload=stream/stream/channel"), 400.0),
            record(find("q3/workload=rr/rr/netfront"), 200.0),
        ];
        for r in &mut records[3..] {
            r.run = "2026-01-02T00:00:00Z".into();
        }
        let info = report::RunInfo { quick: false, planned: all.len(), reps: 5 };
        let text = report::write(&dir, &info, &records, &[]).unwrap();
        assert!(
            text.contains(
                "### Factor: Linux baseline (Linux to Linux over netfront, and iperf3 across Linux and Cohort; PVH guests)"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "- linux-gso stream over netfront with Linux at both ends: 103.0 (101.0–105.0) Mbit/s; Cohort's over netfront 203.0 \
                 (201.0–205.0, `q3/workload=stream/stream/netfront`, 1.97x Linux's); Cohort's over channel 403.0 \
                 (401.0–405.0, `q3/workload=stream/stream/channel`, 3.91x Linux's) (Linux measured in the lab boot \
                 of 2026-01-01T00:00:00Z, Cohort in that of 2026-01-02T00:00:00Z: not one run).\n"
            ),
            "{text}"
        );
        assert!(text.contains("- linux-nogso stream over netfront with Linux at both ends: 53.0 (51.0–55.0) Mbit/s;"), "{text}");
        assert!(text.contains(
            "- linux rr over netfront with Linux at both ends: 103.0 (101.0–105.0) transactions/s; Cohort's over netfront 203.0"
        ));
        assert!(text.contains("](q3-baseline.svg)") && text.contains("TCP stream (iperf3)"), "{text}");
        // One boot: no note.
        for r in &mut records[3..] {
            r.run = "2026-01-01T00:00:00Z".into();
        }
        let text = report::write(&dir, &info, &records, &[]).unwrap();
        assert!(!text.contains("not one run"), "{text}");
        // iperf3 across the systems: one Linux end, no Linux-only figure.
        records.push(record(find("q3/baseline=linux-to-cohort/stream/netfront"), 100.0));
        let text = report::write(&dir, &info, &records, &[]).unwrap();
        assert!(
            text.contains(
                "- linux-to-cohort stream over netfront with Linux at the client: 103.0 (101.0–105.0) Mbit/s; Cohort's over \
                 netfront 203.0 (201.0–205.0, `q3/workload=stream/stream/netfront`, 1.97x this point's);"
            ),
            "{text}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_factor_sentence_says_when_the_extremes_ranges_overlap() {
        let dir = std::env::temp_dir().join(format!("cohort-study-memory-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let all = matrix(false);
        let find = |id: &str| all.iter().find(|p| p.id == id).unwrap();
        // After the warm-up: 16 MiB 100..104, 128 MiB 103..107 (overlap);
        // over netfront 100..104 against 200..204 (apart).
        let records = [
            record(find("q3/memory=16/stream/channel"), 99.0),
            record(find("q3/memory=128/stream/channel"), 102.0),
            record(find("q3/memory=16/stream/netfront"), 99.0),
            record(find("q3/memory=128/stream/netfront"), 199.0),
        ];
        let info = report::RunInfo { quick: false, planned: all.len(), reps: 5 };
        let text = report::write(&dir, &info, &records, &[]).unwrap();
        assert!(text.contains("### Factor: guest memory (MiB, server and client both)"), "{text}");
        assert!(
            text.contains(
                "- stream over channel: highest at 128 (105.0 Mbit/s), lowest at 16 (102.0 Mbit/s), 1.03x apart \
                 (medians); their min–max ranges overlap."
            ),
            "{text}"
        );
        assert!(text.contains("lowest at 16 (102.0 Mbit/s), 1.98x apart (medians).\n"), "{text}");
        assert!(text.contains("![Question 3: guest memory (MiB, server and client both) (virtual clock)](q3-memory.svg)"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_mixtures_rr_the_guests_profile_and_discoveryd_reach_the_report() {
        let dir = std::env::temp_dir().join(format!("cohort-study-cost-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let all = matrix(true);
        let find = |id: &str| all.iter().find(|p| p.id == id).unwrap_or_else(|| panic!("{id}"));
        let with = |mut r: Record, name: &str, unit: &str, base: f64| {
            let values: Vec<f64> = (0..5).map(|i| base + i as f64).collect();
            let spread = points::Spread::of(&values).unwrap();
            r.figures.push(points::Measured { name: name.into(), unit: unit.into(), values, spread });
            r
        };
        let rr_on = with(record(find("q2/residency=on-mtu65521/rr/netfront"), 99.0), "net.busy_per_frame", "ns/frame", 1100.0);
        let rr_off = with(record(find("q2/residency=off/rr/netfront"), 99.0), "net.busy_per_frame", "ns/frame", 1000.0);
        let rr_off = with(rr_off, "net.time_service", "%", 20.0);
        let records = [
            // 50% local: on 50..54, off 100..104 (every figure).
            record(find("q1/local=50%/on/mix-rr"), 49.0),
            record(find("q1/local=50%/off/mix-rr"), 99.0),
            rr_on,
            rr_off,
            record(find("q2/discoveryd=1/discoveryd"), 99.0),
            record(find("q2/discoveryd=32/discoveryd"), 409.0),
        ];
        let info = report::RunInfo { quick: true, planned: all.len(), reps: 5 };
        let text = report::write(&dir, &info, &records, &[]).unwrap();
        for want in [
            "50% local: p50 52.0 µs on against 102.0 off, 1.96x lower (1.93–2.00), transactions 0.51x (0.50–0.52)",
            "![Question 1: request/response latency against the local fraction](q1-rr.svg)",
            "| RR latency p99, all flows | residency off | 50% | 5 | 102.0 | 100.0 | 104.0 |",
            "| on-mtu65521 | RR: guest busy time per frame | 1102.0 (1100.0–1104.0) | 1002.0 (1000.0–1004.0) | ns/frame | +9.98%",
            "| off | rr | 22.0 (20.0–24.0) | – | – | – | 1002.0 (1000.0–1004.0) | – |",
            "| Guest busy time per frame | rr | on-mtu65521 | 5 | 1102.0 |",
            "Repetitions whose p99 is more than twice their p50: off 0 of 5, on-mtu65521 0 of 5.",
            "One scan took 102 µs (100–104) for 1 domain(s) and 412 µs (410–414) for 32: about 10 µs more per domain",
            "| discoveryd: one scan | virtual time | 32 | 5 | 412.0 | 410.0 | 414.0 |",
        ] {
            assert!(text.contains(want), "{want}\n{text}");
        }
        // The new figures' blocks hold; only question 3 has no point here.
        let problems = structure::check(&text, &dir, &[], 5);
        assert_eq!(problems, ["section `Question 3: what shapes the channel's throughput and latency` has no figure"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dom0_and_linux_as_remote_peers_sit_beside_the_remote_guest() {
        let dir = std::env::temp_dir().join(format!("cohort-study-peers-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let all = matrix(false);
        let find = |id: &str| all.iter().find(|p| p.id == id).unwrap_or_else(|| panic!("{id}"));
        let dom0_p50 = |mut r: Record, base: f64| {
            let values: Vec<f64> = (0..5).map(|i| base + i as f64).collect();
            let spread = points::Spread::of(&values).unwrap();
            let name = "net.mix_rr_peer_latency_p50 peer-198.18.0.1";
            r.figures.push(points::Measured { name: name.into(), unit: "us".into(), values, spread });
            r
        };
        let records = [
            record(find("q1/local=50%/on/mix"), 199.0),
            record(find("q1/local=50%/off/mix"), 99.0),
            record(find("q1/remote=dom0/on/mix"), 299.0),
            record(find("q1/remote=dom0/off/mix"), 99.0),
            dom0_p50(record(find("q1/remote=dom0/on/mix-rr"), 49.0), 59.0),
            dom0_p50(record(find("q1/remote=dom0/off/mix-rr"), 99.0), 109.0),
        ];
        let info = report::RunInfo { quick: false, planned: all.len(), reps: 5 };
        let text = report::write(&dir, &info, &records, &[]).unwrap();
        for want in [
            "### Other remote peers: dom0 and the Linux reference",
            "**Answer.** At half local, with the remote half to a Cohort guest: streams 202 Mbit/s on against 102 off, \
             1.98x (1.96–2.00); with it to dom0: streams 302 Mbit/s on against 102 off, 2.96x (2.92–3.00); \
             RR p50 52.0 µs on against 102.0 off, 1.96x lower (1.93–2.00).",
            "![Question 1: the remote half to a Cohort guest, dom0 or Linux](q1-remote-peers.svg)",
            "| RR latency p50 to the remote peer | residency on | dom0 | 5 | 61.0 | 59.0 | 63.0 |",
        ] {
            assert!(text.contains(want), "{want}\n{text}");
        }
        // No Linux point measured: no Linux category.
        assert!(!text.contains("| Linux guest |"), "{text}");
        let problems = structure::check(&text, &dir, &[], 5);
        assert!(problems.iter().all(|p| !p.contains("q1-remote-peers")), "{problems:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_point_with_a_linux_server_or_client_boots_the_linux_guest() {
        let full = matrix(false);
        let linux: Vec<&str> = full.iter().filter(|p| needs_linux(p)).map(|p| p.id.as_str()).collect();
        assert_eq!(
            linux,
            [
                "q1/remote=linux/on/mix",
                "q1/remote=linux/off/mix",
                "q1/remote=linux/on/mix-rr",
                "q1/remote=linux/off/mix-rr",
                "q3/baseline=linux-gso/stream/netfront",
                "q3/baseline=linux-nogso/stream/netfront",
                "q3/baseline=linux/rr/netfront",
                "q3/baseline=cohort-to-linux/stream/netfront",
                "q3/baseline=linux-to-cohort/stream/netfront"
            ]
        );
        assert!(matrix(true).iter().all(|p| !needs_linux(p)));
    }

    #[test]
    fn the_handover_reaches_question_2_with_its_spread() {
        let dir = std::env::temp_dir().join(format!("cohort-study-handover-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let all = matrix(true);
        let point = all.iter().find(|p| p.id == "q2/handover=channel-netfront/handover").unwrap();
        let records = [record(point, 99.0)];
        let info = report::RunInfo { quick: true, planned: all.len(), reps: 5 };
        let text = report::write(&dir, &info, &records, &[]).unwrap();
        for want in [
            "**Answer.** Per repetition, median (min–max): the channel was up 102 ms (100–104) after the client's entry; \
             from its advert: advert → listed 102.0 ms (100.0–104.0), listed → channel up 102.0 ms (100.0–104.0), \
             advert → channel up 102.0 ms (100.0–104.0); stream: hold → on netfront 102.00 ms (100.00–104.00), \
             stall after the hold 102.00 ms (100.00–104.00), release → channel up 102.00 ms (100.00–104.00), \
             release → on channel 102.00 ms (100.00–104.00), stall after release 102.00 ms (100.00–104.00), TCP payload sent again 102 bytes (100–104), \
             100.000% (100.000–100.000) of it, received out of order 102 bytes (100–104), 100.000% (100.000–100.000) of it.",
            "| The switch back to the channel | stream | release → channel up | 5 | 102.0 | 100.0 | 104.0 |",
            "| The switch back to the channel | stream | stall after release | 5 | 102.0 | 100.0 | 104.0 |",
            "| TCP payload again | stream | received out of order | 5 | 102.0 | 100.0 | 104.0 |",
            "| Detection | channel ↔ netfront | listed → channel up | 5 | 102.0 | 100.0 | 104.0 |",
        ] {
            assert!(text.contains(want), "{want}\n{text}");
        }
        let problems = structure::check(&text, &dir, &[], 5);
        assert!(problems.iter().all(|p| !p.contains("q2-handover")), "{problems:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_full_matrix_switches_a_stream_a_maerts_and_request_response() {
        let dir = std::env::temp_dir().join(format!("cohort-study-handover-loads-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let all = matrix(false);
        let records: Vec<Record> =
            all.iter().filter(|p| p.factor == "handover").zip([10.0, 20.0, 30.0]).map(|(p, base)| record(p, base)).collect();
        assert_eq!(records.len(), 3);
        let info = report::RunInfo { quick: false, planned: all.len(), reps: 5 };
        let text = report::write(&dir, &info, &records, &[]).unwrap();
        for want in [
            // Detection from the first run's boots.
            "the channel was up 13 ms (11–15) after the client's entry",
            "; MAERTS: hold → on netfront 23.00 ms (21.00–25.00),",
            "; RR: hold → on netfront 33.00 ms (31.00–35.00),",
            "| The switch to netfront under load | stream | hold → on netfront | 5 | 13.0 | 11.0 | 15.0 |",
            "| The switch to netfront under load | MAERTS | stall after the hold | 5 | 23.0 | 21.0 | 25.0 |",
            "| TCP payload again | RR | sent again | 5 | 33.0 | 31.0 | 35.0 |",
        ] {
            assert!(text.contains(want), "{want}\n{text}");
        }
        assert!(!text.contains("| Detection | channel ↔ netfront | entry → channel up | 5 | 23.0"), "one detection: {text}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn question_2_overhead_is_stated_per_repetition_pair() {
        let dir = std::env::temp_dir().join(format!("cohort-study-q2-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let all = matrix(true);
        let on = all.iter().find(|p| p.id == "q2/residency=on/stream/netfront").unwrap();
        let off = all.iter().find(|p| p.id == "q2/residency=off/stream/netfront").unwrap();
        assert_eq!((on.path, off.path), (FramePath::Netfront, FramePath::Netfront));
        // On: 99..103 after the warm-up; off: 100..104: overhead 1% down to 0.96%.
        let records = [record(on, 98.0), record(off, 99.0)];
        let info = report::RunInfo { quick: true, planned: all.len(), reps: 5 };
        let text = report::write(&dir, &info, &records, &[]).unwrap();
        assert!(text.contains("on, TCP stream: +0.98% (min +0.96%, max +1.00%; of the medians +0.98%)"), "{text}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
