//! Readiness: a service is ready when it can answer requests, i.e. when every dependency its
//! requests need answers (database, peer services). `/ready` runs the checks with a timeout and
//! reports each one, so an operator sees which dependency is missing; `/health` only says the
//! process is alive.
//!
//! Some dependencies are watched without gating readiness ([`Readiness::add_optional`]): Kafka
//! behind a transactional outbox is one. Order and payment accept requests into their outbox
//! while every broker is down, so taking them out of the load balancer then would turn a Kafka
//! outage into failed checkouts; `/ready` still shows the broken dependency (in `checks` and
//! `degraded`) and the `dependency_up` gauge records it.

use std::{collections::BTreeMap, pin::Pin, sync::Arc, time::Duration};

// The message of a failed check, as `/ready` reports it.
type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Check = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// How long one check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
struct Entry {
    name: String,
    check: Check,
    /// Whether a failure makes the service unready.
    required: bool,
}

/// The set of named dependency checks of a service.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<Entry>,
}

/// The outcome of every check at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    /// Every required check passed.
    pub ready: bool,
    /// Each check's name and `"ok"` or why it failed (optional checks included).
    pub checks: BTreeMap<String, String>,
    /// The optional checks that failed: the service answers requests, with less behind it.
    pub degraded: Vec<String>,
}

impl Evaluation {
    /// Whether check `name` passed (`None` for a check the service does not have).
    pub fn is_up(&self, name: &str) -> Option<bool> {
        self.checks.get(name).map(|outcome| outcome == OK)
    }
}

const OK: &str = "ok";

impl Readiness {
    /// Adds a required check named `name`: the service is unready while it fails. Its error's
    /// message is what `/ready` shows for it.
    pub fn add<F, Fut, E>(&mut self, name: &str, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        self.push(name, check, true);
    }

    /// Adds a check of a dependency the service answers requests without (e.g. Kafka behind an
    /// outbox): `/ready` reports it, but its failure leaves the service ready, only degraded.
    pub fn add_optional<F, Fut, E>(&mut self, name: &str, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        self.push(name, check, false);
    }

    fn push<F, Fut, E>(&mut self, name: &str, check: F, required: bool)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        self.checks.push(Entry {
            name: name.to_string(),
            check: Arc::new(move || {
                let outcome = check();
                Box::pin(async move { outcome.await.map_err(|e| e.to_string()) })
            }),
            required,
        });
    }

    /// Runs every check concurrently (2 s each) and reports each outcome.
    pub async fn evaluate(&self) -> Evaluation {
        let outcomes = futures::future::join_all(self.checks.iter().map(|entry| {
            let fut = (entry.check)();
            async move {
                let outcome = match tokio::time::timeout(CHECK_TIMEOUT, fut).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(format!("timed out after {}s", CHECK_TIMEOUT.as_secs())),
                };
                (entry, outcome)
            }
        }))
        .await;
        let ready = outcomes
            .iter()
            .all(|(entry, outcome)| outcome.is_ok() || !entry.required);
        let degraded = outcomes
            .iter()
            .filter(|(entry, outcome)| outcome.is_err() && !entry.required)
            .map(|(entry, _)| entry.name.clone())
            .collect();
        let checks = outcomes
            .into_iter()
            .map(|(entry, o)| (entry.name.clone(), o.err().unwrap_or_else(|| OK.into())))
            .collect();
        Evaluation {
            ready,
            checks,
            degraded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_each_failing_dependency() {
        let mut r = Readiness::default();
        r.add("db", || async { Ok::<_, String>(()) });
        r.add("kafka", || async { Err("no brokers".to_string()) });
        let e = r.evaluate().await;
        assert!(!e.ready);
        assert_eq!(e.checks["db"], "ok");
        assert_eq!(e.checks["kafka"], "no brokers");
        assert_eq!(e.is_up("kafka"), Some(false));
        assert!(e.degraded.is_empty(), "a required check is not degraded");
    }

    #[tokio::test]
    async fn a_failing_optional_dependency_leaves_the_service_ready_but_degraded() {
        let mut r = Readiness::default();
        r.add("database", || async { Ok::<_, String>(()) });
        r.add_optional("kafka", || async { Err("all brokers down".to_string()) });
        let e = r.evaluate().await;
        assert!(e.ready);
        assert_eq!(e.checks["kafka"], "all brokers down");
        assert_eq!(e.degraded, ["kafka"]);
        assert_eq!(e.is_up("database"), Some(true));
        assert_eq!(e.is_up("nothing"), None);

        // A failing required check still decides, whatever the optional ones say.
        r.add("peer", || async { Err("refused".to_string()) });
        assert!(!r.evaluate().await.ready);
    }

    #[tokio::test]
    async fn no_checks_means_ready() {
        assert!(Readiness::default().evaluate().await.ready);
    }
}
