//! Reading an experiment file, with errors a person can act on (exit 2): the file, line and
//! column, the field path (`method[1].action.process-kill.service`) and what was wrong, read
//! the way the shared `config` crate reads every configuration file. Rules that span
//! several fields (a `repeat_every` without `count`, a halt condition naming an unknown SLO) are
//! checked right after and name their field.

use std::path::{Path, PathBuf};

use slo::{Metadata as SloMetadata, SloSet, SourceKind};

use crate::alerts::AlertExpectations;
use crate::error::ChaosError;
use crate::model::{
    ActionSpec, Document, Experiment, Head, KubeAction, LocalAction, Rollback, SteadyState,
    SteadyStateDoc, Step, Target,
};

/// Reads and validates the experiment at `path` (an SLO file it names is read too).
pub fn load(path: impl AsRef<Path>) -> Result<Experiment, ChaosError> {
    let path = path.as_ref();
    parse(&config::read_text(path, "experiment")?, path)
}

/// Parses experiment text; `path` names the file in errors and anchors a relative `slo` path.
pub fn parse(text: &str, path: &Path) -> Result<Experiment, ChaosError> {
    let head: Head = config::parse(text, path)?;
    match head.target {
        Target::Local(_) => resolve(config::parse::<Document<LocalAction>>(text, path)?, path),
        Target::Kube(_) => resolve(config::parse::<Document<KubeAction>>(text, path)?, path),
    }
}

/// A rule across fields was broken: name the file and field.
fn invalid(path: &Path, field: &str, message: impl std::fmt::Display) -> ChaosError {
    config::Error::field(path, field, message).into()
}

fn resolve<A: Into<ActionSpec>>(doc: Document<A>, path: &Path) -> Result<Experiment, ChaosError> {
    if doc.method.is_empty() {
        return Err(invalid(path, "method", "the method has no actions"));
    }
    let mut method = Vec::new();
    for (i, step) in doc.method.into_iter().enumerate() {
        let field = format!("method[{i}]");
        let count = step.count.unwrap_or(1);
        if count == 0 {
            return Err(invalid(
                path,
                &format!("{field}.count"),
                "must be at least 1",
            ));
        }
        match step.repeat_every {
            Some(every) if every.is_zero() => {
                return Err(invalid(
                    path,
                    &format!("{field}.repeat_every"),
                    "must be longer than 0",
                ));
            }
            None if count > 1 => {
                return Err(invalid(
                    path,
                    &format!("{field}.count"),
                    "a count above 1 needs `repeat_every`",
                ));
            }
            _ => {}
        }
        let action: ActionSpec = step.action.into();
        check_endpoint(&action, path, &format!("{field}.action"))?;
        method.push(Step {
            name: step.name,
            action,
            at: step.at.unwrap_or_default(),
            repeat_every: step.repeat_every,
            count,
        });
    }
    let mut rollbacks = Vec::new();
    for (i, rollback) in doc.rollbacks.into_iter().enumerate() {
        let action: ActionSpec = rollback.action.into();
        check_endpoint(&action, path, &format!("rollbacks[{i}].action"))?;
        rollbacks.push(Rollback {
            name: rollback.name,
            action,
        });
    }
    let steady_state = doc
        .steady_state
        .map(|s| steady_state(s, path))
        .transpose()?;
    for (i, halt) in doc.safety.halt.iter().enumerate() {
        let slo = steady_state
            .as_ref()
            .and_then(|s| s.set.slos.iter().find(|slo| slo.name == halt.slo));
        let Some(slo) = slo else {
            return Err(invalid(
                path,
                &format!("safety.halt[{i}].slo"),
                format!(
                    "`{}` is not an SLO of the steady-state hypothesis",
                    halt.slo
                ),
            ));
        };
        // The halt bound is read before the SLO it names is known: check its unit now.
        if let Some(objective) = &halt.objective {
            objective.check_unit(slo.sli.unit()).map_err(|message| {
                invalid(path, &format!("safety.halt[{i}].objective"), message)
            })?;
        }
    }
    for (field, value) in [
        ("safety.halt_every", doc.safety.halt_every),
        ("safety.halt_window", doc.safety.halt_window),
    ] {
        if value < std::time::Duration::from_secs(1) {
            return Err(invalid(path, field, "must be at least 1s"));
        }
    }
    let alerts = alerts(
        AlertExpectations {
            expect: doc.expect_alerts,
            forbid: doc.forbid_alerts,
        },
        &doc.target,
        steady_state.as_ref(),
        path,
    )?;
    Ok(Experiment {
        path: path.to_path_buf(),
        metadata: doc.metadata,
        target: doc.target,
        steady_state,
        method,
        rollbacks,
        safety: doc.safety,
        alerts,
    })
}

/// `expect_alerts` and `forbid_alerts`: bounds of at least 1s, no alert both expected and
/// forbidden, and on the embedded stack (whose Prometheus loads the rules generated from the
/// steady-state SLOs with a budget) only alerts those rules define.
fn alerts(
    alerts: AlertExpectations,
    target: &Target,
    steady: Option<&SteadyState>,
    path: &Path,
) -> Result<AlertExpectations, ChaosError> {
    for (i, expected) in alerts.expect.iter().enumerate() {
        if expected.within < std::time::Duration::from_secs(1) {
            return Err(invalid(
                path,
                &format!("expect_alerts[{i}].within"),
                "must be at least 1s",
            ));
        }
        if alerts.forbid.contains(&expected.name) {
            return Err(invalid(
                path,
                &format!("expect_alerts[{i}].name"),
                format!("`{}` is also in forbid_alerts", expected.name),
            ));
        }
    }
    if alerts.is_empty() || !matches!(target, Target::Local(_)) {
        return Ok(alerts);
    }
    let generated = steady.and_then(|s| slo::rules::generate(&s.set).ok());
    let known: Vec<&str> = generated
        .as_ref()
        .map(|g| g.alert_names())
        .unwrap_or_default();
    let fields = alerts
        .expect
        .iter()
        .enumerate()
        .map(|(i, e)| (format!("expect_alerts[{i}].name"), e.name.as_str()))
        .chain(
            alerts
                .forbid
                .iter()
                .enumerate()
                .map(|(i, name)| (format!("forbid_alerts[{i}]"), name.as_str())),
        );
    for (field, name) in fields {
        if !known.contains(&name) {
            return Err(invalid(
                path,
                &field,
                format!(
                    "`{name}` is not an alert of the embedded stack, whose Prometheus has the \
                     burn-rate alerts of the steady-state SLOs with a `budget` ({})",
                    if known.is_empty() {
                        "none has one".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
    }
    Ok(alerts)
}

/// `faults` and `faults-clear` need exactly one of `service` and `admin_url`.
fn check_endpoint(action: &ActionSpec, path: &Path, field: &str) -> Result<(), ChaosError> {
    let (kind, service, url) = match action {
        ActionSpec::Faults(f) => ("faults", f.service.is_some(), f.admin_url.is_some()),
        ActionSpec::FaultsClear(f) => ("faults-clear", f.service.is_some(), f.admin_url.is_some()),
        _ => return Ok(()),
    };
    if service == url {
        return Err(invalid(
            path,
            &format!("{field}.{kind}"),
            "name exactly one of `service` (embedded stack) and `admin_url`",
        ));
    }
    Ok(())
}

fn steady_state(doc: SteadyStateDoc, path: &Path) -> Result<SteadyState, ChaosError> {
    let field = "steady_state";
    let (set, origin) = match (doc.slo, doc.slos) {
        (Some(file), None) => {
            if doc.defaults.is_some() {
                return Err(invalid(
                    path,
                    "steady_state.defaults",
                    "defaults belong in the SLO file when `slo` names one",
                ));
            }
            let file = relative_to(path, &file);
            let set = slo::load(&file)?;
            (set, file.display().to_string())
        }
        (None, Some(slos)) => {
            if slos.is_empty() {
                return Err(invalid(path, "steady_state.slos", "no SLOs"));
            }
            let set = SloSet {
                api_version: slo::ApiVersion::V1,
                kind: slo::SetKind::SloSet,
                metadata: SloMetadata {
                    name: "steady-state".into(),
                    description: None,
                },
                defaults: doc.defaults.unwrap_or_default(),
                slos,
            };
            (set, "inline".to_string())
        }
        _ => {
            return Err(invalid(
                path,
                field,
                "give exactly one of `slo` (an SLO file) and `slos` (inline SLOs)",
            ));
        }
    };
    let mut names = std::collections::BTreeSet::new();
    for slo in &set.slos {
        if !names.insert(slo.name.as_str()) {
            return Err(invalid(
                path,
                field,
                format!("two SLOs are named `{}`", slo.name),
            ));
        }
        // The client source reads the load's report, which only exists once the load is over:
        // it cannot say anything before or during the method.
        if slo.source_kind() == SourceKind::Client {
            return Err(invalid(
                path,
                field,
                format!(
                    "SLO `{}` uses the client source, which only exists after the load; use prometheus",
                    slo.name
                ),
            ));
        }
    }
    for (name, value) in [("before", doc.before), ("after", doc.after)] {
        if value < std::time::Duration::from_secs(1) {
            return Err(invalid(
                path,
                &format!("steady_state.{name}"),
                "must be at least 1s",
            ));
        }
    }
    Ok(SteadyState {
        set,
        origin,
        before: doc.before,
        after: doc.after,
        allow_unknown: doc.allow_unknown,
    })
}

fn relative_to(experiment: &Path, file: &Path) -> PathBuf {
    if file.is_absolute() {
        return file.to_path_buf();
    }
    experiment
        .parent()
        .map(|dir| dir.join(file))
        .unwrap_or_else(|| file.to_path_buf())
}
