//! Renderers: one report, several audiences.
//!
//! Each output format is one small type implementing [`Renderer`], so adding a format never
//! touches the others, and [`all_renderers`] is the single list `write_all` walks.

mod html;
mod json;
mod junit;
mod markdown;
mod provenance;
mod view;

pub use html::HtmlRenderer;
pub use json::JsonRenderer;
pub use junit::{JunitRenderer, slo_junit, slo_suite};
pub use markdown::MarkdownRenderer;
pub use provenance::{provenance_html, provenance_markdown};
pub use view::duration_text;

use crate::error::RenderError;
use crate::model::Report;

/// Turns a report into the text of one file.
pub trait Renderer {
    /// The file name this renderer writes, e.g. `report.md`.
    fn file_name(&self) -> &'static str;
    /// The file's content.
    fn render(&self, report: &Report) -> Result<String, RenderError>;
}

/// Every renderer, in the order files are written.
pub fn all_renderers() -> Vec<Box<dyn Renderer>> {
    vec![
        Box::new(JsonRenderer),
        Box::new(MarkdownRenderer),
        Box::new(HtmlRenderer),
        Box::new(JunitRenderer),
    ]
}

/// A template environment with the layout settings both text templates rely on.
fn template_environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    // Templates are laid out for readability; keep block tags from leaving blank lines.
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env
}

#[cfg(test)]
mod tests;
