//! The experiment file model (`apiVersion: shakedown/v1`, `kind: Experiment`), as serde types.
//!
//! An experiment names a target (`local`: the embedded stack; `kube`: a cluster), a steady-state
//! hypothesis (SLOs checked before, during and after), a method (actions on a timeline) and
//! rollbacks. Which actions exist depends on the target, so the file is read in two passes (see
//! `crate::load`): the target first, then the whole document with that target's action
//! vocabulary ([`LocalAction`] or [`KubeAction`]) — a `pod-kill` on a local target is refused
//! with its line, not discovered halfway through a drill.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use slo::{Defaults, Objective, Slo, SloSet};

use crate::alerts::{AlertExpectations, ExpectedAlert};
use crate::kube::{KubeBrokerFailure, KubeTargetSpec, PodKill};

/// serde_yaml_ng reads data-carrying enums only from YAML tags (`!local {}`); experiment files use
/// the plainer one-key map (`local: {}`), read key first so errors keep their line and field path.
macro_rules! one_key_map {
    ($ty:ident, $what:literal, { $($key:literal => $variant:ident),+ $(,)? }) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                const KEYS: &[&str] = &[$($key),+];
                struct Visitor;
                impl<'de> serde::de::Visitor<'de> for Visitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(f, "a map with one key naming the {}: {}", $what, KEYS.join(", "))
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$ty, A::Error> {
                        use serde::de::Error as _;
                        let Some(key) = map.next_key::<String>()? else {
                            return Err(A::Error::custom(format!(
                                "empty; name the {} ({})", $what, KEYS.join(", ")
                            )));
                        };
                        let value = match key.as_str() {
                            $($key => $ty::$variant(map.next_value()?),)+
                            other => return Err(A::Error::unknown_variant(other, KEYS)),
                        };
                        if let Some(extra) = map.next_key::<String>()? {
                            return Err(A::Error::custom(format!(
                                "one {} per entry; `{extra}` is a second one", $what
                            )));
                        }
                        Ok(value)
                    }
                }
                deserializer.deserialize_map(Visitor)
            }
        }
    };
}

/// The only layout version this build reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum ApiVersion {
    #[serde(rename = "shakedown/v1")]
    V1,
}

/// The only kind of document an experiment file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum DocumentKind {
    Experiment,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// Where the experiment acts.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// The embedded reference stack (started by `chaos run` / `drill`).
    Local(LocalTargetSpec),
    /// A Kubernetes cluster, default-deny (see [`KubeTargetSpec`]).
    Kube(KubeTargetSpec),
}
one_key_map!(Target, "target", { "local" => Local, "kube" => Kube });

impl Target {
    pub fn name(&self) -> &'static str {
        match self {
            Target::Local(_) => "local",
            Target::Kube(_) => "kube",
        }
    }
}

/// `target: {local: {}}`; nothing to configure, the stack is the one the command starts.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalTargetSpec {}

/// `process-kill`: SIGKILL one service of the embedded stack; its supervisor restarts it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessKill {
    pub service: ServiceName,
    /// How long the service may take to be ready again before the action counts as failed.
    #[serde(
        default = "default_recovery",
        deserialize_with = "config::duration::required"
    )]
    pub recovery_timeout: Duration,
}

/// Local `broker-failure`: take mock Kafka brokers down for `duration`, then bring them back.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalBrokerFailure {
    /// How many brokers to take down (the highest ids); or name them with `ids`.
    #[serde(default)]
    pub brokers: Option<u32>,
    #[serde(default)]
    pub ids: Vec<i32>,
    #[serde(deserialize_with = "config::duration::required")]
    pub duration: Duration,
    /// When set, recovery is measured until this consumer group's lag is back below `below`.
    #[serde(default)]
    pub recovery: Option<LagRecovery>,
}

/// "Recovered" for a broker failure: a consumer group caught up again.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LagRecovery {
    pub group: String,
    pub topics: Vec<String>,
    /// Total lag (messages) that counts as caught up.
    pub below: u64,
    #[serde(
        default = "default_recovery",
        deserialize_with = "config::duration::required"
    )]
    pub timeout: Duration,
}

/// `faults`: added latency and/or failed requests on one service, through its admin endpoint,
/// for `duration`; cleared at the end (and on halt or Ctrl-C).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// A service of the embedded stack ...
    #[serde(default)]
    pub service: Option<ServiceName>,
    /// ... or any admin base URL serving `/admin/faults` (kube targets, port-forwards).
    #[serde(default)]
    pub admin_url: Option<String>,
    #[serde(default, deserialize_with = "config::duration::optional")]
    pub latency: Option<Duration>,
    #[serde(default, deserialize_with = "config::duration::optional")]
    pub jitter: Option<Duration>,
    #[serde(default, deserialize_with = "ratio")]
    pub error_ratio: f64,
    #[serde(deserialize_with = "config::duration::required")]
    pub duration: Duration,
}

/// `faults-clear`: remove every injected fault of one service (a rollback).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsClear {
    #[serde(default)]
    pub service: Option<ServiceName>,
    #[serde(default)]
    pub admin_url: Option<String>,
}

/// `brokers-up: {}`: bring every mock broker back (a rollback).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokersUp {}

/// The name of a reference service, checked against the services the stack runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceName(pub String);

impl<'de> Deserialize<'de> for ServiceName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        match shop::services::find(&name) {
            Some(_) => Ok(ServiceName(name)),
            None => Err(serde::de::Error::custom(format!(
                "unknown service `{name}` (one of: {})",
                shop::services::names().join(", ")
            ))),
        }
    }
}

fn ratio<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let value = f64::deserialize(d)?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(serde::de::Error::custom(format!(
            "error_ratio {value} is not within 0.0..=1.0"
        )))
    }
}

fn default_recovery() -> Duration {
    Duration::from_secs(60)
}

/// Actions a `local` target understands.
#[derive(Clone, Debug, PartialEq)]
pub enum LocalAction {
    ProcessKill(ProcessKill),
    BrokerFailure(LocalBrokerFailure),
    Faults(Faults),
    FaultsClear(FaultsClear),
    BrokersUp(BrokersUp),
}
one_key_map!(LocalAction, "action", {
    "process-kill" => ProcessKill,
    "broker-failure" => BrokerFailure,
    "faults" => Faults,
    "faults-clear" => FaultsClear,
    "brokers-up" => BrokersUp,
});

/// Actions a `kube` target understands.
#[derive(Clone, Debug, PartialEq)]
pub enum KubeAction {
    PodKill(PodKill),
    BrokerFailure(KubeBrokerFailure),
    Faults(Faults),
    FaultsClear(FaultsClear),
}
one_key_map!(KubeAction, "action", {
    "pod-kill" => PodKill,
    "broker-failure" => BrokerFailure,
    "faults" => Faults,
    "faults-clear" => FaultsClear,
});

/// Every action, whatever the target; what the runner and the dry run work with.
#[derive(Clone, Debug, PartialEq)]
pub enum ActionSpec {
    ProcessKill(ProcessKill),
    LocalBrokerFailure(LocalBrokerFailure),
    Faults(Faults),
    FaultsClear(FaultsClear),
    BrokersUp(BrokersUp),
    PodKill(PodKill),
    KubeBrokerFailure(KubeBrokerFailure),
}

impl From<LocalAction> for ActionSpec {
    fn from(a: LocalAction) -> Self {
        match a {
            LocalAction::ProcessKill(a) => ActionSpec::ProcessKill(a),
            LocalAction::BrokerFailure(a) => ActionSpec::LocalBrokerFailure(a),
            LocalAction::Faults(a) => ActionSpec::Faults(a),
            LocalAction::FaultsClear(a) => ActionSpec::FaultsClear(a),
            LocalAction::BrokersUp(a) => ActionSpec::BrokersUp(a),
        }
    }
}

impl From<KubeAction> for ActionSpec {
    fn from(a: KubeAction) -> Self {
        match a {
            KubeAction::PodKill(a) => ActionSpec::PodKill(a),
            KubeAction::BrokerFailure(a) => ActionSpec::KubeBrokerFailure(a),
            KubeAction::Faults(a) => ActionSpec::Faults(a),
            KubeAction::FaultsClear(a) => ActionSpec::FaultsClear(a),
        }
    }
}

impl ActionSpec {
    /// The action's name in the file and in the journal (`chaos.<kind>`).
    pub fn kind(&self) -> &'static str {
        match self {
            ActionSpec::ProcessKill(_) => "process-kill",
            ActionSpec::LocalBrokerFailure(_) | ActionSpec::KubeBrokerFailure(_) => {
                "broker-failure"
            }
            ActionSpec::Faults(_) => "faults",
            ActionSpec::FaultsClear(_) => "faults-clear",
            ActionSpec::BrokersUp(_) => "brokers-up",
            ActionSpec::PodKill(_) => "pod-kill",
        }
    }

    /// How long the action keeps the system broken on purpose (0 for instant ones); the
    /// timeline uses it to know when the method is over.
    pub fn nominal_duration(&self) -> Duration {
        match self {
            ActionSpec::LocalBrokerFailure(a) => a.duration,
            ActionSpec::Faults(a) => a.duration,
            _ => Duration::ZERO,
        }
    }
}

/// One entry of `method`: an action and when it happens.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDoc<A> {
    pub name: String,
    pub action: A,
    /// Offset from the start of the method.
    #[serde(default, deserialize_with = "config::duration::optional")]
    pub at: Option<Duration>,
    #[serde(default, deserialize_with = "config::duration::optional")]
    pub repeat_every: Option<Duration>,
    /// How many times in all (default 1; needs `repeat_every` when above 1).
    #[serde(default)]
    pub count: Option<u32>,
}

/// One entry of `rollbacks`: run once after the method, whatever happened.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackDoc<A> {
    pub name: String,
    pub action: A,
}

/// `steady_state`: the hypothesis, an SLO file or inline SLOs, and how long it is observed.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SteadyStateDoc {
    /// An SLO file, relative to the experiment file.
    #[serde(default)]
    pub slo: Option<PathBuf>,
    /// Inline SLOs, written as in an SLO file's `slos`.
    #[serde(default)]
    pub slos: Option<Vec<Slo>>,
    /// With inline `slos`: the set's defaults (step, sample_every).
    #[serde(default)]
    pub defaults: Option<Defaults>,
    /// How long the hypothesis is observed before the method starts.
    #[serde(
        default = "default_before",
        deserialize_with = "config::duration::required"
    )]
    pub before: Duration,
    /// How long it is observed after the method and rollbacks.
    #[serde(
        default = "default_after",
        deserialize_with = "config::duration::required"
    )]
    pub after: Duration,
    /// Let SLOs without data pass.
    #[serde(default)]
    pub allow_unknown: bool,
}

fn default_before() -> Duration {
    Duration::from_secs(10)
}

fn default_after() -> Duration {
    Duration::from_secs(15)
}

/// `safety`: when to stop the method early.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Safety {
    #[serde(default)]
    pub halt: Vec<HaltCondition>,
    /// How often the halt conditions are checked while the method runs.
    #[serde(
        default = "default_halt_every",
        deserialize_with = "config::duration::required"
    )]
    pub halt_every: Duration,
    /// The window each halt check looks back over.
    #[serde(
        default = "default_halt_window",
        deserialize_with = "config::duration::required"
    )]
    pub halt_window: Duration,
}

impl Default for Safety {
    fn default() -> Self {
        Safety {
            halt: Vec::new(),
            halt_every: default_halt_every(),
            halt_window: default_halt_window(),
        }
    }
}

fn default_halt_every() -> Duration {
    Duration::from_secs(5)
}

fn default_halt_window() -> Duration {
    Duration::from_secs(15)
}

/// Halt when the steady-state SLO `slo` fails over the last `halt_window` — judged against
/// `objective` when given (the bound beyond which the drill must not go on), else the SLO's own.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaltCondition {
    pub slo: String,
    #[serde(default)]
    pub objective: Option<Objective>,
}

/// The whole document, with the target's action vocabulary `A`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "A: Deserialize<'de>"))]
pub struct Document<A> {
    #[serde(rename = "apiVersion")]
    pub api_version: ApiVersion,
    pub kind: DocumentKind,
    pub metadata: Metadata,
    pub target: Target,
    #[serde(default)]
    pub steady_state: Option<SteadyStateDoc>,
    pub method: Vec<StepDoc<A>>,
    #[serde(default)]
    pub rollbacks: Vec<RollbackDoc<A>>,
    #[serde(default)]
    pub safety: Safety,
    /// Alerts that must fire, each within its bound of the method's start (see `crate::alerts`).
    #[serde(default)]
    pub expect_alerts: Vec<ExpectedAlert>,
    /// Alerts that must not fire during the experiment.
    #[serde(default)]
    pub forbid_alerts: Vec<String>,
}

/// The first pass: only the target, to pick the action vocabulary.
#[derive(Deserialize)]
pub(crate) struct Head {
    pub target: Target,
}

/// A loaded, validated experiment.
#[derive(Clone, Debug)]
pub struct Experiment {
    /// The file it came from.
    pub path: PathBuf,
    pub metadata: Metadata,
    pub target: Target,
    pub steady_state: Option<SteadyState>,
    pub method: Vec<Step>,
    pub rollbacks: Vec<Rollback>,
    pub safety: Safety,
    /// `expect_alerts` and `forbid_alerts`.
    pub alerts: AlertExpectations,
}

/// The resolved hypothesis: one SLO set, however it was written.
#[derive(Clone, Debug)]
pub struct SteadyState {
    pub set: SloSet,
    /// Where the set came from (the SLO file, or "inline").
    pub origin: String,
    pub before: Duration,
    pub after: Duration,
    pub allow_unknown: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub name: String,
    pub action: ActionSpec,
    pub at: Duration,
    pub repeat_every: Option<Duration>,
    pub count: u32,
}

impl Step {
    /// Offsets from the start of the method at which this step's action runs.
    pub fn occurrences(&self) -> Vec<Duration> {
        let every = self.repeat_every.unwrap_or(Duration::ZERO);
        (0..self.count).map(|i| self.at + every * i).collect()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rollback {
    pub name: String,
    pub action: ActionSpec,
}
