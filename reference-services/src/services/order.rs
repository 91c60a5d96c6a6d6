//! Order service (gRPC `OrderService`): turns line items into a priced order, reserves its stock
//! and announces every state change on Kafka topic `orders`.
//!
//! An order is money, so the service is built around these guarantees. Prices come from the offer
//! service (the one place that knows discounts), never from the client. Stock is reserved before
//! the order exists, so a paid order always has its goods; if the order cannot be stored the
//! reservation is released. A reservation expires if the order is not paid in time (see the
//! inventory service): paying commits it first, and an order whose reservation lapsed is
//! cancelled instead of paid (the payment service then refunds the charge). Cancelling a paid
//! order refunds its payment first and is refused, the order staying paid, if the refund fails:
//! there is never a cancelled order with money taken. The order row and the event announcing it
//! are written in one transaction through the [`Outbox`], so a Kafka outage neither fails an
//! order nor loses its event. Every read and write is scoped to the caller's user id, and another
//! user's order is answered with NotFound so order ids reveal nothing.

use std::{collections::HashSet, sync::Arc, time::Duration};

use anyhow::Result;
use serde_json::json;
use sqlx::AnyConnection;
use tonic::{Request, Response, Status};

use crate::{
    platform::{
        accounting,
        balance::{self, Balancing},
        config::peer_url,
        events::{self, Envelope, ORDER_CREATED, TOPIC_ORDERS},
        grpc::TracedChannel,
        http::Runtime,
        metrics::Metrics,
        outbox::Outbox,
        storage::{Db, db_status},
    },
    proto::{
        CancelOrderRequest, CommitRequest, CreateOrderRequest, GetOrderRequest, LineItem,
        ListOrdersRequest, MarkPaidRequest, Order, OrderItem, OrderList, QuoteLine, QuoteRequest,
        RefundPaymentRequest, ReleaseRequest, ReserveRequest,
        inventory_service_client::InventoryServiceClient,
        offer_service_client::OfferServiceClient,
        order_service_server::{OrderService, OrderServiceServer},
        payment_service_client::PaymentServiceClient,
    },
};

/// Most lines one order may have.
pub const MAX_LINES: usize = 50;
/// Largest quantity of one line.
pub const MAX_QUANTITY: i64 = 99;
/// Longest shipping address, in characters.
pub const MAX_ADDRESS_CHARS: usize = 500;
/// Longest user id or idempotency key, in characters.
pub const MAX_ID_CHARS: usize = 200;
/// Most orders ListOrders returns (the most recent ones).
pub const LIST_LIMIT: i64 = 100;

pub const PENDING: &str = "pending";
pub const PAID: &str = "paid";
pub const CANCELLED: &str = "cancelled";

/// Where the order service finds the services it calls.
#[derive(Clone, Debug)]
pub struct Peers {
    /// Base URL of the offer service (prices).
    pub offer: String,
    /// Base URL of the inventory service (reservations).
    pub inventory: String,
    /// Base URL of the payment service (refunds when a paid order is cancelled). Only that
    /// call needs it, so it is not a start dependency (the payment service depends on this one).
    pub payment: String,
}

impl Peers {
    /// `OFFER_URL` / `INVENTORY_URL` / `PAYMENT_URL`, else the in-cluster names.
    pub fn from_env() -> Self {
        Self {
            offer: peer_url("offer", 50051),
            inventory: peer_url("inventory", 50051),
            payment: peer_url("payment", 50051),
        }
    }
}

/// Runs the order service with peers from the environment until shutdown.
pub async fn run(rt: Runtime) -> Result<()> {
    run_with(rt, Peers::from_env()).await
}

/// Runs the order service against explicit peers (tests, the embedded stack).
pub async fn run_with(mut rt: Runtime, peers: Peers) -> Result<()> {
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
    let count_db = db.clone();
    rt.accounting.count(accounting::ORDERS, move || {
        let db = count_db.clone();
        async move { accounting::count_rows(&db.pool, "SELECT COUNT(*) FROM orders", None).await }
    });

    // Spread calls over every pod of each peer (headless Services), as the gateway does.
    let balancing = Balancing::from_env()?;
    let channel = |url: &str| balance::channel(url, &balancing);
    let service = Orders {
        db,
        outbox,
        metrics: rt.metrics.clone(),
        offer: OfferServiceClient::new(channel(&peers.offer)?),
        inventory: InventoryServiceClient::new(channel(&peers.inventory)?),
        payments: PaymentServiceClient::new(channel(&peers.payment)?),
    };
    let router = tonic::service::Routes::new(OrderServiceServer::new(service)).into_axum_router();
    rt.serve(router).await
}

fn schema() -> Vec<String> {
    vec![
        // A NULL idempotency key never conflicts (NULLs are distinct in a UNIQUE constraint).
        "CREATE TABLE IF NOT EXISTS orders (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            status TEXT NOT NULL,
            total_cents BIGINT NOT NULL,
            shipping_address TEXT NOT NULL,
            idempotency_key TEXT,
            payment_id TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            UNIQUE (user_id, idempotency_key)
        )"
        .to_string(),
        "CREATE INDEX IF NOT EXISTS orders_by_user ON orders (user_id, created_at)".to_string(),
        "CREATE TABLE IF NOT EXISTS order_items (
            order_id TEXT NOT NULL,
            line_no BIGINT NOT NULL,
            product_id BIGINT NOT NULL,
            quantity BIGINT NOT NULL,
            unit_price_cents BIGINT NOT NULL,
            PRIMARY KEY (order_id, line_no)
        )"
        .to_string(),
    ]
}

/// The gRPC service: storage, outbox and the clients of its peers.
#[derive(Clone)]
struct Orders {
    db: Db,
    outbox: Outbox,
    metrics: Arc<Metrics>,
    offer: OfferServiceClient<TracedChannel>,
    inventory: InventoryServiceClient<TracedChannel>,
    payments: PaymentServiceClient<TracedChannel>,
}

#[tonic::async_trait]
impl OrderService for Orders {
    async fn create_order(
        &self,
        request: Request<CreateOrderRequest>,
    ) -> Result<Response<Order>, Status> {
        let req = request.into_inner();
        validate_create(&req)?;
        let key = Some(req.idempotency_key.trim()).filter(|k| !k.is_empty());
        if let Some(key) = key
            && let Some(existing) = self.find_by_key(&req.user_id, key).await?
        {
            return Ok(Response::new(existing));
        }
        let (items, total_cents) = self.price(&req.items).await?;
        let now = now_ms();
        let order = Order {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: req.user_id.clone(),
            status: PENDING.to_string(),
            items,
            total_cents,
            shipping_address: req.shipping_address.trim().to_string(),
            created_at: now,
            updated_at: now,
        };
        self.reserve(&order).await?;
        if let Err(err) = self.insert(&order, key).await {
            self.release_reservation(&order.id).await;
            // A concurrent request with the same key may have won: answer with its order.
            if let Some(key) = key
                && let Some(existing) = self.find_by_key(&req.user_id, key).await?
            {
                return Ok(Response::new(existing));
            }
            return Err(db_status(err));
        }
        self.outbox.notify();
        self.metrics.orders_created.inc();
        tracing::info!(order_id = %order.id, total_cents, "order created");
        Ok(Response::new(order))
    }

    async fn get_order(
        &self,
        request: Request<GetOrderRequest>,
    ) -> Result<Response<Order>, Status> {
        let req = request.into_inner();
        let mut conn = self.db.pool.acquire().await.map_err(db_status)?;
        let order = load_order(&mut conn, &req.user_id, &req.order_id)
            .await
            .map_err(db_status)?;
        order
            .map(Response::new)
            .ok_or_else(|| order_not_found(&req.order_id))
    }

    async fn list_orders(
        &self,
        request: Request<ListOrdersRequest>,
    ) -> Result<Response<OrderList>, Status> {
        let req = request.into_inner();
        if !req.status.is_empty() && ![PENDING, PAID, CANCELLED].contains(&req.status.as_str()) {
            return Err(Status::invalid_argument(
                "status must be empty, pending, paid or cancelled",
            ));
        }
        let orders = self
            .list(&req.user_id, &req.status)
            .await
            .map_err(db_status)?;
        Ok(Response::new(OrderList { orders }))
    }

    async fn cancel_order(
        &self,
        request: Request<CancelOrderRequest>,
    ) -> Result<Response<Order>, Status> {
        let req = request.into_inner();
        let change = Transition {
            from: PENDING,
            to: CANCELLED,
            event_type: "order.cancelled",
            payment_id: None,
            reason: None,
        };
        if let Some(order) = self
            .transition(&req.user_id, &req.order_id, &change)
            .await
            .map_err(db_status)?
        {
            self.outbox.notify();
            self.release_reservation(&order.id).await;
            return Ok(Response::new(order));
        }
        if let Some(payment_id) = self.paid_by(&req.user_id, &req.order_id).await? {
            return self
                .cancel_paid(&req.user_id, &req.order_id, &payment_id)
                .await
                .map(Response::new);
        }
        Err(self
            .refusal(&req.user_id, &req.order_id, "cancelled")
            .await?)
    }

    async fn mark_paid(
        &self,
        request: Request<MarkPaidRequest>,
    ) -> Result<Response<Order>, Status> {
        let req = request.into_inner();
        if req.payment_id.trim().is_empty() {
            return Err(Status::invalid_argument("payment_id is required"));
        }
        // The status is read before the payment that paid it: an order is paid only once, so
        // a concurrent call for the same payment that wins between the two reads is still seen.
        let status = self.status_of(&req.user_id, &req.order_id).await?;
        if status.as_deref() != Some(PENDING) {
            if let Some(order) = self.paid_by_payment(&req).await? {
                return Ok(Response::new(order));
            }
            return Err(self.refusal(&req.user_id, &req.order_id, "paid").await?);
        }
        // The stock is made permanent before the order is paid, so a paid order never loses
        // its goods to the reservation sweeper.
        let committed = self
            .inventory
            .clone()
            .commit(CommitRequest {
                order_id: req.order_id.clone(),
            })
            .await;
        match committed {
            Ok(_) => {}
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::FailedPrecondition | tonic::Code::NotFound
                ) =>
            {
                return Err(self
                    .expire(&req.user_id, &req.order_id, status.message())
                    .await?);
            }
            Err(status) => return Err(status),
        }
        let change = Transition {
            from: PENDING,
            to: PAID,
            event_type: "order.paid",
            payment_id: Some(&req.payment_id),
            reason: None,
        };
        if let Some(order) = self
            .transition(&req.user_id, &req.order_id, &change)
            .await
            .map_err(db_status)?
        {
            self.outbox.notify();
            return Ok(Response::new(order));
        }
        // A concurrent call for the same payment got there first: answer as it did.
        if let Some(order) = self.paid_by_payment(&req).await? {
            return Ok(Response::new(order));
        }
        // Cancelled between the check and now: that cancellation releases the stock (committed
        // or not), and the refusal makes the payment service refund.
        Err(self.refusal(&req.user_id, &req.order_id, "paid").await?)
    }
}

/// A status change of an order and the event that announces it.
struct Transition<'a> {
    from: &'static str,
    to: &'static str,
    event_type: &'static str,
    payment_id: Option<&'a str>,
    /// Why, for changes a customer did not ask for (`data.reason` of the event).
    reason: Option<&'static str>,
}

impl Orders {
    /// Prices the lines with the offer service; returns the priced lines and the order total.
    async fn price(&self, lines: &[OrderItem]) -> Result<(Vec<OrderItem>, i64), Status> {
        let request = QuoteRequest {
            lines: lines
                .iter()
                .map(|l| QuoteLine {
                    product_id: l.product_id,
                    quantity: l.quantity,
                })
                .collect(),
        };
        let quote = self.offer.clone().quote(request).await?.into_inner();
        let mut priced = Vec::with_capacity(lines.len());
        for line in lines {
            let quoted = quote
                .lines
                .iter()
                .find(|q| q.product_id == line.product_id && q.quantity == line.quantity)
                .ok_or_else(|| {
                    tracing::error!(product_id = line.product_id, "quote lacks a requested line");
                    Status::internal("the offer service returned an incomplete quote")
                })?;
            priced.push(OrderItem {
                product_id: line.product_id,
                quantity: line.quantity,
                unit_price_cents: quoted.unit_price_cents,
            });
        }
        Ok((priced, quote.total_cents))
    }

    /// Reserves the order's stock; the inventory service's refusal reaches the caller as is.
    async fn reserve(&self, order: &Order) -> Result<(), Status> {
        let items = order
            .items
            .iter()
            .map(|i| LineItem {
                product_id: i.product_id,
                quantity: i.quantity,
            })
            .collect();
        let request = ReserveRequest {
            order_id: order.id.clone(),
            items,
        };
        if let Err(status) = self.inventory.clone().reserve(request).await {
            // A timeout or a dropped connection may hide a reservation that was made: undo it,
            // since this order id is never used again.
            if outcome_unknown(status.code()) {
                self.release_reservation(&order.id).await;
            }
            return Err(status);
        }
        Ok(())
    }

    /// Gives the stock of `order_id` back. Retried a few times because a leaked reservation
    /// hides stock from every other customer; releasing is idempotent on the inventory side.
    async fn release_reservation(&self, order_id: &str) {
        for attempt in 1..=3u32 {
            let request = ReleaseRequest {
                order_id: order_id.to_string(),
            };
            match self.inventory.clone().release(request).await {
                Ok(_) => return,
                Err(status) => {
                    tracing::warn!(order_id, attempt, error = %status, "releasing stock failed");
                    tokio::time::sleep(Duration::from_millis(200) * attempt).await;
                }
            }
        }
        tracing::error!(
            order_id,
            "stock reservation could not be released; it stays reserved"
        );
    }

    /// Stores the order, its lines and its `order.created` event in one transaction.
    async fn insert(
        &self,
        order: &Order,
        idempotency_key: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.db.pool.begin().await?;
        sqlx::query(
            "INSERT INTO orders (id, user_id, status, total_cents, shipping_address,
                idempotency_key, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&order.id)
        .bind(&order.user_id)
        .bind(&order.status)
        .bind(order.total_cents)
        .bind(&order.shipping_address)
        .bind(idempotency_key.map(str::to_string))
        .bind(order.created_at)
        .bind(order.updated_at)
        .execute(&mut *tx)
        .await?;
        for (line_no, item) in order.items.iter().enumerate() {
            sqlx::query(
                "INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price_cents)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&order.id)
            .bind(line_no as i64)
            .bind(item.product_id)
            .bind(item.quantity)
            .bind(item.unit_price_cents)
            .execute(&mut *tx)
            .await?;
        }
        let event = Envelope::new(
            ORDER_CREATED,
            json!({
                "order_id": order.id,
                "user_id": order.user_id,
                "items": items_json(&order.items),
                "total_cents": order.total_cents,
                "created_at": order.created_at,
            }),
        );
        Outbox::enqueue(&mut tx, TOPIC_ORDERS, &order.id, &event).await?;
        tx.commit().await
    }

    /// The order a user created earlier with idempotency key `key`.
    async fn find_by_key(&self, user_id: &str, key: &str) -> Result<Option<Order>, Status> {
        let id: Option<(String,)> =
            sqlx::query_as("SELECT id FROM orders WHERE user_id = $1 AND idempotency_key = $2")
                .bind(user_id)
                .bind(key)
                .fetch_optional(&self.db.pool)
                .await
                .map_err(db_status)?;
        let Some((order_id,)) = id else {
            return Ok(None);
        };
        let mut conn = self.db.pool.acquire().await.map_err(db_status)?;
        load_order(&mut conn, user_id, &order_id)
            .await
            .map_err(db_status)
    }

    /// The user's most recent orders, optionally only those in `status`.
    async fn list(&self, user_id: &str, status: &str) -> Result<Vec<Order>, sqlx::Error> {
        let rows: Vec<OrderRow> = sqlx::query_as(
            "SELECT id, user_id, status, total_cents, shipping_address, created_at, updated_at
             FROM orders WHERE user_id = $1 AND ($2 = '' OR status = $2)
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(user_id)
        .bind(status)
        .bind(LIST_LIMIT)
        .fetch_all(&self.db.pool)
        .await?;
        let items: Vec<ItemRow> = sqlx::query_as(
            "SELECT order_id, product_id, quantity, unit_price_cents FROM order_items
             WHERE order_id IN (
                SELECT id FROM orders WHERE user_id = $1 AND ($2 = '' OR status = $2)
                ORDER BY created_at DESC, id DESC LIMIT $3)
             ORDER BY order_id, line_no",
        )
        .bind(user_id)
        .bind(status)
        .bind(LIST_LIMIT)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let lines = items
                    .iter()
                    .filter(|i| i.0 == row.0)
                    .map(item_from_row)
                    .collect();
                order_from_row(row, lines)
            })
            .collect())
    }

    /// Moves an order of `user_id` from `change.from` to `change.to` with its event in one
    /// transaction; `None` when the user has no such order in `change.from`.
    async fn transition(
        &self,
        user_id: &str,
        order_id: &str,
        change: &Transition<'_>,
    ) -> Result<Option<Order>, sqlx::Error> {
        let mut tx = self.db.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE orders SET status = $1, payment_id = COALESCE($2, payment_id), updated_at = $3
             WHERE id = $4 AND user_id = $5 AND status = $6",
        )
        .bind(change.to)
        .bind(change.payment_id.map(str::to_string))
        .bind(now_ms())
        .bind(order_id)
        .bind(user_id)
        .bind(change.from)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(None);
        }
        let Some(order) = load_order(&mut tx, user_id, order_id).await? else {
            return Ok(None);
        };
        let mut data = json!({
            "order_id": order.id,
            "user_id": order.user_id,
            "items": items_json(&order.items),
            "total_cents": order.total_cents,
            "updated_at": order.updated_at,
        });
        if let Some(payment_id) = change.payment_id {
            data["payment_id"] = json!(payment_id);
        }
        if let Some(reason) = change.reason {
            data["reason"] = json!(reason);
        }
        let event = Envelope::new(change.event_type, data);
        Outbox::enqueue(&mut tx, TOPIC_ORDERS, &order.id, &event).await?;
        tx.commit().await?;
        Ok(Some(order))
    }

    /// The order, if it is already paid by this very payment (a retried or concurrent MarkPaid,
    /// answered as the first one was, never refused: a refusal makes the payment refund).
    async fn paid_by_payment(&self, req: &MarkPaidRequest) -> Result<Option<Order>, Status> {
        if self.paid_by(&req.user_id, &req.order_id).await?.as_deref() != Some(&req.payment_id) {
            return Ok(None);
        }
        let mut conn = self.db.pool.acquire().await.map_err(db_status)?;
        load_order(&mut conn, &req.user_id, &req.order_id)
            .await
            .map_err(db_status)
    }

    /// Cancels the user's paid order: refunds its payment, then cancels it and gives its stock
    /// back. A refund that fails (or whose outcome is unknown) refuses the cancellation and the
    /// order stays paid; repeating the cancellation is safe, as refunding twice is a no-op.
    async fn cancel_paid(
        &self,
        user_id: &str,
        order_id: &str,
        payment_id: &str,
    ) -> Result<Order, Status> {
        let refund = RefundPaymentRequest {
            user_id: user_id.to_string(),
            order_id: order_id.to_string(),
            payment_id: payment_id.to_string(),
        };
        if let Err(status) = self.payments.clone().refund_payment(refund).await {
            tracing::warn!(order_id, payment_id, error = %status, "refund failed; order stays paid");
            return Err(Status::failed_precondition(format!(
                "order {order_id} is paid and its payment could not be refunded ({}); \
                 the order stays paid",
                status.message()
            )));
        }
        let change = Transition {
            from: PAID,
            to: CANCELLED,
            event_type: "order.cancelled",
            payment_id: Some(payment_id),
            reason: Some("refunded"),
        };
        match self
            .transition(user_id, order_id, &change)
            .await
            .map_err(db_status)?
        {
            Some(order) => {
                self.outbox.notify();
                self.release_reservation(order_id).await;
                tracing::info!(order_id, payment_id, "paid order refunded and cancelled");
                Ok(order)
            }
            // A concurrent cancellation of the same order got there first.
            None => Err(self.refusal(user_id, order_id, "cancelled").await?),
        }
    }

    /// Cancels a pending order whose stock reservation lapsed (`why` is the inventory's
    /// reason) and returns the refusal for the payment that found out.
    async fn expire(&self, user_id: &str, order_id: &str, why: &str) -> Result<Status, Status> {
        let change = Transition {
            from: PENDING,
            to: CANCELLED,
            event_type: "order.cancelled",
            payment_id: None,
            reason: Some("reservation_expired"),
        };
        if self
            .transition(user_id, order_id, &change)
            .await
            .map_err(db_status)?
            .is_some()
        {
            self.outbox.notify();
            tracing::info!(order_id, "order cancelled: its stock reservation expired");
            return Ok(Status::failed_precondition(format!(
                "order {order_id} expired before it was paid: {why}"
            )));
        }
        self.refusal(user_id, order_id, "paid").await
    }

    /// The status of the user's order, `None` if the user has no such order.
    async fn status_of(&self, user_id: &str, order_id: &str) -> Result<Option<String>, Status> {
        let status: Option<(String,)> =
            sqlx::query_as("SELECT status FROM orders WHERE id = $1 AND user_id = $2")
                .bind(order_id)
                .bind(user_id)
                .fetch_optional(&self.db.pool)
                .await
                .map_err(db_status)?;
        Ok(status.map(|(s,)| s))
    }

    /// The payment that paid the user's order, if it is paid.
    async fn paid_by(&self, user_id: &str, order_id: &str) -> Result<Option<String>, Status> {
        let row: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT payment_id FROM orders WHERE id = $1 AND user_id = $2 AND status = $3",
        )
        .bind(order_id)
        .bind(user_id)
        .bind(PAID)
        .fetch_optional(&self.db.pool)
        .await
        .map_err(db_status)?;
        Ok(row.and_then(|(payment_id,)| payment_id))
    }

    /// Why a change was refused: the order is not the user's (NotFound) or not in a state
    /// that allows it (FailedPrecondition).
    async fn refusal(&self, user_id: &str, order_id: &str, wanted: &str) -> Result<Status, Status> {
        Ok(match self.status_of(user_id, order_id).await? {
            None => order_not_found(order_id),
            Some(current) => Status::failed_precondition(format!(
                "order {order_id} is {current}; only a {} order can be {wanted}",
                if wanted == "cancelled" {
                    "pending or paid"
                } else {
                    PENDING
                }
            )),
        })
    }
}

type OrderRow = (String, String, String, i64, String, i64, i64);
type ItemRow = (String, i64, i64, i64);

/// The user's order with its lines, or `None` if the user has no order with that id.
async fn load_order(
    conn: &mut AnyConnection,
    user_id: &str,
    order_id: &str,
) -> Result<Option<Order>, sqlx::Error> {
    let row: Option<OrderRow> = sqlx::query_as(
        "SELECT id, user_id, status, total_cents, shipping_address, created_at, updated_at
         FROM orders WHERE id = $1 AND user_id = $2",
    )
    .bind(order_id)
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let items: Vec<ItemRow> = sqlx::query_as(
        "SELECT order_id, product_id, quantity, unit_price_cents FROM order_items
         WHERE order_id = $1 ORDER BY line_no",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(order_from_row(
        row,
        items.iter().map(item_from_row).collect(),
    )))
}

fn order_from_row(row: OrderRow, items: Vec<OrderItem>) -> Order {
    let (id, user_id, status, total_cents, shipping_address, created_at, updated_at) = row;
    Order {
        id,
        user_id,
        status,
        items,
        total_cents,
        shipping_address,
        created_at,
        updated_at,
    }
}

fn item_from_row(row: &ItemRow) -> OrderItem {
    OrderItem {
        product_id: row.1,
        quantity: row.2,
        unit_price_cents: row.3,
    }
}

fn items_json(items: &[OrderItem]) -> serde_json::Value {
    items
        .iter()
        .map(|i| {
            json!({
                "product_id": i.product_id,
                "quantity": i.quantity,
                "unit_price_cents": i.unit_price_cents,
            })
        })
        .collect()
}

/// Whether a failed call may nevertheless have taken effect on the server.
fn outcome_unknown(code: tonic::Code) -> bool {
    use tonic::Code;
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Unknown
            | Code::Internal
    )
}

fn order_not_found(order_id: &str) -> Status {
    Status::not_found(format!("order {order_id} not found"))
}

/// Checks a CreateOrder request before anything is priced or reserved.
pub fn validate_create(req: &CreateOrderRequest) -> Result<(), Status> {
    let invalid = |message: String| Err(Status::invalid_argument(message));
    if req.user_id.trim().is_empty() || req.user_id.chars().count() > MAX_ID_CHARS {
        return invalid(format!("user_id must be 1 to {MAX_ID_CHARS} characters"));
    }
    if req.idempotency_key.chars().count() > MAX_ID_CHARS {
        return invalid(format!(
            "idempotency_key must be at most {MAX_ID_CHARS} characters"
        ));
    }
    if req.items.is_empty() || req.items.len() > MAX_LINES {
        return invalid(format!("an order needs 1 to {MAX_LINES} items"));
    }
    let mut products = HashSet::new();
    for item in &req.items {
        if item.product_id <= 0 {
            return invalid(format!(
                "product_id {} is not a product id",
                item.product_id
            ));
        }
        if !(1..=MAX_QUANTITY).contains(&item.quantity) {
            return invalid(format!(
                "quantity of product {} must be 1 to {MAX_QUANTITY}",
                item.product_id
            ));
        }
        // One line per product keeps pricing and reservation unambiguous.
        if !products.insert(item.product_id) {
            return invalid(format!("product {} appears on two lines", item.product_id));
        }
    }
    let address = req.shipping_address.trim();
    if address.is_empty() || address.chars().count() > MAX_ADDRESS_CHARS {
        return invalid(format!(
            "shipping_address must be 1 to {MAX_ADDRESS_CHARS} characters"
        ));
    }
    Ok(())
}

/// Milliseconds since the Unix epoch, the unit of every timestamp of the service.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(items: Vec<(i64, i64)>, address: &str) -> CreateOrderRequest {
        CreateOrderRequest {
            user_id: "u1".into(),
            items: items
                .into_iter()
                .map(|(product_id, quantity)| OrderItem {
                    product_id,
                    quantity,
                    unit_price_cents: 0,
                })
                .collect(),
            shipping_address: address.into(),
            idempotency_key: String::new(),
        }
    }

    #[test]
    fn accepts_a_plain_order_at_the_limits() {
        let lines = (1..=MAX_LINES as i64).map(|p| (p, MAX_QUANTITY)).collect();
        assert!(validate_create(&request(lines, &"a".repeat(MAX_ADDRESS_CHARS))).is_ok());
    }

    #[test]
    fn refuses_what_cannot_be_an_order() {
        let too_many = (1..=MAX_LINES as i64 + 1).map(|p| (p, 1)).collect();
        let cases = [
            request(vec![], "street 1"),
            request(too_many, "street 1"),
            request(vec![(1, 0)], "street 1"),
            request(vec![(1, MAX_QUANTITY + 1)], "street 1"),
            request(vec![(0, 1)], "street 1"),
            request(vec![(1, 1), (1, 2)], "street 1"),
            request(vec![(1, 1)], "   "),
            request(vec![(1, 1)], &"a".repeat(MAX_ADDRESS_CHARS + 1)),
            CreateOrderRequest {
                user_id: String::new(),
                ..request(vec![(1, 1)], "street 1")
            },
        ];
        for case in cases {
            let err = validate_create(&case).expect_err("must be refused");
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{case:?}");
        }
    }
}
