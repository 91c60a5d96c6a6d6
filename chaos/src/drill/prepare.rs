//! Before and around the method: the dry run, the checks a real run makes before its first
//! action (cluster permissions, safety rules, steady-state sources), and running the method.
//! Shared by `chaos run` (no load) and `drill` (with load), so both refuse the same things.

use shop::stack::Stack;
use tokio_util::sync::CancellationToken;

use super::DrillError;
use crate::kube::KubeTarget;
use crate::local::{LocalTarget, StackShape};
use crate::plan::DryRun;
use crate::runner::Bound;
use crate::steady::SloHypothesis;
use crate::{ChaosError, Experiment, ExperimentOutcome, Target};

/// Where the steady-state SLOs are measured, when not the embedded stack's own.
#[derive(Clone, Debug, Default)]
pub struct SourceOverrides {
    /// Prometheus base URL (default: the embedded stack's).
    pub prometheus_url: Option<String>,
    /// Kafka bootstrap servers (default: the embedded stack's mock cluster).
    pub kafka: Option<String>,
}

/// The plan, checked the way the real run binds every action (local: against the stack of
/// `brokers` mock brokers; kube: on a target that cannot send a request), so what the real run
/// refuses the dry run refuses too.
pub fn dry_run(experiment: &Experiment, brokers: i32) -> Result<DryRun, ChaosError> {
    match &experiment.target {
        Target::Local(_) => crate::plan::dry_run(experiment, &StackShape::planned(brokers)),
        Target::Kube(spec) => {
            let target = KubeTarget::offline(spec)?;
            crate::plan::dry_run(experiment, &target)
        }
    }
}

/// For a local experiment: the dry run's safety rules against the stack about to be started
/// with `brokers` brokers, so a refused experiment starts nothing. A kube experiment passes.
pub fn check_planned_stack(experiment: &Experiment, brokers: i32) -> Result<(), ChaosError> {
    match experiment.target {
        Target::Local(_) => {
            crate::plan::dry_run(experiment, &StackShape::planned(brokers))?;
            Ok(())
        }
        Target::Kube(_) => Ok(()),
    }
}

/// An experiment checked against its target before anything is sent: the cluster answers and
/// allows what the actions do, every action binds (safety rules), and the steady state's
/// sources answer.
pub struct Prepared {
    kube: Option<KubeTarget>,
    hypothesis: Option<SloHypothesis>,
    /// The Prometheus whose `ALERTS` judge `expect_alerts` / `forbid_alerts`.
    alerts: Option<slo::sources::PrometheusSource>,
}

/// Pre-flight of `experiment`: fails at once — before a drill's load or the first action —
/// naming what is missing.
pub async fn prepare(
    experiment: &Experiment,
    stack: Option<&Stack>,
    sources: &SourceOverrides,
) -> Result<Prepared, DrillError> {
    let kube = match &experiment.target {
        Target::Kube(spec) => {
            let target = KubeTarget::connect(spec, false).await?;
            target
                .preflight(crate::kube::preflight::POD_ACTIONS)
                .await?;
            Some(target)
        }
        Target::Local(_) => None,
    };
    // Binding applies every safety rule; the bound actions are made again in `execute`.
    bind_all(experiment, kube.as_ref(), stack)?;
    let hypothesis = match &experiment.steady_state {
        Some(steady) => {
            let config = slo::SourcesConfig {
                prometheus: sources
                    .prometheus_url
                    .clone()
                    .or_else(|| stack?.prometheus_url().map(str::to_string)),
                kafka: sources
                    .kafka
                    .clone()
                    .or_else(|| Some(stack?.kafka().bootstrap_servers().to_string())),
                kube_context: match &experiment.target {
                    Target::Kube(spec) => spec.context.clone(),
                    Target::Local(_) => None,
                },
                report: None,
            };
            slo::sources::require(&steady.set, &config).await?;
            let built = config.build(&steady.set.source_kinds()).await?;
            Some(SloHypothesis::new(steady, &experiment.safety, built))
        }
        None => None,
    };
    let alerts = if experiment.alerts.is_empty() {
        None
    } else {
        let url = sources
            .prometheus_url
            .clone()
            .or_else(|| stack?.prometheus_url().map(str::to_string))
            .ok_or_else(|| {
                ChaosError::Invalid(
                    "expect_alerts / forbid_alerts are judged from Prometheus: give --prometheus-url, \
                     or have `prometheus` on PATH for the embedded stack's"
                        .into(),
                )
            })?;
        let prometheus = slo::sources::PrometheusSource::new(&url)?;
        crate::alerts::check_known(&prometheus, &experiment.alerts).await?;
        Some(prometheus)
    };
    Ok(Prepared {
        kube,
        hypothesis,
        alerts,
    })
}

fn bind_all<'a>(
    experiment: &Experiment,
    kube: Option<&'a KubeTarget>,
    stack: Option<&'a Stack>,
) -> Result<Bound<'a>, ChaosError> {
    let bind = |spec: &crate::ActionSpec| -> Result<Box<dyn crate::Action + 'a>, ChaosError> {
        match (kube, stack) {
            (Some(target), _) => crate::kube_actions::bind(target, spec),
            (None, Some(stack)) => LocalTarget::new(stack).bind(spec),
            (None, None) => unreachable!("a local experiment has a stack"),
        }
    };
    Ok(Bound {
        method: experiment
            .method
            .iter()
            .map(|s| bind(&s.action))
            .collect::<Result<_, _>>()?,
        rollbacks: experiment
            .rollbacks
            .iter()
            .map(|r| bind(&r.action))
            .collect::<Result<_, _>>()?,
    })
}

/// Runs a prepared experiment; `say` gets the progress lines.
pub async fn execute(
    experiment: &Experiment,
    prepared: &Prepared,
    stack: Option<&Stack>,
    cancel: &CancellationToken,
    say: &(dyn Fn(String) + Sync),
) -> Result<ExperimentOutcome, DrillError> {
    let bound = bind_all(experiment, prepared.kube.as_ref(), stack)?;
    let mut outcome = crate::runner::run(
        experiment,
        bound,
        prepared
            .hypothesis
            .as_ref()
            .map(|h| h as &dyn crate::steady::Hypothesis),
        experiment.safety.halt_every,
        cancel,
        say,
    )
    .await;
    if let Some(prometheus) = &prepared.alerts {
        let ended = chrono::Utc::now();
        let started = outcome.started_at.unwrap_or(ended);
        say("alerts: reading Prometheus's ALERTS".into());
        match crate::alerts::judge(
            prometheus,
            &experiment.alerts,
            started,
            outcome.method_started_at,
            ended,
        )
        .await
        {
            Ok(verdicts) => {
                for verdict in &verdicts {
                    say(format!(
                        "alerts: {} ({})",
                        verdict.text(),
                        if verdict.holds() { "ok" } else { "FAILED" }
                    ));
                    outcome.journal.push(verdict.to_record());
                }
                outcome.alerts = verdicts;
            }
            Err(error) => outcome.errors.push(error),
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn experiment(body: &str) -> Experiment {
        let text =
            format!("apiVersion: shakedown/v1\nkind: Experiment\nmetadata: {{name: t}}\n{body}");
        crate::parse(&text, Path::new("exp.yaml")).unwrap()
    }

    const TWO_BROKERS_DOWN: &str = "target: {local: {}}\nmethod:\n  - {name: two down, action: {broker-failure: {brokers: 2, duration: 10s}}}\n";

    #[test]
    fn the_planned_stack_refuses_what_the_real_one_would() {
        let down = experiment(TWO_BROKERS_DOWN);
        assert!(check_planned_stack(&down, 3).is_ok());
        let refused = check_planned_stack(&down, 2).unwrap_err();
        assert_eq!(
            refused.conclusion(),
            crate::Conclusion::Invalid,
            "{refused}"
        );
        assert_eq!(
            dry_run(&down, 2).unwrap_err().to_string(),
            refused.to_string(),
            "the dry run and the pre-start check say the same"
        );
        let planned = dry_run(&down, 3).unwrap();
        assert!(!planned.lines.is_empty());
    }

    /// A kube client (even one that sends nothing) needs a runtime.
    #[tokio::test]
    async fn a_kube_experiment_is_checked_offline_and_starts_no_stack() {
        let kill = experiment(
            "target:\n  kube: {namespace: shop, allowed_namespaces: [shop], max_blast_radius_percent: 50}\nmethod:\n  - {name: kill, action: {pod-kill: {selector: app=order}}}\n",
        );
        assert!(check_planned_stack(&kill, 1).is_ok());
        assert!(dry_run(&kill, 1).is_ok());
    }
}
