//! The provenance block of every rendering: run reports, `slo check` and capacity summaries show
//! the same facts laid out by the same two templates, so they cannot drift apart.

use minijinja::context;
use serde::Serialize;

use crate::error::RenderError;
use crate::provenance::Provenance;

const MARKDOWN: &str = include_str!("../../templates/provenance.md.j2");
const HTML: &str = include_str!("../../templates/provenance.html.j2");

/// Template names, for templates that `{% include %}` the block.
pub(super) const MARKDOWN_NAME: &str = "provenance.md";
pub(super) const HTML_NAME: &str = "provenance.html";

/// Adds both provenance templates to an environment (report templates include them).
pub(super) fn add_templates(env: &mut minijinja::Environment<'static>) -> Result<(), RenderError> {
    env.add_template(MARKDOWN_NAME, MARKDOWN)?;
    env.add_template(HTML_NAME, HTML)?;
    Ok(())
}

/// The provenance block as Markdown (a `### Provenance` section), for documents other than the
/// run report; empty when nothing is recorded.
pub fn provenance_markdown(provenance: &Provenance) -> Result<String, RenderError> {
    render(MARKDOWN_NAME, provenance)
}

/// The provenance block as an HTML fragment (an `<h2>Provenance</h2>` section).
pub fn provenance_html(provenance: &Provenance) -> Result<String, RenderError> {
    render(HTML_NAME, provenance)
}

fn render(name: &str, provenance: &Provenance) -> Result<String, RenderError> {
    let mut env = super::template_environment();
    env.add_filter("cell", super::markdown::table_cell);
    add_templates(&mut env)?;
    let view = ProvenanceView::new(provenance);
    Ok(env.get_template(name)?.render(context! { p => view })?)
}

/// Provenance with every value formatted.
#[derive(Serialize)]
pub(super) struct ProvenanceView {
    pub shown: bool,
    pub build: Option<String>,
    pub command_line: Option<String>,
    pub target: Option<String>,
    pub window: Option<String>,
    pub host: Option<String>,
    pub files: Vec<FileRow>,
    pub queries: Vec<String>,
    pub generator: Option<String>,
    pub degraded: Vec<String>,
}

#[derive(Serialize)]
pub(super) struct FileRow {
    pub role: String,
    pub path: String,
    pub digest: String,
}

impl ProvenanceView {
    pub fn new(p: &Provenance) -> ProvenanceView {
        let build = p.shakedown.as_ref().map(|b| {
            let commit = match (&b.commit, b.dirty) {
                (Some(commit), false) => format!("commit {commit}"),
                (Some(commit), true) => format!("commit {commit} with local changes"),
                (None, _) => "commit unknown".to_string(),
            };
            format!("shakedown {} ({commit}, {} build)", b.version, b.profile)
        });
        let host = p.host.as_ref().map(|h| {
            let kernel = h
                .kernel
                .as_deref()
                .map(|k| format!(", kernel {k}"))
                .unwrap_or_default();
            format!("{} — {}{kernel}, {}, {} CPUs", h.name, h.os, h.arch, h.cpus)
        });
        let window = match (p.started_at, p.ended_at) {
            (Some(start), Some(end)) => Some(format!(
                "{} → {}",
                super::view::timestamp(start),
                super::view::timestamp(end)
            )),
            _ => None,
        };
        let generator = p.generator.as_ref().map(|g| {
            let mut parts = Vec::new();
            if let (Some(used), Some(cores)) = (g.cpu_cores_used, g.cores) {
                parts.push(format!(
                    "CPU {used:.2} of {cores} cores ({:.1} s)",
                    g.cpu_seconds.unwrap_or(0.0)
                ));
            }
            if let Some(busy) = g.host_cpu_busy {
                parts.push(format!("machine CPUs {:.0} % busy", busy * 100.0));
            }
            if let Some(late) = g.max_lateness_ms {
                parts.push(format!(
                    "worst iteration start {late:.1} ms behind schedule"
                ));
            }
            parts.push(if g.degraded { "DEGRADED" } else { "kept up" }.to_string());
            parts.join(" · ")
        });
        ProvenanceView {
            shown: !p.is_empty(),
            build,
            command_line: p.command_line.clone(),
            target: p.target.clone(),
            window,
            host,
            files: p
                .files
                .iter()
                .map(|f| FileRow {
                    role: f.role.clone(),
                    path: f.path.clone(),
                    digest: match (&f.sha256, f.bytes) {
                        (Some(hex), Some(bytes)) => format!("sha256:{hex} ({bytes} bytes)"),
                        (Some(hex), None) => format!("sha256:{hex}"),
                        (None, _) => "built-in".to_string(),
                    },
                })
                .collect(),
            queries: p.queries.clone(),
            generator,
            degraded: p.degraded_because().to_vec(),
        }
    }
}
