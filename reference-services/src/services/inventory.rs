//! The inventory service (gRPC `InventoryService`): stock levels and reservations.
//!
//! Every product of the catalog is stocked deterministically with more than 100,000 units, so a
//! long load run does not sell out by accident. A reservation takes all of an order's stock in one
//! transaction or none of it: each line is a guarded decrement
//! (`available = available - q WHERE available >= q`), and a line that finds too little rolls the
//! whole transaction back. Reservations are keyed by (order id, product id), which makes `Reserve`
//! safe to retry and lets `Release` give the stock back exactly once.

use std::collections::BTreeMap;

use anyhow::Result;
use sqlx::{Any, Transaction};
use tonic::{Request, Response, Status};

use crate::{
    platform::{
        http::Runtime,
        storage::{Db, db_status},
    },
    proto::{
        GetStockRequest, LineItem, ReleaseRequest, ReleaseResponse, ReserveRequest,
        ReserveResponse, StockItem, StockList,
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

/// Runs the inventory service for the catalog size in `PRODUCT_COUNT`.
pub async fn run(rt: Runtime) -> Result<()> {
    run_with(rt, super::product::product_count_from_env()?).await
}

/// Runs the inventory service stocking products `1..=product_count`.
pub async fn run_with(rt: Runtime, product_count: i64) -> Result<()> {
    let db = Db::connect(&rt.config).await?;
    db.migrate(&schema()).await?;
    seed(&db, product_count).await?;

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
        // released: 0 while the stock is held, 1 once it went back.
        "CREATE TABLE IF NOT EXISTS reservations (
            order_id TEXT NOT NULL,
            product_id BIGINT NOT NULL,
            quantity BIGINT NOT NULL,
            released BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (order_id, product_id)
        )"
        .to_string(),
    ]
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
        let now = chrono::Utc::now().timestamp_millis();
        // The reservation rows go first: if the order already has them, the insert conflicts and
        // nothing else is attempted (and concurrent retries of one order serialise on the key).
        for (product_id, quantity) in lines {
            let inserted = sqlx::query(
                "INSERT INTO reservations (order_id, product_id, quantity, released, created_at)
                 VALUES ($1, $2, $3, 0, $4) ON CONFLICT (order_id, product_id) DO NOTHING",
            )
            .bind(order_id)
            .bind(*product_id)
            .bind(*quantity)
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
        // Flipping `released` and reading the lines in one statement means that of two
        // concurrent releases only one sees the lines, so stock goes back exactly once.
        let lines: Vec<(i64, i64)> = sqlx::query_as(
            "UPDATE reservations SET released = 1 WHERE order_id = $1 AND released = 0
             RETURNING product_id, quantity",
        )
        .bind(&order_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_status)?;
        for (product_id, quantity) in &lines {
            sqlx::query(
                "UPDATE stock SET available = available + $2, reserved = reserved - $2
                 WHERE product_id = $1",
            )
            .bind(*product_id)
            .bind(*quantity)
            .execute(&mut *tx)
            .await
            .map_err(db_status)?;
        }
        tx.commit().await.map_err(db_status)?;
        if !lines.is_empty() {
            tracing::info!(%order_id, lines = lines.len(), "stock released");
        }
        Ok(Response::new(ReleaseResponse {
            released: !lines.is_empty(),
        }))
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
