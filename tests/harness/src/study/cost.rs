//! Question 2, where the cost goes: the client guest's own account of each
//! repetition (the share of its time in device service, the stack's poll,
//! the application and idle, and its busy time per frame moved), how often
//! a repetition's RR tail stands apart from its median, and the discovery
//! daemon's time per scan in dom0 against the number of domains.

use super::chart::{Panel, Series};
use super::matrix::Workload;
use super::points::{Record, Spread};
use super::report::{figure_block, spread_of, values_of, ReportFigure};
use std::fmt::Write as _;
use std::path::Path;

/// The guest's profile figures of a repetition, as the apps print them.
const PROFILE: [(&str, &str); 6] = [
    ("net.time_service", "device service"),
    ("net.time_poll", "stack poll"),
    ("net.time_app", "application"),
    ("net.time_idle", "idle"),
    ("net.busy_per_frame", "busy per frame"),
    ("net.service_calls_per_frame", "service calls per frame"),
];

fn cell(r: &Record, name: &str) -> String {
    match r.figure(name) {
        Some(m) => format!("{:.1} ({:.1}–{:.1})", m.spread.median, m.spread.min, m.spread.max),
        None => "–".into(),
    }
}

/// The profile table of question 2's points (`sides` in order).
pub(super) fn profile_table(out: &mut String, q2: &[&Record], sides: &[&str]) {
    let with: Vec<&Record> = q2.iter().copied().filter(|r| r.figure("net.busy_per_frame").is_some()).collect();
    if with.is_empty() {
        out.push_str("Where the guest's time goes: no point of this run printed its profile figures.\n\n");
        return;
    }
    out.push_str(
        "**Where the client's time goes**, per repetition, median (min–max): its share of the time in device \
         service (netfront and, with the layer on, the residency switch, its xenstore watches and offers), the \
         stack's poll, the application and idle (blocked in Xen until an event), in %; its busy time (all but \
         idle) per frame moved, in ns; and device service calls per frame.\n\n",
    );
    out.push_str("| layer | workload |");
    for (_, label) in PROFILE {
        let _ = write!(out, " {label} |");
    }
    out.push_str("\n| --- | --- |");
    out.push_str(&" ---: |".repeat(PROFILE.len()));
    out.push('\n');
    for workload in [Workload::Stream, Workload::Rr] {
        for side in sides {
            let Some(r) = with.iter().find(|r| r.value == *side && r.workload == workload) else { continue };
            let _ = write!(out, "| {side} | {} |", workload.as_str());
            for (name, _) in PROFILE {
                let _ = write!(out, " {} |", cell(r, name));
            }
            out.push('\n');
        }
    }
    out.push('\n');
}

/// How many repetitions' p99 is over twice their p50, per side: a tail
/// made of a few stalls, not of a slower path.
pub(super) fn tail_note(out: &mut String, q2: &[&Record], sides: &[&str]) {
    let mut parts = Vec::new();
    for side in sides {
        let Some(r) = q2.iter().find(|r| r.value == *side && r.workload == Workload::Rr) else { continue };
        let (Some(p50), Some(p99)) = (r.figure("net.tcp_rr_latency_p50"), r.figure("net.tcp_rr_latency_p99")) else {
            continue;
        };
        let apart = p50.values.iter().zip(&p99.values).filter(|(a, b)| **b > 2.0 * **a).count();
        parts.push(format!("{side} {apart} of {}", p99.values.len()));
    }
    if !parts.is_empty() {
        let _ = writeln!(
            out,
            "**The RR tail.** Repetitions whose p99 is more than twice their p50: {}. A repetition's p99 is set by its \
             slowest 1% of transactions, so a few stalls set it; where one side had such repetitions and the other \
             fewer, the p99 overhead above compares stalls with none rather than one path with another.\n",
            parts.join(", ")
        );
    }
}

/// The discovery daemon's scans in dom0 (`q2/discoveryd=N/...`).
pub(super) fn discoveryd_section(out: &mut String, dir: &Path, records: &[&Record]) -> Result<(), String> {
    let d: Vec<&Record> = records.iter().copied().filter(|r| r.workload == Workload::Discoveryd).collect();
    out.push_str("### The discovery daemon's cost in dom0\n\n");
    out.push_str(
        "One scan of `cohort-discoveryd --once` against N fake domains that dom0 wrote into xenstore (each a \
         Cohort guest's advert in one group, with its vif's backend entries), timed by the daemon around the scan \
         alone (reading the domains, adverts and vifs, writing each member's peer list), with no guest running; \
         virtual time, so it counts the instructions dom0's kernel, xenstored and the daemon ran.\n\n",
    );
    if d.is_empty() {
        out.push_str("No point of it completed.\n\n");
        return Ok(());
    }
    let cats = values_of(&d);
    let spreads: Vec<Option<Spread>> = cats.iter().map(|c| spread_of(&d, |r| &r.value == c, "discoveryd.scan")).collect();
    let at = |n: &str| d.iter().find(|r| r.value == n).and_then(|r| r.figure("discoveryd.scan")).map(|m| m.spread);
    let (first, last) = (cats.first(), cats.last());
    if let (Some(a), Some(b)) = (first, last) {
        if let (Some(sa), Some(sb), Ok(na), Ok(nb)) = (at(a), at(b), a.parse::<f64>(), b.parse::<f64>()) {
            let per = if nb > na { (sb.median - sa.median) / (nb - na) } else { f64::NAN };
            let _ = writeln!(
                out,
                "**Answer.** One scan took {:.0} µs ({:.0}–{:.0}) for {a} domain(s) and {:.0} µs ({:.0}–{:.0}) for {b}: \
                 about {per:.0} µs more per domain (medians).\n",
                sa.median, sa.min, sa.max, sb.median, sb.min, sb.max
            );
        }
    }
    let panels = vec![Panel {
        title: "discoveryd: one scan".into(),
        unit: "us".into(),
        categories: cats,
        series: vec![Series { label: "virtual time".into(), spreads }],
    }];
    let title = "Question 2: the discovery daemon's time per scan against the number of domains".to_string();
    figure_block(out, dir, &ReportFigure { name: "q2-discoveryd".into(), title, panels })
}
