//! The sequence of one kill: find the pods, check the blast radius, resolve their owners, delete,
//! wait for recovery, and write it all into one journal record. Shared by `pod-kill` and both
//! forms of `broker-failure`, so they refuse, fail and measure the same way.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use tokio_util::sync::CancellationToken;

use super::pods::{self, Owner, Victim};
use super::recovery::{self, Gone, Recovery};
use super::spec::KubeBrokerFailure;
use super::{KubeTarget, safety};
use crate::{ActionRecord, ChaosError, Outcome};

/// What every kill carries from start to record.
pub struct Kill<'a> {
    action: &'static str,
    target: String,
    started_at: DateTime<Utc>,
    ns: &'a str,
    grace: u32,
    timeout: Duration,
}

impl<'a> Kill<'a> {
    pub fn new(
        action: &'static str,
        target: String,
        ns: &'a str,
        grace: u32,
        timeout: Duration,
    ) -> Kill<'a> {
        Kill {
            action,
            target,
            started_at: Utc::now(),
            ns,
            grace,
            timeout,
        }
    }

    fn record(
        &self,
        outcome: Outcome,
        affected: Vec<String>,
        recovery: Option<Duration>,
        detail: Option<String>,
    ) -> ActionRecord {
        record(
            self.action,
            self.target.clone(),
            self.started_at,
            outcome,
            affected,
            recovery,
            detail,
        )
    }

    fn failed(&self, detail: String) -> ActionRecord {
        self.record(Outcome::Failed, Vec::new(), None, Some(detail))
    }

    fn skipped(&self) -> ActionRecord {
        self.record(
            Outcome::Skipped,
            Vec::new(),
            None,
            Some("cancelled before anything was sent".into()),
        )
    }
}

/// How many pods of the matching ones an action wants, before the blast-radius check.
pub type Amount<'a> = &'a (dyn Fn(usize) -> usize + Sync);

impl KubeTarget {
    pub(super) async fn kill_by_selector(
        &self,
        kill: Kill<'_>,
        selector: &str,
        amount: Amount<'_>,
        cancel: &CancellationToken,
    ) -> Result<ActionRecord, ChaosError> {
        if cancel.is_cancelled() {
            return Ok(kill.skipped());
        }
        let ns = kill.ns;
        let matching = pods::list(&self.client, ns, selector).await?;
        if matching.is_empty() {
            return Ok(kill.failed(format!("no pod matched {selector} in namespace {ns}")));
        }
        let wanted = amount(matching.len());
        safety::check_blast_radius(
            wanted,
            matching.len(),
            self.spec.max_blast_radius_percent,
            &format!("{} {}", kill.action, kill.target),
        )?;
        let victims = pods::pick(&matching, wanted);
        let picked: Vec<&Pod> = matching
            .iter()
            .filter(|p| {
                victims
                    .iter()
                    .any(|v| Some(&v.name) == p.metadata.name.as_ref())
            })
            .collect();
        let owners = pods::resolve_owners(&self.client, ns, &picked).await?;
        let gone = Gone::Selector {
            selector: selector.to_string(),
            uids: victims
                .iter()
                .filter_map(|v| v.uid.clone())
                .collect::<HashSet<_>>(),
            ready_before: matching.iter().filter(|p| pods::is_ready(p)).count(),
        };
        self.delete_and_wait(kill, victims, owners, gone, cancel)
            .await
    }

    pub(super) async fn kill_by_ordinals(
        &self,
        kill: Kill<'_>,
        statefulset: &str,
        ordinals: &[u32],
        cancel: &CancellationToken,
    ) -> Result<ActionRecord, ChaosError> {
        if cancel.is_cancelled() {
            return Ok(kill.skipped());
        }
        let ns = kill.ns;
        let Some(sts) = pods::get_statefulset(&self.client, ns, statefulset).await? else {
            return Ok(kill.failed(format!("statefulset {ns}/{statefulset} not found")));
        };
        let replicas = sts
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1)
            .max(0) as u32;
        if let Some(n) = ordinals.iter().find(|&&n| n >= replicas) {
            return Ok(kill.failed(format!(
                "statefulset {ns}/{statefulset} has {replicas} replicas: there is no ordinal {n}"
            )));
        }
        safety::check_blast_radius(
            ordinals.len(),
            replicas as usize,
            self.spec.max_blast_radius_percent,
            &format!("{} {}", kill.action, kill.target),
        )?;
        // Every pod is looked up before any is deleted, so a missing one stops the action whole.
        let mut victims = Vec::new();
        for n in ordinals {
            let pod_name = format!("{statefulset}-{n}");
            match pods::get(&self.client, ns, &pod_name).await? {
                Some(pod) => victims.push(Victim::of(&pod)),
                None => return Ok(kill.failed(format!("pod {ns}/{pod_name} not found"))),
            }
        }
        let owners = vec![Owner::StatefulSet(statefulset.to_string())];
        let gone = Gone::Named(victims.clone());
        self.delete_and_wait(kill, victims, owners, gone, cancel)
            .await
    }

    async fn delete_and_wait(
        &self,
        kill: Kill<'_>,
        victims: Vec<Victim>,
        owners: Vec<Owner>,
        gone: Gone,
        cancel: &CancellationToken,
    ) -> Result<ActionRecord, ChaosError> {
        let since = tokio::time::Instant::now();
        let mut affected = Vec::new();
        for victim in &victims {
            // Ctrl-C stops the damage: no further pod is deleted.
            if cancel.is_cancelled() {
                let detail = format!(
                    "cancelled after deleting {} of {} pods",
                    affected.len(),
                    victims.len()
                );
                return Ok(kill.record(Outcome::Failed, affected, None, Some(detail)));
            }
            pods::delete(&self.client, kill.ns, &victim.name, kill.grace).await?;
            tracing::info!(action = kill.action, pod = %victim.name, namespace = kill.ns, "deleted pod");
            affected.push(victim.name.clone());
        }
        let waited = recovery::wait(
            &self.client,
            kill.ns,
            &owners,
            &gone,
            since,
            kill.timeout,
            cancel,
        )
        .await;
        let owners_text = owners
            .iter()
            .map(Owner::describe)
            .collect::<Vec<_>>()
            .join(", ");
        Ok(match waited {
            Recovery::Recovered(took) => kill.record(
                Outcome::Ok,
                affected,
                Some(took),
                (!owners_text.is_empty()).then(|| format!("recovered: {owners_text}")),
            ),
            Recovery::TimedOut(missing) => kill.record(
                Outcome::Failed,
                affected,
                None,
                Some(format!(
                    "recovery timed out after {}: {missing}",
                    humantime::format_duration(kill.timeout)
                )),
            ),
            Recovery::Cancelled(after) => kill.record(
                Outcome::Failed,
                affected,
                None,
                Some(format!(
                    "cancelled while waiting for recovery, after {:.1} s: not measured",
                    after.as_secs_f64()
                )),
            ),
        })
    }
}

pub fn broker_target(ns: &str, action: &KubeBrokerFailure) -> String {
    match (&action.selector, &action.statefulset) {
        (Some(selector), _) => format!("{ns}/{selector}"),
        (None, Some(sts)) => format!("{ns}/statefulset/{sts}"),
        (None, None) => ns.to_string(),
    }
}

fn record(
    action: &str,
    target: String,
    started_at: DateTime<Utc>,
    outcome: Outcome,
    affected: Vec<String>,
    recovery: Option<Duration>,
    detail: Option<String>,
) -> ActionRecord {
    ActionRecord {
        action: action.to_string(),
        target,
        started_at,
        ended_at: Some(Utc::now()),
        outcome,
        affected,
        recovery,
        detail,
    }
}

pub fn dry_run_record(action: &str, target: String, lines: Vec<String>) -> ActionRecord {
    record(
        action,
        target,
        Utc::now(),
        Outcome::DryRun,
        Vec::new(),
        None,
        Some(format!(
            "dry run, nothing sent; would send: {}",
            lines.join("; ")
        )),
    )
}
