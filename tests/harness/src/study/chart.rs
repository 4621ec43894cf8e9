//! The study's figures: panels side by side, each a category axis (a
//! factor's values) with one series per path or percentile, every point
//! drawn at its median with its min–max whisker and its interquartile box,
//! so that no figure shows a value without its spread.

use super::points::Spread;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// One series: a label and a spread per category (none where unmeasured).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub label: String,
    pub spreads: Vec<Option<Spread>>,
}

/// One panel of a figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    pub title: String,
    pub unit: String,
    pub categories: Vec<String>,
    pub series: Vec<Series>,
}

const COLORS: [RGBColor; 4] = [
    RGBColor(0x2a, 0x7a, 0xb9),
    RGBColor(0xd9, 0x82, 0x2b),
    RGBColor(0x3a, 0x9a, 0x4a),
    RGBColor(0x8e, 0x44, 0xad),
];

fn size(panels: usize) -> (u32, u32) {
    (520 * panels.max(1) as u32, 420)
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let n = panel.categories.len().max(1) as i32;
    let top = panel.series.iter().flat_map(|s| s.spreads.iter().flatten()).map(|s| s.max).fold(0.0, f64::max);
    let top = if top > 0.0 { top * 1.25 } else { 1.0 };
    // x in hundredths of a category (plotters labels integer axes only).
    let centers: Vec<i32> = (0..n).map(|i| 100 * i + 50).collect();
    let label = |x: &i32| usize::try_from(x / 100).ok().and_then(|i| panel.categories.get(i)).cloned().unwrap_or_default();
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(34)
        .y_label_area_size(70)
        .build_cartesian_2d((0..100 * n).with_key_points(centers), 0.0..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&label)
        .y_labels(8)
        .y_label_formatter(&|v| if top < 10.0 { format!("{v:.1}") } else { format!("{v:.0}") })
        .y_desc(format!("{} (median; box IQR, whisker min–max)", panel.unit))
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 12))
        .draw()
        .map_err(err)?;
    let k = panel.series.len().max(1) as i32;
    for (j, series) in panel.series.iter().enumerate() {
        let color = COLORS[j % COLORS.len()];
        // Series side by side within a category, 60 hundredths wide in all.
        let x_of = |i: usize| 100 * i as i32 + 20 + (60 * j as i32 + 30) / k;
        let points: Vec<(i32, Spread)> = series.spreads.iter().enumerate().filter_map(|(i, s)| s.map(|s| (x_of(i), s))).collect();
        chart
            .draw_series(std::iter::once(PathElement::new(
                points.iter().map(|&(x, s)| (x, s.median)).collect::<Vec<_>>(),
                color.stroke_width(2),
            )))
            .map_err(err)?
            .label(series.label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        let thin = color.stroke_width(2);
        chart
            .draw_series(points.iter().flat_map(|&(x, s)| {
                [
                    PathElement::new(vec![(x, s.min), (x, s.max)], thin),
                    PathElement::new(vec![(x - 5, s.min), (x + 5, s.min)], thin),
                    PathElement::new(vec![(x - 5, s.max), (x + 5, s.max)], thin),
                ]
            }))
            .map_err(err)?;
        chart
            .draw_series(points.iter().map(|&(x, s)| Rectangle::new([(x - 4, s.q1), (x + 4, s.q3)], color.mix(0.35).filled())))
            .map_err(err)?;
        chart.draw_series(points.iter().map(|&(x, s)| Circle::new((x, s.median), 4, color.filled()))).map_err(err)?;
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 12))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, panels: &[Panel]) -> Result<(), String> {
    crate::report::fonts()?;
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    for (area, panel) in root.split_evenly((1, panels.len().max(1))).iter().zip(panels) {
        draw_panel(area, panel)?;
    }
    root.present().map_err(|e| e.to_string())
}

/// Writes `DIR/NAME.svg` and `DIR/NAME.png`.
pub fn write(dir: &Path, name: &str, panels: &[Panel]) -> Result<(), String> {
    let mut svg = String::new();
    draw(SVGBackend::with_string(&mut svg, size(panels.len())).into_drawing_area(), panels)?;
    let path = dir.join(format!("{name}.svg"));
    std::fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
    let path = dir.join(format!("{name}.png"));
    draw(BitMapBackend::new(&path, size(panels.len())).into_drawing_area(), panels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_svg_and_png_with_whiskers() {
        let dir = std::env::temp_dir().join(format!("cohort-study-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let s = Spread::of(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let panel = Panel {
            title: "t".into(),
            unit: "Mbit/s".into(),
            categories: vec!["a".into(), "b".into()],
            series: vec![Series { label: "channel".into(), spreads: vec![s, None] }],
        };
        write(&dir, "x", &[panel.clone(), panel]).unwrap();
        let svg = std::fs::read_to_string(dir.join("x.svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("IQR"));
        assert!(std::fs::metadata(dir.join("x.png")).unwrap().len() > 1000);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
