//! The `local` target: the embedded reference stack started by `chaos run` or `drill`. Actions
//! act on it directly — the supervisor for process kills, the mock Kafka cluster for broker
//! failures, the services' admin endpoints for faults — so a drill on a laptop or in CI
//! exercises the same recovery paths a cluster drill does.

mod broker_failure;
mod process_kill;

use shop::stack::Stack;

use crate::action::Action;
use crate::error::ChaosError;
use crate::faults::{self, Admin, FaultsAction, FaultsClearAction};
use crate::model::{ActionSpec, LocalBrokerFailure, ServiceName};

pub use broker_failure::{BrokerFailureAction, BrokersUpAction};
pub use process_kill::ProcessKillAction;

/// The embedded stack as an experiment target.
pub struct LocalTarget<'s> {
    stack: &'s Stack,
}

impl<'s> LocalTarget<'s> {
    pub fn new(stack: &'s Stack) -> LocalTarget<'s> {
        LocalTarget { stack }
    }

    /// `spec` ready to run against this stack; refuses what the stack cannot survive (every
    /// broker down) or does not have.
    pub fn bind(&self, spec: &ActionSpec) -> Result<Box<dyn Action + 's>, ChaosError> {
        let stack = self.stack;
        Ok(match spec {
            ActionSpec::ProcessKill(a) => Box::new(ProcessKillAction {
                stack,
                spec: a.clone(),
            }),
            ActionSpec::LocalBrokerFailure(a) => Box::new(BrokerFailureAction {
                stack,
                ids: broker_ids(stack.kafka().broker_ids().collect(), a)?,
                spec: a.clone(),
            }),
            ActionSpec::BrokersUp(_) => Box::new(BrokersUpAction { stack }),
            ActionSpec::Faults(a) => Box::new(FaultsAction {
                admin: self.admin(a.service.as_ref(), a.admin_url.as_deref())?,
                spec: a.clone(),
            }),
            ActionSpec::FaultsClear(a) => Box::new(FaultsClearAction {
                admin: self.admin(a.service.as_ref(), a.admin_url.as_deref())?,
            }),
            ActionSpec::PodKill(_) | ActionSpec::KubeBrokerFailure(_) => {
                return Err(ChaosError::Invalid(format!(
                    "`{}` needs a kube target",
                    spec.kind()
                )));
            }
        })
    }

    fn admin(&self, service: Option<&ServiceName>, url: Option<&str>) -> Result<Admin, ChaosError> {
        match (service, url) {
            (Some(service), _) => {
                let endpoint = self.stack.endpoint(&service.0).ok_or_else(|| {
                    ChaosError::Invalid(format!("the stack runs no service `{}`", service.0))
                })?;
                Ok(Admin::new(service.0.clone(), endpoint.admin_url.clone()))
            }
            (None, Some(url)) => Ok(Admin::new(url, url)),
            (None, None) => Err(ChaosError::Invalid(
                "faults need `service` or `admin_url`".into(),
            )),
        }
    }
}

/// Which brokers a local broker failure takes down: the named ids, or the `brokers` highest
/// ones. At least one broker must stay up — the local blast-radius rule: with none left, the
/// drill tests nothing but a dead cluster.
pub fn broker_ids(available: Vec<i32>, spec: &LocalBrokerFailure) -> Result<Vec<i32>, ChaosError> {
    let ids = match (spec.brokers, spec.ids.is_empty()) {
        (Some(_), false) => {
            return Err(ChaosError::Invalid(
                "broker-failure: give `brokers` or `ids`, not both".into(),
            ));
        }
        (None, true) => {
            return Err(ChaosError::Invalid(
                "broker-failure: say how many (`brokers: 2`) or which (`ids: [2, 3]`)".into(),
            ));
        }
        (Some(n), true) => {
            let n = n as usize;
            if n == 0 {
                return Err(ChaosError::Invalid("broker-failure: `brokers` is 0".into()));
            }
            available
                .iter()
                .rev()
                .take(n)
                .rev()
                .copied()
                .collect::<Vec<_>>()
        }
        (None, false) => {
            if let Some(unknown) = spec.ids.iter().find(|id| !available.contains(id)) {
                return Err(ChaosError::Invalid(format!(
                    "broker-failure: no broker {unknown} (the cluster has {available:?})"
                )));
            }
            spec.ids.clone()
        }
    };
    if ids.len() >= available.len() {
        return Err(ChaosError::Refused(format!(
            "broker-failure would take down {} of {} brokers; at least one must stay up",
            ids.len().max(spec.brokers.unwrap_or(0) as usize),
            available.len()
        )));
    }
    Ok(ids)
}

/// What `spec` would do on the embedded stack, for `--dry-run` (which starts nothing, so the
/// stack's ports are not known yet and are named instead).
pub fn describe(spec: &ActionSpec) -> Vec<String> {
    let admin = |service: Option<&ServiceName>, url: Option<&str>| match (service, url) {
        (Some(s), _) => format!("<admin URL of {}>", s.0),
        (None, Some(u)) => u.trim_end_matches('/').to_string(),
        (None, None) => "<no endpoint>".into(),
    };
    match spec {
        ActionSpec::ProcessKill(a) => vec![
            format!(
                "SIGKILL the running process of service `{}` of the embedded stack",
                a.service.0
            ),
            format!(
                "wait up to {} for the supervisor to restart it and for its /ready to answer 200 (recovery time)",
                humantime::format_duration(a.recovery_timeout)
            ),
        ],
        ActionSpec::LocalBrokerFailure(a) => {
            let which = match a.brokers {
                Some(n) => format!("the {n} highest-numbered mock Kafka brokers"),
                None => format!("mock Kafka brokers {:?}", a.ids),
            };
            let mut lines = vec![
                format!("take down {which}"),
                format!(
                    "wait {} (less if halted or interrupted)",
                    humantime::format_duration(a.duration)
                ),
                "bring them back up".to_string(),
            ];
            if let Some(r) = &a.recovery {
                lines.push(format!(
                    "wait up to {} for consumer group `{}` lag on [{}] to drop below {} (recovery time)",
                    humantime::format_duration(r.timeout),
                    r.group,
                    r.topics.join(", "),
                    r.below
                ));
            }
            lines
        }
        ActionSpec::BrokersUp(_) => vec!["bring every mock Kafka broker up".into()],
        ActionSpec::Faults(a) => {
            faults::describe(a, &admin(a.service.as_ref(), a.admin_url.as_deref()))
        }
        ActionSpec::FaultsClear(a) => {
            faults::describe_clear(&admin(a.service.as_ref(), a.admin_url.as_deref()))
        }
        ActionSpec::PodKill(_) | ActionSpec::KubeBrokerFailure(_) => {
            vec![format!("`{}` needs a kube target", spec.kind())]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn failure(brokers: Option<u32>, ids: Vec<i32>) -> LocalBrokerFailure {
        LocalBrokerFailure {
            brokers,
            ids,
            duration: Duration::from_secs(10),
            recovery: None,
        }
    }

    #[test]
    fn broker_choice_keeps_one_broker_up() {
        assert_eq!(
            broker_ids(vec![1, 2, 3], &failure(Some(2), vec![])).unwrap(),
            vec![2, 3]
        );
        assert_eq!(
            broker_ids(vec![1, 2, 3], &failure(None, vec![1])).unwrap(),
            vec![1]
        );
        let refused = broker_ids(vec![1, 2, 3], &failure(Some(3), vec![])).unwrap_err();
        assert_eq!(refused.exit_code(), 2);
        assert!(
            refused.to_string().contains("at least one must stay up"),
            "{refused}"
        );
        assert!(broker_ids(vec![1, 2, 3], &failure(None, vec![7])).is_err());
        assert!(broker_ids(vec![1, 2, 3], &failure(Some(1), vec![1])).is_err());
    }
}
