//! Markdown: the report as a GitHub job summary or pull-request comment.
//!
//! GitHub renders it as-is, so it leads with the verdict and the thresholds (what a reviewer
//! needs), then the per-transaction table and errors (what the on-call needs).

use minijinja::context;

use super::Renderer;
use super::provenance::ProvenanceView;
use super::view::ReportView;
use crate::error::RenderError;
use crate::model::Report;

const TEMPLATE: &str = include_str!("../../templates/report.md.j2");

/// GitHub-flavoured Markdown (`report.md`).
pub struct MarkdownRenderer;

impl Renderer for MarkdownRenderer {
    fn file_name(&self) -> &'static str {
        "report.md"
    }

    fn render(&self, report: &Report) -> Result<String, RenderError> {
        let mut env = super::template_environment();
        env.add_filter("cell", table_cell);
        env.add_template("report.md", TEMPLATE)?;
        super::provenance::add_templates(&mut env)?;
        let view = ReportView::new(report);
        let provenance = ProvenanceView::new(&report.provenance);
        Ok(env
            .get_template("report.md")?
            .render(context! { r => view, p => provenance })?)
    }
}

/// Makes free text safe inside a Markdown table cell: pipes would start a new column and
/// newlines would end the row.
pub(super) fn table_cell(text: String) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}
