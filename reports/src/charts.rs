//! SVG charts of the time series, drawn with plotters' SVG backend.
//!
//! The HTML report inlines these strings, so it needs no JavaScript, no CDN and no network to
//! open — it can be attached to a ticket or archived as a CI artifact and still render.
//! Journal events (chaos actions…) are drawn on every chart as vertical markers, shaded when
//! they have an end time, so cause and effect line up by eye.

use std::iter::once;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::error::RenderError;
use crate::model::{ErrorKind, Report, TimeSlice};

const WIDTH: u32 = 960;
const HEIGHT: u32 = 320;
const FONT: &str = "sans-serif";

const P50: RGBColor = RGBColor(31, 119, 180);
const P95: RGBColor = RGBColor(255, 127, 14);
const P99: RGBColor = RGBColor(214, 39, 40);
const P99_CORRECTED: RGBColor = RGBColor(148, 103, 189);
const THROUGHPUT: RGBColor = RGBColor(44, 160, 44);
const USERS: RGBColor = RGBColor(127, 127, 127);
const MARKER: RGBColor = RGBColor(140, 86, 75);
const ERROR_COLORS: [(ErrorKind, RGBColor); 5] = [
    (ErrorKind::Connect, RGBColor(214, 39, 40)),
    (ErrorKind::Timeout, RGBColor(255, 127, 14)),
    (ErrorKind::Status, RGBColor(148, 103, 189)),
    (ErrorKind::Check, RGBColor(23, 190, 207)),
    (ErrorKind::Other, RGBColor(127, 127, 127)),
];

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The three charts of a report, each a complete `<svg>` document.
pub struct Charts {
    pub latency: String,
    pub throughput: String,
    pub errors: String,
}

/// Draws every chart for `report`. An empty time series (e.g. an unreachable target) still
/// yields charts: empty axes say "nothing happened" more clearly than a missing picture.
pub fn draw_all(report: &Report) -> Result<Charts, RenderError> {
    Ok(Charts {
        latency: latency_chart(report)?,
        throughput: throughput_chart(report)?,
        errors: errors_chart(report)?,
    })
}

/// One line of a chart: a label, a color and one optional value per time slice.
struct Line {
    label: String,
    color: RGBColor,
    values: Vec<Option<f64>>,
}

fn latency_chart(report: &Report) -> Result<String, RenderError> {
    let series = &report.timeseries;
    let mut lines = vec![
        Line {
            label: "p50".into(),
            color: P50,
            values: series.iter().map(|s| s.latency.map(|l| l.p50_ms)).collect(),
        },
        Line {
            label: "p95".into(),
            color: P95,
            values: series.iter().map(|s| s.latency.map(|l| l.p95_ms)).collect(),
        },
        Line {
            label: "p99".into(),
            color: P99,
            values: series.iter().map(|s| s.latency.map(|l| l.p99_ms)).collect(),
        },
    ];
    if series.iter().any(|s| s.corrected_latency.is_some()) {
        lines.push(Line {
            label: "p99 corrected".into(),
            color: P99_CORRECTED,
            values: series
                .iter()
                .map(|s| s.corrected_latency.map(|l| l.p99_ms))
                .collect(),
        });
    }
    line_chart(report, "Latency per second (ms)", "ms", &lines)
}

fn throughput_chart(report: &Report) -> Result<String, RenderError> {
    let series = &report.timeseries;
    let rps = Line {
        label: "requests/s".into(),
        color: THROUGHPUT,
        values: series.iter().map(|s| Some(s.requests as f64)).collect(),
    };
    let users: Vec<f64> = series.iter().map(|s| f64::from(s.active_users)).collect();
    let x_max = x_extent(report);
    let rps_max = axis_max(rps.values.iter().flatten().copied());
    let users_max = axis_max(users.iter().copied());

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Throughput and active users", (FONT, 16))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .right_y_label_area_size(50)
            .build_cartesian_2d(0f64..x_max, 0f64..rps_max)
            .map_err(chart_error)?
            .set_secondary_coord(0f64..x_max, 0f64..users_max);
        chart
            .configure_mesh()
            .x_desc("seconds since start")
            .y_desc("requests/s")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| axis_label(*y, rps_max))
            .draw()
            .map_err(chart_error)?;
        chart
            .configure_secondary_axes()
            .y_desc("users")
            .y_label_formatter(&|y| axis_label(*y, users_max))
            .draw()
            .map_err(chart_error)?;
        draw_journal(&mut chart, report, rps_max)?;
        draw_line(&mut chart, &rps)?;
        let users_points: Vec<(f64, f64)> = users
            .iter()
            .enumerate()
            .map(|(i, u)| (slice_x(i), *u))
            .collect();
        chart
            .draw_secondary_series(LineSeries::new(users_points, USERS.stroke_width(2)))
            .map_err(chart_error)?
            .label("active users")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], USERS.stroke_width(2)));
        legend(&mut chart)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

fn errors_chart(report: &Report) -> Result<String, RenderError> {
    let series: &[TimeSlice] = &report.timeseries;
    let mut lines = vec![Line {
        label: "all errors".into(),
        color: RGBColor(0, 0, 0),
        values: series.iter().map(|s| Some(s.errors as f64)).collect(),
    }];
    for (kind, color) in ERROR_COLORS {
        if report.errors_by_kind.get(kind) > 0 {
            lines.push(Line {
                label: kind.to_string(),
                color,
                values: series
                    .iter()
                    .map(|s| Some(s.errors_by_kind.get(kind) as f64))
                    .collect(),
            });
        }
    }
    line_chart(report, "Errors per second", "errors/s", &lines)
}

/// A chart of lines over the run's seconds, with the journal drawn underneath.
fn line_chart(
    report: &Report,
    caption: &str,
    unit: &str,
    lines: &[Line],
) -> Result<String, RenderError> {
    let x_max = x_extent(report);
    let y_max = axis_max(
        lines
            .iter()
            .flat_map(|l| l.values.iter().flatten().copied()),
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, (FONT, 16))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .x_desc("seconds since start")
            .y_desc(unit)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| axis_label(*y, y_max))
            .draw()
            .map_err(chart_error)?;
        draw_journal(&mut chart, report, y_max)?;
        for line in lines {
            draw_line(&mut chart, line)?;
        }
        legend(&mut chart)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

/// Draws a line, broken wherever a slice has no value (no request finished that second), so
/// a gap is not drawn as a straight interpolation.
fn draw_line(chart: &mut Chart<'_, '_>, line: &Line) -> Result<(), RenderError> {
    let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (i, value) in line.values.iter().enumerate() {
        match value {
            Some(v) => segments
                .last_mut()
                .expect("never empty")
                .push((slice_x(i), *v)),
            None if segments.last().is_some_and(|s| !s.is_empty()) => segments.push(Vec::new()),
            None => {}
        }
    }
    let mut labelled = false;
    for segment in segments.into_iter().filter(|s| !s.is_empty()) {
        let style = line.color.stroke_width(2);
        let drawn = chart
            .draw_series(LineSeries::new(segment, style))
            .map_err(chart_error)?;
        if !labelled {
            let color = line.color;
            drawn.label(line.label.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
            labelled = true;
        }
    }
    Ok(())
}

/// Vertical markers for journal events, with a shaded band for events that have an end.
fn draw_journal(chart: &mut Chart<'_, '_>, report: &Report, y_max: f64) -> Result<(), RenderError> {
    let x_max = x_extent(report);
    let clamp = |x: f64| x.clamp(0.0, x_max);
    for event in &report.journal {
        let x = clamp(report.offset_s(event.at));
        if let Some(ended_at) = event.ended_at {
            let end = clamp(report.offset_s(ended_at));
            chart
                .draw_series(once(Rectangle::new(
                    [(x, 0.0), (end, y_max)],
                    MARKER.mix(0.12).filled(),
                )))
                .map_err(chart_error)?;
        }
        chart
            .draw_series(once(PathElement::new(
                vec![(x, 0.0), (x, y_max)],
                MARKER.stroke_width(2),
            )))
            .map_err(chart_error)?;
        let label = format!("{} {}", event.kind, event.target);
        chart
            .draw_series(once(Text::new(
                label,
                (x, y_max),
                (FONT, 12).into_font().color(&MARKER),
            )))
            .map_err(chart_error)?;
    }
    Ok(())
}

fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>) -> Result<(), RenderError> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(chart_error)
}

/// Slices are drawn at their middle: slice `i` covers `[i, i + 1)` seconds.
fn slice_x(index: usize) -> f64 {
    index as f64 + 0.5
}

/// The x axis covers the whole run, at least one second.
fn x_extent(report: &Report) -> f64 {
    (report.timeseries.len() as f64)
        .max(report.actual_duration_s)
        .max(1.0)
}

/// Headroom above the largest value so lines do not touch the frame; 1 for an empty chart.
fn axis_max(values: impl Iterator<Item = f64>) -> f64 {
    let max = values.fold(0.0_f64, f64::max);
    if max > 0.0 { max * 1.1 } else { 1.0 }
}

/// Axis labels without noise: whole numbers once the axis spans more than a few units.
fn axis_label(value: f64, axis_max: f64) -> String {
    if axis_max >= 10.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn chart_error<E: std::fmt::Display>(error: E) -> RenderError {
    RenderError::Chart(error.to_string())
}
