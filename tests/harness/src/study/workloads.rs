//! Question 3's `workload` factor in the report: the TCP stream each way
//! (STREAM, MAERTS), request/response on one connection and on a
//! connection each (RR, CRR), UDP request/response and a UDP stream with
//! its loss, over the channel and over netfront, with MAERTS, CRR and UDP
//! RR compared with their TCP counterparts per repetition pair within the
//! run.

use super::chart::{Panel, Series};
use super::matrix::{Path as FramePath, Workload};
use super::points::{Record, Spread};
use super::report::{gains, ReportFigure};
use std::fmt::Write as _;

const PATHS: [FramePath; 2] = [FramePath::Channel, FramePath::Netfront];

fn figure<'a>(records: &[&'a Record], workload: Workload, path: FramePath, name: &str) -> Option<&'a super::points::Measured> {
    records.iter().find(|r| r.workload == workload && r.path == path).and_then(|r| r.figure(name))
}

/// A panel of `pairs` (workload, its figure) across, a series per path.
fn panel(records: &[&Record], title: &str, unit: &str, pairs: &[(Workload, &str)]) -> Panel {
    let series = PATHS
        .iter()
        .map(|&path| Series {
            label: path.as_str().into(),
            spreads: pairs.iter().map(|(w, name)| figure(records, *w, path, name).map(|m| m.spread)).collect(),
        })
        .filter(|s| s.spreads.iter().any(Option::is_some))
        .collect();
    Panel {
        title: title.into(),
        unit: unit.into(),
        categories: pairs.iter().map(|(w, _)| w.as_str().to_string()).collect(),
        series,
    }
}

pub(super) fn figure_of(records: &[&Record]) -> ReportFigure {
    let panels = [
        panel(
            records,
            "Streams (received)",
            "Mbit/s",
            &[
                (Workload::Stream, "net.tcp_stream"),
                (Workload::Maerts, "net.tcp_maerts"),
                (Workload::UdpStream, "net.iperf3_udp"),
            ],
        ),
        panel(records, "UDP stream loss", "%", &[(Workload::UdpStream, "net.iperf3_udp_loss")]),
        panel(
            records,
            "Transactions",
            "transactions/s",
            &[(Workload::Rr, "net.tcp_rr"), (Workload::Crr, "net.tcp_crr"), (Workload::UdpRr, "net.udp_rr")],
        ),
        panel(
            records,
            "Transaction latency p50",
            "us",
            &[
                (Workload::Rr, "net.tcp_rr_latency_p50"),
                (Workload::Crr, "net.tcp_crr_latency_p50"),
                (Workload::UdpRr, "net.udp_rr_latency_p50"),
            ],
        ),
        panel(records, "UDP RR requests lost", "datagrams", &[(Workload::UdpRr, "net.udp_rr_lost")]),
    ]
    .into_iter()
    .filter(|p| !p.series.is_empty())
    .collect();
    ReportFigure { name: "q3-workload".into(), title: "Question 3: the workloads over each path (virtual clock)".into(), panels }
}

/// A sentence per path and pair: `a` against `b`, their medians with
/// min–max, and the ratio a / b per repetition pair.
pub(super) fn answer(out: &mut String, records: &[&Record]) {
    let pairs = [
        (Workload::Maerts, "net.tcp_maerts", Workload::Stream, "net.tcp_stream", "MAERTS (the server sends) against STREAM"),
        (Workload::Crr, "net.tcp_crr", Workload::Rr, "net.tcp_rr", "CRR (a connection each) against RR"),
        (Workload::UdpRr, "net.udp_rr", Workload::Rr, "net.tcp_rr", "UDP RR against TCP RR"),
    ];
    for path in PATHS {
        for (wa, na, wb, nb, what) in pairs {
            let (Some(a), Some(b)) = (figure(records, wa, path, na), figure(records, wb, path, nb)) else { continue };
            let Some(r) = Spread::of(&gains(&a.values, &b.values)) else { continue };
            let (sa, sb) = (a.spread, b.spread);
            let _ = writeln!(
                out,
                "- {what} over {}: {:.1} ({:.1}–{:.1}) against {:.1} ({:.1}–{:.1}) {}; {:.2}x per repetition pair ({:.2}–{:.2}).",
                path.as_str(),
                sa.median,
                sa.min,
                sa.max,
                sb.median,
                sb.min,
                sb.max,
                a.unit,
                r.median,
                r.min,
                r.max
            );
        }
    }
    for path in PATHS {
        let rate = figure(records, Workload::UdpStream, path, "net.iperf3_udp");
        let loss = figure(records, Workload::UdpStream, path, "net.iperf3_udp_loss");
        if let (Some(r), Some(l)) = (rate.map(|m| m.spread), loss.map(|m| m.spread)) {
            let _ = writeln!(
                out,
                "- UDP stream sent at {} bit/s over {}: {:.1} ({:.1}–{:.1}) Mbit/s received, {:.2}% ({:.2}–{:.2}%) of the datagrams lost.",
                super::matrix::UDP_BITRATE,
                path.as_str(),
                r.median,
                r.min,
                r.max,
                l.median,
                l.min,
                l.max
            );
        }
    }
    out.push('\n');
}
