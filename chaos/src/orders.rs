//! Order accounting after a drill on the embedded stack: orders the load saw acknowledged, orders
//! the order service has, and orders with an `order.created` event in the audit log. The
//! platform promises (outbox) that no accepted order is lost while Kafka or a service is down:
//! both differences must be 0.

use std::path::Path;
use std::time::Duration;

use reports::{Report, SloStatus, SloVerdict};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use crate::error::ChaosError;

/// The load's transactions that are exactly one order placement (`POST /api/v1/orders`). The
/// smoke scenario's `cancel_order` also places orders but counts its cancel request in the same
/// transaction, so it is left out: its orders only show up in `found`, which may exceed
/// `acknowledged` without anything being lost.
pub const ORDER_TRANSACTIONS: &[&str] = &["place_order"];

/// Events are published through the outbox and consumed by audit asynchronously: wait this long
/// for them to catch up with the orders before counting a difference as lost.
pub const EVENTS_SETTLE: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderCounts {
    /// Order placements that got their 201 back.
    pub acknowledged: u64,
    /// Rows in the order service's `orders` table.
    pub found: u64,
    /// Distinct order ids among `order.created` events in the audit log.
    pub events: u64,
    /// `order.created` events still waiting in the order service's outbox (not yet acknowledged
    /// by Kafka): tells a stuck producer from an event lost on the way to audit.
    pub unsent: u64,
}

impl OrderCounts {
    /// Acknowledged orders the order service does not have.
    pub fn lost_orders(&self) -> u64 {
        self.acknowledged.saturating_sub(self.found)
    }

    /// Orders without an `order.created` event.
    pub fn lost_events(&self) -> u64 {
        self.found.saturating_sub(self.events)
    }

    /// Two verdicts for the report, each expecting 0.
    pub fn verdicts(&self) -> Vec<SloVerdict> {
        let verdict = |name: &str, lost: u64, what: String| SloVerdict {
            name: name.into(),
            status: if lost == 0 {
                SloStatus::Pass
            } else {
                SloStatus::Fail
            },
            measured: Some(lost as f64),
            unit: Some("orders".into()),
            objective: "= 0".into(),
            source: "drill accounting".into(),
            query: None,
            window: None,
            message: Some(what),
        };
        vec![
            verdict(
                "orders-lost",
                self.lost_orders(),
                format!(
                    "{} acknowledged by the gateway, {} found in the order service",
                    self.acknowledged, self.found
                ),
            ),
            verdict(
                "order-events-lost",
                self.lost_events(),
                format!(
                    "{} orders, {} with an order.created event in audit, {} still unsent in the outbox",
                    self.found, self.events, self.unsent
                ),
            ),
        ]
    }
}

/// Successful order placements in a run report.
pub fn acknowledged(report: &Report) -> u64 {
    report
        .transactions
        .iter()
        .filter(|t| ORDER_TRANSACTIONS.contains(&t.name.as_str()))
        .map(|t| t.requests.saturating_sub(t.errors))
        .sum()
}

async fn open(file: &Path) -> Result<SqliteConnection, ChaosError> {
    let options = SqliteConnectOptions::new().filename(file).read_only(true);
    SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| ChaosError::Unreachable(format!("opening {}: {e}", file.display())))
}

async fn count(file: &Path, query: &str) -> Result<u64, ChaosError> {
    let mut conn = open(file).await?;
    let n: i64 = sqlx::query_scalar(query)
        .fetch_one(&mut conn)
        .await
        .map_err(|e| ChaosError::Failed(format!("{query} on {}: {e}", file.display())))?;
    let _ = conn.close().await;
    Ok(n.max(0) as u64)
}

/// Counts orders and events in the embedded stack's SQLite files (`<data dir>/db/<service>.db`),
/// waiting up to [`EVENTS_SETTLE`] for the events to catch up.
pub async fn count_in(data_dir: &Path, acknowledged: u64) -> Result<OrderCounts, ChaosError> {
    let orders_db = data_dir.join("db").join("order.db");
    let audit_db = data_dir.join("db").join("audit.db");
    let deadline = tokio::time::Instant::now() + EVENTS_SETTLE;
    loop {
        let found = count(&orders_db, "SELECT COUNT(*) FROM orders").await?;
        let events = count(
            &audit_db,
            "SELECT COUNT(DISTINCT json_extract(payload, '$.order_id')) FROM audit_log WHERE event_type = 'order.created'",
        )
        .await?;
        let unsent = count(
            &orders_db,
            "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND json_extract(payload, '$.type') = 'order.created'",
        )
        .await?;
        let counts = OrderCounts {
            acknowledged,
            found,
            events,
            unsent,
        };
        if counts.lost_events() == 0 || tokio::time::Instant::now() >= deadline {
            return Ok(counts);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
