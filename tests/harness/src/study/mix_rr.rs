//! Question 1's request/response flows under the mixtures (`app=mix
//! mix.rr=on`): the same local fractions as the streams, each flow a TCP
//! RR connection to its server's echo, with residency on and off in the
//! same run; the latency every flow saw and the latency to each server.

use super::chart::{Panel, Series};
use super::matrix::Workload;
use super::points::{Record, Spread};
use super::report::{gains, measured_figure, spread_of, values_of};
use std::fmt::Write as _;
use std::path::Path;

const SIDES: [&str; 2] = ["residency on", "residency off"];
/// The co-resident server and the remote one (cohort-study.sh's srv0, srv1).
const LOCAL_PEER: &str = "peer-198.18.0.40";
const REMOTE_PEER: &str = "peer-198.18.0.41";

pub(super) fn section(out: &mut String, dir: &Path, q1: &[&Record]) -> Result<(), String> {
    let rr: Vec<&Record> = q1.iter().copied().filter(|r| r.workload == Workload::MixRr).collect();
    out.push_str("### Request/response under the mixtures\n\n");
    let _ = writeln!(
        out,
        "The same client and servers, each of the {} flows a TCP request/response connection (1-byte messages) to \
         its server's echo instead of a stream (`app=mix mix.rr=on`), all flows started together. Latency \
         percentiles are over every transaction of every flow, and per server (the co-resident one, `{LOCAL_PEER}`, \
         and the remote one, `{REMOTE_PEER}`); the rate is all flows' transactions over the time until the last \
         flow ends. Per repetition pair, latency off / on (above 1: lower with residency on).\n",
        super::matrix::FLOWS
    );
    if rr.is_empty() {
        out.push_str("No point of it completed.\n\n");
        return Ok(());
    }
    let cats = values_of(&rr);
    let find = |c: &str, side: &str| rr.iter().copied().find(|r| r.value == c && r.series == side);
    let mut sentences = Vec::new();
    for c in &cats {
        let pair = |name: &str| Some((find(c, SIDES[0])?.figure(name)?, find(c, SIDES[1])?.figure(name)?));
        let Some((on, off)) = pair("net.mix_rr_latency_p50") else { continue };
        let Some(g) = Spread::of(&gains(&off.values, &on.values)) else { continue };
        let mut s = format!(
            "{c} local: p50 {:.1} µs on against {:.1} off, {:.2}x lower ({:.2}–{:.2})",
            on.spread.median, off.spread.median, g.median, g.min, g.max
        );
        if let Some((on, off)) = pair("net.mix_rr_aggregate") {
            if let Some(g) = Spread::of(&gains(&on.values, &off.values)) {
                let _ = write!(s, ", transactions {:.2}x ({:.2}–{:.2})", g.median, g.min, g.max);
            }
        }
        sentences.push(s);
    }
    if !sentences.is_empty() {
        let _ =
            writeln!(out, "**Answer.** Request/response latency over every flow, by local fraction: {}.\n", sentences.join("; "));
    }
    let series = |name: &str| -> Vec<Series> {
        SIDES
            .iter()
            .map(|side| Series {
                label: side.to_string(),
                spreads: cats.iter().map(|c| spread_of(&rr, |r| &r.value == c && r.series == *side, name)).collect(),
            })
            .collect()
    };
    let panel = |title: &str, unit: &str, name: &str| Panel {
        title: title.into(),
        unit: unit.into(),
        categories: cats.clone(),
        series: series(name),
    };
    let panels = vec![
        panel("RR transactions, all flows", "transactions/s", "net.mix_rr_aggregate"),
        panel("RR latency p50, all flows", "us", "net.mix_rr_latency_p50"),
        panel("RR latency p99, all flows", "us", "net.mix_rr_latency_p99"),
        panel("RR latency p50 to the co-resident server", "us", &format!("net.mix_rr_peer_latency_p50 {LOCAL_PEER}")),
        panel("RR latency p50 to the remote server", "us", &format!("net.mix_rr_peer_latency_p50 {REMOTE_PEER}")),
    ];
    measured_figure(out, dir, "q1-rr", "Question 1: request/response latency against the local fraction", panels)
}
