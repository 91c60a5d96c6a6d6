//! `pod-kill` and kube `broker-failure` as [`Action`]s: thin adapters over [`KubeTarget`], which
//! owns the safety rules, the requests and the recovery wait. Faults on a kube target go through
//! an admin URL (`faults` with `admin_url`), like any other endpoint.

use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use crate::action::{Action, ActionFuture};
use crate::error::ChaosError;
use crate::faults::{self, Admin, FaultsAction, FaultsClearAction};
use crate::kube::{KubeBrokerFailure, KubeTarget, PodKill, safety};
use crate::model::ActionSpec;
use crate::plan::{Checked, Preflight};

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

/// A kube target as the dry run sees it ([`KubeTarget::offline`]: it cannot send a request).
/// `check` is [`bind`] itself — the target's allowlist and blast-radius limit were checked when
/// it was built, exactly as [`KubeTarget::connect`] does — so a dry run refuses what a real run
/// refuses before sending anything. What needs the cluster (how many pods match, the
/// StatefulSet's replicas, whether pods have controllers) is listed as deferred, with the
/// numbers the real run will require.
impl Preflight for KubeTarget {
    fn target(&self) -> Vec<String> {
        let spec = self.spec();
        vec![format!(
            "kube namespace `{}` in allowed_namespaces {:?}; {} never allowed; max_blast_radius_percent {}",
            spec.namespace,
            spec.allowed_namespaces,
            safety::PROTECTED_NAMESPACES.join(" and "),
            spec.max_blast_radius_percent
        )]
    }

    fn check(&self, spec: &ActionSpec) -> Result<Checked, ChaosError> {
        bind(self, spec)?;
        let max = self.spec().max_blast_radius_percent;
        let ns = |action_ns: Option<&str>| action_ns.unwrap_or(&self.spec().namespace).to_string();
        let mut checked = Checked {
            steps: describe(self, spec),
            ..Checked::default()
        };
        let by_count = |selector: &str, ns: &str, count: usize| {
            format!(
                "how many pods match `{selector}` in {ns}: deleting {count} needs at least {} matching pods at max_blast_radius_percent {max} (refused, exit 2, with fewer)",
                safety::fewest_matching_for(count, max)
            )
        };
        let controllers =
            "every picked pod has a controller that brings it back (refused, exit 2, otherwise)";
        match spec {
            ActionSpec::PodKill(a) => {
                let ns = ns(a.namespace.as_deref());
                checked
                    .passed
                    .push(format!("namespace {ns} allowed, selector `{}`", a.selector));
                checked.deferred.push(match a.percent {
                    Some(percent) => {
                        let refused = safety::refused_matching_counts(a, max, 10);
                        format!(
                            "how many pods match `{}` in {ns}: ceil({percent}% of them), at least 1, may not exceed floor(matching * {max} / 100){}",
                            a.selector,
                            if refused.is_empty() {
                                String::new()
                            } else {
                                format!(" (refused, exit 2, with {refused:?} matching pods)")
                            }
                        )
                    }
                    None => by_count(&a.selector, &ns, a.count.unwrap_or(1) as usize),
                });
                checked.deferred.push(controllers.into());
            }
            ActionSpec::KubeBrokerFailure(a) => {
                let ns = ns(a.namespace.as_deref());
                checked.passed.push(format!("namespace {ns} allowed"));
                match (&a.selector, &a.statefulset) {
                    (Some(selector), _) => {
                        checked.deferred.push(by_count(
                            selector,
                            &ns,
                            a.count.unwrap_or(1) as usize,
                        ));
                        checked.deferred.push(controllers.into());
                    }
                    (None, Some(sts)) => checked.deferred.push(format!(
                        "statefulset {ns}/{sts} exists with ordinals {:?} (fails, exit 1, otherwise); deleting {} needs at least {} replicas at max_blast_radius_percent {max} (refused, exit 2, with fewer)",
                        a.ordinals,
                        a.ordinals.len(),
                        safety::fewest_matching_for(a.ordinals.len(), max)
                    )),
                    (None, None) => {}
                }
            }
            ActionSpec::Faults(a) => checked.deferred.push(format!(
                "{} answers /admin/faults",
                a.admin_url.as_deref().unwrap_or("?")
            )),
            ActionSpec::FaultsClear(a) => checked.deferred.push(format!(
                "{} answers /admin/faults",
                a.admin_url.as_deref().unwrap_or("?")
            )),
            _ => {}
        }
        Ok(checked)
    }
}
