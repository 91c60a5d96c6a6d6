//! Verdict-only outputs of `slo check`: a terminal table, Markdown for a CI summary, JUnit
//! XML for a CI test view and JSON for machines.
//!
//! A run report has its own renderers (crate `reports`); these cover a check made without a
//! run, so they need nothing but a [`CheckOutcome`]. Each format is one small module.

mod json;
mod junit;
mod markdown;
mod table;

use std::path::{Path, PathBuf};

pub use json::json;
pub use junit::junit;
pub use markdown::markdown;
pub use table::table;

use reports::Provenance;

use crate::outcome::{CheckOutcome, Checked, Gate};

/// Writes `slo.json`, `slo.md` and `slo-junit.xml` into `dir` (created if missing).
pub fn write_all(
    dir: &Path,
    outcome: &CheckOutcome,
    allow_unknown: bool,
    provenance: &Provenance,
) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let files = [
        ("slo.json", json(outcome, allow_unknown, provenance)),
        ("slo.md", markdown(outcome, allow_unknown, provenance)),
        ("slo-junit.xml", junit(outcome, allow_unknown, provenance)),
    ];
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        written.push(path);
    }
    Ok(written)
}

/// `212.5 ms`, `0.50 %`, or `-` when nothing was measured.
fn measured_text(checked: &Checked) -> String {
    let verdict = &checked.verdict;
    verdict.measured.map_or_else(
        || "-".to_string(),
        |v| {
            reports::format_value(v, verdict.unit.as_deref().unwrap_or(""))
                .trim()
                .to_string()
        },
    )
}

/// One line saying what the gate decided.
pub fn gate_line(outcome: &CheckOutcome, allow_unknown: bool) -> String {
    use reports::SloStatus::*;
    let gate = outcome.gate(allow_unknown);
    let what = match gate {
        Gate::Pass => "PASS",
        Gate::Failed => "FAILED",
        Gate::Invalid => "INVALID (configuration)",
        Gate::Unreachable => "UNREACHABLE (a source could not be reached)",
    };
    let partial = outcome
        .partial_run
        .as_ref()
        .map(|why| format!(" the run was partial ({why}), and a partial run never passes;"))
        .unwrap_or_default();
    let mut line = format!(
        "SLO gate {what}:{partial} {} pass, {} warn, {} fail, {} unknown",
        outcome.count(Pass),
        outcome.count(Warn),
        outcome.count(Fail),
        outcome.count(Unknown)
    );
    let unknowns_decided = outcome.count(Unknown) > 0
        && match gate {
            Gate::Pass => true,
            Gate::Failed => outcome.count(Fail) == 0 && outcome.partial_run.is_none(),
            Gate::Invalid | Gate::Unreachable => false,
        };
    if unknowns_decided {
        line.push_str(if allow_unknown {
            " (unknown allowed)"
        } else {
            " (unknown fails the gate; --allow-unknown to accept)"
        });
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Problem;
    use chrono::DateTime;
    use reports::{SloStatus, SloVerdict};

    fn checked(name: &str, status: SloStatus, problem: Option<Problem>) -> Checked {
        Checked {
            verdict: SloVerdict {
                name: name.into(),
                status,
                measured: (status != SloStatus::Unknown).then_some(212.5),
                unit: Some("ms".into()),
                objective: "p95 latency < 500 ms".into(),
                source: "prometheus http://p:9090: instant query at 1".into(),
                query: Some("sum(rate(a[5m])) or on() (b | c)".into()),
                window: Some("w".into()),
                message: problem.map(|_| "no data: nothing".into()),
            },
            description: None,
            from: DateTime::UNIX_EPOCH,
            to: DateTime::UNIX_EPOCH,
            problem,
        }
    }

    fn outcome(results: Vec<Checked>) -> CheckOutcome {
        CheckOutcome {
            set: "shop".into(),
            from: DateTime::UNIX_EPOCH,
            to: DateTime::UNIX_EPOCH,
            results,
            partial_run: None,
        }
    }

    #[test]
    fn a_partial_run_fails_every_rendering_and_says_why() {
        let mut o = outcome(vec![checked("a", SloStatus::Pass, None)]);
        o.partial_run = Some("interrupted (Ctrl-C)".into());
        let line = "SLO gate FAILED: the run was partial (interrupted (Ctrl-C)), and a partial run never passes; 1 pass, 0 warn, 0 fail, 0 unknown";
        assert_eq!(gate_line(&o, true), line);
        assert!(table(&o, true).contains(line));
        assert!(markdown(&o, true, &Provenance::default()).starts_with(&format!("## ❌ {line}")));
        let junit = junit(&o, true, &Provenance::default());
        assert!(
            junit.contains("failures=\"1\"") && junit.contains("run completed as planned"),
            "{junit}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&json(&o, true, &Provenance::default())).unwrap();
        assert_eq!(json["gate"], "failed");
        assert_eq!(json["partial_run"], "interrupted (Ctrl-C)");
    }

    #[test]
    fn the_gate_line_explains_what_decided_it() {
        let mixed = outcome(vec![
            checked("a", SloStatus::Pass, None),
            checked("b", SloStatus::Unknown, Some(Problem::NoData)),
        ]);
        assert_eq!(
            gate_line(&mixed, false),
            "SLO gate FAILED: 1 pass, 0 warn, 0 fail, 1 unknown (unknown fails the gate; --allow-unknown to accept)"
        );
        assert!(gate_line(&mixed, true).ends_with("(unknown allowed)"));
        let failed = outcome(vec![
            checked("a", SloStatus::Fail, None),
            checked("b", SloStatus::Unknown, Some(Problem::NoData)),
        ]);
        assert_eq!(
            gate_line(&failed, false),
            "SLO gate FAILED: 0 pass, 0 warn, 1 fail, 1 unknown"
        );
    }

    #[test]
    fn renderings_keep_queries_intact_and_tables_aligned() {
        let o = outcome(vec![
            checked("gateway-p95", SloStatus::Pass, None),
            checked("b", SloStatus::Unknown, Some(Problem::NoData)),
        ]);
        let md = markdown(&o, false, &Provenance::default());
        assert!(md.contains("window 1970-01-01T00:00:00Z"), "{md}");
        assert!(
            md.contains("<code>sum(rate(a[5m])) or on() (b &#124; c)</code>"),
            "{md}"
        );
        assert!(md.contains("| gateway-p95 | ✅ pass | 212.5 ms |"), "{md}");

        let table = table(&o, false);
        let header = table.lines().find(|l| l.starts_with("STATUS")).unwrap();
        let row = table.lines().find(|l| l.starts_with("pass")).unwrap();
        assert_eq!(header.find("SLO"), row.find("gateway-p95"));
        assert!(table.contains("no data: nothing"));

        let strict = junit(&o, false, &Provenance::default());
        assert!(strict.contains("failures=\"1\""), "{strict}");
        assert!(
            junit(&o, true, &Provenance::default()).contains("<skipped"),
            "unknown without data is skipped when allowed"
        );

        let json: serde_json::Value =
            serde_json::from_str(&json(&o, true, &Provenance::default())).unwrap();
        assert_eq!(json["gate"], "pass");
        assert_eq!(json["results"][1]["problem"], "no_data");
    }
}
