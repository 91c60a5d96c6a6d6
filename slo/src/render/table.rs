//! The verdict table printed on the terminal: one line per SLO, the details that explain a
//! non-pass (message, query) indented below it so the table stays readable.

use super::{gate_line, measured_text};
use crate::outcome::CheckOutcome;
use reports::SloStatus;

/// The table, the window and the gate line.
pub fn table(outcome: &CheckOutcome, allow_unknown: bool) -> String {
    let rows: Vec<[String; 4]> = outcome
        .results
        .iter()
        .map(|c| {
            [
                c.verdict.status.to_string(),
                c.verdict.name.clone(),
                measured_text(c),
                c.verdict.objective.clone(),
            ]
        })
        .collect();
    let header = ["STATUS", "SLO", "MEASURED", "OBJECTIVE"].map(str::to_string);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String; 4]| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        text
    };
    let window = outcome
        .results
        .first()
        .and_then(|c| c.verdict.window.clone())
        .unwrap_or_else(|| format!("{}..{}", outcome.from.to_rfc3339(), outcome.to.to_rfc3339()));
    let mut out = format!("SLO set {} over {window}\n\n", outcome.set);
    out.push_str(&line(&header));
    out.push('\n');
    for (row, checked) in rows.iter().zip(&outcome.results) {
        out.push_str(&line(row));
        out.push('\n');
        let indent = " ".repeat(widths[0] + 2);
        if let Some(message) = &checked.verdict.message {
            out.push_str(&format!("{indent}{message}\n"));
        }
        if checked.verdict.status != SloStatus::Pass {
            out.push_str(&format!("{indent}source: {}\n", checked.verdict.source));
            if let Some(query) = &checked.verdict.query {
                out.push_str(&format!("{indent}query:  {query}\n"));
            }
        }
    }
    out.push('\n');
    out.push_str(&gate_line(outcome, allow_unknown));
    out.push('\n');
    out
}
