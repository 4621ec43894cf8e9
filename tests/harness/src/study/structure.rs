//! The report's structure, checked (by `./run.sh study` after writing it,
//! and by the test on a `--quick` run's report): every question the matrix
//! measures has its section, every question section has a figure, every
//! figure has its SVG and PNG beside the report and a spread table whose
//! rows hold at least `reps` repetitions with min <= q1 <= median <= q3 <= max.

use std::path::Path;

/// A figure block: its file name (without `.svg`) and the lines after it,
/// up to the next figure or heading.
struct Block<'a> {
    name: &'a str,
    lines: Vec<&'a str>,
}

/// `![TITLE](NAME.svg)` → `NAME`.
fn figure_name(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("![")?;
    let (_, target) = rest.split_once("](")?;
    target.strip_suffix(".svg)")
}

/// The sections `## ...` of the report with their figure blocks.
fn sections(report: &str) -> Vec<(&str, Vec<Block<'_>>)> {
    let mut out: Vec<(&str, Vec<Block<'_>>)> = Vec::new();
    for line in report.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            out.push((h, Vec::new()));
        } else if let Some((_, blocks)) = out.last_mut() {
            if let Some(name) = figure_name(line) {
                blocks.push(Block { name, lines: Vec::new() });
            } else if line.starts_with("### ") {
                // A sub-heading ends the block before it.
                blocks.push(Block { name: "", lines: Vec::new() });
            } else if let Some(b) = blocks.last_mut() {
                b.lines.push(line);
            }
        }
    }
    for (_, blocks) in &mut out {
        blocks.retain(|b| !b.name.is_empty());
    }
    out
}

fn cells(line: &str) -> Vec<&str> {
    line.trim().trim_matches('|').split('|').map(str::trim).collect()
}

/// The problems of one figure's spread table.
fn check_table(name: &str, lines: &[&str], reps: usize, problems: &mut Vec<String>) {
    if !lines.iter().any(|l| l.contains("Spread:")) {
        problems.push(format!("figure {name}: no `Spread:` line saying what it draws"));
    }
    let mut table = lines.iter().copied().filter(|l| l.trim_start().starts_with('|'));
    let Some(header) = table.next() else {
        problems.push(format!("figure {name}: no spread table"));
        return;
    };
    let header = cells(header);
    let col = |c: &str| header.iter().position(|h| *h == c);
    let (Some(n), Some(median), Some(min), Some(max), Some(q1), Some(q3)) =
        (col("n"), col("median"), col("min"), col("max"), col("q1"), col("q3"))
    else {
        problems.push(format!("figure {name}: the spread table lacks one of n, median, min, max, q1, q3"));
        return;
    };
    let rows: Vec<Vec<&str>> = table.skip(1).map(cells).collect();
    if rows.is_empty() {
        problems.push(format!("figure {name}: the spread table has no row"));
    }
    for row in rows {
        let num = |i: usize| row.get(i).and_then(|c| c.parse::<f64>().ok());
        match (num(n), num(median), num(min), num(max), num(q1), num(q3)) {
            (Some(n), Some(md), Some(lo), Some(hi), Some(a), Some(b)) => {
                if (n as usize) < reps {
                    problems.push(format!("figure {name}: a row of {n} repetitions, fewer than {reps}: {}", row.join(" | ")));
                }
                if !(lo <= a && a <= md && md <= b && b <= hi) {
                    problems.push(format!("figure {name}: a row whose spread is out of order: {}", row.join(" | ")));
                }
            }
            _ => problems.push(format!("figure {name}: a row without numbers: {}", row.join(" | "))),
        }
    }
}

fn check_files(dir: &Path, name: &str, problems: &mut Vec<String>) {
    match std::fs::read_to_string(dir.join(format!("{name}.svg"))) {
        Ok(svg) if svg.contains("<svg") => {}
        Ok(_) => problems.push(format!("figure {name}: {name}.svg is no SVG")),
        Err(e) => problems.push(format!("figure {name}: {name}.svg: {e}")),
    }
    match std::fs::read(dir.join(format!("{name}.png"))) {
        Ok(png) if png.starts_with(b"\x89PNG") => {}
        Ok(_) => problems.push(format!("figure {name}: {name}.png is no PNG")),
        Err(e) => problems.push(format!("figure {name}: {name}.png: {e}")),
    }
}

/// What is wrong with `report` (figures in `dir`); empty when nothing is.
/// `questions`: the questions the run's matrix measures.
pub fn check(report: &str, dir: &Path, questions: &[u8], reps: usize) -> Vec<String> {
    let mut problems = Vec::new();
    let sections = sections(report);
    for q in questions {
        let prefix = format!("Question {q}:");
        if !sections.iter().any(|(h, _)| h.starts_with(&prefix)) {
            problems.push(format!("no section for question {q}"));
        }
    }
    // Every report compares with the published anchors, in a section of its own.
    let anchors = super::anchors::HEADING.trim_start_matches("## ");
    if questions.contains(&3) && !sections.iter().any(|(h, _)| *h == anchors) {
        problems.push(format!("no section `{anchors}`"));
    }
    for (heading, blocks) in &sections {
        if heading.starts_with("Question ") && blocks.is_empty() {
            problems.push(format!("section `{heading}` has no figure"));
        }
        for b in blocks {
            check_files(dir, b.name, &mut problems);
            check_table(b.name, &b.lines, reps, &mut problems);
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "# r\n\n## Question 2: x\n\n![t](a.svg)\n\nPNG: a.png. Spread: box IQR.\n\n\
        | panel | series | value | n | median | min | max | q1 | q3 | unit |\n| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n\
        | p | s | on | 5 | 3.0 | 1.0 | 5.0 | 2.0 | 4.0 | u |\n\n## Question 3: y\n\n### Factor: m\n\n![t](a.svg)\n\nSpread: whiskers.\n\n\
        | n | median | min | max | q1 | q3 |\n| - | - | - | - | - | - |\n| 5 | 3 | 1 | 5 | 2 | 4 |\n\n## Limits\n\nnone\n\n## Published anchors\n\nx\n";

    fn dir_with_figure() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("cohort-study-structure-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.svg"), "<svg></svg>").unwrap();
        std::fs::write(dir.join("a.png"), b"\x89PNG....").unwrap();
        dir
    }

    #[test]
    fn a_good_report_passes_and_each_defect_is_named() {
        let dir = dir_with_figure();
        assert_eq!(check(GOOD, &dir, &[2, 3], 5), Vec::<String>::new());
        // A question the matrix measures without its section.
        assert!(check(GOOD, &dir, &[1, 2, 3], 5).iter().any(|p| p.contains("no section for question 1")));
        // No anchors section.
        let no_anchors = GOOD.replace("## Published anchors", "## Anchors");
        assert!(check(&no_anchors, &dir, &[2, 3], 5).iter().any(|p| p.contains("no section `Published anchors`")));
        // A question section without a figure.
        let bare = GOOD.replace("![t](a.svg)\n\nPNG", "PNG");
        assert!(check(&bare, &dir, &[2, 3], 5).iter().any(|p| p.contains("has no figure")));
        // A figure without its spread: no table, no Spread line, a missing column.
        let no_table = GOOD.replace("| p | s | on | 5 | 3.0 | 1.0 | 5.0 | 2.0 | 4.0 | u |\n", "");
        assert!(check(&no_table, &dir, &[2, 3], 5).iter().any(|p| p.contains("no row")));
        let no_line = GOOD.replace("Spread: whiskers.", "");
        assert!(check(&no_line, &dir, &[2, 3], 5).iter().any(|p| p.contains("no `Spread:`")));
        let no_q3 = GOOD.replace("| n | median | min | max | q1 | q3 |", "| n | median | min | max | q1 | x |");
        assert!(check(&no_q3, &dir, &[2, 3], 5).iter().any(|p| p.contains("lacks")));
        // Too few repetitions, a spread out of order.
        assert!(check(GOOD, &dir, &[2, 3], 6).iter().any(|p| p.contains("fewer than 6")));
        let disorder = GOOD.replace("| 5 | 3 | 1 | 5 | 2 | 4 |", "| 5 | 3 | 4 | 5 | 2 | 4 |");
        assert!(check(&disorder, &dir, &[2, 3], 5).iter().any(|p| p.contains("out of order")));
        // Figure files missing or not what they say.
        std::fs::write(dir.join("a.png"), b"GIF89a").unwrap();
        assert!(check(GOOD, &dir, &[2, 3], 5).iter().any(|p| p.contains("no PNG")));
        std::fs::remove_file(dir.join("a.svg")).unwrap();
        assert!(check(GOOD, &dir, &[2, 3], 5).iter().any(|p| p.contains("a.svg:")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
