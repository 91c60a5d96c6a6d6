//! Order accounting after a drill on the embedded stack: orders the load saw acknowledged, orders
//! the order service has, and orders with an `order.created` event in the audit log. The
//! platform promises (outbox) that no accepted order is lost while Kafka or a service is down:
//! both differences must be 0.
//!
//! The counts come from the services' accounting API (`GET /admin/accounting` on the order and
//! audit services, reached through the stack's endpoints), and which load transaction places
//! orders comes from the caller (the scenario declares it): this module knows neither tables nor
//! step names.

use std::time::Duration;

use reports::{Report, SloStatus, SloVerdict};
use shop::platform::{
    accounting::{ORDER_CREATED_EVENTS, ORDERS},
    events::ORDER_CREATED,
};
use shop::stack::Stack;

use crate::error::ChaosError;
use crate::local::accounting;

/// The service that stores orders and the one that audits their events.
const ORDER_SERVICE: &str = "order";
const AUDIT_SERVICE: &str = "audit";

/// Events are published through the outbox and consumed by audit asynchronously: wait this long
/// for them to catch up with the orders before counting a difference as lost.
pub const EVENTS_SETTLE: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderCounts {
    /// Order placements that got their 201 back.
    pub acknowledged: u64,
    /// Orders the order service has (its accounting's `orders` count).
    pub found: u64,
    /// Distinct order ids among `order.created` events in the audit log (audit's
    /// `order_created_events` count).
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

/// Successful order placements in a run report: the requests of `order_transaction` that did not
/// fail. It must be the load transaction that is exactly one order placement (`POST
/// /api/v1/orders`), as the scenario declares it; a transaction that places an order and does more
/// in the same transaction (the smoke scenario's `cancel_order`) is not one: its orders only show
/// up in `found`, which may exceed `acknowledged` without anything being lost.
pub fn acknowledged(report: &Report, order_transaction: &str) -> u64 {
    report
        .transactions
        .iter()
        .filter(|t| t.name == order_transaction)
        .map(|t| t.requests.saturating_sub(t.errors))
        .sum()
}

/// Counts orders and events through the order and audit services' accounting API, waiting up to
/// [`EVENTS_SETTLE`] for the events to catch up (and for a restarting service to answer).
pub async fn count_in(stack: &Stack, acknowledged: u64) -> Result<OrderCounts, ChaosError> {
    let endpoint = |name: &str| {
        stack
            .endpoint(name)
            .ok_or_else(|| ChaosError::Failed(format!("no {name} service in the stack")))
    };
    let (orders, audit) = (endpoint(ORDER_SERVICE)?, endpoint(AUDIT_SERVICE)?);
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + EVENTS_SETTLE;
    loop {
        let counted = async {
            let order_report = accounting::read(&http, orders).await?;
            let found = accounting::count(&order_report, ORDERS)?;
            let unsent = accounting::outbox(&order_report)?
                .pending_by_type
                .get(ORDER_CREATED)
                .copied()
                .unwrap_or(0);
            let audit_report = accounting::read(&http, audit).await?;
            let events = accounting::count(&audit_report, ORDER_CREATED_EVENTS)?;
            Ok::<_, ChaosError>(OrderCounts {
                acknowledged,
                found,
                events,
                unsent,
            })
        };
        let settled = tokio::time::Instant::now() >= deadline;
        match counted.await {
            Ok(counts) if counts.lost_events() == 0 || settled => return Ok(counts),
            Ok(_) => {}
            // A service the drill killed may still be restarting: ask again until the deadline.
            Err(ChaosError::Unreachable(_)) if !settled => {}
            Err(e) => return Err(e),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
