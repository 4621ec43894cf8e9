//! `cohort-harness report`: turns `BENCH` lines into tables (Markdown) and
//! bar charts (SVG and PNG) comparing the shared-memory channel with
//! netfront per configuration and clock, and PVH guests with PV ones.
//!
//! The benchmarks repeat every measurement, so one (name, path, clock)
//! appears several times in a run. Every figure the report shows is the
//! median of those repetitions with their min and max, and every ratio is a
//! ratio of medians taken within one clock of the run.

use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

/// One `BENCH` line, as the kernel writes it (the shared type). Keys other
/// than its five are ignored.
pub type Figure = figures::Figure<String>;

/// Parses `BENCH {"name":...,"path":...,"value":...,"unit":...,"clock":...}`
/// anywhere in a line (console prefixes do not matter, nor does anything
/// after the object). `Ok(None)` for a line without `BENCH {`, `Err` with
/// serde_json's reason for one whose object does not parse.
pub fn parse_line(line: &str) -> Result<Option<Figure>, String> {
    let Some(json) = figures::json_in(line) else { return Ok(None) };
    match serde_json::Deserializer::from_str(json).into_iter::<Figure>().next() {
        Some(Ok(figure)) => Ok(Some(figure)),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("no JSON object after BENCH".into()),
    }
}

/// [`parse_line`] for callers that only want the figure.
pub fn parse(line: &str) -> Option<Figure> {
    parse_line(line).ok().flatten()
}

/// A BENCH line that did not parse: its line number (from 1) and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Skipped {
    pub line: usize,
    pub error: String,
}

/// Every figure of a benchmark log, in order, and the BENCH lines skipped.
pub fn parse_text(text: &str) -> (Vec<Figure>, Vec<Skipped>) {
    let (mut figures, mut skipped) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        match parse_line(line) {
            Ok(Some(f)) => figures.push(f),
            Ok(None) => {}
            Err(error) => skipped.push(Skipped { line: i + 1, error }),
        }
    }
    (figures, skipped)
}

/// The repetitions of one figure: median (the mean of the two middle ones
/// for an even count), min, max and how many.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Stat {
    /// `None` for no values.
    pub fn of(values: &[f64]) -> Option<Stat> {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => v[n / 2],
            _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        };
        Some(Stat { median, min: v[0], max: v[n - 1], n })
    }
}

/// One figure of the run with its repetitions aggregated.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub name: String,
    pub path: String,
    pub clock: String,
    pub unit: String,
    /// The values in order of appearance.
    pub values: Vec<f64>,
    pub stat: Stat,
}

/// Every (name, path, clock) of the run, in order of first appearance.
/// Figures of one name, path and clock but different units are not
/// repetitions of one measurement and stay apart.
pub fn summarize(figures: &[Figure]) -> Vec<Summary> {
    let mut order: Vec<(&str, &str, &str, &str)> = Vec::new();
    let mut values: HashMap<(&str, &str, &str, &str), Vec<f64>> = HashMap::new();
    for f in figures {
        let key = (f.name.as_str(), f.path.as_str(), f.clock.as_str(), f.unit.as_str());
        values
            .entry(key)
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push(f.value);
    }
    order
        .into_iter()
        .map(|key| {
            let values = values.remove(&key).unwrap_or_default();
            let (name, path, clock, unit) = key;
            Summary {
                name: name.into(),
                path: path.into(),
                clock: clock.into(),
                unit: unit.into(),
                stat: Stat::of(&values).expect("every key has a value"),
                values,
            }
        })
        .collect()
}

/// A netbench configuration's figures: `(path kind, config)` from a path
/// like `channel/ring8` (a bare `channel` is the default configuration).
fn split_path(path: &str) -> (&str, &str) {
    path.split_once('/').unwrap_or((path, "default"))
}

/// The aggregate of every figure called `name` on `path` (bare or
/// `/default`, as [`split_path`] reads it) in `clock`.
fn stat(figures: &[Figure], name: &str, path: &str, clock: &str) -> Option<Stat> {
    let values: Vec<f64> = figures
        .iter()
        .filter(|f| f.clock == clock && f.name == name && split_path(&f.path) == split_path(path))
        .map(|f| f.value)
        .collect();
    Stat::of(&values)
}

/// The clocks of a run: `virtual` and `wall` first, then any other.
fn clocks(figures: &[Figure]) -> Vec<String> {
    let mut clocks: Vec<String> = ["virtual", "wall"].map(String::from).into();
    let others: BTreeSet<&str> = figures.iter().map(|f| f.clock.as_str()).collect();
    clocks.extend(others.into_iter().filter(|c| !clocks.iter().any(|k| k == c)).map(String::from).collect::<Vec<_>>());
    clocks.retain(|c| figures.iter().any(|f| &f.clock == c));
    clocks
}

/// One figure measured on the channel and on netfront.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pair {
    pub channel: Option<Stat>,
    pub netfront: Option<Stat>,
}

impl Pair {
    /// Channel over netfront, a ratio of medians.
    pub fn ratio(&self) -> Option<f64> {
        ratio(self.channel, self.netfront)
    }
}

/// The channel-vs-netfront comparison of one configuration in one clock.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub config: String,
    /// `net.tcp_stream`, Mbit/s.
    pub stream: Pair,
    /// `net.tcp_rr`, transactions/s.
    pub rr: Pair,
    /// `net.tcp_rr_latency_p50`, us.
    pub p50: Pair,
}

impl Row {
    fn stats(&self) -> impl Iterator<Item = Stat> + '_ {
        [self.stream, self.rr, self.p50].into_iter().flat_map(|p| [p.channel, p.netfront]).flatten()
    }
}

/// The figures the comparison puts side by side.
const COMPARED: [&str; 3] = ["net.tcp_stream", "net.tcp_rr", "net.tcp_rr_latency_p50"];
const KINDS: [&str; 2] = ["channel", "netfront"];

/// Channel vs netfront per configuration (`channel/<config>` beside
/// `netfront/<config>`), the default configuration first.
pub fn comparison(figures: &[Figure], clock: &str) -> Vec<Row> {
    let configs: BTreeSet<&str> = figures
        .iter()
        .filter(|f| f.clock == clock && COMPARED.contains(&f.name.as_str()))
        .map(|f| split_path(&f.path))
        .filter(|(kind, _)| KINDS.contains(kind))
        .map(|(_, config)| config)
        .collect();
    let pair = |name: &str, config: &str| Pair {
        channel: stat(figures, name, &format!("channel/{config}"), clock),
        netfront: stat(figures, name, &format!("netfront/{config}"), clock),
    };
    let mut rows: Vec<Row> = configs
        .into_iter()
        .map(|config| Row {
            config: config.to_string(),
            stream: pair(COMPARED[0], config),
            rr: pair(COMPARED[1], config),
            p50: pair(COMPARED[2], config),
        })
        .collect();
    rows.sort_by_key(|r| (r.config != "default", r.config.clone()));
    rows
}

/// The netfront paths side by side with the Linux reference guests in one
/// clock, for the paths measured.
#[derive(Clone, Debug, PartialEq)]
pub struct ReferenceRow {
    pub what: &'static str,
    pub stream: Option<Stat>,
    /// `net.iperf3_tcp`, Mbit/s: iperf3's receiver figure.
    pub iperf3: Option<Stat>,
    pub rr: Option<Stat>,
    pub p50: Option<Stat>,
}

const REFERENCE_PATHS: [(&str, &str); 7] = [
    ("netfront", "Cohort to Cohort (default)"),
    ("linux-to-linux-netfront", "Linux to Linux"),
    ("linux-to-linux-nogso-netfront", "Linux to Linux, no TSO/GSO"),
    ("linux-to-cohort-netfront", "Linux to Cohort"),
    ("cohort-to-linux-netfront", "Cohort to Linux"),
    ("dom0-to-guest-netfront", "dom0 to Cohort"),
    ("dom0-to-linux-netfront", "dom0 to Linux"),
];
/// The row the others are compared with.
const LINUX_TO_LINUX: &str = "Linux to Linux";
/// iperf3's figure, beside the others in the reference table.
const IPERF3: &str = "net.iperf3_tcp";
/// What measured each column of the reference table.
const REFERENCE_NOTE: &str = "stream: netbench (Cohort to Cohort), Cohort's stream app into netref's sink \
(Cohort to Linux), busybox nc into the sink (dom0); iperf3: Debian's iperf3 3.12, or Cohort's \
app=iperf3-client against app=iperf3 or iperf3 -s; RR: netbench or netref (one-byte request/response). \
The Cohort guests run as PVH; the Linux guests as PVH under the virtual clock and as PV under the wall \
clock (multi-threaded TCG, where PVH Linux triple-faults in this lab).\n\n";

/// How the guest-type table was measured.
const TYPE_NOTE: &str = "Both guests of a measurement are of one type: the primitives' guests \
(`bench=xen`, the `evtchn_ping`/`evtchn_pong` pair) run as PVH and as PV in turn; the network rows \
are netbench's default configuration and its `pv` configuration.\n\n";

pub fn reference(figures: &[Figure], clock: &str) -> Vec<ReferenceRow> {
    REFERENCE_PATHS
        .iter()
        .map(|&(path, what)| ReferenceRow {
            what,
            stream: stat(figures, COMPARED[0], path, clock),
            iperf3: stat(figures, IPERF3, path, clock),
            rr: stat(figures, COMPARED[1], path, clock),
            p50: stat(figures, COMPARED[2], path, clock),
        })
        .filter(|row| row.stream.is_some() || row.iperf3.is_some() || row.rr.is_some())
        .collect()
}

/// One figure measured with both guests PVH and with both PV (the same
/// image; tests/xen/scenarios/cohort-bench.sh, "The guest type").
#[derive(Clone, Debug, PartialEq)]
pub struct TypeRow {
    pub what: &'static str,
    pub pvh: Option<Stat>,
    pub pv: Option<Stat>,
    decimals: usize,
}

impl TypeRow {
    /// PV over PVH, a ratio of medians.
    pub fn ratio(&self) -> Option<f64> {
        ratio(self.pv, self.pvh)
    }
}

/// The guest-type comparison: (what, name, PVH path, PV path, decimals).
/// The primitives' paths name the type; netbench's PV run is the
/// configuration `pv`, beside the default one.
const TYPE_ROWS: [(&str, &str, &str, &str, usize); 9] = [
    ("hypercall round trip (ns)", "xen.hypercall_round_trip", "xen-pvh", "xen-pv", 0),
    ("grant map + unmap (ns)", "xen.grant_map_unmap", "xen-pvh", "xen-pv", 0),
    ("event channel, notify to remote handler (ns)", "evtchn.notify_to_remote_handler", "xen-pvh", "xen-pv", 0),
    ("channel stream (Mbit/s)", COMPARED[0], "channel/default", "channel/pv", 1),
    ("channel RR (/s)", COMPARED[1], "channel/default", "channel/pv", 0),
    ("channel RR p50 (us)", COMPARED[2], "channel/default", "channel/pv", 1),
    ("netfront stream (Mbit/s)", COMPARED[0], "netfront/default", "netfront/pv", 1),
    ("netfront RR (/s)", COMPARED[1], "netfront/default", "netfront/pv", 0),
    ("netfront RR p50 (us)", COMPARED[2], "netfront/default", "netfront/pv", 1),
];

/// PVH beside PV in one clock, the rows measured; empty when no PV figure
/// was.
pub fn guest_types(figures: &[Figure], clock: &str) -> Vec<TypeRow> {
    let rows: Vec<TypeRow> = TYPE_ROWS
        .iter()
        .map(|&(what, name, pvh, pv, decimals)| TypeRow {
            what,
            pvh: stat(figures, name, pvh, clock),
            pv: stat(figures, name, pv, clock),
            decimals,
        })
        .filter(|r| r.pvh.is_some() || r.pv.is_some())
        .collect();
    if rows.iter().any(|r| r.pv.is_some()) {
        rows
    } else {
        Vec::new()
    }
}

/// Whether a reference table is worth printing: only when a Linux guest was
/// measured.
fn has_linux(rows: &[ReferenceRow]) -> bool {
    rows.iter().any(|r| r.what.contains("Linux"))
}

fn ratio(a: Option<Stat>, b: Option<Stat>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b.median > 0.0 => Some(a.median / b.median),
        _ => None,
    }
}

fn ratio_cell(r: Option<f64>) -> String {
    match r {
        Some(r) if r < 1.0 => format!("{r:.2}x"),
        Some(r) => format!("{r:.1}x"),
        None => "-".into(),
    }
}

/// `median (min–max)`, or the bare value for a single measurement.
fn stat_cell(s: Option<Stat>, decimals: usize) -> String {
    match s {
        None => "-".into(),
        Some(s) if s.n == 1 => format!("{:.decimals$}", s.median),
        Some(s) => format!("{:.decimals$} ({:.decimals$}–{:.decimals$})", s.median, s.min, s.max),
    }
}

/// The repetitions behind a row: `3`, or `2–3` when they differ.
fn n_cell(stats: impl Iterator<Item = Stat>) -> String {
    let ns: Vec<usize> = stats.map(|s| s.n).collect();
    match (ns.iter().min(), ns.iter().max()) {
        (Some(lo), Some(hi)) if lo == hi => lo.to_string(),
        (Some(lo), Some(hi)) => format!("{lo}–{hi}"),
        _ => "-".into(),
    }
}

/// Text from a BENCH line, safe in a Markdown table cell.
pub(crate) fn text_cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

const FEW: &str = "A figure with n < 3 above rests on too few repetitions for a claim (at least 3).\n\n";

/// (name, normalized path, clock) of the figures the tables show.
type Shown<'f> = BTreeSet<(&'f str, (&'f str, &'f str), &'f str)>;

/// Ends a table of `clock`: a blank line, `note`, the note on too few
/// repetitions when any of `stats` has n < 3, and the figures of `clock`
/// that `in_table(name, path)` accepts noted as shown.
fn end_table<'f>(
    out: &mut String,
    note: &str,
    mut stats: impl Iterator<Item = Stat>,
    shown: &mut Shown<'f>,
    figures: &'f [Figure],
    clock: &str,
    in_table: impl Fn(&str, &str) -> bool,
) {
    out.push('\n');
    out.push_str(note);
    if stats.any(|s| s.n < 3) {
        out.push_str(FEW);
    }
    for f in figures.iter().filter(|f| f.clock == clock) {
        if in_table(&f.name, &f.path) {
            shown.insert((&f.name, split_path(&f.path), &f.clock));
        }
    }
}

/// The Markdown report: the channel/netfront comparison per clock, PVH
/// against PV per clock, the Linux reference per clock, then every figure
/// not already shown.
pub fn markdown(figures: &[Figure]) -> String {
    let mut out = String::from(
        "Figures are the median of n repetitions, with (min–max) when n > 1; \
         ratios are ratios of medians within one clock of this run.\n\n",
    );
    let mut shown = Shown::new();
    for clock in clocks(figures) {
        let rows = comparison(figures, &clock);
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### Shared-memory channel vs netfront, guest to guest ({clock} clock)\n");
        out.push_str("| configuration | stream channel (Mbit/s) | stream netfront (Mbit/s) | ratio | RR channel (/s) | RR netfront (/s) | ratio | RR p50 channel (us) | RR p50 netfront (us) | n |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for row in &rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                text_cell(&row.config),
                stat_cell(row.stream.channel, 1),
                stat_cell(row.stream.netfront, 1),
                ratio_cell(row.stream.ratio()),
                stat_cell(row.rr.channel, 0),
                stat_cell(row.rr.netfront, 0),
                ratio_cell(row.rr.ratio()),
                stat_cell(row.p50.channel, 1),
                stat_cell(row.p50.netfront, 1),
                n_cell(row.stats()),
            );
        }
        let stats = rows.iter().flat_map(Row::stats);
        end_table(&mut out, "", stats, &mut shown, figures, &clock, |name, path| {
            COMPARED.contains(&name) && KINDS.contains(&split_path(path).0)
        });
    }
    for clock in clocks(figures) {
        let rows = guest_types(figures, &clock);
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### Guest type: PVH against PV, the same image ({clock} clock)\n");
        out.push_str("| figure | PVH | PV | PV / PVH | n |\n|---|---:|---:|---:|---:|\n");
        for row in &rows {
            let d = row.decimals;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                row.what,
                stat_cell(row.pvh, d),
                stat_cell(row.pv, d),
                ratio_cell(row.ratio()),
                n_cell([row.pvh, row.pv].into_iter().flatten()),
            );
        }
        let stats = rows.iter().flat_map(|r| [r.pvh, r.pv]).flatten();
        end_table(&mut out, TYPE_NOTE, stats, &mut shown, figures, &clock, |name, path| {
            TYPE_ROWS.iter().any(|&(_, n, pvh, pv, _)| n == name && [pvh, pv].iter().any(|p| split_path(p) == split_path(path)))
        });
    }
    for clock in clocks(figures) {
        let rows = reference(figures, &clock);
        if !has_linux(&rows) {
            continue;
        }
        let linux = rows.iter().find(|r| r.what == LINUX_TO_LINUX);
        let _ = writeln!(out, "### Netfront: Cohort and Linux guests ({clock} clock)\n");
        out.push_str(
            "| path | stream (Mbit/s) | vs Linux to Linux | iperf3 (Mbit/s) | vs Linux to Linux | RR (/s) | vs Linux to Linux | RR p50 (us) | n |\n",
        );
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for row in &rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                row.what,
                stat_cell(row.stream, 1),
                ratio_cell(ratio(row.stream, linux.and_then(|l| l.stream))),
                stat_cell(row.iperf3, 1),
                ratio_cell(ratio(row.iperf3, linux.and_then(|l| l.iperf3))),
                stat_cell(row.rr, 0),
                ratio_cell(ratio(row.rr, linux.and_then(|l| l.rr))),
                stat_cell(row.p50, 1),
                n_cell([row.stream, row.iperf3, row.rr, row.p50].into_iter().flatten()),
            );
        }
        let stats = rows.iter().flat_map(|r| [r.stream, r.iperf3, r.rr, r.p50]).flatten();
        end_table(&mut out, REFERENCE_NOTE, stats, &mut shown, figures, &clock, |name, path| {
            (COMPARED.contains(&name) || name == IPERF3) && REFERENCE_PATHS.iter().any(|(p, _)| split_path(p) == split_path(path))
        });
    }
    let others: Vec<Summary> = summarize(figures)
        .into_iter()
        .filter(|s| !shown.contains(&(s.name.as_str(), split_path(&s.path), s.clock.as_str())))
        .collect();
    if !others.is_empty() {
        out.push_str("### Every other figure\n\n| name | path | clock | median | min | max | n | unit |\n|---|---|---|---:|---:|---:|---:|---|\n");
        for s in others {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {} | {} |",
                text_cell(&s.name),
                text_cell(&s.path),
                text_cell(&s.clock),
                s.stat.median,
                s.stat.min,
                s.stat.max,
                s.stat.n,
                text_cell(&s.unit)
            );
        }
    }
    out
}

/// Registers the DejaVu fonts (from the dejavu crate) as plotters'
/// "sans-serif": with the `ab_glyph` feature plotters loads no system
/// fonts, and the bitmap backend needs one to draw text.
pub(crate) fn fonts() -> Result<(), String> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err("the embedded DejaVu font did not load".into())
    }
}

const CHANNEL_COLOR: RGBColor = RGBColor(0x2a, 0x7a, 0xb9);
const NETFRONT_COLOR: RGBColor = RGBColor(0xd9, 0x82, 0x2b);

/// A chart's size in pixels for `configs` configurations: two panels side
/// by side.
fn chart_size(configs: usize) -> (u32, u32) {
    let panel = (160 + 110 * configs as u32).max(480);
    (2 * panel, 440)
}

/// One panel: per configuration a channel bar and a netfront bar at the
/// median, with a min–max whisker where there were several repetitions.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    rows: &[Row],
    title: &str,
    unit: &str,
    pick: fn(&Row) -> Pair,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let n = rows.len();
    let top = rows.iter().flat_map(|r| [pick(r).channel, pick(r).netfront]).flatten().map(|s| s.max).fold(0.0, f64::max);
    let top = if top > 0.0 { top * 1.3 } else { 1.0 };
    // x in hundredths of a configuration (plotters formats labels of
    // integer axes only), a label at the middle of each.
    let centers: Vec<i32> = (0..n as i32).map(|i| 100 * i + 50).collect();
    let label = |x: &i32| usize::try_from(x / 100).ok().and_then(|i| rows.get(i)).map_or_else(String::new, |r| r.config.clone());
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(72)
        .build_cartesian_2d((0..100 * n as i32).with_key_points(centers), 0.0..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&label)
        .y_labels(8)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .y_desc(unit)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    let series = [("shared-memory channel", CHANNEL_COLOR), ("netfront (dom0 bridge)", NETFRONT_COLOR)];
    for (j, (name, color)) in series.into_iter().enumerate() {
        let bars: Vec<(i32, Stat)> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let p = pick(r);
                [p.channel, p.netfront][j].map(|s| (100 * i as i32 + 10 + 40 * j as i32, s))
            })
            .collect();
        chart
            .draw_series(bars.iter().map(|&(x, s)| Rectangle::new([(x, 0.0), (x + 40, s.median)], color.filled())))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], color.filled()));
        let whisker = BLACK.stroke_width(2);
        chart
            .draw_series(bars.iter().filter(|(_, s)| s.n > 1).flat_map(|&(x, s)| {
                let c = x + 20;
                [
                    PathElement::new(vec![(c, s.min), (c, s.max)], whisker),
                    PathElement::new(vec![(c - 6, s.min), (c + 6, s.min)], whisker),
                    PathElement::new(vec![(c - 6, s.max), (c + 6, s.max)], whisker),
                ]
            }))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)
}

/// The chart of one clock on any plotters backend: TCP stream throughput
/// (left) and TCP request/response rate (right).
fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, rows: &[Row], clock: &str) -> Result<(), String> {
    fonts()?;
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let panels = root.split_evenly((1, 2));
    let stream: fn(&Row) -> Pair = |r| r.stream;
    let rr: fn(&Row) -> Pair = |r| r.rr;
    panel(&panels[0], rows, &format!("TCP stream, {clock} clock"), "Mbit/s (median, min–max)", stream)?;
    panel(&panels[1], rows, &format!("TCP request/response, {clock} clock"), "transactions/s (median, min–max)", rr)?;
    root.present().map_err(|e| e.to_string())
}

/// The SVG chart of one clock, `None` when it has no channel or netfront
/// figures.
pub fn svg(figures: &[Figure], clock: &str) -> Option<Result<String, String>> {
    let rows = comparison(figures, clock);
    if rows.is_empty() {
        return None;
    }
    let mut s = String::new();
    let drawn = draw(SVGBackend::with_string(&mut s, chart_size(rows.len())).into_drawing_area(), &rows, clock);
    Some(drawn.map(|()| s))
}

/// Writes the PNG chart of one clock to `path`; `Ok(false)` when it has no
/// channel or netfront figures.
pub fn png(figures: &[Figure], clock: &str, path: &std::path::Path) -> Result<bool, String> {
    let rows = comparison(figures, clock);
    if rows.is_empty() {
        return Ok(false);
    }
    draw(BitMapBackend::new(path, chart_size(rows.len())).into_drawing_area(), &rows, clock)?;
    Ok(true)
}

/// Writes `PREFIX-<clock>.svg` and `PREFIX-<clock>.png` for every clock
/// with channel or netfront figures; the files written.
pub fn write_charts(figures: &[Figure], prefix: &str) -> Result<Vec<String>, String> {
    let mut written = Vec::new();
    for clock in clocks(figures) {
        let Some(svg) = svg(figures, &clock) else { continue };
        let path = format!("{prefix}-{clock}.svg");
        std::fs::write(&path, svg?).map_err(|e| format!("{path}: {e}"))?;
        written.push(path);
        let path = format!("{prefix}-{clock}.png");
        png(figures, &clock, path.as_ref()).map_err(|e| format!("{path}: {e}"))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(name: &str, path: &str, value: f64, clock: &str) -> Figure {
        Figure { name: name.into(), path: path.into(), value, unit: "u".into(), clock: clock.into() }
    }

    fn s(median: f64, min: f64, max: f64, n: usize) -> Option<Stat> {
        Some(Stat { median, min, max, n })
    }

    #[test]
    fn parses_bench_lines_anywhere_in_a_line() {
        let line = r#"(d3) BENCH {"name":"net.tcp_rr","path":"channel/ring8","value":8506.000,"unit":"transactions/s","clock":"virtual"}"#;
        assert_eq!(
            parse(line),
            Some(Figure {
                name: "net.tcp_rr".into(),
                path: "channel/ring8".into(),
                value: 8506.0,
                unit: "transactions/s".into(),
                clock: "virtual".into()
            })
        );
        assert_eq!(parse("BENCH {\"name\":\"x\"}"), None);
        assert_eq!(parse("no bench here"), None);
        // Extra keys, integers, whitespace and a trailing carriage return.
        let f = parse("BENCH { \"clock\": \"wall\", \"extra\": [1, {\"a\": null}], \"name\": \"n\", \"path\": \"p\", \"value\": 7, \"unit\": \"ms\" }\r")
            .unwrap();
        assert_eq!((f.name.as_str(), f.value, f.clock.as_str()), ("n", 7.0, "wall"));
    }

    #[test]
    fn lines_the_kernel_writes_parse() {
        // The kernel prints figures::Figure<&str> with serde-json-core.
        let written =
            figures::Figure { name: "net.tcp_stream", path: "channel \"x\"", value: 3561.0625, unit: "Mbit/s", clock: "virtual" };
        let f = parse(&format!("(d2) {written}")).unwrap();
        assert_eq!(f, Figure { unit: "Mbit/s".into(), ..fig("net.tcp_stream", "channel \"x\"", 3561.063, "virtual") });
    }

    #[test]
    fn escaped_characters_in_strings_parse() {
        let line = r#"BENCH {"name":"a \"quoted\" name","path":"x\\y\/z","value":1.5e3,"unit":"\u00b5s","clock":"wall"}"#;
        let f = parse(line).unwrap();
        assert_eq!(f.name, "a \"quoted\" name");
        assert_eq!(f.path, "x\\y/z");
        assert_eq!(f.unit, "µs");
        assert_eq!(f.value, 1500.0);
        // A `|` or a quote in a name does not break the Markdown table.
        let md = markdown(&[fig("a|b \"c\"", "p", 1.0, "wall")]);
        assert!(md.contains("| a\\|b \"c\" | p | wall | 1.000 |"), "{md}");
    }

    #[test]
    fn malformed_lines_are_skipped_with_their_line_number() {
        let text = "boot\n\
            BENCH {\"name\":\"a\",\"path\":\"p\",\"value\":1,\"unit\":\"u\",\"clock\":\"wall\"}\n\
            BENCH {\"name\":\"a\",\"path\":\"p\",\"value\":2,\"unit\":\"u\",\"clo\n\
            (d1) BENCH {\"name\":\"a\",\"path\":\"p\",\"value\":\"x\",\"unit\":\"u\",\"clock\":\"wall\"}\n\
            BENCH {\"name\":\"a\",\"path\":\"p\",\"value\":3,\"unit\":\"u\",\"clock\":\"wall\"}\n\
            BENCH {\"name\":\"a\"}\n";
        let (figures, skipped) = parse_text(text);
        assert_eq!(figures.iter().map(|f| f.value).collect::<Vec<_>>(), [1.0, 3.0]);
        assert_eq!(skipped.iter().map(|s| s.line).collect::<Vec<_>>(), [3, 4, 6]);
        assert!(skipped[2].error.contains("missing field"), "{:?}", skipped[2]);
    }

    #[test]
    fn repeated_figures_give_median_min_max() {
        assert_eq!(Stat::of(&[3.0, 1.0, 2.0]), s(2.0, 1.0, 3.0, 3));
        assert_eq!(Stat::of(&[10.0, 40.0, 20.0, 30.0]), s(25.0, 10.0, 40.0, 4));
        assert_eq!(Stat::of(&[5.0]), s(5.0, 5.0, 5.0, 1));
        assert_eq!(Stat::of(&[]), None);
        let figures = [
            fig("x", "p", 9.0, "wall"),
            fig("y", "p", 1.0, "wall"),
            fig("x", "p", 1.0, "wall"),
            fig("x", "p", 5.0, "virtual"),
            fig("x", "p", 4.0, "wall"),
            fig("x", "p", 2.0, "wall"),
        ];
        let sums = summarize(&figures);
        assert_eq!(sums.len(), 3);
        assert_eq!((sums[0].name.as_str(), sums[0].clock.as_str()), ("x", "wall"));
        assert_eq!(sums[0].values, [9.0, 1.0, 4.0, 2.0], "in order of appearance");
        assert_eq!(Some(sums[0].stat), s(3.0, 1.0, 9.0, 4));
        assert_eq!(Some(sums[2].stat), s(5.0, 5.0, 5.0, 1));
    }

    #[test]
    fn comparison_rows_by_configuration() {
        let figures = [
            fig("net.tcp_stream", "channel", 2000.0, "virtual"),
            fig("net.tcp_stream", "netfront", 200.0, "virtual"),
            fig("net.tcp_rr", "channel/ring8", 9000.0, "virtual"),
            fig("net.tcp_rr", "netfront/ring8", 3000.0, "virtual"),
            fig("net.tcp_stream", "channel", 60.0, "wall"),
            fig("boot.x", "boot", 1.0, "virtual"),
        ];
        let rows = comparison(&figures, "virtual");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].config, "default");
        assert_eq!(rows[0].stream, Pair { channel: s(2000.0, 2000.0, 2000.0, 1), netfront: s(200.0, 200.0, 200.0, 1) });
        assert_eq!((rows[1].config.as_str(), rows[1].rr.ratio()), ("ring8", Some(3.0)));
        let md = markdown(&figures);
        assert!(md.contains("| default | 2000.0 | 200.0 | 10.0x |"), "{md}");
        assert!(md.contains("| ring8 | - | - | - | 9000 | 3000 | 3.0x | - | - | 1 |"), "{md}");
        assert!(md.contains("| boot.x | boot | virtual | 1.000 | 1.000 | 1.000 | 1 | u |"), "{md}");
        assert!(!md.contains("| net.tcp_stream |"), "compared figures are not repeated: {md}");
        assert!(md.contains("n < 3"), "single measurements are flagged: {md}");
        assert!(svg(&figures, "none").is_none());
        assert!(!md.contains("Linux"), "no reference table without Linux figures");
    }

    #[test]
    fn ratios_are_ratios_of_medians_and_the_spread_is_shown() {
        let mut figures = Vec::new();
        // Channel 100, 1000, 400 (median 400; mean 500); netfront 100,
        // 300, 200, 10 (median 150; mean 152.5).
        for v in [100.0, 1000.0, 400.0] {
            figures.push(fig("net.tcp_stream", "channel/ring8", v, "virtual"));
        }
        for v in [100.0, 300.0, 200.0, 10.0] {
            figures.push(fig("net.tcp_stream", "netfront/ring8", v, "virtual"));
        }
        for v in [30.0, 10.0, 20.0] {
            figures.push(fig("net.tcp_rr_latency_p99", "netfront/ring8", v, "virtual"));
        }
        let rows = comparison(&figures, "virtual");
        assert_eq!(rows[0].stream.channel, s(400.0, 100.0, 1000.0, 3));
        assert_eq!(rows[0].stream.netfront, s(150.0, 10.0, 300.0, 4));
        assert_eq!(rows[0].stream.ratio(), Some(400.0 / 150.0));
        let md = markdown(&figures);
        assert!(md.contains("| ring8 | 400.0 (100.0–1000.0) | 150.0 (10.0–300.0) | 2.7x | - | - | - | - | - | 3–4 |"), "{md}");
        assert!(!md.contains("n < 3"), "{md}");
        assert!(md.contains("| net.tcp_rr_latency_p99 | netfront/ring8 | virtual | 20.000 | 10.000 | 30.000 | 3 | u |"), "{md}");
    }

    #[test]
    fn reference_rows_put_netfront_beside_linux() {
        let mut figures = vec![
            fig("net.tcp_stream", "netfront/default", 200.0, "virtual"),
            fig("net.tcp_rr", "netfront/default", 2300.0, "virtual"),
            fig("net.tcp_stream", "netfront/ring8", 1.0, "virtual"),
            fig("net.tcp_rr", "linux-to-linux-netfront", 5000.0, "virtual"),
            fig("net.tcp_rr_latency_p50", "linux-to-linux-netfront", 150.0, "virtual"),
            fig("net.tcp_stream", "linux-to-linux-netfront", 80.0, "wall"),
            fig("net.tcp_stream", "cohort-to-linux-netfront", 300.0, "virtual"),
            fig("net.tcp_stream", "dom0-to-guest-netfront", 40.0, "wall"),
        ];
        for v in [900.0, 700.0, 1000.0] {
            figures.push(fig("net.tcp_stream", "linux-to-linux-netfront", v, "virtual"));
        }
        let rows = reference(&figures, "virtual");
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0],
            ReferenceRow {
                what: "Cohort to Cohort (default)",
                stream: s(200.0, 200.0, 200.0, 1),
                iperf3: None,
                rr: s(2300.0, 2300.0, 2300.0, 1),
                p50: None
            }
        );
        assert_eq!(rows[1].what, "Linux to Linux");
        assert_eq!((rows[1].stream, rows[1].rr), (s(900.0, 700.0, 1000.0, 3), s(5000.0, 5000.0, 5000.0, 1)));
        assert_eq!((rows[2].what, rows[2].stream), ("Cohort to Linux", s(300.0, 300.0, 300.0, 1)));
        let md = markdown(&figures);
        assert!(md.contains("| Cohort to Cohort (default) | 200.0 | 0.22x | - | - | 2300 | 0.46x | - | 1 |"), "{md}");
        assert!(md.contains("| Linux to Linux | 900.0 (700.0–1000.0) | 1.0x | - | - | 5000 | 1.0x | 150.0 | 1–3 |"), "{md}");
        assert!(md.contains("| Cohort to Linux | 300.0 | 0.33x | - | - | - | - | - | 1 |"), "{md}");
        assert!(md.contains("| Linux to Linux | 80.0 | 1.0x | - | - | - | - | - | 1 |"), "{md}");
        assert!(md.contains("| dom0 to Cohort | 40.0 | 0.50x |"), "{md}");
        assert!(!md.contains("| net.tcp_stream | linux-to-linux-netfront"), "shown figures are not repeated: {md}");
    }

    #[test]
    fn iperf3_figures_sit_beside_the_others() {
        let mut figures = vec![
            fig("net.tcp_rr", "linux-to-linux-netfront", 5000.0, "virtual"),
            fig("net.tcp_stream", "netfront/default", 1300.0, "virtual"),
            fig("net.iperf3_tcp", "netfront/default", 1200.0, "virtual"),
            fig("net.iperf3_tcp", "channel/default", 4000.0, "virtual"),
        ];
        for v in [900.0, 950.0, 1000.0] {
            figures.push(fig("net.iperf3_tcp", "linux-to-linux-netfront", v, "virtual"));
        }
        let rows = reference(&figures, "virtual");
        assert_eq!(rows[0].iperf3, s(1200.0, 1200.0, 1200.0, 1));
        assert_eq!(rows[1].iperf3, s(950.0, 900.0, 1000.0, 3));
        let md = markdown(&figures);
        assert!(md.contains("| Cohort to Cohort (default) | 1300.0 | - | 1200.0 | 1.3x | - | - | - | 1 |"), "{md}");
        assert!(md.contains("| Linux to Linux | - | - | 950.0 (900.0–1000.0) | 1.0x | 5000 | 1.0x | - | 1–3 |"), "{md}");
        assert!(md.contains("iperf3: Debian's iperf3 3.12"), "{md}");
        assert!(!md.contains("| net.iperf3_tcp | linux-to-linux-netfront"), "shown figures are not repeated: {md}");
        assert!(md.contains("| net.iperf3_tcp | channel/default | virtual | 4000.000 |"), "{md}");
    }

    #[test]
    fn guest_types_put_pv_beside_pvh() {
        let mut figures = vec![
            fig("net.tcp_stream", "channel/default", 5000.0, "virtual"),
            fig("net.tcp_stream", "channel/pv", 4000.0, "virtual"),
            fig("net.tcp_rr", "netfront/pv", 3000.0, "virtual"),
            fig("xen.grant_map_unmap", "xen-pv", 9.0, "virtual"),
            fig("evtchn.ping_pong_round_trip", "xen-pv", 80.0, "virtual"),
            fig("xen.hypercall_round_trip", "xen-pvh", 8000.0, "wall"),
        ];
        for (pvh, pv) in [(8500.0, 400.0), (8400.0, 500.0), (8600.0, 450.0)] {
            figures.push(fig("xen.hypercall_round_trip", "xen-pvh", pvh, "virtual"));
            figures.push(fig("xen.hypercall_round_trip", "xen-pv", pv, "virtual"));
        }
        let rows = guest_types(&figures, "virtual");
        assert_eq!(
            rows.iter().map(|r| r.what).collect::<Vec<_>>(),
            ["hypercall round trip (ns)", "grant map + unmap (ns)", "channel stream (Mbit/s)", "netfront RR (/s)"]
        );
        assert_eq!((rows[0].pvh, rows[0].pv), (s(8500.0, 8400.0, 8600.0, 3), s(450.0, 400.0, 500.0, 3)));
        assert_eq!(rows[2].ratio(), Some(0.8));
        assert!(guest_types(&figures, "wall").is_empty(), "no PV figure, no table");
        let md = markdown(&figures);
        assert!(md.contains("### Guest type: PVH against PV, the same image (virtual clock)"), "{md}");
        assert!(!md.contains("(wall clock)\n\n| figure"), "{md}");
        assert!(md.contains("| hypercall round trip (ns) | 8500 (8400–8600) | 450 (400–500) | 0.05x | 3 |"), "{md}");
        assert!(md.contains("| grant map + unmap (ns) | - | 9 | - | 1 |"), "{md}");
        assert!(md.contains("| channel stream (Mbit/s) | 5000.0 | 4000.0 | 0.80x | 1 |"), "{md}");
        // The pv configuration is a row of the channel/netfront table too.
        assert!(md.contains("| pv | 4000.0 | - | - | - | 3000 |"), "{md}");
        assert!(!md.contains("| xen.hypercall_round_trip | xen-pv |"), "shown figures are not repeated: {md}");
        assert!(md.contains("| xen.hypercall_round_trip | xen-pvh | wall |"), "{md}");
        assert!(md.contains("| evtchn.ping_pong_round_trip | xen-pv | virtual |"), "{md}");
    }

    #[test]
    fn reference_figures_without_linux_land_in_the_other_table() {
        let figures = [fig("net.tcp_stream", "dom0-to-guest-netfront", 50.0, "wall")];
        let md = markdown(&figures);
        assert!(!md.contains("Linux"), "{md}");
        assert!(md.contains("| net.tcp_stream | dom0-to-guest-netfront | wall | 50.000 |"), "{md}");
    }

    #[test]
    fn charts_are_written_as_svg_and_png() {
        let mut figures = Vec::new();
        for (i, v) in [2000.0, 2100.0, 1900.0].into_iter().enumerate() {
            figures.push(fig("net.tcp_stream", "channel/default", v, "virtual"));
            figures.push(fig("net.tcp_stream", "netfront/default", v / 10.0, "virtual"));
            figures.push(fig("net.tcp_rr", "channel/ring8", 9000.0 + i as f64, "virtual"));
            figures.push(fig("net.tcp_rr", "netfront/ring8", 3000.0, "virtual"));
        }
        figures.push(fig("net.tcp_stream", "channel", 60.0, "wall"));
        figures.push(fig("boot.x", "boot", 1.0, "other"));

        let chart = svg(&figures, "virtual").unwrap().unwrap();
        assert!(chart.starts_with("<svg"), "{chart}");
        for text in ["TCP stream, virtual clock", "ring8", "default", "shared-memory channel", "netfront (dom0 bridge)"] {
            assert!(chart.contains(text), "{text} missing from {chart}");
        }
        // Bars (and the legend swatch) in each series colour: channel has
        // a stream bar (default) and an RR bar (ring8), netfront the same.
        for color in ["#2A7AB9", "#D9822B"] {
            assert_eq!(chart.matches(&format!("fill=\"{color}\"")).count(), 2 + 2, "{color} in {chart}");
        }

        let dir = std::env::temp_dir().join(format!("cohort-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let prefix = dir.join("net");
        let written = write_charts(&figures, prefix.to_str().unwrap()).unwrap();
        let names: Vec<String> =
            written.iter().map(|p| std::path::Path::new(p).file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["net-virtual.svg", "net-virtual.png", "net-wall.svg", "net-wall.png"]);
        for path in &written {
            let bytes = std::fs::read(path).unwrap();
            assert!(bytes.len() > 1000, "{path}: {} bytes", bytes.len());
            if path.ends_with(".png") {
                assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{path}");
            } else {
                assert!(bytes.starts_with(b"<svg"), "{path}");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
