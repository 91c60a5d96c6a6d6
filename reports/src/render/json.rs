//! JSON: the machine-readable report, the one `Report::load` reads back.

use super::Renderer;
use crate::error::RenderError;
use crate::model::Report;

/// Pretty-printed report JSON (`report.json`).
pub struct JsonRenderer;

impl Renderer for JsonRenderer {
    fn file_name(&self) -> &'static str {
        "report.json"
    }

    fn render(&self, report: &Report) -> Result<String, RenderError> {
        let mut text = serde_json::to_string_pretty(report)?;
        text.push('\n');
        Ok(text)
    }
}
