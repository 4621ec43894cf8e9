//! Question 1 with other remote peers: at half local, the remote half of
//! the flows goes to a remote Cohort guest (the `local` factor's 50%
//! point), to dom0, or to the Linux reference guest; residency on and off
//! in the same run. Local flows take the channel with residency on; the
//! remote ones take netfront whatever the peer.

use super::chart::{Panel, Series};
use super::matrix::{Workload, DOM0_PEER, FLOWS, LINUX_PEER, OTHER_PEERS_LOCAL};
use super::points::{Record, Spread};
use super::report::{gains, measured_figure};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

const SIDES: [&str; 2] = ["residency on", "residency off"];
/// The remote Cohort guest of the `local` factor (cohort-study.sh's srv1).
const GUEST_PEER: &str = "198.18.0.41";

/// A remote peer kind: its label, how its points are found, its address.
struct Kind {
    label: &'static str,
    /// The label in a sentence.
    phrase: &'static str,
    factor: &'static str,
    value: String,
    addr: &'static str,
}

fn kinds() -> [Kind; 3] {
    let half = format!("{}%", 100 * OTHER_PEERS_LOCAL / FLOWS);
    [
        Kind { label: "Cohort guest", phrase: "a Cohort guest", factor: "local", value: half, addr: GUEST_PEER },
        Kind { label: "dom0", phrase: "dom0", factor: "remote", value: "dom0".into(), addr: DOM0_PEER },
        Kind { label: "Linux guest", phrase: "the Linux guest", factor: "remote", value: "linux".into(), addr: LINUX_PEER },
    ]
}

fn find<'a>(q1: &[&'a Record], kind: &Kind, workload: Workload, side: &str) -> Option<&'a Record> {
    q1.iter().copied().find(|r| r.factor == kind.factor && r.value == kind.value && r.workload == workload && r.series == side)
}

pub(super) fn section(out: &mut String, dir: &Path, q1: &[&Record]) -> Result<(), String> {
    out.push_str("### Other remote peers: dom0 and the Linux reference\n\n");
    let _ = writeln!(
        out,
        "The same client at {}% local ({} of {} flows to the co-resident server), the other flows to a remote peer \
         of another kind: the remote Cohort guest above, dom0 itself (`netref serve` in dom0, at {DOM0_PEER}), or \
         the Linux reference guest (PVH, netref's sink and echo, at {LINUX_PEER}). Neither dom0 nor Linux has a \
         channel, so their flows take netfront with residency on too. Gain as above: on / off per repetition pair.\n",
        100 * OTHER_PEERS_LOCAL / FLOWS,
        OTHER_PEERS_LOCAL,
        FLOWS
    );
    let kinds: Vec<Kind> = kinds()
        .into_iter()
        .filter(|k| SIDES.iter().any(|s| find(q1, k, Workload::Mix, s).or(find(q1, k, Workload::MixRr, s)).is_some()))
        .collect();
    if kinds.iter().all(|k| k.factor == "local") {
        out.push_str("No point with dom0 or Linux as the remote peer completed.\n\n");
        return Ok(());
    }
    let pair = |k: &Kind, w: Workload, name: &str| {
        let on = find(q1, k, w, SIDES[0])?.figure(name)?;
        let off = find(q1, k, w, SIDES[1])?.figure(name)?;
        Some((on, off))
    };
    let mut sentences = Vec::new();
    for k in &kinds {
        let mut parts = Vec::new();
        if let Some((on, off)) = pair(k, Workload::Mix, "net.mix_aggregate") {
            if let Some(g) = Spread::of(&gains(&on.values, &off.values)) {
                parts.push(format!(
                    "streams {:.0} Mbit/s on against {:.0} off, {:.2}x ({:.2}–{:.2})",
                    on.spread.median, off.spread.median, g.median, g.min, g.max
                ));
            }
        }
        if let Some((on, off)) = pair(k, Workload::MixRr, "net.mix_rr_latency_p50") {
            if let Some(g) = Spread::of(&gains(&off.values, &on.values)) {
                parts.push(format!(
                    "RR p50 {:.1} µs on against {:.1} off, {:.2}x lower ({:.2}–{:.2})",
                    on.spread.median, off.spread.median, g.median, g.min, g.max
                ));
            }
        }
        if !parts.is_empty() {
            sentences.push(format!("to {}: {}", k.phrase, parts.join("; ")));
        }
    }
    if !sentences.is_empty() {
        let _ = writeln!(out, "**Answer.** At half local, with the remote half {}.\n", sentences.join("; with it "));
    }
    let runs: BTreeSet<&str> = kinds
        .iter()
        .flat_map(|k| [Workload::Mix, Workload::MixRr].into_iter().flat_map(move |w| SIDES.map(|s| (k, w, s))))
        .filter_map(|(k, w, s)| find(q1, k, w, s))
        .map(|r| r.run.as_str())
        .collect();
    if runs.len() > 1 {
        let _ = writeln!(
            out,
            "**Note:** these points come from {} lab boots (a resumed run): on against off is within one boot for \
             each peer kind, the kinds against each other are not.\n",
            runs.len()
        );
    }
    let categories: Vec<String> = kinds.iter().map(|k| k.label.to_string()).collect();
    let by_side = |w: Workload, name: &dyn Fn(&Kind) -> String| -> Vec<Series> {
        SIDES
            .iter()
            .map(|side| Series {
                label: side.to_string(),
                spreads: kinds.iter().map(|k| Some(find(q1, k, w, side)?.figure(&name(k))?.spread)).collect(),
            })
            .collect()
    };
    let gain = |w: Workload, name: &str, lower_is_better: bool| -> Vec<Series> {
        let spreads = kinds
            .iter()
            .map(|k| {
                let (on, off) = pair(k, w, name)?;
                let g = if lower_is_better { gains(&off.values, &on.values) } else { gains(&on.values, &off.values) };
                Spread::of(&g)
            })
            .collect::<Vec<_>>();
        vec![Series { label: "gain".into(), spreads }]
    };
    let panel = |title: &str, unit: &str, series: Vec<Series>| Panel {
        title: title.into(),
        unit: unit.into(),
        categories: categories.clone(),
        series,
    };
    let peer_p50 = |k: &Kind| format!("net.mix_rr_peer_latency_p50 peer-{}", k.addr);
    let panels = vec![
        panel("Stream aggregate", "Mbit/s", by_side(Workload::Mix, &|_| "net.mix_aggregate".into())),
        panel("Stream gain, on / off", "x", gain(Workload::Mix, "net.mix_aggregate", false)),
        panel("RR latency p50, all flows", "us", by_side(Workload::MixRr, &|_| "net.mix_rr_latency_p50".into())),
        panel("RR p50 gain, off / on", "x", gain(Workload::MixRr, "net.mix_rr_latency_p50", true)),
        panel("RR latency p50 to the remote peer", "us", by_side(Workload::MixRr, &peer_p50)),
    ];
    measured_figure(out, dir, "q1-remote-peers", "Question 1: the remote half to a Cohort guest, dom0 or Linux", panels)
}
