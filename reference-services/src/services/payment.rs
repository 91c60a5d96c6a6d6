//! Payment service (gRPC `PaymentService`): charges a user's pending order and marks it paid,
//! announcing `payment.succeeded` on Kafka topic `payments`, and refunds a payment when its paid
//! order is cancelled (`payment.refunded`).
//!
//! The amount is checked against the order service's own total, never trusted from the client.
//! A payment and its event are stored in one transaction through the [`Outbox`], and an order
//! can hold at most one payment (a unique constraint, so two concurrent attempts cannot both
//! charge). Marking the order paid comes last; if that call fails the payment is kept, and a
//! retry of the same payment finishes the job instead of charging again. If the order was
//! cancelled (or its stock reservation expired) between the check and that call, the charge is
//! refunded (`payment.refunded`).
//!
//! A request may carry an idempotency key (per user). The key, a hash of the request and the
//! payment it produced are stored in the payment's own transaction, under a unique key, so a
//! repeat (even a concurrent one) gets the first request's answer — the same payment, or the same
//! refusal if the charge had to be given back — and never a second charge; the same key with
//! another request is refused with `ALREADY_EXISTS`.

use std::sync::Arc;

use anyhow::Result;
use serde_json::json;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use crate::{
    platform::{
        balance::{self, Balancing},
        config::peer_url,
        events::{self, Envelope, TOPIC_PAYMENTS},
        grpc::TracedChannel,
        http::Runtime,
        metrics::Metrics,
        outbox::Outbox,
        storage::{Db, db_status},
    },
    proto::{
        GetOrderRequest, GetPaymentRequest, MarkPaidRequest, Order, Payment, ProcessPaymentRequest,
        RefundPaymentRequest,
        order_service_client::OrderServiceClient,
        payment_service_server::{PaymentService, PaymentServiceServer},
    },
};

/// Payment methods the service accepts.
pub const METHODS: [&str; 3] = ["card", "paypal", "bank_transfer"];
/// A charge that went through (there is no card network behind this reference processor, so
/// every charge does).
const SUCCEEDED: &str = "succeeded";
/// A charge given back: its order could no longer be paid, or was cancelled after payment.
pub const REFUNDED: &str = "refunded";
/// Longest idempotency key, in characters (as for orders).
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

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
        orders: OrderServiceClient::new(balance::channel(order_url, &Balancing::from_env()?)?),
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
        // The primary key is what makes concurrent repeats of one key charge once: the second
        // insert fails and that request answers with the first one's payment. `refusal` is the
        // message the first request was refused with after its charge was refunded.
        "CREATE TABLE IF NOT EXISTS payment_idempotency (
            user_id TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            payment_id TEXT NOT NULL,
            refusal TEXT,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (user_id, idempotency_key)
        )"
        .to_string(),
    ]
}

/// An idempotency key and the hash of the request that carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Keyed {
    key: String,
    request_hash: String,
}

impl Keyed {
    /// The request's key (trimmed; `None` when absent) with the hash of what it asks for: the
    /// order, the amount and the method (the user scopes the key itself).
    fn of(req: &ProcessPaymentRequest) -> Option<Self> {
        let key = req.idempotency_key.trim();
        if key.is_empty() {
            return None;
        }
        Some(Self {
            key: key.to_string(),
            request_hash: request_hash(req),
        })
    }
}

/// SHA-256 (hex) of the parts of a payment request that a repeat must match.
fn request_hash(req: &ProcessPaymentRequest) -> String {
    let canonical = serde_json::to_vec(&json!([req.order_id, req.amount_cents, req.method]))
        .expect("a JSON array of strings and a number serialises");
    Sha256::digest(canonical)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The stored answer to an idempotency key.
type KeyRow = (String, String, Option<String>);

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
        let keyed = Keyed::of(&req);
        if let Some(keyed) = &keyed
            && let Some(answer) = self.replay(&req.user_id, keyed).await?
        {
            return answer.map(Response::new);
        }
        let order = self
            .orders
            .clone()
            .get_order(GetOrderRequest {
                user_id: req.user_id.clone(),
                order_id: req.order_id.clone(),
            })
            .await?
            .into_inner();
        if let Err(refused) = check_payable(&order, req.amount_cents) {
            // A concurrent request with the same key may have paid it meanwhile.
            return self.or_replay(&req.user_id, keyed.as_ref(), refused).await;
        }
        let payment = match self.find_for_order(&req.user_id, &req.order_id).await? {
            // An earlier attempt was charged but could not mark the order paid: finish it.
            Some(earlier)
                if earlier.status == SUCCEEDED && earlier.amount_cents == req.amount_cents =>
            {
                if let Some(keyed) = &keyed {
                    self.remember(&req.user_id, keyed, &earlier.id).await?;
                }
                earlier
            }
            Some(_) => {
                let refused = Status::failed_precondition("the order already has a payment");
                return self.or_replay(&req.user_id, keyed.as_ref(), refused).await;
            }
            None => match self.record(&req, keyed.as_ref()).await {
                Ok(payment) => payment,
                // A concurrent request with the same key won the insert: answer as it does.
                Err(Recorded::Duplicate) => {
                    let refused = Status::failed_precondition("the order already has a payment");
                    return self.or_replay(&req.user_id, keyed.as_ref(), refused).await;
                }
                Err(Recorded::Failed(status)) => return Err(status),
            },
        };
        self.complete(payment, &req.user_id, keyed.as_ref())
            .await
            .map(Response::new)
    }

    async fn refund_payment(
        &self,
        request: Request<RefundPaymentRequest>,
    ) -> Result<Response<Payment>, Status> {
        let req = request.into_inner();
        if req.user_id.trim().is_empty() || req.payment_id.trim().is_empty() {
            return Err(Status::invalid_argument(
                "user_id and payment_id are required",
            ));
        }
        let payment = self
            .find(&req.user_id, &req.payment_id)
            .await?
            .ok_or_else(|| Status::not_found(format!("payment {} not found", req.payment_id)))?;
        if !req.order_id.is_empty() && req.order_id != payment.order_id {
            return Err(Status::failed_precondition(format!(
                "payment {} does not pay order {}",
                payment.id, req.order_id
            )));
        }
        match payment.status.as_str() {
            REFUNDED => {}
            SUCCEEDED => self.refund(&payment, None).await.map_err(db_status)?,
            other => {
                return Err(Status::failed_precondition(format!(
                    "payment {} is {other}; only a succeeded payment can be refunded",
                    payment.id
                )));
            }
        }
        let refunded = self
            .find(&req.user_id, &req.payment_id)
            .await?
            .ok_or_else(|| Status::internal("a refunded payment disappeared"))?;
        Ok(Response::new(refunded))
    }

    async fn get_payment(
        &self,
        request: Request<GetPaymentRequest>,
    ) -> Result<Response<Payment>, Status> {
        let req = request.into_inner();
        self.find(&req.user_id, &req.payment_id)
            .await?
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("payment {} not found", req.payment_id)))
    }
}

/// Why a payment was not recorded.
enum Recorded {
    /// A unique constraint refused it: the order already has a payment, or the idempotency key
    /// was taken by a concurrent request.
    Duplicate,
    Failed(Status),
}

impl Payments {
    /// Marks the order paid by `payment`. If the order can no longer be paid, the charge is
    /// given back and the request refused; the refusal is remembered under the key, so a
    /// repeat is refused alike.
    async fn complete(
        &self,
        payment: Payment,
        user_id: &str,
        keyed: Option<&Keyed>,
    ) -> Result<Payment, Status> {
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
            // The order stopped being payable after the check (cancelled meanwhile, or its
            // stock reservation expired): the customer must not pay for it, so the charge is
            // given back.
            Err(status) if status.code() == tonic::Code::FailedPrecondition => {
                let refusal = format!(
                    "order {} is no longer payable ({}); payment {} was refunded",
                    payment.order_id,
                    status.message(),
                    payment.id
                );
                let remembered = keyed.map(|k| (user_id, k.key.as_str(), refusal.as_str()));
                self.refund(&payment, remembered).await.map_err(db_status)?;
                return Err(Status::failed_precondition(refusal));
            }
            // Outcome unknown: the payment stays, and a retry of it marks the order paid.
            Err(status) => return Err(status),
        }
        tracing::info!(payment_id = %payment.id, order_id = %payment.order_id, "payment succeeded");
        Ok(payment)
    }

    /// The answer to a repeat of idempotency key `keyed`, if the key was used before: the
    /// payment it produced (finishing it if the first request could not mark the order paid),
    /// or the refusal the first request got; `ALREADY_EXISTS` if it was used for another request.
    async fn replay(
        &self,
        user_id: &str,
        keyed: &Keyed,
    ) -> Result<Option<Result<Payment, Status>>, Status> {
        let row: Option<KeyRow> = sqlx::query_as(
            "SELECT request_hash, payment_id, refusal FROM payment_idempotency
             WHERE user_id = $1 AND idempotency_key = $2",
        )
        .bind(user_id)
        .bind(&keyed.key)
        .fetch_optional(&self.db.pool)
        .await
        .map_err(db_status)?;
        let Some((request_hash, payment_id, refusal)) = row else {
            return Ok(None);
        };
        if request_hash != keyed.request_hash {
            return Ok(Some(Err(Status::already_exists(format!(
                "idempotency key {:?} was already used for a different payment request",
                keyed.key
            )))));
        }
        if let Some(refusal) = refusal {
            return Ok(Some(Err(Status::failed_precondition(refusal))));
        }
        let payment = self
            .find(user_id, &payment_id)
            .await?
            .ok_or_else(|| Status::internal("the payment of an idempotency key disappeared"))?;
        if payment.status != SUCCEEDED {
            // Refunded later, when its order was cancelled: the answer is still this payment.
            return Ok(Some(Ok(payment)));
        }
        Ok(Some(self.complete(payment, user_id, Some(keyed)).await))
    }

    /// The stored answer to `keyed` if a request with that key got one meanwhile, else
    /// `refused`.
    async fn or_replay(
        &self,
        user_id: &str,
        keyed: Option<&Keyed>,
        refused: Status,
    ) -> Result<Response<Payment>, Status> {
        if let Some(keyed) = keyed
            && let Some(answer) = self.replay(user_id, keyed).await?
        {
            return answer.map(Response::new);
        }
        Err(refused)
    }

    /// Stores key `keyed` as answered by the existing payment `payment_id` (a key first seen on
    /// a retry that finished an earlier payment).
    async fn remember(&self, user_id: &str, keyed: &Keyed, payment_id: &str) -> Result<(), Status> {
        sqlx::query(
            "INSERT INTO payment_idempotency
                (user_id, idempotency_key, request_hash, payment_id, refusal, created_at)
             VALUES ($1, $2, $3, $4, NULL, $5)
             ON CONFLICT (user_id, idempotency_key) DO NOTHING",
        )
        .bind(user_id)
        .bind(&keyed.key)
        .bind(&keyed.request_hash)
        .bind(payment_id)
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(&self.db.pool)
        .await
        .map_err(db_status)?;
        Ok(())
    }

    /// Stores a succeeded payment, its idempotency key and its event in one transaction.
    async fn record(
        &self,
        req: &ProcessPaymentRequest,
        keyed: Option<&Keyed>,
    ) -> Result<Payment, Recorded> {
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
        match self.insert(&payment, keyed).await {
            Ok(()) => {
                self.outbox.notify();
                self.metrics.payments_processed.inc();
                Ok(payment)
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(Recorded::Duplicate),
            Err(e) => Err(Recorded::Failed(db_status(e))),
        }
    }

    async fn insert(&self, payment: &Payment, keyed: Option<&Keyed>) -> Result<(), sqlx::Error> {
        let mut tx = self.db.pool.begin().await?;
        if let Some(keyed) = keyed {
            sqlx::query(
                "INSERT INTO payment_idempotency
                    (user_id, idempotency_key, request_hash, payment_id, refusal, created_at)
                 VALUES ($1, $2, $3, $4, NULL, $5)",
            )
            .bind(&payment.user_id)
            .bind(&keyed.key)
            .bind(&keyed.request_hash)
            .bind(&payment.id)
            .bind(payment.created_at)
            .execute(&mut *tx)
            .await?;
        }
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

    /// Marks a succeeded payment refunded, with a `payment.refunded` event, in one transaction;
    /// `refusal` (user, idempotency key, message) records in it what a repeat of the key answers.
    async fn refund(
        &self,
        payment: &Payment,
        refusal: Option<(&str, &str, &str)>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.db.pool.begin().await?;
        if let Some((user_id, key, message)) = refusal {
            sqlx::query(
                "UPDATE payment_idempotency SET refusal = $1
                 WHERE user_id = $2 AND idempotency_key = $3",
            )
            .bind(message)
            .bind(user_id)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        }
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

    /// The user's payment `payment_id`, if there is one.
    async fn find(&self, user_id: &str, payment_id: &str) -> Result<Option<Payment>, Status> {
        let row: Option<PaymentRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM payments WHERE id = $1 AND user_id = $2"
        ))
        .bind(payment_id)
        .bind(user_id)
        .fetch_optional(&self.db.pool)
        .await
        .map_err(db_status)?;
        Ok(row.map(payment_from_row))
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
    if req.idempotency_key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS {
        return Err(Status::invalid_argument(format!(
            "idempotency_key must be at most {MAX_IDEMPOTENCY_KEY_CHARS} characters"
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
            idempotency_key: String::new(),
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
    fn a_key_matches_only_the_same_order_amount_and_method() {
        assert_eq!(Keyed::of(&request(100, "card")), None, "no key");
        let keyed = |amount_cents, method: &str, order_id: &str, key: &str| {
            Keyed::of(&ProcessPaymentRequest {
                order_id: order_id.into(),
                idempotency_key: key.into(),
                ..request(amount_cents, method)
            })
            .expect("a key")
        };
        let first = keyed(100, "card", "o1", "k1");
        assert_eq!(first.key, "k1");
        assert_eq!(first.request_hash.len(), 64, "hex SHA-256");
        assert_eq!(
            keyed(100, "card", "o1", " k1 "),
            first,
            "the key is trimmed"
        );
        for other in [
            keyed(101, "card", "o1", "k1"),
            keyed(100, "paypal", "o1", "k1"),
            keyed(100, "card", "o2", "k1"),
        ] {
            assert_ne!(other.request_hash, first.request_hash, "{other:?}");
        }
        let too_long = ProcessPaymentRequest {
            idempotency_key: "k".repeat(MAX_IDEMPOTENCY_KEY_CHARS + 1),
            ..request(100, "card")
        };
        assert_eq!(
            validate(&too_long).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
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
