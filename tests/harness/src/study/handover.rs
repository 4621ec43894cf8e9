//! Question 2's switching cost in the report: detection (the client's
//! boot to its channel, and its steps from the advert on) and a stream moved to netfront and back under load
//! (`app=handover`, one client boot a repetition).

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

/// The switch's times, in the order they happen: (figure, label).
const TIMES: [(&str, &str); 3] = [
    ("handover.to_netfront", "hold → on netfront"),
    ("handover.channel_back", "release → channel up"),
    ("handover.to_channel", "release → on channel"),
];

pub(super) fn section(out: &mut String, dir: &Path, records: &[&Record]) -> Result<(), String> {
    out.push_str("### Detection and the switch under load\n\n");
    out.push_str(
        "A client in group `study` and the co-resident server, booted for every repetition: detection is the time \
         from the client's entry until its channel to the server is up (its own boot, its advert, dom0's listing, \
         the offer and the mapping), and from its advert on, split where it read dom0's list naming the server \
         (before: discoveryd's scan and write, the client's watch; after: the offer and the mapping). Then one stream (`app=handover`, FNV-checked by the sink, so no byte was lost, \
         duplicated or reordered) starts on the channel; once 1 MiB is acknowledged the client holds every peer on \
         netfront, lets the channel come back 1 s later (`handover.hold_ms`: past the 500 ms a peer waits before \
         offering a closed channel again), and ends the stream once it has resumed on the channel. The times are \
         from the hold and from the release until 256 KiB more were acknowledged on the new path; the bytes sent again \
         are the TCP payload the client's device sent twice (it counts them, smoltcp keeps no count).\n\n",
    );
    let Some(r) = records.iter().copied().find(|r| r.workload == Workload::Handover) else {
        out.push_str("No point of it completed.\n\n");
        return Ok(());
    };
    let spread = |name: &str| r.figure(name).map(|m| m.spread);
    let said =
        |s: Spread, unit: &str, digits: usize| format!("{:.d$} {unit} ({:.d$}–{:.d$})", s.median, s.min, s.max, d = digits);
    let mut parts = Vec::new();
    if let Some(s) = spread("handover.detect") {
        parts.push(format!("the channel was up {} after the client's entry", said(s, "ms", 0)));
    }
    let steps: Vec<String> =
        DETECTION.iter().filter_map(|(name, label)| spread(name).map(|s| format!("{label} {}", said(s, "ms", 1)))).collect();
    if !steps.is_empty() {
        parts.push(format!("from its advert: {}", steps.join(", ")));
    }
    for (name, label) in TIMES {
        if let Some(s) = spread(name) {
            parts.push(format!("{label} {}", said(s, "ms", 2)));
        }
    }
    if let (Some(again), Some(sent)) = (r.figure("handover.retransmitted"), r.figure("handover.payload_sent")) {
        let shares: Vec<f64> =
            again.values.iter().zip(&sent.values).filter(|(_, s)| **s > 0.0).map(|(a, s)| a / s * 100.0).collect();
        if let Some(share) = Spread::of(&shares) {
            parts.push(format!(
                "TCP payload sent again {} per stream, {:.3}% ({:.3}–{:.3}) of what it sent",
                said(again.spread, "bytes", 0),
                share.median,
                share.min,
                share.max
            ));
        }
    }
    if !parts.is_empty() {
        let _ = writeln!(out, "**Answer.** Per repetition, median (min–max): {}.\n", parts.join("; "));
    }
    let one = |title: &str, unit: &str, cats: Vec<String>, spreads: Vec<Option<Spread>>| Panel {
        title: title.into(),
        unit: unit.into(),
        categories: cats,
        series: vec![Series { label: "channel ↔ netfront".into(), spreads }],
    };
    let panels = vec![
        one(
            "Detection",
            "ms",
            core::iter::once("entry → channel up").chain(DETECTION.iter().map(|(_, label)| *label)).map(String::from).collect(),
            core::iter::once(spread("handover.detect")).chain(DETECTION.iter().map(|(name, _)| spread(name))).collect(),
        ),
        one(
            "The switch under load",
            "ms",
            TIMES.iter().map(|(_, label)| label.to_string()).collect(),
            TIMES.iter().map(|(name, _)| spread(name)).collect(),
        ),
        one("TCP payload sent again", "bytes", vec!["per stream".into()], vec![spread("handover.retransmitted")]),
    ];
    measured_figure(out, dir, "q2-handover", "Question 2: detection and the switch under load", panels)
}
