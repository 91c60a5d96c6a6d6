//! The inventory service (gRPC `InventoryService`): stock levels and reservations.
//!
//! Every product of the catalog is stocked deterministically with more than 100,000 units, so a
//! long load run does not sell out by accident. A reservation takes all of an order's stock in one
//! transaction or none of it: each line is a guarded decrement
//! (`available = available - q WHERE available >= q`), and a line that finds too little rolls the
//! whole transaction back. Reservations are keyed by (order id, product id), which makes `Reserve`
//! safe to retry and lets `Release` give the stock back exactly once.
//!
//! A reservation is held for [`Settings::reservation_ttl`] (`RESERVATION_TTL_SECS`, default
//! [`DEFAULT_RESERVATION_TTL`]): an order that is never paid must not hide its stock forever, so
//! a sweeper task gives back every held reservation older than that. Paying an order `Commit`s its
//! reservation, which makes it permanent (the sweeper never touches it); cancelling an order
//! `Release`s held and committed stock alike.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Result, bail};
use sqlx::{Any, Transaction};
use tonic::{Request, Response, Status};

use crate::{
    platform::{
        config::parse_env,
        http::Runtime,
        shutdown::Shutdown,
        storage::{Db, db_status},
    },
    proto::{
        CommitRequest, CommitResponse, GetStockRequest, LineItem, ReleaseRequest, ReleaseResponse,
        ReserveRequest, ReserveResponse, StockItem, StockList,
        inventory_service_server::{InventoryService, InventoryServiceServer},
    },
};

/// Smallest initial stock of a product.
pub const MIN_INITIAL_STOCK: i64 = 100_000;
/// Most products one `GetStock` or `Reserve` call may name.
pub const MAX_PRODUCTS_PER_CALL: usize = 500;
/// Longest accepted order id, in characters.
pub const MAX_ORDER_ID_CHARS: usize = 200;

/// The initial stock of product `id`: deterministic, and at least [`MIN_INITIAL_STOCK`].
pub fn initial_stock(id: i64) -> i64 {
    MIN_INITIAL_STOCK + (id.wrapping_mul(7919)).rem_euclid(50_000)
}

/// How long a reservation is held for an order that is not paid, unless `RESERVATION_TTL_SECS`
/// says otherwise: long enough for a customer to pay, short enough that abandoned checkouts
/// give their stock back within the quarter hour.
pub const DEFAULT_RESERVATION_TTL: Duration = Duration::from_secs(15 * 60);
/// Most reservations (orders) one sweep gives back; the next sweep goes on at once.
const SWEEP_BATCH: i64 = 100;

/// `reservations.released`: the stock is held for the order (until paid, cancelled or expired).
const HELD: i64 = 0;
/// `reservations.released`: the stock went back (cancelled, expired or never stored).
const RELEASED: i64 = 1;
/// `reservations.released`: the order was paid; the stock is sold and never expires.
const COMMITTED: i64 = 2;

/// What the inventory service is run with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Products `1..=product_count` are stocked.
    pub product_count: i64,
    /// How long a reservation is held before the sweeper gives it back.
    pub reservation_ttl: Duration,
}

impl Settings {
    /// `PRODUCT_COUNT` and `RESERVATION_TTL_SECS` (1 second to 7 days).
    pub fn from_env() -> Result<Self> {
        let ttl_secs =
            parse_env::<u64>("RESERVATION_TTL_SECS")?.unwrap_or(DEFAULT_RESERVATION_TTL.as_secs());
        if !(1..=7 * 24 * 3600).contains(&ttl_secs) {
            bail!("RESERVATION_TTL_SECS must be within 1..=604800, got {ttl_secs}");
        }
        Ok(Self {
            product_count: super::product::product_count_from_env()?,
            reservation_ttl: Duration::from_secs(ttl_secs),
        })
    }
}

/// How often the sweeper looks for expired reservations: a quarter of the TTL, so a reservation
/// outlives its TTL by at most that much, within 50 ms and 30 s.
pub fn sweep_interval(ttl: Duration) -> Duration {
    (ttl / 4).clamp(Duration::from_millis(50), Duration::from_secs(30))
}

/// Runs the inventory service with settings from the environment.
pub async fn run(rt: Runtime) -> Result<()> {
    run_settings(rt, Settings::from_env()?).await
}

/// Runs the inventory service stocking products `1..=product_count`, with the default TTL.
pub async fn run_with(rt: Runtime, product_count: i64) -> Result<()> {
    let settings = Settings {
        product_count,
        reservation_ttl: DEFAULT_RESERVATION_TTL,
    };
    run_settings(rt, settings).await
}

/// Runs the inventory service with explicit settings (tests choose a short TTL).
pub async fn run_settings(rt: Runtime, settings: Settings) -> Result<()> {
    let db = Db::connect(&rt.config).await?;
    db.migrate(&schema()).await?;
    seed(&db, settings.product_count).await?;
    let sweeper = Sweeper::open(db.clone(), settings.reservation_ttl).await?;
    sweeper.spawn(&rt.shutdown);

    let mut rt = rt;
    let probe = db.clone();
    rt.readiness.add("db", move || {
        let db = probe.clone();
        async move { db.ping().await }
    });
    let service = InventoryServiceServer::new(Inventory { db });
    rt.serve(tonic::service::Routes::new(service).into_axum_router())
        .await
}

fn schema() -> Vec<String> {
    vec![
        "CREATE TABLE IF NOT EXISTS stock (
            product_id BIGINT PRIMARY KEY,
            available BIGINT NOT NULL,
            reserved BIGINT NOT NULL
        )"
        .to_string(),
        // released: HELD (0) while the stock is held, RELEASED (1) once it went back,
        // COMMITTED (2) once the order was paid.
        "CREATE TABLE IF NOT EXISTS reservations (
            order_id TEXT NOT NULL,
            product_id BIGINT NOT NULL,
            quantity BIGINT NOT NULL,
            released BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (order_id, product_id)
        )"
        .to_string(),
        "CREATE INDEX IF NOT EXISTS reservations_by_age ON reservations (released, created_at)"
            .to_string(),
        // When reservations started to expire (one row, written once). Reservations made by an
        // earlier version may belong to paid orders that were never committed, so the sweeper
        // leaves everything older alone rather than sell that stock twice.
        "CREATE TABLE IF NOT EXISTS reservation_expiry (
            id BIGINT PRIMARY KEY,
            since BIGINT NOT NULL
        )"
        .to_string(),
    ]
}

/// Gives back reservations held longer than the TTL.
#[derive(Clone, Debug)]
pub struct Sweeper {
    db: Db,
    ttl: Duration,
    /// Reservations created before this (ms) predate expiry and are never swept.
    since: i64,
}

impl Sweeper {
    /// Reads (or, on first start, records) when expiry began.
    pub async fn open(db: Db, ttl: Duration) -> Result<Self> {
        sqlx::query(
            "INSERT INTO reservation_expiry (id, since) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        )
        .bind(now_ms())
        .execute(&db.pool)
        .await?;
        let (since,): (i64,) = sqlx::query_as("SELECT since FROM reservation_expiry WHERE id = 1")
            .fetch_one(&db.pool)
            .await?;
        Ok(Self { db, ttl, since })
    }

    /// Sweeps every [`sweep_interval`] until shutdown; a failed sweep is retried next time.
    pub fn spawn(self, shutdown: &Shutdown) {
        let stop = shutdown.clone();
        let every = sweep_interval(self.ttl);
        shutdown.spawn(async move {
            loop {
                let pause = match self.sweep(now_ms()).await {
                    Ok(n) if n as i64 == SWEEP_BATCH => Duration::ZERO,
                    Ok(_) => every,
                    Err(e) => {
                        tracing::warn!(error = %e, "reservation sweep failed; will retry");
                        every
                    }
                };
                tokio::select! {
                    _ = stop.wait() => break,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        });
    }

    /// Gives back up to [`SWEEP_BATCH`] reservations still held at `now` (ms) although created
    /// more than the TTL before it; returns how many orders' stock went back. `now` is a
    /// parameter so tests can move the clock instead of waiting.
    pub async fn sweep(&self, now: i64) -> Result<usize, sqlx::Error> {
        let ttl_ms = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now.saturating_sub(ttl_ms);
        let expired: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT order_id FROM reservations
             WHERE released = $1 AND created_at < $2 AND created_at >= $3 LIMIT $4",
        )
        .bind(HELD)
        .bind(cutoff)
        .bind(self.since)
        .bind(SWEEP_BATCH)
        .fetch_all(&self.db.pool)
        .await?;
        let mut swept = 0;
        for (order_id,) in expired {
            let mut tx = self.db.pool.begin().await?;
            // Only still-held lines: a Commit or Release that won the race keeps its outcome.
            let lines = give_back(&mut tx, &order_id, &[HELD], Some(cutoff)).await?;
            tx.commit().await?;
            if !lines.is_empty() {
                swept += 1;
                tracing::info!(%order_id, lines = lines.len(), "expired reservation released");
            }
        }
        Ok(swept)
    }
}

/// Marks the order's reservation lines in one of the states `from` as released (only those
/// created before `created_before`, when given) and puts their stock back; returns the lines.
/// Flipping and reading the lines in one statement means that of two concurrent releases only
/// one sees them, so stock goes back exactly once.
async fn give_back(
    tx: &mut Transaction<'static, Any>,
    order_id: &str,
    from: &[i64],
    created_before: Option<i64>,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    let states = from
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let lines: Vec<(i64, i64)> = sqlx::query_as(&format!(
        "UPDATE reservations SET released = $1
         WHERE order_id = $2 AND released IN ({states}) AND created_at < $3
         RETURNING product_id, quantity"
    ))
    .bind(RELEASED)
    .bind(order_id)
    .bind(created_before.unwrap_or(i64::MAX))
    .fetch_all(&mut **tx)
    .await?;
    for (product_id, quantity) in &lines {
        sqlx::query(
            "UPDATE stock SET available = available + $2, reserved = reserved - $2
             WHERE product_id = $1",
        )
        .bind(*product_id)
        .bind(*quantity)
        .execute(&mut **tx)
        .await?;
    }
    Ok(lines)
}

/// Milliseconds since the Unix epoch, the unit of `reservations.created_at`.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Stocks every product that has no stock row yet (existing levels are never reset).
async fn seed(db: &Db, product_count: i64) -> Result<()> {
    let (present,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM stock WHERE product_id <= $1")
        .bind(product_count)
        .fetch_one(&db.pool)
        .await?;
    if present >= product_count {
        return Ok(());
    }
    let mut tx = db.pool.begin().await?;
    let ids: Vec<i64> = (1..=product_count).collect();
    for chunk in ids.chunks(200) {
        let rows = (0..chunk.len())
            .map(|i| format!("(${}, ${}, 0)", 2 * i + 1, 2 * i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO stock (product_id, available, reserved) VALUES {rows}
             ON CONFLICT (product_id) DO NOTHING"
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(*id).bind(initial_stock(*id));
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    tracing::info!(product_count, "stock seeded");
    Ok(())
}

/// The `InventoryService` implementation.
struct Inventory {
    db: Db,
}

/// Why a reservation was refused.
enum Refusal {
    Status(Status),
    Database(sqlx::Error),
}

impl From<sqlx::Error> for Refusal {
    fn from(err: sqlx::Error) -> Self {
        Self::Database(err)
    }
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Status(status) => status,
            Refusal::Database(err) => db_status(err),
        }
    }
}

/// Checks the request and sums repeated products into one line each (the reservation key is
/// per product).
fn validate_reserve(req: &ReserveRequest) -> Result<BTreeMap<i64, i64>, Status> {
    let order_chars = req.order_id.chars().count();
    if req.order_id.trim().is_empty() || order_chars > MAX_ORDER_ID_CHARS {
        return Err(Status::invalid_argument(
            "order_id must be 1 to 200 characters",
        ));
    }
    if req.items.is_empty() || req.items.len() > MAX_PRODUCTS_PER_CALL {
        return Err(Status::invalid_argument(
            "a reservation needs 1 to 500 items",
        ));
    }
    let mut lines = BTreeMap::new();
    for LineItem {
        product_id,
        quantity,
    } in &req.items
    {
        if *product_id <= 0 || *quantity <= 0 {
            return Err(Status::invalid_argument(format!(
                "item (product {product_id}, quantity {quantity}) needs a positive id and quantity"
            )));
        }
        let total: &mut i64 = lines.entry(*product_id).or_default();
        *total = total
            .checked_add(*quantity)
            .ok_or_else(|| Status::invalid_argument("quantity overflows"))?;
    }
    Ok(lines)
}

impl Inventory {
    /// Records the reservation rows, then takes the stock line by line. Returns `Ok(false)` when
    /// the order already holds a reservation (nothing is changed then).
    async fn reserve_in(
        tx: &mut Transaction<'static, Any>,
        order_id: &str,
        lines: &BTreeMap<i64, i64>,
    ) -> Result<bool, Refusal> {
        let now = now_ms();
        // The reservation rows go first: if the order already has them, the insert conflicts and
        // nothing else is attempted (and concurrent retries of one order serialise on the key).
        for (product_id, quantity) in lines {
            let inserted = sqlx::query(
                "INSERT INTO reservations (order_id, product_id, quantity, released, created_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id, product_id) DO NOTHING",
            )
            .bind(order_id)
            .bind(*product_id)
            .bind(*quantity)
            .bind(HELD)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            if inserted.rows_affected() == 0 {
                return Ok(false);
            }
        }
        for (product_id, quantity) in lines {
            let taken = sqlx::query(
                "UPDATE stock SET available = available - $2, reserved = reserved + $2
                 WHERE product_id = $1 AND available >= $2",
            )
            .bind(*product_id)
            .bind(*quantity)
            .execute(&mut **tx)
            .await?;
            if taken.rows_affected() == 0 {
                return Err(Refusal::Status(Self::shortage(tx, *product_id).await?));
            }
        }
        Ok(true)
    }

    /// Why product `product_id` could not be taken: it is unknown, or short.
    async fn shortage(
        tx: &mut Transaction<'static, Any>,
        product_id: i64,
    ) -> Result<Status, sqlx::Error> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT available FROM stock WHERE product_id = $1")
                .bind(product_id)
                .fetch_optional(&mut **tx)
                .await?;
        Ok(match row {
            None => Status::not_found(format!("product {product_id} is not stocked")),
            Some(_) => {
                Status::failed_precondition(format!("insufficient stock for product {product_id}"))
            }
        })
    }
}

#[tonic::async_trait]
impl InventoryService for Inventory {
    async fn get_stock(
        &self,
        request: Request<GetStockRequest>,
    ) -> Result<Response<StockList>, Status> {
        let mut ids = request.into_inner().product_ids;
        ids.sort_unstable();
        ids.dedup();
        if ids.len() > MAX_PRODUCTS_PER_CALL {
            return Err(Status::invalid_argument("at most 500 product ids per call"));
        }
        if ids.is_empty() {
            return Ok(Response::new(StockList { items: Vec::new() }));
        }
        let placeholders = (1..=ids.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT product_id, available, reserved FROM stock WHERE product_id IN ({placeholders})
             ORDER BY product_id"
        );
        let mut query = sqlx::query_as::<_, (i64, i64, i64)>(&sql);
        for id in &ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&self.db.pool).await.map_err(db_status)?;
        let items = rows
            .into_iter()
            .map(|(product_id, available, reserved)| StockItem {
                product_id,
                available,
                reserved,
            })
            .collect();
        Ok(Response::new(StockList { items }))
    }

    async fn reserve(
        &self,
        request: Request<ReserveRequest>,
    ) -> Result<Response<ReserveResponse>, Status> {
        let req = request.into_inner();
        let lines = validate_reserve(&req)?;
        let mut tx = self.db.pool.begin().await.map_err(db_status)?;
        // Any refusal returns before commit: dropping the transaction rolls every line back.
        let reserved_now = Self::reserve_in(&mut tx, &req.order_id, &lines).await?;
        if reserved_now {
            tx.commit().await.map_err(db_status)?;
            tracing::info!(order_id = %req.order_id, lines = lines.len(), "stock reserved");
        }
        Ok(Response::new(ReserveResponse {
            already_reserved: !reserved_now,
        }))
    }

    async fn release(
        &self,
        request: Request<ReleaseRequest>,
    ) -> Result<Response<ReleaseResponse>, Status> {
        let order_id = request.into_inner().order_id;
        let mut tx = self.db.pool.begin().await.map_err(db_status)?;
        // Committed stock too: a paid order that is cancelled (and refunded) gives its goods back.
        let lines = give_back(&mut tx, &order_id, &[HELD, COMMITTED], None)
            .await
            .map_err(db_status)?;
        tx.commit().await.map_err(db_status)?;
        if !lines.is_empty() {
            tracing::info!(%order_id, lines = lines.len(), "stock released");
        }
        Ok(Response::new(ReleaseResponse {
            released: !lines.is_empty(),
        }))
    }

    async fn commit(
        &self,
        request: Request<CommitRequest>,
    ) -> Result<Response<CommitResponse>, Status> {
        let order_id = request.into_inner().order_id;
        // One statement flips every held line, so the sweeper (which only takes held lines)
        // either released the whole reservation before this or finds nothing left to take.
        let committed = sqlx::query(
            "UPDATE reservations SET released = $1 WHERE order_id = $2 AND released = $3",
        )
        .bind(COMMITTED)
        .bind(&order_id)
        .bind(HELD)
        .execute(&self.db.pool)
        .await
        .map_err(db_status)?
        .rows_affected();
        if committed > 0 {
            tracing::info!(%order_id, "reservation committed");
            return Ok(Response::new(CommitResponse {
                already_committed: false,
            }));
        }
        let state: Option<(i64,)> =
            sqlx::query_as("SELECT released FROM reservations WHERE order_id = $1 LIMIT 1")
                .bind(&order_id)
                .fetch_optional(&self.db.pool)
                .await
                .map_err(db_status)?;
        match state {
            Some((COMMITTED,)) => Ok(Response::new(CommitResponse {
                already_committed: true,
            })),
            Some(_) => Err(Status::failed_precondition(format!(
                "the stock reservation of order {order_id} expired or was released"
            ))),
            None => Err(Status::not_found(format!(
                "order {order_id} holds no stock reservation"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;
    use crate::{platform::grpc, proto::inventory_service_client::InventoryServiceClient, testkit};

    type Client = InventoryServiceClient<grpc::TracedChannel>;

    fn reserve(order_id: &str, items: &[(i64, i64)]) -> ReserveRequest {
        ReserveRequest {
            order_id: order_id.into(),
            items: items
                .iter()
                .map(|&(product_id, quantity)| LineItem {
                    product_id,
                    quantity,
                })
                .collect(),
        }
    }

    async fn stock_of(client: &mut Client, product_id: i64) -> StockItem {
        let list = client
            .get_stock(GetStockRequest {
                product_ids: vec![product_id],
            })
            .await
            .unwrap()
            .into_inner();
        list.items.into_iter().next().expect("stocked product")
    }

    async fn start_inventory(dir: &std::path::Path) -> (testkit::Running, Client) {
        let running = testkit::start("inventory", dir, |rt| run_with(rt, 1000)).await;
        let client = InventoryServiceClient::new(grpc::channel(&running.url).unwrap());
        (running, client)
    }

    fn commit(order_id: &str) -> CommitRequest {
        CommitRequest {
            order_id: order_id.into(),
        }
    }

    /// The database of the service started in `dir`, opened a second time (as a second
    /// replica would), for a sweeper whose clock the test sets.
    async fn same_database(dir: &std::path::Path) -> Db {
        Db::connect_url(&format!("sqlite://{}/inventory.db?mode=rwc", dir.display()))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn commit_makes_a_reservation_permanent_and_release_still_returns_it() {
        let dir = tempfile::tempdir().unwrap();
        let (_service, mut client) = start_inventory(dir.path()).await;
        let before = stock_of(&mut client, 9).await;
        client.reserve(reserve("paid", &[(9, 4)])).await.unwrap();

        let first = client.commit(commit("paid")).await.unwrap().into_inner();
        assert!(!first.already_committed);
        let again = client.commit(commit("paid")).await.unwrap().into_inner();
        assert!(again.already_committed, "committing twice is harmless");
        let held = stock_of(&mut client, 9).await;
        assert_eq!((held.available, held.reserved), (before.available - 4, 4));

        // A paid order that is cancelled (refunded) gives its goods back.
        let released = client
            .release(ReleaseRequest {
                order_id: "paid".into(),
            })
            .await
            .unwrap();
        assert!(released.into_inner().released);
        assert_eq!(stock_of(&mut client, 9).await, before);
        let late = client.commit(commit("paid")).await.unwrap_err();
        assert_eq!(late.code(), Code::FailedPrecondition, "{late:?}");
        let unknown = client.commit(commit("never")).await.unwrap_err();
        assert_eq!(unknown.code(), Code::NotFound);
    }

    #[tokio::test]
    async fn the_sweeper_returns_expired_reservations_but_not_committed_or_fresh_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (_service, mut client) = start_inventory(dir.path()).await;
        let before = stock_of(&mut client, 11).await;
        client
            .reserve(reserve("abandoned", &[(11, 2), (12, 1)]))
            .await
            .unwrap();
        client.reserve(reserve("paid", &[(11, 3)])).await.unwrap();
        client.commit(commit("paid")).await.unwrap();

        let ttl = Duration::from_secs(60);
        let sweeper = Sweeper::open(same_database(dir.path()).await, ttl)
            .await
            .unwrap();
        let now = now_ms();
        assert_eq!(
            sweeper.sweep(now).await.unwrap(),
            0,
            "nothing is older than the TTL yet"
        );
        assert_eq!(stock_of(&mut client, 11).await.reserved, 5);

        let later = now + 61_000;
        assert_eq!(
            sweeper.sweep(later).await.unwrap(),
            1,
            "only the unpaid order expires"
        );
        let left = stock_of(&mut client, 11).await;
        assert_eq!((left.available, left.reserved), (before.available - 3, 3));
        assert_eq!(stock_of(&mut client, 12).await.reserved, 0);
        assert_eq!(
            sweeper.sweep(later).await.unwrap(),
            0,
            "stock goes back once"
        );

        let expired = client.commit(commit("abandoned")).await.unwrap_err();
        assert_eq!(expired.code(), Code::FailedPrecondition);
        assert!(expired.message().contains("expired"), "{expired:?}");
        let retry = client
            .reserve(reserve("abandoned", &[(11, 2)]))
            .await
            .unwrap();
        assert!(
            retry.into_inner().already_reserved,
            "an expired order id does not reserve again"
        );
        let released = client
            .release(ReleaseRequest {
                order_id: "abandoned".into(),
            })
            .await
            .unwrap();
        assert!(
            !released.into_inner().released,
            "expired stock is not given back twice"
        );
        assert_eq!(stock_of(&mut client, 11).await, left);
    }

    #[tokio::test]
    async fn reservations_from_before_expiry_existed_are_never_swept() {
        let dir = tempfile::tempdir().unwrap();
        let (_service, mut client) = start_inventory(dir.path()).await;
        client.reserve(reserve("old", &[(20, 1)])).await.unwrap();
        let db = same_database(dir.path()).await;
        // As if the reservation had been made by a version without expiry: before `since`.
        sqlx::query(
            "UPDATE reservations SET created_at = created_at - 3600000 WHERE order_id = 'old'",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        let sweeper = Sweeper::open(db, Duration::from_secs(1)).await.unwrap();
        assert_eq!(sweeper.sweep(now_ms() + 10_000_000).await.unwrap(), 0);
        assert_eq!(stock_of(&mut client, 20).await.reserved, 1);
    }

    #[tokio::test]
    async fn the_running_service_sweeps_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            product_count: 100,
            reservation_ttl: Duration::from_secs(1),
        };
        let running =
            testkit::start("inventory", dir.path(), |rt| run_settings(rt, settings)).await;
        let mut client = InventoryServiceClient::new(grpc::channel(&running.url).unwrap());
        // Committed before the other reservation exists, so it cannot have expired first.
        client.reserve(reserve("paid", &[(30, 2)])).await.unwrap();
        client.commit(commit("paid")).await.unwrap();
        client
            .reserve(reserve("abandoned", &[(31, 2)]))
            .await
            .unwrap();
        let probe = client.clone();
        testkit::eventually(
            "the abandoned reservation expires",
            testkit::DEADLINE,
            || {
                let mut client = probe.clone();
                async move { (stock_of(&mut client, 31).await.reserved == 0).then_some(()) }
            },
        )
        .await;
        assert_eq!(stock_of(&mut client, 31).await.available, initial_stock(31));
        assert_eq!(
            stock_of(&mut client, 30).await.reserved,
            2,
            "paid stock stays sold"
        );
    }

    #[test]
    fn sweeps_often_enough_for_the_ttl() {
        assert_eq!(
            sweep_interval(DEFAULT_RESERVATION_TTL),
            Duration::from_secs(30)
        );
        assert_eq!(
            sweep_interval(Duration::from_secs(1)),
            Duration::from_millis(250)
        );
        assert_eq!(
            sweep_interval(Duration::from_millis(1)),
            Duration::from_millis(50)
        );
    }

    #[test]
    fn initial_stock_is_large_and_deterministic() {
        assert!((1..=5000).all(|id| initial_stock(id) >= MIN_INITIAL_STOCK));
        assert_eq!(initial_stock(42), initial_stock(42));
        assert_ne!(initial_stock(1), initial_stock(2));
    }

    #[tokio::test]
    async fn reserve_is_idempotent_and_release_restores_once() {
        let dir = tempfile::tempdir().unwrap();
        let (_service, mut client) = start_inventory(dir.path()).await;
        let before = stock_of(&mut client, 7).await;
        assert_eq!(before.available, initial_stock(7));
        assert_eq!(before.reserved, 0);

        let first = client
            .reserve(reserve("order-1", &[(7, 3), (8, 1), (7, 2)]))
            .await
            .unwrap();
        assert!(!first.into_inner().already_reserved);
        let held = stock_of(&mut client, 7).await;
        assert_eq!((held.available, held.reserved), (before.available - 5, 5));

        let retry = client
            .reserve(reserve("order-1", &[(7, 5), (8, 1)]))
            .await
            .unwrap();
        assert!(retry.into_inner().already_reserved);
        assert_eq!(
            stock_of(&mut client, 7).await,
            held,
            "a retry changes nothing"
        );

        let released = client
            .release(ReleaseRequest {
                order_id: "order-1".into(),
            })
            .await
            .unwrap();
        assert!(released.into_inner().released);
        let again = client
            .release(ReleaseRequest {
                order_id: "order-1".into(),
            })
            .await
            .unwrap();
        assert!(!again.into_inner().released, "stock goes back once");
        assert_eq!(stock_of(&mut client, 7).await, before);
        assert_eq!(stock_of(&mut client, 8).await.available, initial_stock(8));

        let unknown = client
            .release(ReleaseRequest {
                order_id: "never".into(),
            })
            .await
            .unwrap();
        assert!(!unknown.into_inner().released);
    }

    #[tokio::test]
    async fn insufficient_stock_rolls_everything_back() {
        let dir = tempfile::tempdir().unwrap();
        let (_service, mut client) = start_inventory(dir.path()).await;
        let small_before = stock_of(&mut client, 1).await;
        let big_before = stock_of(&mut client, 2).await;

        let too_much = big_before.available + 1;
        let refused = client
            .reserve(reserve("order-2", &[(1, 4), (2, too_much)]))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::FailedPrecondition);
        assert!(refused.message().contains("insufficient stock"));
        assert_eq!(
            stock_of(&mut client, 1).await,
            small_before,
            "the first line was rolled back"
        );
        assert_eq!(stock_of(&mut client, 2).await, big_before);

        // The refused order left no reservation behind: the same id can reserve afterwards.
        let ok = client.reserve(reserve("order-2", &[(1, 4)])).await.unwrap();
        assert!(!ok.into_inner().already_reserved);

        let all = client
            .reserve(reserve("order-3", &[(3, initial_stock(3))]))
            .await;
        assert!(all.is_ok(), "exactly the available stock can be taken");
        assert_eq!(stock_of(&mut client, 3).await.available, 0);

        let unknown = client
            .reserve(reserve("order-4", &[(999_999, 1)]))
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), Code::NotFound);
        let zero = client
            .reserve(reserve("order-5", &[(1, 0)]))
            .await
            .unwrap_err();
        assert_eq!(zero.code(), Code::InvalidArgument);
        let no_id = client.reserve(reserve(" ", &[(1, 1)])).await.unwrap_err();
        assert_eq!(no_id.code(), Code::InvalidArgument);
    }

    #[tokio::test]
    async fn concurrent_reservations_never_oversell() {
        let dir = tempfile::tempdir().unwrap();
        let (_service, client) = start_inventory(dir.path()).await;
        let available = initial_stock(5);
        // Ten orders each asking for a quarter of the stock: exactly four can succeed.
        let quarter = available / 4;
        let attempts = (0..10).map(|i| {
            let mut client = client.clone();
            async move {
                client
                    .reserve(reserve(&format!("race-{i}"), &[(5, quarter)]))
                    .await
            }
        });
        let outcomes = futures::future::join_all(attempts).await;
        let succeeded = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(succeeded, 4);
        assert!(
            outcomes
                .iter()
                .filter_map(|o| o.as_ref().err())
                .all(|e| e.code() == Code::FailedPrecondition)
        );
        let mut client = client;
        let left = stock_of(&mut client, 5).await;
        assert_eq!(left.available, available - 4 * quarter);
        assert_eq!(left.reserved, 4 * quarter);
    }
}
