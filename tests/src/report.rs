//! `cohort-harness report`: turns `BENCH` lines into tables (Markdown) and
//! a bar chart (SVG) comparing the shared-memory channel with netfront per
//! configuration and clock.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One `BENCH` line. Keys other than these five are ignored.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Figure {
    pub name: String,
    pub path: String,
    pub value: f64,
    pub unit: String,
    pub clock: String,
}

/// Where a `BENCH` object starts in a line, if the line has one.
fn bench_json(line: &str) -> Option<&str> {
    let at = line.find("BENCH {")?;
    Some(&line[at + "BENCH ".len()..])
}

/// Parses `BENCH {"name":...,"path":...,"value":...,"unit":...,"clock":...}`
/// anywhere in a line (console prefixes do not matter, nor does anything
/// after the object). `Ok(None)` for a line without `BENCH {`, `Err` with
/// serde_json's reason for one whose object does not parse.
pub fn parse_line(line: &str) -> Result<Option<Figure>, String> {
    let Some(json) = bench_json(line) else { return Ok(None) };
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

/// A netbench configuration's figures: `(path kind, config)` from a path
/// like `channel/ring8` (a bare `channel` is the default configuration).
fn split_path(path: &str) -> (&str, &str) {
    path.split_once('/').unwrap_or((path, "default"))
}

/// The channel-vs-netfront comparison of one clock, per configuration:
/// (config, stream channel, stream netfront, rr channel, rr netfront,
/// rr p50 channel, rr p50 netfront). The last figure of a kind wins.
pub type Row = (String, Option<f64>, Option<f64>, Option<f64>, Option<f64>, Option<f64>, Option<f64>);

pub fn comparison(figures: &[Figure], clock: &str) -> Vec<Row> {
    let mut by_config: BTreeMap<String, [Option<f64>; 6]> = BTreeMap::new();
    for f in figures.iter().filter(|f| f.clock == clock) {
        let (kind, config) = split_path(&f.path);
        let slot = match (f.name.as_str(), kind) {
            ("net.tcp_stream", "channel") => 0,
            ("net.tcp_stream", "netfront") => 1,
            ("net.tcp_rr", "channel") => 2,
            ("net.tcp_rr", "netfront") => 3,
            ("net.tcp_rr_latency_p50", "channel") => 4,
            ("net.tcp_rr_latency_p50", "netfront") => 5,
            _ => continue,
        };
        by_config.entry(config.to_string()).or_default()[slot] = Some(f.value);
    }
    // The default configuration first.
    let mut rows: Vec<Row> =
        by_config.into_iter().map(|(c, v)| (c, v[0], v[1], v[2], v[3], v[4], v[5])).collect();
    rows.sort_by_key(|r| (r.0 != "default", r.0.clone()));
    rows
}

fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.1}x", a / b),
        _ => "-".into(),
    }
}

/// The netfront paths side by side with the Linux reference guests, per
/// clock: (what, stream Mbit/s, RR /s, RR p50 us), for the paths measured.
pub type ReferenceRow = (&'static str, Option<f64>, Option<f64>, Option<f64>);

const REFERENCE_PATHS: [(&str, &str); 6] = [
    ("netfront", "Cohort to Cohort (netbench, default)"),
    ("linux-to-linux-netfront", "Linux to Linux (netref)"),
    ("linux-to-linux-nogso-netfront", "Linux to Linux, no TSO/GSO (netref)"),
    ("linux-to-cohort-netfront", "Linux to Cohort (netref)"),
    ("dom0-to-guest-netfront", "dom0 to Cohort (busybox nc)"),
    ("dom0-to-linux-netfront", "dom0 to Linux (busybox nc)"),
];

pub fn reference(figures: &[Figure], clock: &str) -> Vec<ReferenceRow> {
    // Paths compare as netbench's do: a bare `netfront` is `netfront/default`.
    let value = |path: &str, name: &str| {
        figures
            .iter()
            .rev()
            .find(|f| f.clock == clock && split_path(&f.path) == split_path(path) && f.name == name)
            .map(|f| f.value)
    };
    REFERENCE_PATHS
        .iter()
        .map(|&(path, what)| {
            (what, value(path, "net.tcp_stream"), value(path, "net.tcp_rr"), value(path, "net.tcp_rr_latency_p50"))
        })
        .filter(|row| row.1.is_some() || row.2.is_some())
        .collect()
}

/// The Markdown report: the comparison per clock, then every figure.
pub fn markdown(figures: &[Figure]) -> String {
    let mut out = String::new();
    for clock in ["virtual", "wall"] {
        let rows = comparison(figures, clock);
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### Shared-memory channel vs netfront, guest to guest ({clock} clock)\n");
        out.push_str("| configuration | stream channel (Mbit/s) | stream netfront (Mbit/s) | ratio | RR channel (/s) | RR netfront (/s) | ratio | RR p50 channel (us) | RR p50 netfront (us) |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (config, sc, sn, rc, rn, lc, ln) in rows {
            let _ = writeln!(
                out,
                "| {config} | {} | {} | {} | {} | {} | {} | {} | {} |",
                num(sc, 1),
                num(sn, 1),
                ratio(sc, sn),
                num(rc, 0),
                num(rn, 0),
                ratio(rc, rn),
                num(lc, 1),
                num(ln, 1)
            );
        }
        out.push('\n');
    }
    for clock in ["virtual", "wall"] {
        let rows = reference(figures, clock);
        // Only worth a table when a Linux guest was measured.
        if rows.iter().all(|r| !r.0.contains("Linux")) {
            continue;
        }
        let _ = writeln!(out, "### Netfront: Cohort and Linux guests ({clock} clock)\n");
        out.push_str("| path | stream (Mbit/s) | RR (/s) | RR p50 (us) |\n|---|---:|---:|---:|\n");
        for (what, stream, rr, p50) in rows {
            let _ = writeln!(out, "| {what} | {} | {} | {} |", num(stream, 1), num(rr, 0), num(p50, 1));
        }
        out.push('\n');
    }
    out.push_str("### Every figure\n\n| name | path | value | unit | clock |\n|---|---|---:|---|---|\n");
    for f in figures {
        let _ = writeln!(out, "| {} | {} | {:.3} | {} | {} |", f.name, f.path, f.value, f.unit, f.clock);
    }
    out
}

/// A grouped bar chart: per configuration, channel and netfront bars for
/// stream throughput (left panel) and RR rate (right panel), one clock.
/// The channel and netfront values of one panel.
type Pick = fn(&Row) -> (Option<f64>, Option<f64>);

pub fn svg(figures: &[Figure], clock: &str) -> Option<String> {
    let rows = comparison(figures, clock);
    if rows.is_empty() {
        return None;
    }
    let (panel_w, panel_h, top, bottom, left) = (460.0, 300.0, 50.0, 90.0, 60.0);
    let width = 2.0 * (panel_w + left) + 40.0;
    let height = top + panel_h + bottom;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let panels: [(&str, Pick); 2] =
        [("TCP stream (Mbit/s)", |r| (r.1, r.2)), ("TCP request/response (/s)", |r| (r.3, r.4))];
    for (p, (title, pick)) in panels.iter().enumerate() {
        let x0 = 20.0 + p as f64 * (panel_w + left + 20.0) + left;
        let max = rows.iter().flat_map(|r| [pick(r).0, pick(r).1]).flatten().fold(0.0f64, f64::max).max(1e-9);
        let _ = writeln!(s, r#"<text x="{}" y="24" font-size="14" font-weight="bold">{title}, {clock} clock</text>"#, x0);
        let _ = writeln!(s, r#"<line x1="{x0}" y1="{}" x2="{}" y2="{}" stroke="black"/>"#, top + panel_h, x0 + panel_w, top + panel_h);
        let _ = writeln!(s, r#"<line x1="{x0}" y1="{top}" x2="{x0}" y2="{}" stroke="black"/>"#, top + panel_h);
        for t in 0..=4 {
            let v = max * f64::from(t) / 4.0;
            let y = top + panel_h - panel_h * f64::from(t) / 4.0;
            let _ = writeln!(s, r#"<text x="{}" y="{}" text-anchor="end">{:.0}</text>"#, x0 - 4.0, y + 4.0, v);
        }
        let group = panel_w / rows.len() as f64;
        let bar = (group * 0.35).min(40.0);
        for (i, row) in rows.iter().enumerate() {
            let gx = x0 + i as f64 * group + group / 2.0;
            for (j, (value, color)) in [(pick(row).0, "#2a7ab9"), (pick(row).1, "#d9822b")].into_iter().enumerate() {
                let Some(v) = value else { continue };
                let h = panel_h * v / max;
                let x = gx - bar + j as f64 * bar;
                let _ = writeln!(s, r#"<rect x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{h:.1}" fill="{color}"/>"#, top + panel_h - h);
            }
            let _ = writeln!(
                s,
                r#"<text x="{gx:.1}" y="{}" text-anchor="end" transform="rotate(-35 {gx:.1} {})">{}</text>"#,
                top + panel_h + 16.0,
                top + panel_h + 16.0,
                row.0
            );
        }
    }
    let ly = height - 14.0;
    let _ = writeln!(s, r##"<rect x="20" y="{}" width="12" height="12" fill="#2a7ab9"/><text x="38" y="{ly}">shared-memory channel</text>"##, ly - 10.0);
    let _ = writeln!(s, r##"<rect x="200" y="{}" width="12" height="12" fill="#d9822b"/><text x="218" y="{ly}">netfront (dom0 bridge)</text>"##, ly - 10.0);
    s.push_str("</svg>\n");
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(name: &str, path: &str, value: f64, clock: &str) -> Figure {
        Figure { name: name.into(), path: path.into(), value, unit: "u".into(), clock: clock.into() }
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
    fn escaped_characters_in_strings_parse() {
        let line = r#"BENCH {"name":"a \"quoted\" name","path":"x\\y\/z","value":1.5e3,"unit":"\u00b5s","clock":"wall"}"#;
        let f = parse(line).unwrap();
        assert_eq!(f.name, "a \"quoted\" name");
        assert_eq!(f.path, "x\\y/z");
        assert_eq!(f.unit, "µs");
        assert_eq!(f.value, 1500.0);
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
        assert_eq!(rows[0].0, "default");
        assert_eq!((rows[0].1, rows[0].2), (Some(2000.0), Some(200.0)));
        assert_eq!((rows[1].0.as_str(), rows[1].3, rows[1].4), ("ring8", Some(9000.0), Some(3000.0)));
        let md = markdown(&figures);
        assert!(md.contains("| default | 2000.0 | 200.0 | 10.0x |"), "{md}");
        assert!(md.contains("| ring8 | - | - | - | 9000 | 3000 | 3.0x |"), "{md}");
        let chart = svg(&figures, "virtual").unwrap();
        assert_eq!(chart.matches("<rect x=").count(), 4 + 2, "four bars and two legend swatches");
        assert!(svg(&figures, "none").is_none());
        assert!(!md.contains("Linux"), "no reference table without Linux figures");
    }

    #[test]
    fn reference_rows_put_netfront_beside_linux() {
        let figures = [
            fig("net.tcp_stream", "netfront/default", 200.0, "virtual"),
            fig("net.tcp_rr", "netfront/default", 2300.0, "virtual"),
            fig("net.tcp_stream", "netfront/ring8", 1.0, "virtual"),
            fig("net.tcp_stream", "linux-to-linux-netfront", 900.0, "virtual"),
            fig("net.tcp_rr", "linux-to-linux-netfront", 5000.0, "virtual"),
            fig("net.tcp_rr_latency_p50", "linux-to-linux-netfront", 150.0, "virtual"),
            fig("net.tcp_stream", "linux-to-linux-netfront", 80.0, "wall"),
        ];
        let rows = reference(&figures, "virtual");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0], ("Cohort to Cohort (netbench, default)", Some(200.0), Some(2300.0), None));
        assert_eq!(rows[1], ("Linux to Linux (netref)", Some(900.0), Some(5000.0), Some(150.0)));
        let md = markdown(&figures);
        assert!(md.contains("| Linux to Linux (netref) | 900.0 | 5000 | 150.0 |"), "{md}");
        assert!(md.contains("| Linux to Linux (netref) | 80.0 | - | - |"), "{md}");
    }
}
