//! `capacity.html`: the answer, the fitted model and two charts — throughput against
//! concurrency with the measured points and the fitted curve, latency percentiles against load
//! with the p95 objective and the knee — as one self-contained page (inline SVG, no script),
//! like the run report, so it can be attached to a ticket and still render.

use plotters::prelude::*;

use super::{CapacityResult, Dimension};

const WIDTH: u32 = 880;
const HEIGHT: u32 = 360;
const FONT: &str = "sans-serif";
const MEASURED: RGBColor = RGBColor(31, 119, 180);
const FITTED: RGBColor = RGBColor(255, 127, 14);
const P50: RGBColor = RGBColor(44, 160, 44);
const P95: RGBColor = RGBColor(255, 127, 14);
const P99: RGBColor = RGBColor(214, 39, 40);
const OBJECTIVE: RGBColor = RGBColor(127, 127, 127);
const KNEE: RGBColor = RGBColor(148, 103, 189);

/// A chart that could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing the capacity chart: {0}")]
pub struct ChartError(String);

fn chart_error<E: std::fmt::Display>(error: E) -> ChartError {
    ChartError(error.to_string())
}

/// The whole page.
pub fn html(result: &CapacityResult) -> Result<String, ChartError> {
    let throughput = throughput_chart(result)?;
    let latency = latency_chart(result)?;
    let services = match services_chart(result)? {
        Some(chart) => format!(
            "<h2>Each service's p95 against load</h2>\n{chart}\n<p>{}</p>\n",
            escape(&first_saturated(result))
        ),
        None => String::new(),
    };
    let summary = escape(&result.markdown());
    let provenance = reports::render::provenance_html(&result.provenance).map_err(chart_error)?;
    Ok(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Capacity of {scenario}</title>\
         <style>body{{font-family:sans-serif;max-width:960px;margin:2em auto;}}\
         pre{{white-space:pre-wrap;background:#f6f8fa;padding:1em;}}</style></head><body>\n\
         <h1>Capacity of <code>{scenario}</code> against <code>{target}</code></h1>\n\
         <h2>Throughput against concurrency</h2>\n{throughput}\n\
         <h2>Latency against load</h2>\n{latency}\n{services}\
         <h2>Summary</h2>\n<pre>{summary}</pre>\n{provenance}</body></html>\n",
        scenario = escape(&result.scenario),
        target = escape(&result.target),
    ))
}

/// Measured throughput (hold) against concurrency (X·R), and the fitted law from zero to past
/// its peak or the last point.
fn throughput_chart(result: &CapacityResult) -> Result<String, ChartError> {
    let points: Vec<(f64, f64)> = result
        .steps
        .iter()
        .filter_map(|s| Some((s.concurrency?, s.steady_rps?)))
        .collect();
    let x_max_points = points.iter().map(|p| p.0).fold(1.0_f64, f64::max);
    let x_max = result
        .model
        .as_ref()
        .and_then(|m| m.peak_concurrency)
        .map_or(x_max_points, |peak| x_max_points.max(peak * 1.3))
        * 1.05;
    let curve: Vec<(f64, f64)> = result
        .model
        .as_ref()
        .map(|m| {
            (0..=200)
                .map(|i| {
                    let n = x_max * f64::from(i) / 200.0;
                    (n, m.throughput(n).max(0.0))
                })
                .collect()
        })
        .unwrap_or_default();
    let y_max = points
        .iter()
        .chain(&curve)
        .map(|p| p.1)
        .fold(1.0_f64, f64::max)
        * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let mut chart = frame(&root, (x_max, y_max), ("concurrency N = X·R", "requests/s"))?;
        if !curve.is_empty() {
            chart
                .draw_series(LineSeries::new(curve, FITTED.stroke_width(2)))
                .map_err(chart_error)?
                .label("fitted USL")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], FITTED));
        }
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 4, MEASURED.filled())))
            .map_err(chart_error)?
            .label("measured steps")
            .legend(|(x, y)| Circle::new((x + 8, y), 4, MEASURED.filled()));
        finish(&mut chart, &root)?;
    }
    Ok(svg)
}

/// p50/p95/p99 against the load of each step, the p95 objective as a horizontal line and the
/// knee as a vertical one.
fn latency_chart(result: &CapacityResult) -> Result<String, ChartError> {
    let steps = result.by_load();
    let series = |pick: fn(&super::StepResult) -> Option<f64>| -> Vec<(f64, f64)> {
        steps
            .iter()
            .filter_map(|s| Some((s.load, pick(s)?)))
            .collect()
    };
    let lines = [
        ("p50", P50, series(|s| s.p50_ms)),
        ("p95", P95, series(|s| s.p95_ms)),
        ("p99", P99, series(|s| s.p99_ms)),
    ];
    let x_max = steps.iter().map(|s| s.load).fold(1.0_f64, f64::max) * 1.05;
    let y_max = lines
        .iter()
        .flat_map(|(_, _, points)| points.iter().map(|p| p.1))
        .chain(result.p95_objective_ms)
        .fold(1.0_f64, f64::max)
        * 1.1;
    let x_desc = match result.dimension {
        Dimension::Users => "users",
        Dimension::Rate => "iterations/s",
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let mut chart = frame(&root, (x_max, y_max), (x_desc, "latency (ms)"))?;
        for (name, color, points) in lines {
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(chart_error)?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, color.filled())),
                )
                .map_err(chart_error)?;
        }
        if let Some(objective) = result.p95_objective_ms {
            chart
                .draw_series(LineSeries::new(
                    [(0.0, objective), (x_max, objective)],
                    OBJECTIVE.stroke_width(1),
                ))
                .map_err(chart_error)?
                .label(format!("p95 objective {objective} ms"))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], OBJECTIVE));
        }
        if let Some(knee) = result.knee {
            chart
                .draw_series(LineSeries::new(
                    [(knee, 0.0), (knee, y_max)],
                    KNEE.stroke_width(1),
                ))
                .map_err(chart_error)?
                .label("knee")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], KNEE));
        }
        finish(&mut chart, &root)?;
    }
    Ok(svg)
}

/// The sentence under the services chart.
fn first_saturated(result: &CapacityResult) -> String {
    match result.saturation.first() {
        Some(first) => format!(
            "{} saturated first, at {} (step {}): {}. Its line is drawn thick.",
            first.service,
            result.dimension.describe(first.load),
            first.step,
            first.signs.join("; ")
        ),
        None => "No service saturated at the loads measured.".to_string(),
    }
}

/// Every service's p95 against load, the first to saturate drawn thick; `None` without
/// per-service figures.
fn services_chart(result: &CapacityResult) -> Result<Option<String>, ChartError> {
    let steps = result.by_load();
    let mut names: Vec<&str> = steps
        .iter()
        .flat_map(|s| s.services.iter().map(|f| f.name.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        return Ok(None);
    }
    let lines: Vec<(&str, Vec<(f64, f64)>)> = names
        .iter()
        .map(|name| {
            let points = steps
                .iter()
                .filter_map(|s| {
                    let p95 = s.services.iter().find(|f| f.name == *name)?.p95_ms?;
                    Some((s.load, p95))
                })
                .collect();
            (*name, points)
        })
        .collect();
    let x_max = steps.iter().map(|s| s.load).fold(1.0_f64, f64::max) * 1.05;
    let y_max = lines
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.1))
        .fold(1.0_f64, f64::max)
        * 1.1;
    let x_desc = match result.dimension {
        Dimension::Users => "users",
        Dimension::Rate => "iterations/s",
    };
    let first = result.saturation.first().map(|s| s.service.as_str());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let mut chart = frame(&root, (x_max, y_max), (x_desc, "service p95 (ms)"))?;
        for (index, (name, points)) in lines.into_iter().enumerate() {
            let color = Palette99::pick(index).to_rgba();
            let width = if Some(name) == first { 4 } else { 1 };
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(width)))
                .map_err(chart_error)?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
        finish(&mut chart, &root)?;
    }
    Ok(Some(svg))
}

/// Axes from zero to `x_max` and `y_max` with their captions, on a white SVG canvas.
fn frame<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    (x_max, y_max): (f64, f64),
    (x_desc, y_desc): (&str, &str),
) -> Result<Plot<'a, 'b>, ChartError> {
    root.fill(&WHITE).map_err(chart_error)?;
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(chart_error)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FONT, 12))
        .draw()
        .map_err(chart_error)?;
    Ok(chart)
}

/// The legend, then the page is written.
fn finish<'a, 'b>(
    chart: &mut Plot<'a, 'b>,
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
) -> Result<(), ChartError> {
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .label_font((FONT, 12))
        .draw()
        .map_err(chart_error)?;
    root.present().map_err(chart_error)
}

type Plot<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::StepResult;

    #[test]
    fn the_page_has_both_charts_the_fitted_curve_and_the_objective() {
        let mut result = CapacityResult::new("browse", "http://x?a=1&b=<2>", Dimension::Users);
        result.p95_objective_ms = Some(500.0);
        for n in [1.0, 2.0, 4.0, 8.0, 16.0, 32.0] {
            let x = 100.0 * n / (1.0 + 0.05 * (n - 1.0) + 0.002 * n * (n - 1.0));
            result.record(StepResult {
                load: n,
                run_id: format!("run-{n}"),
                requests: 1000,
                rps: x,
                steady_rps: Some(x),
                mean_ms: Some(n / x * 1000.0),
                concurrency: Some(n),
                p50_ms: Some(n / x * 1000.0),
                p95_ms: Some(n / x * 1500.0),
                p99_ms: Some(n / x * 2000.0),
                error_rate: 0.0,
                kept_up: None,
                passed: true,
                failure_reasons: vec![],
                generator_degraded: vec![],
                services: vec![],
            });
        }
        result.analyze();
        let page = html(&result).unwrap();
        assert_eq!(page.matches("<svg").count(), 2, "two charts");
        assert!(page.contains("fitted USL"));
        assert!(page.contains("p95 objective 500 ms"));
        assert!(page.contains("http://x?a=1&amp;b=&lt;2&gt;"), "escaped");
        assert!(!page.contains("<script"));
        assert!(
            !page.contains("Each service"),
            "no services, no services chart"
        );
    }

    #[test]
    fn with_per_service_figures_a_third_chart_names_the_first_to_saturate() {
        let mut result = CapacityResult::new("browse", "http://x", Dimension::Rate);
        for (load, product) in [(10.0, 12.0), (20.0, 15.0), (40.0, 60.0)] {
            let figures = |name: &str, p95: f64| crate::capacity::ServiceFigures {
                name: name.into(),
                p95_ms: Some(p95),
                ..Default::default()
            };
            result.record(StepResult {
                load,
                passed: true,
                services: vec![
                    figures("api-gateway", product + 2.0),
                    figures("product", product),
                ],
                ..StepResult::default()
            });
        }
        result.analyze();
        let page = html(&result).unwrap();
        assert_eq!(page.matches("<svg").count(), 3, "three charts");
        assert!(page.contains("Each service"));
        assert!(
            page.contains("product saturated first, at 40 iterations/s (step 3)"),
            "{page}"
        );
    }
}
