//! The `local` target: the embedded reference stack started by `chaos run` or `drill`. Actions
//! act on it directly — the supervisor for process kills, the mock Kafka cluster for broker
//! failures, the services' admin endpoints for faults — so a drill on a laptop or in CI
//! exercises the same recovery paths a cluster drill does.

pub mod accounting;
mod broker_failure;
mod process_kill;

use shop::stack::Stack;

use crate::action::Action;
use crate::error::ChaosError;
use crate::faults::{self, Admin, FaultsAction, FaultsClearAction};
use crate::model::{ActionSpec, Faults, LocalBrokerFailure, ProcessKill, ServiceName};
use crate::plan::{Checked, Preflight};

pub use broker_failure::{BrokerFailureAction, BrokersUpAction};
pub use process_kill::ProcessKillAction;

/// What binding needs to know about the embedded stack: its brokers and its services. A real
/// run takes it from the running stack ([`StackShape::of`]); a dry run from the stack options
/// alone ([`StackShape::planned`]), without starting anything. Both go through [`resolve`], so
/// a dry run refuses exactly what the real run refuses.
#[derive(Clone, Debug, PartialEq)]
pub struct StackShape {
    /// Mock Kafka broker ids.
    pub brokers: Vec<i32>,
    /// Services the stack runs.
    pub services: Vec<String>,
    /// How the shape was learnt, for messages (`the running stack`, `--brokers 3`).
    pub origin: String,
}

impl StackShape {
    /// The shape of a running stack.
    pub fn of(stack: &Stack) -> StackShape {
        StackShape {
            brokers: stack.kafka().broker_ids().collect(),
            services: stack.endpoints().iter().map(|e| e.name.clone()).collect(),
            origin: "the running stack".into(),
        }
    }

    /// The shape a stack started with `--brokers brokers` will have: the mock cluster numbers
    /// its brokers `1..=brokers` (`MockKafka::broker_ids`), and every reference service runs.
    pub fn planned(brokers: i32) -> StackShape {
        StackShape {
            brokers: (1..=brokers).collect(),
            services: shop::services::ALL
                .iter()
                .map(|s| s.name.to_string())
                .collect(),
            origin: format!("--brokers {brokers}"),
        }
    }
}

/// Where a `faults` / `faults-clear` goes: a service of the stack, or a URL.
#[derive(Clone, Debug, PartialEq)]
pub enum AdminRef {
    Service(String),
    Url(String),
}

/// A local action that passed every rule binding applies, with what the rules decided (which
/// brokers go down).
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved {
    ProcessKill(ProcessKill),
    BrokerFailure {
        ids: Vec<i32>,
        spec: LocalBrokerFailure,
    },
    BrokersUp,
    Faults {
        admin: AdminRef,
        spec: Faults,
    },
    FaultsClear {
        admin: AdminRef,
    },
}

/// Every rule a local action must pass before it may run, against `shape`: the action exists
/// for a local target, its service is in the stack, a broker failure leaves a broker up. The
/// real run ([`LocalTarget::bind`]) and the dry run ([`Preflight`] for [`StackShape`]) both
/// call this and nothing else that can refuse.
pub fn resolve(shape: &StackShape, spec: &ActionSpec) -> Result<Resolved, ChaosError> {
    let service = |name: &ServiceName| {
        if shape.services.contains(&name.0) {
            Ok(name.0.clone())
        } else {
            Err(ChaosError::Invalid(format!(
                "the stack runs no service `{}`",
                name.0
            )))
        }
    };
    let admin = |name: Option<&ServiceName>, url: Option<&str>| match (name, url) {
        (Some(name), _) => service(name).map(AdminRef::Service),
        (None, Some(url)) => Ok(AdminRef::Url(url.to_string())),
        (None, None) => Err(ChaosError::Invalid(
            "faults need `service` or `admin_url`".into(),
        )),
    };
    Ok(match spec {
        ActionSpec::ProcessKill(a) => {
            service(&a.service)?;
            Resolved::ProcessKill(a.clone())
        }
        ActionSpec::LocalBrokerFailure(a) => Resolved::BrokerFailure {
            ids: broker_ids(shape.brokers.clone(), a)
                .map_err(|e| e.map_message(|m| format!("{m} (brokers from {})", shape.origin)))?,
            spec: a.clone(),
        },
        ActionSpec::BrokersUp(_) => Resolved::BrokersUp,
        ActionSpec::Faults(a) => Resolved::Faults {
            admin: admin(a.service.as_ref(), a.admin_url.as_deref())?,
            spec: a.clone(),
        },
        ActionSpec::FaultsClear(a) => Resolved::FaultsClear {
            admin: admin(a.service.as_ref(), a.admin_url.as_deref())?,
        },
        ActionSpec::PodKill(_) | ActionSpec::KubeBrokerFailure(_) => {
            return Err(ChaosError::Invalid(format!(
                "`{}` needs a kube target",
                spec.kind()
            )));
        }
    })
}

/// The embedded stack as an experiment target.
pub struct LocalTarget<'s> {
    stack: &'s Stack,
}

impl<'s> LocalTarget<'s> {
    pub fn new(stack: &'s Stack) -> LocalTarget<'s> {
        LocalTarget { stack }
    }

    /// `spec` ready to run against this stack; refuses (through [`resolve`]) what the stack
    /// cannot survive (every broker down) or does not have.
    pub fn bind(&self, spec: &ActionSpec) -> Result<Box<dyn Action + 's>, ChaosError> {
        let stack = self.stack;
        Ok(match resolve(&StackShape::of(stack), spec)? {
            Resolved::ProcessKill(spec) => Box::new(ProcessKillAction { stack, spec }),
            Resolved::BrokerFailure { ids, spec } => {
                Box::new(BrokerFailureAction { stack, ids, spec })
            }
            Resolved::BrokersUp => Box::new(BrokersUpAction { stack }),
            Resolved::Faults { admin, spec } => Box::new(FaultsAction {
                admin: self.admin(&admin)?,
                spec,
            }),
            Resolved::FaultsClear { admin } => Box::new(FaultsClearAction {
                admin: self.admin(&admin)?,
            }),
        })
    }

    fn admin(&self, admin: &AdminRef) -> Result<Admin, ChaosError> {
        match admin {
            AdminRef::Service(service) => {
                let endpoint = self.stack.endpoint(service).ok_or_else(|| {
                    ChaosError::Invalid(format!("the stack runs no service `{service}`"))
                })?;
                Ok(Admin::new(service.clone(), endpoint.admin_url.clone()))
            }
            AdminRef::Url(url) => Ok(Admin::new(url, url)),
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

/// The stack as the dry run sees it: the same [`resolve`] as binding, then the plan with the
/// exact brokers chosen. Everything a local action can be refused for is known from the
/// shape; what only the running stack answers (a process to kill, an admin endpoint) is
/// listed as deferred — it fails the run (exit 1 or 3), it is never a refusal.
impl Preflight for StackShape {
    fn target(&self) -> Vec<String> {
        vec![format!(
            "embedded stack ({}): mock Kafka brokers {:?}, {} services",
            self.origin,
            self.brokers,
            self.services.len()
        )]
    }

    fn check(&self, spec: &ActionSpec) -> Result<Checked, ChaosError> {
        let resolved = resolve(self, spec)?;
        let mut checked = Checked {
            steps: describe(&resolved),
            passed: Vec::new(),
            deferred: Vec::new(),
        };
        match &resolved {
            Resolved::ProcessKill(a) => {
                checked
                    .passed
                    .push(format!("service `{}` is part of the stack", a.service.0));
                checked.deferred.push(format!(
                    "`{}` has a running process when the kill is due",
                    a.service.0
                ));
            }
            Resolved::BrokerFailure { ids, .. } => checked.passed.push(format!(
                "brokers {ids:?} of {:?} go down: {} stay(s) up",
                self.brokers,
                self.brokers.len() - ids.len()
            )),
            Resolved::Faults { admin, .. } | Resolved::FaultsClear { admin } => {
                if let AdminRef::Url(url) = admin {
                    checked
                        .deferred
                        .push(format!("{url} answers /admin/faults"));
                }
            }
            Resolved::BrokersUp => {}
        }
        Ok(checked)
    }
}

/// What a resolved action does on the embedded stack, for `--dry-run` (which starts nothing,
/// so the services' ports are not known yet and are named instead).
pub fn describe(resolved: &Resolved) -> Vec<String> {
    let admin = |admin: &AdminRef| match admin {
        AdminRef::Service(s) => format!("<admin URL of {s}>"),
        AdminRef::Url(u) => u.trim_end_matches('/').to_string(),
    };
    match resolved {
        Resolved::ProcessKill(a) => vec![
            format!(
                "SIGKILL the running process of service `{}` of the embedded stack",
                a.service.0
            ),
            format!(
                "wait up to {} for the supervisor to restart it and for its /ready to answer 200 (recovery time)",
                humantime::format_duration(a.recovery_timeout)
            ),
        ],
        Resolved::BrokerFailure { ids, spec: a } => {
            let mut lines = vec![
                format!("take down mock Kafka brokers {ids:?}"),
                format!(
                    "wait {} (less if halted or interrupted)",
                    humantime::format_duration(a.duration)
                ),
                "bring them back up".to_string(),
            ];
            if let Some(r) = &a.recovery {
                lines.push(format!(
                    "wait up to {} for the outboxes to drain and consumer group `{}` lag on [{}] to drop below {} (recovery time)",
                    humantime::format_duration(r.timeout),
                    r.group,
                    r.topics.join(", "),
                    r.below
                ));
            }
            lines
        }
        Resolved::BrokersUp => vec!["bring every mock Kafka broker up".into()],
        Resolved::Faults { admin: a, spec } => faults::describe(spec, &admin(a)),
        Resolved::FaultsClear { admin: a } => faults::describe_clear(&admin(a)),
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
        assert_eq!(refused.conclusion(), crate::outcome::Conclusion::Invalid);
        assert!(
            refused.to_string().contains("at least one must stay up"),
            "{refused}"
        );
        assert!(broker_ids(vec![1, 2, 3], &failure(None, vec![7])).is_err());
        assert!(broker_ids(vec![1, 2, 3], &failure(Some(1), vec![1])).is_err());
    }
}
