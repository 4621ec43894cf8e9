//! `cohort-harness compare`: a bench run against earlier runs of the same
//! benchmarks. Three repetitions do not bound a figure across runs (see the
//! README's "Run to run"), so the question asked is the one the README
//! answers by hand: does this run's median fall inside the min–max of every
//! repetition the earlier runs made, and if not, by how much?

use crate::report::{summarize, text_cell, Figure, Stat};
use std::collections::HashMap;
use std::fmt::Write as _;

/// Fewer repetitions than this, on either side, and a figure is not compared.
pub const MIN_REPETITIONS: usize = 3;

/// A median this close to the earlier range (relative to the bound it
/// passed) is reported apart from those further out.
pub const NEAR: f64 = 0.025;

/// One figure of the new run set beside the earlier runs' repetitions.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    pub name: String,
    pub path: String,
    pub clock: String,
    pub unit: String,
    pub new: Stat,
    /// Every earlier repetition, pooled.
    pub earlier: Stat,
    /// How far the new median lies outside the earlier range, as a fraction
    /// of the bound it passed: 0 inside, negative below, positive above;
    /// infinite past a bound of 0, where no fraction means anything.
    pub beyond: f64,
}

impl Placement {
    pub fn inside(&self) -> bool {
        self.beyond == 0.0
    }
}

/// What `compare` found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    /// Figures with enough repetitions on both sides, in the new run's order.
    pub placed: Vec<Placement>,
    /// Figures (`name path (clock) [unit]`) measured at least
    /// MIN_REPETITIONS times in the new run but not before.
    pub only_new: Vec<String>,
    /// ... and the other way round.
    pub only_earlier: Vec<String>,
}

fn beyond(median: f64, earlier: &Stat) -> f64 {
    let rel = |bound: f64| if bound == 0.0 { (median - bound).signum() * f64::INFINITY } else { (median - bound) / bound.abs() };
    if median > earlier.max {
        rel(earlier.max)
    } else if median < earlier.min {
        rel(earlier.min)
    } else {
        0.0
    }
}

fn label(name: &str, path: &str, clock: &str, unit: &str) -> String {
    format!("{name} {path} ({clock}) [{unit}]")
}

/// Sets each figure of `new` beside all of `earlier`'s repetitions of the
/// same name, path, clock and unit.
pub fn compare(new: &[Figure], earlier: &[Figure]) -> Comparison {
    let earlier_sums = summarize(earlier);
    let mut before: HashMap<(&str, &str, &str, &str), &Stat> = HashMap::new();
    for s in earlier_sums.iter().filter(|s| s.stat.n >= MIN_REPETITIONS) {
        before.insert((&s.name, &s.path, &s.clock, &s.unit), &s.stat);
    }
    let mut out = Comparison::default();
    let new_sums = summarize(new);
    for s in new_sums.iter().filter(|s| s.stat.n >= MIN_REPETITIONS) {
        match before.remove(&(s.name.as_str(), s.path.as_str(), s.clock.as_str(), s.unit.as_str())) {
            Some(earlier) => out.placed.push(Placement {
                name: s.name.clone(),
                path: s.path.clone(),
                clock: s.clock.clone(),
                unit: s.unit.clone(),
                new: s.stat,
                earlier: *earlier,
                beyond: beyond(s.stat.median, earlier),
            }),
            None => out.only_new.push(label(&s.name, &s.path, &s.clock, &s.unit)),
        }
    }
    out.only_earlier = earlier_sums
        .iter()
        .filter(|s| before.contains_key(&(s.name.as_str(), s.path.as_str(), s.clock.as_str(), s.unit.as_str())))
        .map(|s| label(&s.name, &s.path, &s.clock, &s.unit))
        .collect();
    out
}

/// Three decimals for small figures (ratios, calls per frame), one else.
fn num(v: f64) -> String {
    if v.abs() < 10.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.1}")
    }
}

fn cell(s: &Stat) -> String {
    format!("{} ({}–{}, n={})", num(s.median), num(s.min), num(s.max), s.n)
}

fn beyond_cell(beyond: f64) -> String {
    if beyond.is_infinite() {
        format!("{} 0", if beyond > 0.0 { "above" } else { "below" })
    } else if beyond.abs() < 0.01 {
        // So that 0.03 % does not read as +0.0, as if inside.
        format!("{:+.2} %", beyond * 100.0)
    } else {
        format!("{:+.1} %", beyond * 100.0)
    }
}

/// The comparison as Markdown: the counts, then every figure outside,
/// furthest first.
pub fn markdown(c: &Comparison) -> String {
    let inside = c.placed.iter().filter(|p| p.inside()).count();
    let near = c.placed.iter().filter(|p| !p.inside() && p.beyond.abs() <= NEAR).count();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "{inside} of {} medians fall inside the earlier runs' repetitions; {near} more within {:.1} % of them; {} further out.",
        c.placed.len(),
        NEAR * 100.0,
        c.placed.len() - inside - near
    );
    let _ = writeln!(
        md,
        "Figures with at least {MIN_REPETITIONS} repetitions on each side; {} only in this run, {} only in the earlier ones.",
        c.only_new.len(),
        c.only_earlier.len()
    );
    let mut outside: Vec<&Placement> = c.placed.iter().filter(|p| !p.inside()).collect();
    outside.sort_by(|a, b| b.beyond.abs().total_cmp(&a.beyond.abs()));
    if !outside.is_empty() {
        md.push_str("\n| figure | path | clock | unit | this run | earlier | beyond |\n|---|---|---|---|---:|---:|---:|\n");
        for p in outside {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} |",
                text_cell(&p.name),
                text_cell(&p.path),
                text_cell(&p.clock),
                text_cell(&p.unit),
                cell(&p.new),
                cell(&p.earlier),
                beyond_cell(p.beyond)
            );
        }
    }
    for (title, list) in [
        ("Only in this run, or too few times in the earlier ones", &c.only_new),
        ("Only in the earlier runs, or too few times in this one", &c.only_earlier),
    ] {
        if !list.is_empty() {
            let _ = writeln!(md, "\n{title}: {}.", list.join(", "));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(name: &str, path: &str, value: f64) -> Figure {
        Figure { name: name.into(), path: path.into(), value, unit: "u".into(), clock: "virtual".into() }
    }

    fn run(name: &str, path: &str, values: &[f64]) -> Vec<Figure> {
        values.iter().map(|&v| fig(name, path, v)).collect()
    }

    #[test]
    fn medians_are_placed_against_pooled_earlier_repetitions() {
        let mut earlier = run("a", "channel", &[10.0, 11.0, 12.0]);
        earlier.extend(run("a", "channel", &[14.0, 13.0, 12.0])); // a second run: pooled to 10–14
        earlier.extend(run("b", "netfront", &[100.0, 100.0, 100.0]));
        earlier.extend(run("gone", "x", &[1.0, 1.0, 1.0]));
        earlier.extend(run("few", "x", &[1.0, 1.0]));
        let mut new = run("a", "channel", &[13.0, 14.0, 20.0]); // median 14: inside
        new.extend(run("b", "netfront", &[90.0, 80.0, 95.0])); // median 90: 10 % below
        new.extend(run("fresh", "y", &[1.0, 2.0, 3.0]));
        new.extend(run("few", "x", &[1.0, 1.0, 1.0])); // too few before
        let c = compare(&new, &earlier);
        assert_eq!(c.placed.len(), 2);
        assert!(c.placed[0].inside() && c.placed[0].earlier.n == 6 && c.placed[0].earlier.max == 14.0);
        assert!((c.placed[1].beyond + 0.10).abs() < 1e-12, "{:?}", c.placed[1]);
        assert_eq!(c.only_new, ["fresh y (virtual) [u]", "few x (virtual) [u]"]);
        assert_eq!(c.only_earlier, ["gone x (virtual) [u]"]);
        let md = markdown(&c);
        assert!(md.starts_with("1 of 2 medians fall inside"), "{md}");
        assert!(md.contains("0 more within 2.5 % of them; 1 further out"), "{md}");
        assert!(
            md.contains("| b | netfront | virtual | u | 90.0 (80.0–95.0, n=3) | 100.0 (100.0–100.0, n=3) | -10.0 % |"),
            "{md}"
        );
    }

    #[test]
    fn clocks_units_and_near_misses_stay_apart() {
        let earlier = run("a", "p", &[100.0, 100.0, 100.0]);
        let mut wall = run("a", "p", &[100.0, 100.0, 100.0]);
        wall.iter_mut().for_each(|f| f.clock = "wall".into());
        let c = compare(&wall, &earlier);
        assert!(c.placed.is_empty() && c.only_new.len() == 1 && c.only_earlier.len() == 1);
        let mut other_unit = run("a", "p", &[100.0, 100.0, 100.0]);
        other_unit.iter_mut().for_each(|f| f.unit = "v".into());
        let c = compare(&other_unit, &earlier);
        assert!(c.placed.is_empty(), "a unit of its own is another figure");
        assert_eq!((c.only_new[0].as_str(), c.only_earlier[0].as_str()), ("a p (virtual) [v]", "a p (virtual) [u]"));
        let c = compare(&run("a", "p", &[102.0, 102.0, 102.0]), &earlier);
        assert!((c.placed[0].beyond - 0.02).abs() < 1e-12);
        let md = markdown(&c);
        assert!(md.contains("0 of 1 medians fall inside the earlier runs' repetitions; 1 more within 2.5 %"), "{md}");
        assert!(md.contains("| +2.0 % |"), "{md}");
        let md = markdown(&compare(&run("a", "p", &[100.03, 100.03, 100.03]), &earlier));
        assert!(md.contains("| +0.03 % |"), "a near miss does not read as +0.0: {md}");
        let md = markdown(&compare(&run("a|b", "p", &[90.0, 90.0, 90.0]), &run("a|b", "p", &[100.0, 100.0, 100.0])));
        assert!(md.contains("| a\\|b | p |"), "a name's | is escaped as the report does: {md}");
    }

    #[test]
    fn a_bound_of_zero_has_no_fraction() {
        let c = compare(&run("r", "p", &[0.5, 0.5, 0.5]), &run("r", "p", &[0.0, 0.0, 0.0]));
        assert!(c.placed[0].beyond == f64::INFINITY && !c.placed[0].inside());
        let md = markdown(&c);
        assert!(md.contains("0 of 1 medians") && md.contains("1 further out"), "{md}");
        assert!(md.contains("| 0.500 (0.500–0.500, n=3) | 0.000 (0.000–0.000, n=3) | above 0 |"), "{md}");
    }
}
