//! Question 2's switching cost in the report: detection (the client's
//! boot to its channel, and its steps from the advert on) and a run moved
//! to netfront and back under load: a stream, a MAERTS or
//! request/response (`app=handover`, one client boot a repetition).

use super::chart::{Panel, Series};
use super::matrix::Workload;
use super::points::{Record, Spread};
use super::report::measured_figure;
use std::fmt::Write as _;
use std::path::Path;

/// Detection's steps from the client's advert, in order: (figure, label).
const DETECTION: [(&str, &str); 3] = [
    ("handover.advert_listed", "advert → listed"),
    ("handover.listed_up", "listed → channel up"),
    ("handover.detect_advert", "advert → channel up"),
];

/// The switch to netfront's time and stall, then the switch back's:
/// (figure, label).
const TO_NETFRONT: [(&str, &str); 2] = [
    ("handover.to_netfront", "hold → on netfront"),
    ("handover.stall_to_netfront", "stall after the hold"),
];
const BACK: [(&str, &str); 3] = [
    ("handover.channel_back", "release → channel up"),
    ("handover.to_channel", "release → on channel"),
    ("handover.stall_to_channel", "stall after release"),
];

/// The loads, by point value (matrix::HANDOVER_LOADS), as the report names them.
fn load_label(value: &str) -> Option<&'static str> {
    match value {
        "channel-netfront" => Some("stream"),
        "channel-netfront-maerts" => Some("MAERTS"),
        "channel-netfront-rr" => Some("RR"),
        _ => None,
    }
}

pub(super) fn section(out: &mut String, dir: &Path, records: &[&Record]) -> Result<(), String> {
    out.push_str("### Detection and the switch under load\n\n");
    out.push_str(
        "A client in group `study` and the co-resident server, booted for every repetition: detection is the time \
         from the client's entry until its channel to the server is up (its own boot, its advert, dom0's listing, \
         the offer and the mapping), and from its advert on, split where it read dom0's list naming the server \
         (before: discoveryd's scan and write, the client's watch; after: the offer and the mapping). Then one run \
         (`app=handover`) starts on the channel: a stream to the server's sink (FNV-checked by the sink, so no byte \
         was lost, duplicated or reordered), in the full matrix also a stream from its source (MAERTS, FNV-checked \
         by the client) and request/response with its echo (RR, 1-byte messages). Once 1 MiB is acknowledged (or \
         received, or 500 transactions done) the client holds every peer on netfront, lets the channel come back 1 s \
         later (`handover.hold_ms`: past the 500 ms a peer waits before offering a closed channel again), and ends \
         the run once it has resumed on the channel (a MAERTS goes on to its end). The times are from the hold and \
         from the release until 256 KiB more (or 50 transactions) went on the new path; the stalls are the longest \
         times without progress from the hold until the release, and from the release until resumed on the channel. The client's device counts the TCP payload \
         (smoltcp keeps no count): what it sent twice, and what arrived behind a later byte (lost and sent again, \
         or reordered).\n\n",
    );
    let runs: Vec<(&str, &Record)> = records
        .iter()
        .copied()
        .filter(|r| r.workload == Workload::Handover)
        .filter_map(|r| load_label(&r.value).map(|label| (label, r)))
        .collect();
    if runs.is_empty() {
        out.push_str("No point of it completed.\n\n");
        return Ok(());
    }
    let said =
        |s: Spread, unit: &str, digits: usize| format!("{:.d$} {unit} ({:.d$}–{:.d$})", s.median, s.min, s.max, d = digits);
    let mut parts = Vec::new();
    // Detection happens once a boot, whatever the load: the first run's.
    let (_, first) = runs[0];
    let spread = |r: &Record, name: &str| r.figure(name).map(|m| m.spread);
    if let Some(s) = spread(first, "handover.detect") {
        parts.push(format!("the channel was up {} after the client's entry", said(s, "ms", 0)));
    }
    let steps: Vec<String> = DETECTION
        .iter()
        .filter_map(|(name, label)| spread(first, name).map(|s| format!("{label} {}", said(s, "ms", 1))))
        .collect();
    if !steps.is_empty() {
        parts.push(format!("from its advert: {}", steps.join(", ")));
    }
    for (label, r) in &runs {
        let mut load = Vec::new();
        for (name, what) in TO_NETFRONT.iter().chain(&BACK) {
            if let Some(s) = spread(r, name) {
                load.push(format!("{what} {}", said(s, "ms", 2)));
            }
        }
        for (again, total, what) in [
            ("handover.retransmitted", "handover.payload_sent", "TCP payload sent again"),
            ("handover.received_out_of_order", "handover.payload_received", "received out of order"),
        ] {
            if let Some(share) = share(r, again, total) {
                load.push(format!("{what} {}, {share}", said(r.figure(again).unwrap().spread, "bytes", 0)));
            }
        }
        if !load.is_empty() {
            parts.push(format!("{label}: {}", load.join(", ")));
        }
    }
    if !parts.is_empty() {
        let _ = writeln!(out, "**Answer.** Per repetition, median (min–max): {}.\n", parts.join("; "));
    }
    let per_load = |names: &[&str]| -> Vec<Series> {
        runs.iter()
            .map(|(label, r)| Series { label: label.to_string(), spreads: names.iter().map(|n| spread(r, n)).collect() })
            .collect()
    };
    let detection: Vec<&str> = core::iter::once("handover.detect").chain(DETECTION.iter().map(|(name, _)| *name)).collect();
    let panels = vec![
        Panel {
            title: "Detection".into(),
            unit: "ms".into(),
            categories: core::iter::once("entry → channel up")
                .chain(DETECTION.iter().map(|(_, label)| *label))
                .map(String::from)
                .collect(),
            series: vec![Series {
                label: "channel ↔ netfront".into(),
                spreads: detection.iter().map(|n| spread(first, n)).collect(),
            }],
        },
        Panel {
            title: "The switch to netfront under load".into(),
            unit: "ms".into(),
            categories: TO_NETFRONT.iter().map(|(_, label)| label.to_string()).collect(),
            series: per_load(&TO_NETFRONT.map(|(name, _)| name)),
        },
        Panel {
            title: "The switch back to the channel".into(),
            unit: "ms".into(),
            categories: BACK.iter().map(|(_, label)| label.to_string()).collect(),
            series: per_load(&BACK.map(|(name, _)| name)),
        },
        Panel {
            title: "TCP payload again".into(),
            unit: "bytes".into(),
            categories: vec!["sent again".into(), "received out of order".into()],
            series: per_load(&["handover.retransmitted", "handover.received_out_of_order"]),
        },
    ];
    measured_figure(out, dir, "q2-handover", "Question 2: detection and the switch under load", panels)
}

/// `again` as a share of `total`, per repetition: "x% (min–max) of it",
/// None when either is missing.
fn share(r: &Record, again: &str, total: &str) -> Option<String> {
    let (again, total) = (r.figure(again)?, r.figure(total)?);
    let shares: Vec<f64> =
        again.values.iter().zip(&total.values).filter(|(_, t)| **t > 0.0).map(|(a, t)| a / t * 100.0).collect();
    let s = Spread::of(&shares)?;
    Some(format!("{:.3}% ({:.3}–{:.3}) of it", s.median, s.min, s.max))
}
