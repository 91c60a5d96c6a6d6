//! Readiness: a service is ready when every dependency it registered answers (database, Kafka
//! metadata, peer services). `/ready` runs the checks with a timeout and reports each one, so an
//! operator sees which dependency is missing; `/health` only says the process is alive.

use std::{collections::BTreeMap, pin::Pin, sync::Arc, time::Duration};

// The message of a failed check, as `/ready` reports it.
type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Check = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// The set of named dependency checks of a service.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(String, Check)>,
}

impl Readiness {
    /// Adds a check named `name`; its error's message is what `/ready` shows for it.
    pub fn add<F, Fut, E>(&mut self, name: &str, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        self.checks.push((
            name.to_string(),
            Arc::new(move || {
                let outcome = check();
                Box::pin(async move { outcome.await.map_err(|e| e.to_string()) })
            }),
        ));
    }

    /// Runs every check concurrently (2 s each); returns overall readiness and each outcome.
    pub async fn evaluate(&self) -> (bool, BTreeMap<String, String>) {
        let outcomes = futures::future::join_all(self.checks.iter().map(|(name, check)| {
            let fut = check();
            let name = name.clone();
            async move {
                let outcome = match tokio::time::timeout(Duration::from_secs(2), fut).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err("timed out after 2s".to_string()),
                };
                (name, outcome)
            }
        }))
        .await;
        let ready = outcomes.iter().all(|(_, o)| o.is_ok());
        let report = outcomes
            .into_iter()
            .map(|(name, o)| (name, o.err().unwrap_or_else(|| "ok".to_string())))
            .collect();
        (ready, report)
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
        let (ready, report) = r.evaluate().await;
        assert!(!ready);
        assert_eq!(report["db"], "ok");
        assert_eq!(report["kafka"], "no brokers");
    }

    #[tokio::test]
    async fn no_checks_means_ready() {
        assert!(Readiness::default().evaluate().await.0);
    }
}
