//! Markdown for a CI job summary or a pull-request comment: the gate first, then one row per
//! SLO with the query in code so a reviewer can paste it into Prometheus.

use chrono::SecondsFormat;

use super::{gate_line, measured_text};
use crate::outcome::{CheckOutcome, Gate};
use reports::{Provenance, SloStatus};

pub fn markdown(outcome: &CheckOutcome, allow_unknown: bool, provenance: &Provenance) -> String {
    let icon = match outcome.gate(allow_unknown) {
        Gate::Pass => "✅",
        Gate::Failed => "❌",
        Gate::Invalid | Gate::Unreachable => "⚠️",
    };
    let mut out = format!(
        "## {icon} {}\n\nSLO set `{}`, window {} → {}\n\n",
        gate_line(outcome, allow_unknown),
        outcome.set,
        outcome.from.to_rfc3339_opts(SecondsFormat::Secs, true),
        outcome.to.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    out.push_str("| SLO | Status | Measured | Objective | Source | Query | Notes |\n");
    out.push_str("|---|---|--:|---|---|---|---|\n");
    for checked in &outcome.results {
        let v = &checked.verdict;
        let status_icon = match v.status {
            SloStatus::Pass => "✅",
            SloStatus::Warn => "⚠️",
            SloStatus::Fail => "❌",
            SloStatus::Unknown => "❔",
        };
        out.push_str(&format!(
            "| {} | {status_icon} {} | {} | {} | {} | {} | {} |\n",
            cell(&v.name),
            v.status,
            measured_text(checked),
            cell(&v.objective),
            cell(&v.source),
            v.query.as_deref().map_or(String::new(), code),
            cell(v.message.as_deref().unwrap_or("")),
        ));
    }
    // The block's templates are fixed and their values escaped: rendering cannot fail.
    out.push_str(&reports::render::provenance_markdown(provenance).unwrap_or_default());
    out
}

/// Free text made safe inside a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// Inline code that survives pipes and backticks in PromQL.
fn code(text: &str) -> String {
    format!("<code>{}</code>", html_escape(text).replace('|', "&#124;"))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace(['\r', '\n'], " ")
}
