//! Accounting: what a service can count in its own storage, served on its loopback admin listener
//! as `GET /admin/accounting`. Drills check that nothing accepted was lost (orders the gateway
//! acknowledged, orders stored, orders audited, events still waiting in an outbox) through this
//! API instead of reading the services' tables, so a service can change its schema or its
//! database without breaking them.
//!
//! A service registers named counts of what it owns; a service that publishes through an
//! [`Outbox`] registers it, and its report then carries the outbox backlog: a report without
//! `outbox` means the service has none.

use std::{collections::BTreeMap, pin::Pin, sync::Arc};

use serde::{Deserialize, Serialize};

use super::outbox::Outbox;

/// Count on the order service: orders stored.
pub const ORDERS: &str = "orders";
/// Count on the audit service: distinct order ids among the `order.created` events in its log.
pub const ORDER_CREATED_EVENTS: &str = "order_created_events";

/// The body of `GET /admin/accounting`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountingReport {
    pub service: String,
    /// The service's named counts (e.g. [`ORDERS`] on order, [`ORDER_CREATED_EVENTS`] on audit).
    pub counts: BTreeMap<String, u64>,
    /// Present exactly on services that publish through an outbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox: Option<OutboxBacklog>,
}

/// Events accepted (committed with their state change) but not yet acknowledged by Kafka.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxBacklog {
    pub pending: u64,
    /// `pending` by event type (`order.created`, ...); types with nothing pending are absent.
    pub pending_by_type: BTreeMap<String, u64>,
}

/// Why a count failed, whatever the counter's own error type.
pub type CountError = Box<dyn std::error::Error + Send + Sync>;

/// Why [`Accounting::report`] failed: which count, and the cause (part of the message, which
/// `GET /admin/accounting` returns as is).
#[derive(Debug, thiserror::Error)]
pub enum AccountingError {
    #[error("counting {name}: {error}")]
    Count { name: String, error: CountError },
    #[error("counting the outbox: {0}")]
    Outbox(sqlx::Error),
}

type CountFuture = Pin<Box<dyn Future<Output = Result<u64, CountError>> + Send>>;
type Counter = Arc<dyn Fn() -> CountFuture + Send + Sync>;

/// The counts a service registered, and its outbox if it has one.
#[derive(Clone, Default)]
pub struct Accounting {
    counters: Vec<(String, Counter)>,
    outbox: Option<Outbox>,
}

impl Accounting {
    /// Adds the count `name`, computed on each request.
    pub fn count<F, Fut, E>(&mut self, name: &str, counter: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<u64, E>> + Send + 'static,
        E: Into<CountError>,
    {
        self.counters.push((
            name.to_string(),
            Arc::new(move || {
                let count = counter();
                Box::pin(async move { count.await.map_err(Into::into) })
            }),
        ));
    }

    /// Declares that the service publishes through `outbox`.
    pub fn outbox(&mut self, outbox: &Outbox) {
        self.outbox = Some(outbox.clone());
    }

    /// Every count now; the first that fails is named in the error.
    pub async fn report(&self, service: &str) -> Result<AccountingReport, AccountingError> {
        let mut counts = BTreeMap::new();
        for (name, counter) in &self.counters {
            let n = counter().await.map_err(|error| AccountingError::Count {
                name: name.clone(),
                error,
            })?;
            counts.insert(name.clone(), n);
        }
        let outbox = match &self.outbox {
            None => None,
            Some(outbox) => {
                let pending_by_type = outbox
                    .pending_by_type()
                    .await
                    .map_err(AccountingError::Outbox)?;
                Some(OutboxBacklog {
                    pending: pending_by_type.values().sum(),
                    pending_by_type,
                })
            }
        };
        Ok(AccountingReport {
            service: service.to_string(),
            counts,
            outbox,
        })
    }
}

/// A count query's single `BIGINT` result as a count (`COUNT` is never negative).
pub async fn count_rows(
    pool: &sqlx::AnyPool,
    query: &str,
    bind: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let mut q = sqlx::query_as::<_, (i64,)>(query);
    if let Some(value) = bind {
        q = q.bind(value.to_string());
    }
    let (n,) = q.fetch_one(pool).await?;
    Ok(n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_every_count_and_no_outbox_when_none_was_declared() {
        let mut accounting = Accounting::default();
        accounting.count("apples", || async { Ok::<_, String>(3) });
        accounting.count("pears", || async { Ok::<_, String>(0) });
        let report = accounting.report("fruit").await.unwrap();
        assert_eq!(report.service, "fruit");
        assert_eq!(
            report.counts,
            BTreeMap::from([("apples".to_string(), 3), ("pears".to_string(), 0)])
        );
        assert_eq!(report.outbox, None);
        let json = serde_json::to_value(&report).unwrap();
        assert!(json.get("outbox").is_none(), "{json}");
    }

    #[tokio::test]
    async fn a_failing_count_is_named() {
        let mut accounting = Accounting::default();
        accounting.count("orders", || async { Err("database is locked".to_string()) });
        let error = accounting.report("order").await.unwrap_err();
        assert!(
            matches!(&error, AccountingError::Count { name, .. } if name == "orders"),
            "{error:?}"
        );
        assert_eq!(error.to_string(), "counting orders: database is locked");
    }
}
