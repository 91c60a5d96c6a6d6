//! Fault injection, so SLO breaches can be produced on purpose: added latency (fixed plus uniform
//! jitter), a ratio of failed requests and a concurrency bound (requests take turns, so latency
//! grows with the load as in a saturated service), set at start from the environment
//! (`FAULT_LATENCY_MS`, `FAULT_JITTER_MS`, `FAULT_ERROR_RATIO`, `FAULT_CONCURRENCY`) or at
//! runtime through the admin API (`GET|PUT|DELETE /admin/faults`). Health, readiness and metrics are never faulted, so a
//! drill observes the service instead of blinding itself.

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use anyhow::{Result, bail};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::config::parse_env;

/// The faults in force.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Latency added to every request, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// Extra latency drawn uniformly from `0..=jitter_ms`.
    #[serde(default)]
    pub jitter_ms: u64,
    /// Fraction of requests failed with 503 / gRPC UNAVAILABLE, from 0.0 to 1.0.
    #[serde(default)]
    pub error_ratio: f64,
    /// At most this many requests served at once, the others waiting their turn (0: no bound).
    /// With `latency_ms` it gives the service a known capacity, `concurrency / latency`.
    #[serde(default)]
    pub concurrency: u32,
}

impl FaultSpec {
    /// Checks the ranges; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.error_ratio) || self.error_ratio.is_nan() {
            bail!(
                "error_ratio must be within 0.0..=1.0, got {}",
                self.error_ratio
            );
        }
        if self.latency_ms > 600_000 || self.jitter_ms > 600_000 {
            bail!("latency_ms and jitter_ms must be at most 600000 (10 minutes)");
        }
        if self.concurrency > MAX_CONCURRENCY {
            bail!(
                "concurrency must be at most {MAX_CONCURRENCY}, got {}",
                self.concurrency
            );
        }
        Ok(())
    }

    pub fn from_env() -> Result<Self> {
        let spec = Self {
            latency_ms: parse_env("FAULT_LATENCY_MS")?.unwrap_or(0),
            jitter_ms: parse_env("FAULT_JITTER_MS")?.unwrap_or(0),
            error_ratio: parse_env("FAULT_ERROR_RATIO")?.unwrap_or(0.0),
            concurrency: parse_env("FAULT_CONCURRENCY")?.unwrap_or(0),
        };
        spec.validate()?;
        Ok(spec)
    }

    pub fn is_active(&self) -> bool {
        self.latency_ms > 0 || self.jitter_ms > 0 || self.error_ratio > 0.0 || self.concurrency > 0
    }
}

/// What to do with one request.
#[derive(Debug, PartialEq)]
pub struct Decision {
    pub delay: Duration,
    pub fail: bool,
}

/// The largest concurrency bound accepted (a semaphore's permits).
const MAX_CONCURRENCY: u32 = 100_000;

/// Shared, runtime-adjustable fault settings of a service.
#[derive(Clone, Default)]
pub struct Faults(Arc<RwLock<InForce>>);

/// The settings and, when they bound concurrency, the turns requests take. A new bound gets a
/// new semaphore: requests already waiting finish their turn under the old one.
#[derive(Default)]
struct InForce {
    spec: FaultSpec,
    turns: Option<Arc<Semaphore>>,
}

impl InForce {
    fn new(spec: FaultSpec) -> Self {
        let turns =
            (spec.concurrency > 0).then(|| Arc::new(Semaphore::new(spec.concurrency as usize)));
        Self { spec, turns }
    }
}

impl Faults {
    pub fn new(spec: FaultSpec) -> Self {
        Self(Arc::new(RwLock::new(InForce::new(spec))))
    }

    pub fn get(&self) -> FaultSpec {
        self.0.read().expect("fault lock poisoned").spec
    }

    pub fn set(&self, spec: FaultSpec) -> Result<()> {
        spec.validate()?;
        let mut in_force = self.0.write().expect("fault lock poisoned");
        if in_force.spec.concurrency != spec.concurrency {
            *in_force = InForce::new(spec);
        } else {
            in_force.spec = spec;
        }
        tracing::warn!(?spec, "fault injection changed");
        Ok(())
    }

    /// Waits for this request's turn when the faults bound concurrency; the request is served
    /// (its injected latency included) while the returned permit lives.
    pub async fn turn(&self) -> Option<OwnedSemaphorePermit> {
        let turns = self.0.read().expect("fault lock poisoned").turns.clone()?;
        turns.acquire_owned().await.ok()
    }

    /// Draws the fate of one request.
    pub fn decide(&self) -> Decision {
        let spec = self.get();
        if !spec.is_active() {
            return Decision {
                delay: Duration::ZERO,
                fail: false,
            };
        }
        let mut rng = rand::rng();
        let jitter = if spec.jitter_ms > 0 {
            rng.random_range(0..=spec.jitter_ms)
        } else {
            0
        };
        Decision {
            delay: Duration::from_millis(spec.latency_ms + jitter),
            fail: spec.error_ratio > 0.0 && rng.random_bool(spec.error_ratio),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inactive_faults_do_nothing() {
        let d = Faults::default().decide();
        assert_eq!(
            d,
            Decision {
                delay: Duration::ZERO,
                fail: false
            }
        );
    }

    #[test]
    fn full_error_ratio_fails_everything_and_latency_is_bounded() {
        let faults = Faults::new(FaultSpec {
            latency_ms: 20,
            jitter_ms: 5,
            error_ratio: 1.0,
            concurrency: 0,
        });
        for _ in 0..100 {
            let d = faults.decide();
            assert!(d.fail);
            assert!((20..=25).contains(&(d.delay.as_millis() as u64)));
        }
    }

    #[test]
    fn error_ratio_is_roughly_honoured() {
        let faults = Faults::new(FaultSpec {
            error_ratio: 0.3,
            ..Default::default()
        });
        let failed = (0..10_000).filter(|_| faults.decide().fail).count();
        assert!((2_500..3_500).contains(&failed), "{failed}");
    }

    #[tokio::test]
    async fn a_concurrency_bound_makes_requests_take_turns() {
        let faults = Faults::new(FaultSpec {
            concurrency: 2,
            ..Default::default()
        });
        let first = faults.turn().await.expect("a turn");
        let _second = faults.turn().await.expect("a turn");
        let third = tokio::time::timeout(Duration::from_millis(50), faults.turn()).await;
        assert!(third.is_err(), "a third request waits while two are served");
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(5), faults.turn()).await;
        assert!(third.unwrap().is_some(), "and is served when one ends");

        faults.set(FaultSpec::default()).unwrap();
        assert!(faults.turn().await.is_none(), "no bound, no waiting");
    }

    #[test]
    fn out_of_range_ratio_is_refused() {
        let err = Faults::default()
            .set(FaultSpec {
                error_ratio: 1.5,
                ..Default::default()
            })
            .unwrap_err();
        assert!(err.to_string().contains("error_ratio"));
    }
}
