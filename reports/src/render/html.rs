//! HTML: a self-contained page with the charts inlined as SVG.
//!
//! No scripts, stylesheets or fonts are fetched, so the file opens the same from a CI
//! artifact, an e-mail attachment or an air-gapped laptop.

use minijinja::{Value, context};

use super::Renderer;
use super::provenance::ProvenanceView;
use super::view::ReportView;
use crate::charts;
use crate::error::RenderError;
use crate::model::Report;

const TEMPLATE: &str = include_str!("../../templates/report.html.j2");

/// Self-contained HTML with SVG charts (`report.html`).
pub struct HtmlRenderer;

impl Renderer for HtmlRenderer {
    fn file_name(&self) -> &'static str {
        "report.html"
    }

    fn render(&self, report: &Report) -> Result<String, RenderError> {
        let charts = charts::draw_all(report)?;
        let mut env = super::template_environment();
        // The `.html` name turns on HTML auto-escaping for every value from the report.
        env.add_template("report.html", TEMPLATE)?;
        super::provenance::add_templates(&mut env)?;
        let view = ReportView::new(report);
        // The SVG comes from plotters, which escapes the text it draws; mark it safe so the
        // template does not escape the markup itself.
        let html = env.get_template("report.html")?.render(context! {
            r => view,
            p => ProvenanceView::new(&report.provenance),
            latency_chart => Value::from_safe_string(charts.latency),
            throughput_chart => Value::from_safe_string(charts.throughput),
            errors_chart => Value::from_safe_string(charts.errors),
        })?;
        Ok(html)
    }
}
