//! `target/study/report.md`: one section per question, each figure (SVG and
//! PNG beside the report) followed by the spread it draws, as a table, and
//! the sentences that answer the question from the measured medians.
//!
//! Every figure block has the same shape, which [`super::structure`]
//! checks:
//!
//! ```text
//! ![TITLE](NAME.svg)
//!
//! PNG: [NAME.png](NAME.png). Spread: ...
//!
//! | series | value | n | median | min | max | q1 | q3 | unit |
//! ```

use super::chart::{self, Panel, Series};
use super::matrix::{Path as FramePath, Workload};
use super::points::{Record, Spread};
use crate::report::Figure;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

/// What the run was, for the report's head.
pub struct RunInfo {
    pub quick: bool,
    pub planned: usize,
    pub reps: u32,
}

/// A figure of the report: its files' name (SVG and PNG), its title and
/// its panels (whose spreads its table lists).
pub(super) struct ReportFigure {
    pub(super) name: String,
    pub(super) title: String,
    pub(super) panels: Vec<Panel>,
}

const CAVEAT: &str = "**The lab's caveat.** Xen 4.17 runs nested in QEMU's TCG emulator, and every figure here is \
taken under QEMU's virtual clock (`-icount shift=0`: one emulated instruction is one nanosecond). Throughput and \
latency therefore count instructions on the paths measured, not time on real hardware: ratios between paths and \
configurations carry over better than absolute values. Each point is one client guest that repeats its measurement \
(after one warm-up repetition, dropped) against one server guest; the spread is over those repetitions.";

/// The spread table of a figure's panels.
fn spread_table(out: &mut String, panels: &[Panel]) {
    out.push_str("| panel | series | value | n | median | min | max | q1 | q3 | unit |\n");
    out.push_str("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
    for p in panels {
        for s in &p.series {
            for (c, spread) in p.categories.iter().zip(&s.spreads) {
                let Some(v) = spread else { continue };
                let _ = writeln!(
                    out,
                    "| {} | {} | {c} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
                    p.title, s.label, v.n, v.median, v.min, v.max, v.q1, v.q3, p.unit
                );
            }
        }
    }
    out.push('\n');
}

/// Writes the figure's files into `dir` and its block into `out`.
pub(super) fn figure_block(out: &mut String, dir: &Path, fig: &ReportFigure) -> Result<(), String> {
    chart::write(dir, &fig.name, &fig.panels)?;
    let _ = writeln!(out, "![{}]({}.svg)\n", fig.title, fig.name);
    let _ = writeln!(
        out,
        "PNG: [{0}.png]({0}.png). Spread: each dot is the median, the box the interquartile range (q1–q3) and the whisker min–max of the repetitions.\n",
        fig.name
    );
    spread_table(out, &fig.panels);
    Ok(())
}

/// Writes the figure of `panels`, keeping only the series and panels that
/// have a measured spread; or says that none was measured.
pub(super) fn measured_figure(out: &mut String, dir: &Path, name: &str, title: &str, panels: Vec<Panel>) -> Result<(), String> {
    let panels: Vec<Panel> = panels
        .into_iter()
        .map(|mut p| {
            p.series.retain(|s| s.spreads.iter().any(Option::is_some));
            p
        })
        .filter(|p| !p.series.is_empty())
        .collect();
    if panels.is_empty() {
        out.push_str("No figure of it was measured.\n\n");
        return Ok(());
    }
    figure_block(out, dir, &ReportFigure { name: name.into(), title: title.into(), panels })
}

pub(super) fn spread_of(records: &[&Record], pick: impl Fn(&Record) -> bool, figure: &str) -> Option<Spread> {
    records.iter().find(|r| pick(r)).and_then(|r| r.figure(figure)).map(|m| m.spread)
}

/// Overheads in percent of the layer off, one per repetition pair (the
/// i-th on against the i-th off); `higher_is_better` for rates.
pub fn overheads(on: &[f64], off: &[f64], higher_is_better: bool) -> Vec<f64> {
    on.iter()
        .zip(off)
        .filter(|(_, off)| **off != 0.0)
        .map(|(on, off)| if higher_is_better { (off - on) / off * 100.0 } else { (on - off) / off * 100.0 })
        .collect()
}

/// The gain of residency per repetition pair: on / off.
pub fn gains(on: &[f64], off: &[f64]) -> Vec<f64> {
    on.iter().zip(off).filter(|(_, off)| **off > 0.0).map(|(on, off)| on / off).collect()
}

fn question1(out: &mut String, dir: &Path, records: &[&Record]) -> Result<(), String> {
    out.push_str(
        "## Question 1: what the channel gains under mixtures of local and remote traffic

",
    );
    let _ = writeln!(
        out,
        "One client guest runs {} concurrent TCP streams (`app=mix`, counted by the sinks), a fraction of them to a \
         co-resident server (group `study`) and the rest to a remote one (group `far`: listed by dom0, co-resident for \
         no one). With residency on the client is in group `study`, so its local flows take the channel; with it off \
         the client is in no group and every flow takes netfront. Gain = aggregate throughput on / off, per repetition \
         pair; median with min–max. The aggregate is all flows' bytes over the time until the last flow ends: with \
         flows of equal size it is bound by the slowest. Virtual time per byte (8000 / aggregate Mbit/s) counts the instructions the \
         whole machine (Xen, dom0 and the guests) ran per byte moved, as long as no CPU idled; idle time counts \
         too, so it is an upper bound. The remote flows go to netfront in GSO packets either way: up to 64 KiB with \
         residency off, no larger than a channel frame (32 KiB by default) with it on; at 0% local the client on \
         also keeps a channel to the co-resident server, unused (question 2 measures the layer on one remote flow, \
         with no channel up).\n",
        super::matrix::FLOWS
    );
    let all_q1: Vec<&Record> = records.iter().copied().filter(|r| r.question == 1).collect();
    let local: Vec<&Record> = all_q1.iter().copied().filter(|r| r.factor == "local").collect();
    let q1: Vec<&Record> = local.iter().copied().filter(|r| r.workload == Workload::Mix).collect();
    let cats = values_of(&q1);
    let side = |series: &str, name: &str| -> Vec<Option<Spread>> {
        cats.iter().map(|c| spread_of(&q1, |r| &r.value == c && r.series == series, name)).collect()
    };
    let mut gain = Vec::new();
    let mut sentences = Vec::new();
    for c in &cats {
        let on = q1.iter().find(|r| &r.value == c && r.series == "residency on").and_then(|r| r.figure("net.mix_aggregate"));
        let off = q1.iter().find(|r| &r.value == c && r.series == "residency off").and_then(|r| r.figure("net.mix_aggregate"));
        let g = on.zip(off).and_then(|(on, off)| Spread::of(&gains(&on.values, &off.values)));
        if let (Some(g), Some((on, off))) = (g, on.zip(off)) {
            let of_medians = on.spread.median / off.spread.median;
            sentences.push(format!("{c} local: {:.2}x ({:.2}–{:.2}; of the medians {of_medians:.2}x)", g.median, g.min, g.max));
        }
        gain.push(g);
    }
    if !sentences.is_empty() {
        let _ = writeln!(
            out,
            "**Answer.** Aggregate throughput with residency on over off, by local fraction: {}.\n",
            sentences.join("; ")
        );
    }
    let runs: BTreeSet<&str> = q1.iter().map(|r| r.run.as_str()).collect();
    if runs.len() > 1 {
        let _ = writeln!(out, "**Note:** these points come from {} lab boots (a resumed run); compare with care.\n", runs.len());
    }
    let series = |name: &str| {
        ["residency on", "residency off"]
            .iter()
            .map(|s| Series { label: s.to_string(), spreads: side(s, name) })
            .collect::<Vec<_>>()
    };
    // Virtual nanoseconds per byte moved, per repetition: 8000 / Mbit/s.
    let per_byte: Vec<Series> = ["residency on", "residency off"]
        .iter()
        .map(|side| Series {
            label: side.to_string(),
            spreads: cats
                .iter()
                .map(|c| {
                    let m = q1.iter().find(|r| &r.value == c && r.series == *side)?.figure("net.mix_aggregate")?;
                    Spread::of(&m.values.iter().filter(|v| **v > 0.0).map(|v| 8000.0 / v).collect::<Vec<_>>())
                })
                .collect(),
        })
        .collect();
    let panels: Vec<Panel> = [
        Panel {
            title: "Aggregate throughput".into(),
            unit: "Mbit/s".into(),
            categories: cats.clone(),
            series: series("net.mix_aggregate"),
        },
        Panel {
            title: "Slowest flow".into(),
            unit: "Mbit/s".into(),
            categories: cats.clone(),
            series: series("net.mix_flow_slowest"),
        },
        Panel {
            title: "Gain, on / off".into(),
            unit: "x".into(),
            categories: cats.clone(),
            series: vec![Series { label: "gain".into(), spreads: gain }],
        },
        Panel { title: "Virtual time per byte".into(), unit: "ns/byte".into(), categories: cats.clone(), series: per_byte },
        Panel {
            title: "Channel's share of the frames".into(),
            unit: "%".into(),
            categories: cats.clone(),
            series: vec![Series { label: "residency on".into(), spreads: side("residency on", "net.mix_channel_share") }],
        },
    ]
    .into_iter()
    .filter(|p| p.series.iter().any(|s| s.spreads.iter().any(Option::is_some)))
    .collect();
    if panels.is_empty() {
        out.push_str("No stream point of this question completed.\n\n");
    } else {
        let title = "Question 1: throughput and gain against the local fraction".to_string();
        figure_block(out, dir, &ReportFigure { name: "q1-mixtures".into(), title, panels })?;
    }
    super::mix_rr::section(out, dir, &local)?;
    super::remote_peers::section(out, dir, &all_q1)
}

const Q2_FIGURES: [(&str, &str, Workload, bool); 6] = [
    ("net.tcp_stream", "TCP stream", Workload::Stream, true),
    ("net.tcp_rr", "TCP request/response rate", Workload::Rr, true),
    ("net.tcp_rr_latency_p50", "RR latency p50", Workload::Rr, false),
    ("net.tcp_rr_latency_p99", "RR latency p99", Workload::Rr, false),
    ("net.busy_per_frame", "stream: guest busy time per frame", Workload::Stream, false),
    ("net.busy_per_frame", "RR: guest busy time per frame", Workload::Rr, false),
];

/// Question 2's sides: the layer off; on with 64 KiB channel frames, so
/// TCP to netfront goes in GSO packets as large as without a group (the
/// layer alone); on as configured by default (32 KiB packets); on with
/// Ethernet-sized channel frames (no GSO at all).
const Q2_SIDES: [&str; 4] = ["off", "on-mtu65521", "on", "on-mtu1500"];

fn question2(out: &mut String, dir: &Path, records: &[&Record]) -> Result<(), String> {
    out.push_str("## Question 2: what residency awareness costs remote traffic\n\n");
    out.push_str(
        "The same remote peer (group `far`: dom0 lists it, but it is no one's co-resident peer), reached over netfront \
         by a client with the residency layer off (no group) and on (group `near`: advertised, listed by dom0, \
         watching its list). TCP to a netfront peer goes in GSO packets: without a group as large as netfront \
         takes (64 KiB); in a group no larger than a channel frame (32 KiB by default: the switch builds each packet \
         in place in a ring), and in none when that frame is no larger than Ethernet's. So `on-mtu65521` \
         (`chan.mtu=65521`: 64 KiB packets, as `off`) differs from `off` by the layer alone: it is the one the 1% \
         goal is about; `on` is the layer as configured by default, and `on-mtu1500` (`chan.mtu=1500`) a group \
         whose remote TCP goes without GSO. Overhead = how much worse the layer-on figure is than \
         the layer-off one, in percent, per repetition pair (the i-th on against the i-th off); median with min–max \
         (negative: better with the layer on). Per-frame cost is the client's busy time (all but idle) per frame \
         its device moved, from the guest's own profile of each repetition; the table after the answer shows \
         where that time went.\n\n",
    );
    let q2: Vec<&Record> = records.iter().copied().filter(|r| r.question == 2 && r.factor == "residency").collect();
    let mut rows = String::new();
    let mut sentences = Vec::new();
    for side in &Q2_SIDES[1..] {
        for (name, label, workload, higher) in Q2_FIGURES {
            let on = q2.iter().find(|r| r.value == *side && r.workload == workload).and_then(|r| r.figure(name));
            let off = q2.iter().find(|r| r.value == "off" && r.workload == workload).and_then(|r| r.figure(name));
            let (Some(on), Some(off)) = (on, off) else { continue };
            let Some(o) = Spread::of(&overheads(&on.values, &off.values, higher)) else { continue };
            let of_medians = overheads(&[on.spread.median], &[off.spread.median], higher).first().copied().unwrap_or(f64::NAN);
            let _ = writeln!(
                rows,
                "| {side} | {label} | {:.1} ({:.1}–{:.1}) | {:.1} ({:.1}–{:.1}) | {} | {:+.2}% ({:+.2}% to {:+.2}%) | {of_medians:+.2}% |",
                on.spread.median,
                on.spread.min,
                on.spread.max,
                off.spread.median,
                off.spread.min,
                off.spread.max,
                on.unit,
                o.median,
                o.min,
                o.max
            );
            sentences.push(format!(
                "{side}, {label}: {:+.2}% (min {:+.2}%, max {:+.2}%; of the medians {of_medians:+.2}%)",
                o.median, o.min, o.max
            ));
        }
    }
    let runs: BTreeSet<&str> = q2.iter().map(|r| r.run.as_str()).collect();
    if runs.len() > 1 {
        let _ = writeln!(out, "**Note:** these points come from {} lab boots (a resumed run); compare with care.\n", runs.len());
    }
    if !rows.is_empty() {
        let _ = writeln!(out, "**Answer.** Overhead of the residency layer on the remote path: {}.\n", sentences.join("; "));
        out.push_str(
            "| layer on as | figure | layer on: median (min–max) | layer off: median (min–max) | unit | overhead per pair: median (min to max) | overhead of the medians |\n",
        );
        out.push_str("| --- | --- | --- | --- | --- | --- | --- |\n");
        out.push_str(&rows);
        out.push('\n');
    }
    super::cost::profile_table(out, &q2, &Q2_SIDES);
    super::cost::tail_note(out, &q2, &Q2_SIDES);
    let cats: Vec<String> = Q2_SIDES.iter().map(|s| s.to_string()).collect();
    let one = |name: &str, workload: Workload| -> Vec<Option<Spread>> {
        Q2_SIDES
            .iter()
            .map(|v| spread_of(&q2, |r| r.value == *v && r.workload == workload && r.path == FramePath::Netfront, name))
            .collect()
    };
    let panels = vec![
        Panel {
            title: "TCP stream, remote path".into(),
            unit: "Mbit/s".into(),
            categories: cats.clone(),
            series: vec![Series { label: "netfront".into(), spreads: one("net.tcp_stream", Workload::Stream) }],
        },
        Panel {
            title: "TCP RR rate, remote path".into(),
            unit: "transactions/s".into(),
            categories: cats.clone(),
            series: vec![Series { label: "netfront".into(), spreads: one("net.tcp_rr", Workload::Rr) }],
        },
        Panel {
            title: "TCP RR latency, remote path".into(),
            unit: "us".into(),
            categories: cats.clone(),
            series: vec![
                Series { label: "p50".into(), spreads: one("net.tcp_rr_latency_p50", Workload::Rr) },
                Series { label: "p99".into(), spreads: one("net.tcp_rr_latency_p99", Workload::Rr) },
            ],
        },
        Panel {
            title: "Guest busy time per frame".into(),
            unit: "ns/frame".into(),
            categories: cats,
            series: vec![
                Series { label: "stream".into(), spreads: one("net.busy_per_frame", Workload::Stream) },
                Series { label: "rr".into(), spreads: one("net.busy_per_frame", Workload::Rr) },
            ],
        },
    ];
    let panels: Vec<Panel> = panels
        .into_iter()
        .map(|mut p| {
            p.series.retain(|s| s.spreads.iter().any(Option::is_some));
            p
        })
        .filter(|p| !p.series.is_empty())
        .collect();
    if panels.is_empty() {
        out.push_str("No remote-path point of this question completed.\n\n");
    } else {
        let title = "Question 2: remote path with the residency layer off and on".to_string();
        figure_block(out, dir, &ReportFigure { name: "q2-residency".into(), title, panels })?;
    }
    super::cost::discoveryd_section(out, dir, records)?;
    super::handover::section(out, dir, records)
}

/// A factor's values in the matrix's order.
pub(super) fn values_of(records: &[&Record]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for r in records {
        if !v.contains(&r.value) {
            v.push(r.value.clone());
        }
    }
    v
}

fn factor_title(factor: &str) -> &str {
    match factor {
        "msg" => "message size (bytes)",
        "notify" => "notification mode",
        "mtu" => "channel MTU (bytes)",
        "pages" => "ring pages",
        "placement" => "vCPU placement",
        "peers" => "co-resident peers (one stream to each)",
        "type" => "guest type (server and client both PVH or both PV)",
        "memory" => "guest memory (MiB, server and client both)",
        "workload" => "workload (STREAM, MAERTS, RR, CRR, UDP RR, UDP stream)",
        "baseline" => "Linux baseline (Linux to Linux over netfront, and iperf3 across Linux and Cohort; PVH guests)",
        other => other,
    }
}

/// One figure per factor: per workload its main figure (and for RR the
/// p50 latency) against the factor's values, a series per path.
fn factor_figure(factor: &str, records: &[&Record]) -> ReportFigure {
    let cats = values_of(records);
    let paths: Vec<FramePath> = [FramePath::Channel, FramePath::Netfront, FramePath::Both]
        .into_iter()
        .filter(|p| records.iter().any(|r| r.path == *p))
        .collect();
    let mut panels = Vec::new();
    let mut add = |title: String, unit: &str, workload: Workload, name: &str| {
        let series: Vec<Series> = paths
            .iter()
            .map(|&path| Series {
                label: path.as_str().into(),
                spreads: cats
                    .iter()
                    .map(|c| spread_of(records, |r| &r.value == c && r.path == path && r.workload == workload, name))
                    .collect(),
            })
            .filter(|s| s.spreads.iter().any(Option::is_some))
            .collect();
        if !series.is_empty() {
            panels.push(Panel { title, unit: unit.into(), categories: cats.clone(), series });
        }
    };
    add("TCP stream".into(), "Mbit/s", Workload::Stream, "net.tcp_stream");
    add("TCP stream (iperf3)".into(), "Mbit/s", Workload::Stream, "net.iperf3_tcp");
    add("TCP RR rate".into(), "transactions/s", Workload::Rr, "net.tcp_rr");
    add("TCP RR latency p50".into(), "us", Workload::Rr, "net.tcp_rr_latency_p50");
    add("Concurrent streams, in all".into(), "Mbit/s", Workload::Mix, "net.mix_aggregate");
    add("Concurrent streams, slowest".into(), "Mbit/s", Workload::Mix, "net.mix_flow_slowest");
    ReportFigure { name: format!("q3-{factor}"), title: format!("Question 3: {} (virtual clock)", factor_title(factor)), panels }
}

/// A sentence per Linux baseline point: its median (min–max) beside the
/// `workload` factor's Cohort medians over netfront and the channel, and
/// which lab boots measured them when not the same one.
fn answer_baseline(out: &mut String, baseline: &[&Record], q3: &[&Record]) {
    for b in baseline {
        let (name, unit) = super::matrix::main_figure(&b.factor, b.workload);
        let (own, _) = b.workload.main_figure();
        let Some(linux) = b.figure(name).map(|m| m.spread) else { continue };
        let mut cohort: Vec<String> = Vec::new();
        let mut runs: Vec<&str> = Vec::new();
        for path in [FramePath::Netfront, FramePath::Channel] {
            let Some(r) = q3.iter().find(|r| r.factor == "workload" && r.workload == b.workload && r.path == path) else {
                continue;
            };
            let Some(m) = r.figure(own) else { continue };
            let s = m.spread;
            // A point across the systems is no Linux-only figure.
            let of = if matches!(b.value.as_str(), "cohort-to-linux" | "linux-to-cohort") { "this point's" } else { "Linux's" };
            cohort.push(format!(
                "Cohort's over {} {:.1} ({:.1}–{:.1}, `{}`, {:.2}x {of})",
                path.as_str(),
                s.median,
                s.min,
                s.max,
                r.id,
                if linux.median > 0.0 { s.median / linux.median } else { f64::NAN }
            ));
            if r.run != b.run && !runs.contains(&r.run.as_str()) {
                runs.push(&r.run);
            }
        }
        let against = if cohort.is_empty() {
            "no Cohort point of the workload factor to set beside it".to_string()
        } else {
            cohort.join("; ")
        };
        let note = if runs.is_empty() {
            String::new()
        } else {
            format!(" (Linux measured in the lab boot of {}, Cohort in that of {}: not one run)", b.run, runs.join(" and "))
        };
        let _ = writeln!(
            out,
            "- {} {} over netfront with Linux at {}: {:.1} ({:.1}–{:.1}) {unit}; {against}{note}.",
            b.value,
            b.workload.as_str(),
            match b.value.as_str() {
                "cohort-to-linux" => "the server",
                "linux-to-cohort" => "the client",
                _ => "both ends",
            },
            linux.median,
            linux.min,
            linux.max
        );
    }
    // answer_factor's blank line follows.
}

/// RR payload throughput from the measured rates: request and response
/// bytes per second, per repetition (message size × 2 × rate).
fn rr_payload(records: &[&Record]) -> Option<ReportFigure> {
    let rr: Vec<&Record> = records.iter().copied().filter(|r| r.workload == Workload::Rr).collect();
    let cats = values_of(&rr);
    let series: Vec<Series> = [FramePath::Channel, FramePath::Netfront]
        .into_iter()
        .map(|path| Series {
            label: path.as_str().into(),
            spreads: cats
                .iter()
                .map(|c| {
                    let r = rr.iter().find(|r| &r.value == c && r.path == path)?;
                    let size: f64 = c.parse().ok()?;
                    let rates = &r.figure("net.tcp_rr")?.values;
                    Spread::of(&rates.iter().map(|t| t * size * 2.0 * 8.0 / 1e6).collect::<Vec<_>>())
                })
                .collect(),
        })
        .filter(|s| s.spreads.iter().any(Option::is_some))
        .collect();
    (!series.is_empty()).then(|| ReportFigure {
        name: "q3-msg-throughput".into(),
        title: "Question 3: RR payload throughput against message size, per path".into(),
        panels: vec![Panel { title: "RR payload (both directions)".into(), unit: "Mbit/s".into(), categories: cats, series }],
    })
}

fn question3(out: &mut String, dir: &Path, records: &[&Record]) -> Result<(), String> {
    out.push_str("## Question 3: what shapes the channel's throughput and latency\n\n");
    out.push_str(
        "Each factor is varied alone from the defaults (channel MTU 32768 in 64-page rings, events after a 25 µs spin, \
         1-byte RR messages, vCPUs where Xen puts them, PVH guests of 32 MiB); client and server are co-resident in \
         group `study` (the channel), and for message size, workload, guest type and guest memory also reached over \
         netfront (the client in no group).\n\n",
    );
    let q3: Vec<&Record> = records.iter().copied().filter(|r| r.question == 3).collect();
    let factors: Vec<&str> = {
        let mut f: Vec<&str> = Vec::new();
        for r in &q3 {
            if !f.contains(&r.factor.as_str()) {
                f.push(&r.factor);
            }
        }
        f
    };
    if factors.is_empty() {
        out.push_str("No point of this question completed.\n\n");
    }
    for factor in factors {
        let of: Vec<&Record> = q3.iter().copied().filter(|r| r.factor == factor).collect();
        let _ = writeln!(out, "### Factor: {}\n", factor_title(factor));
        if factor == "workload" {
            out.push_str(
                "The TCP stream each way (STREAM: the client sends to the server's sink; MAERTS: the server's \
                 source sends to the client, counted by both), transactions on one connection (RR) against a new \
                 connection each (CRR: connect, request, response, close, timed to the server's FIN), UDP \
                 request/response with the server's UDP echo (a request unanswered for 100 ms is lost, counted, \
                 and the next sent), and a UDP stream sent at a fixed rate above what netfront carries into an \
                 iperf3 server (`app=iperf3`; the rate the receiver counted and the datagrams it missed), at the \
                 defaults, over each path.\n\n",
            );
            super::workloads::answer(out, &of);
            figure_block(out, dir, &super::workloads::figure_of(&of))?;
            continue;
        }
        if factor == "memory" {
            out.push_str(
                "Both guests' `memory =` line (cohort_cfg's is 32 MiB). The kernel's heap is a quarter of the free \
                 memory and every socket and ring buffer has a fixed size, so more memory gives a larger heap, not \
                 larger windows; the virtual clock counts instructions, not cache or TLB misses. 16 MiB (a heap of \
                 about 3.5 MiB) is the least swept: at 8 MiB the heap (about 1.5 MiB) would be smaller than a \
                 server's socket buffers (about 1.7 MiB: echo, sink and source), which is arithmetic, not measured.\n\n",
            );
        }
        if factor == super::matrix::BASELINE {
            out.push_str(
                "Debian's kernel and netfront in PVH guests (the Cohort guests' type), a Linux client against a Linux \
                 server over the bridge, measured like every point: the TCP stream is iperf3's (`iperf3 -c -n`, as \
                 many bytes as Cohort's `app=stream` sends; netref has no stream of its own), with the client's \
                 TSO/GSO on (`linux-gso`: packets of up to 64 KiB, as Cohort's netfront sends TCP by default) and off \
                 (`linux-nogso`: Ethernet-size frames only); RR is netref's, 1-byte messages, as many transactions as the study's RR. \
                 Across the two systems, iperf3 again: Cohort's `app=iperf3-client` against the Linux server's `iperf3 -s` \
                 (`cohort-to-linux`), and the Linux client's `iperf3 -c` against Cohort's `app=iperf3` server \
                 (`linux-to-cohort`); each has one Linux end.\n\n",
            );
            answer_baseline(out, &of, &q3);
        }
        let fig = factor_figure(factor, &of);
        answer_factor(out, &of);
        figure_block(out, dir, &fig)?;
        if factor == "msg" {
            if let Some(fig) = rr_payload(&of) {
                figure_block(out, dir, &fig)?;
            }
        }
    }
    Ok(())
}

/// A sentence per workload and path: the best and worst value of the
/// factor by median, and whether their min–max ranges overlap (then the
/// difference is within the repetitions' spread).
fn answer_factor(out: &mut String, records: &[&Record]) {
    for workload in [Workload::Stream, Workload::Rr, Workload::Mix] {
        for path in [FramePath::Channel, FramePath::Netfront, FramePath::Both] {
            let (name, unit) = workload.main_figure();
            let mut v: Vec<(&str, Spread)> = records
                .iter()
                .filter(|r| r.workload == workload && r.path == path)
                .filter_map(|r| Some((r.value.as_str(), r.figure(name)?.spread)))
                .collect();
            if v.len() < 2 {
                continue;
            }
            v.sort_by(|a, b| b.1.median.total_cmp(&a.1.median));
            let (best, worst) = (&v[0], &v[v.len() - 1]);
            let overlap = if best.1.min <= worst.1.max { "; their min–max ranges overlap" } else { "" };
            let _ = writeln!(
                out,
                "- {} over {}: highest at {} ({:.1} {unit}), lowest at {} ({:.1} {unit}), {:.2}x apart (medians){overlap}.",
                workload.as_str(),
                path.as_str(),
                best.0,
                best.1.median,
                worst.0,
                worst.1.median,
                if worst.1.median > 0.0 { best.1.median / worst.1.median } else { f64::NAN }
            );
        }
    }
    out.push('\n');
}

/// HOOK for the host ring benchmark (`tests/ringbench`, another crate):
/// its `BENCH` lines (path `host`, clock `wall`), kept by whoever runs it
/// in `target/study/ringbench.jsonl` (a `BENCH {...}` line or a bare
/// object a line); the `ring.*` figures get a table and a figure here.
pub fn ring_figures(text: &str) -> Vec<Figure> {
    text.lines()
        .filter_map(|l| {
            let json = figures::json_in(l).unwrap_or(l.trim());
            serde_json::from_str::<Figure>(json).ok()
        })
        .filter(|f| f.name.starts_with("ring."))
        .collect()
}

/// `ring.[samecore.]<series>.<bytes>` → (`[samecore.]<series>`, bytes);
/// `None` for a name of another shape.
fn ring_name(name: &str) -> Option<(&str, u64)> {
    let rest = name.strip_prefix("ring.")?;
    let (series, bytes) = rest.rsplit_once('.')?;
    Some((series, bytes.parse().ok()?))
}

fn ring_section(out: &mut String, dir: &Path, ring: &[Figure]) -> Result<(), String> {
    out.push_str("## Limits: the host ring benchmark\n\n");
    out.push_str("<!-- HOOK: ring.* figures from target/study/ringbench.jsonl (tests/ringbench's BENCH lines). -->\n\n");
    if ring.is_empty() {
        out.push_str(
            "Not in this run: no `target/study/ringbench.jsonl` with `ring.*` figures (the host ring benchmark, \
             `tests/ringbench`, which a full `./run.sh study` runs; or `./run.sh ringbench --out \
             target/study/ringbench.jsonl`, then `./run.sh study --report`).\n\n",
        );
        return Ok(());
    }
    out.push_str(
        "The channel's ring between two pinned host threads, beside two memcpys through a shared buffer and the \
         `rtrb` SPSC ring, in one run (`tests/ringbench`, wall clock, on the host: not the lab). Ratios are per \
         repetition; the goal is the channel at 0.7 of memcpy or more.\n\n",
    );
    let summaries = crate::report::summarize(ring);
    let mut answers = Vec::new();
    for s in summaries.iter().filter(|s| s.name.starts_with("ring.channel_vs_memcpy.")) {
        if let Some((_, bytes)) = ring_name(&s.name) {
            answers.push(format!("{bytes} B: {:.2} ({:.2}–{:.2})", s.stat.median, s.stat.min, s.stat.max));
        }
    }
    if !answers.is_empty() {
        let _ = writeln!(out, "**Answer.** The channel's ring as a fraction of memcpy, by frame size: {}.\n", answers.join("; "));
    }
    // A panel per unit: a series per transport (or ratio), frame sizes across.
    let units: Vec<String> = summaries.iter().map(|s| s.unit.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let mut panels = Vec::new();
    for unit in &units {
        let of: Vec<_> = summaries.iter().filter(|s| &s.unit == unit).filter_map(|s| Some((ring_name(&s.name)?, s))).collect();
        let sizes: Vec<u64> = of.iter().map(|((_, b), _)| *b).collect::<BTreeSet<_>>().into_iter().collect();
        let mut names: Vec<&str> = Vec::new();
        for ((n, _), _) in &of {
            if !names.contains(n) {
                names.push(n);
            }
        }
        let series: Vec<Series> = names
            .iter()
            .map(|n| Series {
                label: n.to_string(),
                spreads: sizes
                    .iter()
                    .map(|b| of.iter().find(|((m, c), _)| m == n && c == b).and_then(|(_, s)| Spread::of(&s.values)))
                    .collect(),
            })
            .collect();
        if !series.is_empty() {
            let categories = sizes.iter().map(|b| format!("{b} B")).collect();
            panels.push(Panel { title: format!("host ring benchmark ({unit})"), unit: unit.clone(), categories, series });
        }
    }
    if panels.is_empty() {
        out.push_str("No `ring.<series>.<bytes>` figure among the ring figures.\n\n");
        return Ok(());
    }
    figure_block(
        out,
        dir,
        &ReportFigure { name: "ring".into(), title: "Host ring benchmark: channel ring, memcpy, rtrb".into(), panels },
    )
}

/// The report of `records` (writing its figures into `dir`).
pub fn write(dir: &Path, info: &RunInfo, records: &[Record], ring: &[Figure]) -> Result<String, String> {
    let mut out = String::new();
    out.push_str("# Cohort: the measurement study\n\n");
    let runs: BTreeSet<&str> = records.iter().map(|r| r.run.as_str()).collect();
    let _ = writeln!(
        out,
        "Matrix: {} ({} of {} points measured), {} repetitions a point, lab boots: {}. Made by `./run.sh study{}` \
         from `target/study/points.jsonl`.\n",
        if info.quick { "quick" } else { "full" },
        records.len(),
        info.planned,
        info.reps,
        runs.into_iter().collect::<Vec<_>>().join(", "),
        if info.quick { " --quick" } else { "" }
    );
    out.push_str(CAVEAT);
    out.push_str("\n\n");
    let all: Vec<&Record> = records.iter().collect();
    question1(&mut out, dir, &all)?;
    question2(&mut out, dir, &all)?;
    question3(&mut out, dir, &all)?;
    ring_section(&mut out, dir, ring)?;
    super::anchors::section(&mut out, &all);
    out.push_str("## Not measured yet\n\n");
    out.push_str(
        "- Question 1 with dom0 and the Linux reference as the remote peer at 50% local only.\n\
         - Detection's step from the advert to the listing as one: discoveryd's scan and write and the client's \
         watch are not timed apart.\n",
    );
    if info.quick {
        out.push_str("- The switch under MAERTS and request/response: the full matrix has them.\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overhead_per_repetition_pair() {
        assert_eq!(overheads(&[99.0, 98.0], &[100.0, 100.0], true), [1.0, 2.0]);
        assert_eq!(overheads(&[12.5], &[10.0], false), [25.0]);
        assert!(overheads(&[1.0], &[0.0], true).is_empty());
    }

    #[test]
    fn ring_figures_get_a_figure_by_frame_size_and_the_fraction_of_memcpy() {
        let dir = std::env::temp_dir().join(format!("cohort-study-ring-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let line = |name: &str, value: f64, unit: &str| {
            format!("{{\"name\":\"{name}\",\"path\":\"host\",\"value\":{value},\"unit\":\"{unit}\",\"clock\":\"wall\"}}\n")
        };
        let mut text = String::new();
        for rep in 0..5 {
            let r = f64::from(rep);
            for bytes in [64, 1500] {
                text += &line(&format!("ring.channel.throughput.{bytes}"), 20.0 + r, "Gbit/s");
                text += &line(&format!("ring.memcpy.throughput.{bytes}"), 25.0 + r, "Gbit/s");
                text += &line(&format!("ring.samecore.channel.throughput.{bytes}"), 10.0 + r, "Gbit/s");
                text += &line(&format!("ring.channel_vs_memcpy.{bytes}"), 0.8 + r / 100.0, "ratio");
            }
        }
        let mut out = String::new();
        ring_section(&mut out, &dir, &ring_figures(&text)).unwrap();
        assert!(out.contains("by frame size: 64 B: 0.82 (0.80–0.84); 1500 B: 0.82 (0.80–0.84)."), "{out}");
        assert!(out.contains("| host ring benchmark (Gbit/s) | samecore.channel.throughput | 1500 B | 5 | 12.0 |"), "{out}");
        assert_eq!(crate::study::structure::check(&format!("## Limits\n{out}"), &dir, &[], 5), Vec::<String>::new());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ring_hook_reads_bench_lines_and_bare_objects() {
        let text = "BENCH {\"name\":\"ring.stream\",\"path\":\"host\",\"value\":3.5,\"unit\":\"GB/s\",\"clock\":\"wall\"}\n\
                    {\"name\":\"ring.memcpy\",\"path\":\"host\",\"value\":5,\"unit\":\"GB/s\",\"clock\":\"wall\"}\n\
                    {\"name\":\"other\",\"path\":\"host\",\"value\":5,\"unit\":\"GB/s\",\"clock\":\"wall\"}\nnoise";
        let f = ring_figures(text);
        assert_eq!(f.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["ring.stream", "ring.memcpy"]);
    }
}
