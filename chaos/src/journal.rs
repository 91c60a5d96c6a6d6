//! The journal: one record per probe and action, with start and end, what it touched, how it went
//! and how long recovery took. Records become `JournalEvent`s in the run report, where the HTML
//! charts draw them as markers.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reports::JournalEvent;
use serde::{Deserialize, Serialize};

/// How an action or probe ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done, and (when recovery is measured) the target recovered.
    Ok,
    /// Done, but the target did not recover in time, or the action itself failed.
    Failed,
    /// `--dry-run`: planned, nothing sent.
    DryRun,
    /// Not run because a halt condition or Ctrl-C stopped the method first.
    Skipped,
    /// A steady-state probe that could not say: SLOs without data, or a source unreachable.
    Unknown,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::DryRun => "dry-run",
            Outcome::Skipped => "skipped",
            Outcome::Unknown => "unknown",
        }
    }
}

/// One action or probe, as it happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// The action kind, e.g. `pod-kill`, `broker-failure`, `process-kill`, `faults`, or a probe
    /// such as `steady-state.before`.
    pub action: String,
    /// What it was aimed at, e.g. `ecommerce/app=order` or `order`.
    pub target: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub outcome: Outcome,
    /// What was actually touched: pod names, broker ids, pids.
    pub affected: Vec<String>,
    /// From the action until the target was healthy again (ready replicas back, service ready,
    /// broker back), when measured.
    #[serde(with = "humantime_serde_opt", default)]
    pub recovery: Option<Duration>,
    /// Free-form detail: the request sent in a dry run, why it failed.
    pub detail: Option<String>,
}

impl ActionRecord {
    /// An action that has just completed without anything to recover from (a rollback such as
    /// clearing faults or bringing brokers back).
    pub fn completed(
        action: &str,
        target: String,
        started_at: DateTime<Utc>,
        affected: Vec<String>,
    ) -> ActionRecord {
        ActionRecord {
            action: action.to_string(),
            target,
            started_at,
            ended_at: Some(Utc::now()),
            outcome: Outcome::Ok,
            affected,
            recovery: None,
            detail: None,
        }
    }

    /// Whether this is a steady-state probe (`steady-state.before|during|after`), not an action.
    pub fn is_probe(&self) -> bool {
        self.action.starts_with("steady-state")
    }

    /// When the disruption of this action began and when it was over: from its start through
    /// its recovery (an action returns once its target has recovered or its recovery timed
    /// out, so that is its end). `None` for what did not run (skipped, dry run).
    pub fn disruption(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        match self.outcome {
            Outcome::Skipped | Outcome::DryRun => None,
            _ => {
                let end = self.ended_at.unwrap_or(self.started_at);
                let recovered = self.recovery.and_then(|r| {
                    chrono::Duration::from_std(r)
                        .ok()
                        .map(|r| self.started_at + r)
                });
                Some((self.started_at, end.max(recovered.unwrap_or(end))))
            }
        }
    }

    /// The record as a report journal event (`kind` is `chaos.<action>`).
    pub fn to_journal_event(&self) -> JournalEvent {
        let mut detail = Vec::new();
        if !self.affected.is_empty() {
            detail.push(format!("affected: {}", self.affected.join(", ")));
        }
        if let Some(recovery) = self.recovery {
            detail.push(format!("recovered in {:.1} s", recovery.as_secs_f64()));
        }
        if let Some(d) = &self.detail {
            detail.push(d.clone());
        }
        JournalEvent {
            at: self.started_at,
            ended_at: self.ended_at,
            kind: format!("chaos.{}", self.action),
            target: self.target.clone(),
            outcome: self.outcome.as_str().to_string(),
            detail: (!detail.is_empty()).then(|| detail.join("; ")),
        }
    }
}

/// Durations in the journal's JSON as seconds (a float), readable by people and by jq.
mod humantime_serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.map(Duration::from_secs_f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_becomes_a_journal_event_with_its_recovery() {
        let at = Utc::now();
        let record = ActionRecord {
            action: "process-kill".into(),
            target: "order".into(),
            started_at: at,
            ended_at: Some(at + chrono::Duration::seconds(2)),
            outcome: Outcome::Ok,
            affected: vec!["pid 4242".into()],
            recovery: Some(Duration::from_millis(1500)),
            detail: None,
        };
        let event = record.to_journal_event();
        assert_eq!(event.kind, "chaos.process-kill");
        assert_eq!(event.outcome, "ok");
        assert_eq!(
            event.detail.as_deref(),
            Some("affected: pid 4242; recovered in 1.5 s")
        );
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["recovery"], 1.5);
    }
}
