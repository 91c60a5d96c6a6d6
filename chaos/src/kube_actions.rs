//! `pod-kill` and kube `broker-failure` as [`Action`]s: thin adapters over [`KubeTarget`], which
//! owns the safety rules, the requests and the recovery wait. Faults on a kube target go through
//! an admin URL (`faults` with `admin_url`), like any other endpoint.

use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use crate::action::{Action, ActionFuture};
use crate::error::ChaosError;
use crate::faults::{self, Admin, FaultsAction, FaultsClearAction};
use crate::kube::{KubeBrokerFailure, KubeTarget, PodKill};
use crate::model::ActionSpec;

pub struct PodKillAction {
    pub target: KubeTarget,
    pub spec: PodKill,
}

impl Action for PodKillAction {
    fn kind(&self) -> &str {
        "pod-kill"
    }

    fn target(&self) -> String {
        self.target.pod_kill_target(&self.spec)
    }

    fn run<'a>(&'a self, cancel: &'a CancellationToken) -> ActionFuture<'a> {
        self.target.pod_kill(&self.spec, cancel).boxed()
    }
}

pub struct KubeBrokerFailureAction {
    pub target: KubeTarget,
    pub spec: KubeBrokerFailure,
}

impl Action for KubeBrokerFailureAction {
    fn kind(&self) -> &str {
        "broker-failure"
    }

    fn target(&self) -> String {
        self.target.broker_failure_target(&self.spec)
    }

    fn run<'a>(&'a self, cancel: &'a CancellationToken) -> ActionFuture<'a> {
        self.target.broker_failure(&self.spec, cancel).boxed()
    }
}

/// Checks `spec` against the target's safety rules (before anything runs) and binds it.
pub fn bind(target: &KubeTarget, spec: &ActionSpec) -> Result<Box<dyn Action>, ChaosError> {
    Ok(match spec {
        ActionSpec::PodKill(a) => {
            target.check_pod_kill(a)?;
            Box::new(PodKillAction {
                target: target.clone(),
                spec: a.clone(),
            })
        }
        ActionSpec::KubeBrokerFailure(a) => {
            target.check_broker_failure(a)?;
            Box::new(KubeBrokerFailureAction {
                target: target.clone(),
                spec: a.clone(),
            })
        }
        ActionSpec::Faults(a) => Box::new(FaultsAction {
            admin: admin_url(a.admin_url.as_deref())?,
            spec: a.clone(),
        }),
        ActionSpec::FaultsClear(a) => Box::new(FaultsClearAction {
            admin: admin_url(a.admin_url.as_deref())?,
        }),
        other => {
            return Err(ChaosError::Invalid(format!(
                "`{}` needs the local target",
                other.kind()
            )));
        }
    })
}

fn admin_url(url: Option<&str>) -> Result<Admin, ChaosError> {
    url.map(|u| Admin::new(u, u))
        .ok_or_else(|| ChaosError::Invalid("on a kube target, faults need `admin_url`".into()))
}

/// The dry-run description of `spec` on a kube target (safety refusals included).
pub fn describe(target: &KubeTarget, spec: &ActionSpec) -> Vec<String> {
    match spec {
        ActionSpec::PodKill(a) => target.describe_pod_kill(a),
        ActionSpec::KubeBrokerFailure(a) => target.describe_broker_failure(a),
        ActionSpec::Faults(a) => faults::describe(a, a.admin_url.as_deref().unwrap_or("?")),
        ActionSpec::FaultsClear(a) => faults::describe_clear(a.admin_url.as_deref().unwrap_or("?")),
        other => vec![format!("`{}` needs the local target", other.kind())],
    }
}
