//! Payment service (gRPC `PaymentService`): charges a user's pending order and marks it paid,
//! announcing `payment.succeeded` on Kafka topic `payments`.
//!
//! The amount is checked against the order service's own total, never trusted from the client.
//! A payment and its event are stored in one transaction through the [`Outbox`], and an order
//! can hold at most one payment (a unique constraint, so two concurrent attempts cannot both
//! charge). Marking the order paid comes last; if that call fails the payment is kept, and a
//! retry of the same payment finishes the job instead of charging again. If the order was
//! cancelled between the check and that call, the charge is refunded (`payment.refunded`).

use std::sync::Arc;

use anyhow::Result;
use serde_json::json;
use tonic::{Request, Response, Status};

use crate::{
    platform::{
        config::peer_url,
        events::{self, Envelope, TOPIC_PAYMENTS},
        grpc::{self, TracedChannel},
        http::Runtime,
        metrics::Metrics,
        outbox::Outbox,
        storage::{Db, db_status},
    },
    proto::{
        GetOrderRequest, GetPaymentRequest, MarkPaidRequest, Order, Payment, ProcessPaymentRequest,
        order_service_client::OrderServiceClient,
        payment_service_server::{PaymentService, PaymentServiceServer},
    },
};

/// Payment methods the service accepts.
pub const METHODS: [&str; 3] = ["card", "paypal", "bank_transfer"];
/// A charge that went through (there is no card network behind this reference processor, so
/// every charge does).
const SUCCEEDED: &str = "succeeded";
/// A charge given back because its order could no longer be paid.
const REFUNDED: &str = "refunded";

/// Runs the payment service with the order service from the environment until shutdown.
pub async fn run(rt: Runtime) -> Result<()> {
    run_with(rt, &peer_url("order", 50051)).await
}

/// Runs the payment service against the order service at `order_url`.
pub async fn run_with(mut rt: Runtime, order_url: &str) -> Result<()> {
    let db = Db::connect(&rt.config).await?;
    db.migrate(&schema()).await?;
    let outbox = Outbox::open(db.clone()).await?;
    let producer = events::producer(rt.config.require_kafka()?)?;

    let ping_db = db.clone();
    rt.readiness.add("database", move || {
        let db = ping_db.clone();
        async move { db.ping().await }
    });
    // Kafka down: orders still go into the outbox, so it does not make the service unready.
    rt.readiness
        .add_optional("kafka", events::metadata_check(producer.clone()));
    outbox.spawn_relay(producer, rt.metrics.clone(), &rt.shutdown);
    rt.accounting.outbox(&outbox);

    let service = Payments {
        db,
        outbox,
        metrics: rt.metrics.clone(),
        orders: OrderServiceClient::new(grpc::channel(order_url)?),
    };
    let router = tonic::service::Routes::new(PaymentServiceServer::new(service)).into_axum_router();
    rt.serve(router).await
}

fn schema() -> Vec<String> {
    vec![
        // UNIQUE (order_id): one payment per order, whatever the races between attempts.
        "CREATE TABLE IF NOT EXISTS payments (
            id TEXT PRIMARY KEY,
            order_id TEXT NOT NULL UNIQUE,
            user_id TEXT NOT NULL,
            amount_cents BIGINT NOT NULL,
            method TEXT NOT NULL,
            status TEXT NOT NULL,
            transaction_id TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )"
        .to_string(),
    ]
}

#[derive(Clone)]
struct Payments {
    db: Db,
    outbox: Outbox,
    metrics: Arc<Metrics>,
    orders: OrderServiceClient<TracedChannel>,
}

#[tonic::async_trait]
impl PaymentService for Payments {
    async fn process_payment(
        &self,
        request: Request<ProcessPaymentRequest>,
    ) -> Result<Response<Payment>, Status> {
        let req = request.into_inner();
        validate(&req)?;
        let order = self
            .orders
            .clone()
            .get_order(GetOrderRequest {
                user_id: req.user_id.clone(),
                order_id: req.order_id.clone(),
            })
            .await?
            .into_inner();
        check_payable(&order, req.amount_cents)?;
        let payment = match self.find_for_order(&req.user_id, &req.order_id).await? {
            // An earlier attempt was charged but could not mark the order paid: finish it.
            Some(earlier)
                if earlier.status == SUCCEEDED && earlier.amount_cents == req.amount_cents =>
            {
                earlier
            }
            Some(_) => {
                return Err(Status::failed_precondition(
                    "the order already has a payment",
                ));
            }
            None => self.record(&req).await?,
        };
        let marked = self
            .orders
            .clone()
            .mark_paid(MarkPaidRequest {
                user_id: payment.user_id.clone(),
                order_id: payment.order_id.clone(),
                payment_id: payment.id.clone(),
            })
            .await;
        match marked {
            Ok(_) => {}
            // The order stopped being payable after the check (cancelled meanwhile): the
            // customer must not pay for it, so the charge is given back.
            Err(status) if status.code() == tonic::Code::FailedPrecondition => {
                self.refund(&payment).await.map_err(db_status)?;
                return Err(Status::failed_precondition(format!(
                    "order {} is no longer payable; payment {} was refunded",
                    payment.order_id, payment.id
                )));
            }
            // Outcome unknown: the payment stays, and a retry of it marks the order paid.
            Err(status) => return Err(status),
        }
        tracing::info!(payment_id = %payment.id, order_id = %payment.order_id, "payment succeeded");
        Ok(Response::new(payment))
    }

    async fn get_payment(
        &self,
        request: Request<GetPaymentRequest>,
    ) -> Result<Response<Payment>, Status> {
        let req = request.into_inner();
        let row: Option<PaymentRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM payments WHERE id = $1 AND user_id = $2"
        ))
        .bind(&req.payment_id)
        .bind(&req.user_id)
        .fetch_optional(&self.db.pool)
        .await
        .map_err(db_status)?;
        row.map(|r| Response::new(payment_from_row(r)))
            .ok_or_else(|| Status::not_found(format!("payment {} not found", req.payment_id)))
    }
}

impl Payments {
    /// Stores a succeeded payment and its event in one transaction. Losing the race against a
    /// concurrent payment of the same order is a FailedPrecondition.
    async fn record(&self, req: &ProcessPaymentRequest) -> Result<Payment, Status> {
        let payment = Payment {
            id: uuid::Uuid::now_v7().to_string(),
            order_id: req.order_id.clone(),
            user_id: req.user_id.clone(),
            amount_cents: req.amount_cents,
            method: req.method.clone(),
            status: SUCCEEDED.to_string(),
            transaction_id: uuid::Uuid::new_v4().to_string(),
            created_at: chrono::Utc::now().timestamp_millis(),
        };
        match self.insert(&payment).await {
            Ok(()) => {
                self.outbox.notify();
                self.metrics.payments_processed.inc();
                Ok(payment)
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(
                Status::failed_precondition("the order already has a payment"),
            ),
            Err(e) => Err(db_status(e)),
        }
    }

    async fn insert(&self, payment: &Payment) -> Result<(), sqlx::Error> {
        let mut tx = self.db.pool.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO payments ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&payment.id)
        .bind(&payment.order_id)
        .bind(&payment.user_id)
        .bind(payment.amount_cents)
        .bind(&payment.method)
        .bind(&payment.status)
        .bind(&payment.transaction_id)
        .bind(payment.created_at)
        .execute(&mut *tx)
        .await?;
        let event = Envelope::new(
            "payment.succeeded",
            json!({
                "payment_id": payment.id,
                "order_id": payment.order_id,
                "user_id": payment.user_id,
                "amount_cents": payment.amount_cents,
                "method": payment.method,
                "transaction_id": payment.transaction_id,
                "created_at": payment.created_at,
            }),
        );
        Outbox::enqueue(&mut tx, TOPIC_PAYMENTS, &payment.order_id, &event).await?;
        tx.commit().await
    }

    /// Marks a succeeded payment refunded, with a `payment.refunded` event, in one transaction.
    async fn refund(&self, payment: &Payment) -> Result<(), sqlx::Error> {
        let mut tx = self.db.pool.begin().await?;
        let refunded = sqlx::query("UPDATE payments SET status = $1 WHERE id = $2 AND status = $3")
            .bind(REFUNDED)
            .bind(&payment.id)
            .bind(SUCCEEDED)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if refunded == 1 {
            let event = Envelope::new(
                "payment.refunded",
                json!({
                    "payment_id": payment.id,
                    "order_id": payment.order_id,
                    "user_id": payment.user_id,
                    "amount_cents": payment.amount_cents,
                    "transaction_id": payment.transaction_id,
                }),
            );
            Outbox::enqueue(&mut tx, TOPIC_PAYMENTS, &payment.order_id, &event).await?;
        }
        tx.commit().await?;
        self.outbox.notify();
        tracing::warn!(payment_id = %payment.id, order_id = %payment.order_id, "payment refunded");
        Ok(())
    }

    /// The payment already recorded for the user's order, if any.
    async fn find_for_order(
        &self,
        user_id: &str,
        order_id: &str,
    ) -> Result<Option<Payment>, Status> {
        let row: Option<PaymentRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM payments WHERE order_id = $1 AND user_id = $2"
        ))
        .bind(order_id)
        .bind(user_id)
        .fetch_optional(&self.db.pool)
        .await
        .map_err(db_status)?;
        Ok(row.map(payment_from_row))
    }
}

const COLUMNS: &str =
    "id, order_id, user_id, amount_cents, method, status, transaction_id, created_at";
type PaymentRow = (String, String, String, i64, String, String, String, i64);

fn payment_from_row(row: PaymentRow) -> Payment {
    let (id, order_id, user_id, amount_cents, method, status, transaction_id, created_at) = row;
    Payment {
        id,
        order_id,
        user_id,
        amount_cents,
        method,
        status,
        transaction_id,
        created_at,
    }
}

/// Checks the request on its own, before the order is looked up.
pub fn validate(req: &ProcessPaymentRequest) -> Result<(), Status> {
    if req.user_id.trim().is_empty() || req.order_id.trim().is_empty() {
        return Err(Status::invalid_argument(
            "user_id and order_id are required",
        ));
    }
    if req.amount_cents <= 0 {
        return Err(Status::invalid_argument("amount_cents must be positive"));
    }
    if !METHODS.contains(&req.method.as_str()) {
        return Err(Status::invalid_argument(format!(
            "method must be one of {}",
            METHODS.join(", ")
        )));
    }
    Ok(())
}

/// Only a pending order can be paid, and only with exactly its total.
pub fn check_payable(order: &Order, amount_cents: i64) -> Result<(), Status> {
    if order.status != "pending" {
        return Err(Status::failed_precondition(format!(
            "order {} is {}; only a pending order can be paid",
            order.id, order.status
        )));
    }
    if amount_cents != order.total_cents {
        return Err(Status::invalid_argument(format!(
            "amount_cents {amount_cents} does not match the order total {}",
            order.total_cents
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(amount_cents: i64, method: &str) -> ProcessPaymentRequest {
        ProcessPaymentRequest {
            user_id: "u1".into(),
            order_id: "o1".into(),
            amount_cents,
            method: method.into(),
        }
    }

    #[test]
    fn validates_amount_and_method() {
        for method in METHODS {
            assert!(validate(&request(100, method)).is_ok());
        }
        for bad in [
            request(0, "card"),
            request(-5, "card"),
            request(100, "cash"),
        ] {
            assert_eq!(
                validate(&bad).unwrap_err().code(),
                tonic::Code::InvalidArgument
            );
        }
    }

    #[test]
    fn only_the_exact_total_of_a_pending_order_is_payable() {
        let order = Order {
            id: "o1".into(),
            status: "pending".into(),
            total_cents: 1234,
            ..Default::default()
        };
        assert!(check_payable(&order, 1234).is_ok());
        assert_eq!(
            check_payable(&order, 1233).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        let paid = Order {
            status: "paid".into(),
            ..order
        };
        assert_eq!(
            check_payable(&paid, 1234).unwrap_err().code(),
            tonic::Code::FailedPrecondition
        );
    }
}
