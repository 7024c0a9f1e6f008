//! The plots: one PNG per workload, p99 latency (log scale) against offered load, one line
//! per system, and the font their text is drawn with.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;

use super::model::{Report, Series};
use crate::workload::Workload;

/// Draws `workload`'s plot to `path`.
pub(super) fn plot(report: &Report, workload: Workload, path: &Path) -> Result<()> {
    let series: Vec<&Series> = report.series.iter().filter(|s| s.workload == workload).collect();
    let max_rate = series
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| p.rate)
        .fold(1.0, f64::max);
    let max_p99 = series
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| p.p99_median() as f64 / 1000.0)
        .fold(0.1, f64::max);
    let root = BitMapBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: p99 latency vs offered load (open loop)", workload.name()),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..max_rate * 1.05, (0.01..max_p99 * 1.5).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("offered ops/s")
        .y_desc("p99 ms (log)")
        .label_style(("sans-serif", 14))
        .draw()?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|p| (p.rate, (p.p99_median() as f64 / 1000.0).max(0.01)))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(s.system.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}

/// Registers a system font for the plots' text (plotters draws text with ab_glyph).
pub(super) fn register_font() -> Result<()> {
    let candidates = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    ];
    let path = candidates
        .iter()
        .find(|p| Path::new(p).exists())
        .context("no DejaVuSans.ttf (apt-get install fonts-dejavu-core)")?;
    let bytes: &'static [u8] = Box::leak(std::fs::read(path)?.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("cannot load {path}"))?;
    Ok(())
}
