//! The cart service (internal HTTP API, used only by the gateway): one cart per user, a map from
//! product id to quantity.
//!
//! Carts are short-lived and cheap to lose, so they live in Redis when `REDIS_URL` is set (one
//! hash per user, expiring a week after the last change) and in memory otherwise. Both stores sit
//! behind [`CartStore`], so the HTTP layer and its validation are the same for both.
//!
//! Routes: `GET /v1/carts/{user_id}`, `PUT /v1/carts/{user_id}/items/{product_id}` with
//! `{"quantity": n}` (0 removes the line), `DELETE /v1/carts/{user_id}/items/{product_id}`,
//! `DELETE /v1/carts/{user_id}`.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, Result};
use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, put},
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};

use crate::platform::{
    api::{ApiError, ApiJson, ApiPath},
    http::Runtime,
    metrics::HttpRoute,
};

/// Largest quantity of one line.
pub const MAX_QUANTITY: i64 = 99;
/// Most distinct products one cart may hold.
pub const MAX_LINES: usize = 50;
/// Longest accepted user id, in bytes.
pub const MAX_USER_ID_LEN: usize = 128;
/// How long an untouched cart is kept in Redis.
const REDIS_TTL_SECS: i64 = 7 * 24 * 3600;

/// A store failure (the backing store is unreachable or answered nonsense).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreError(pub String);

impl From<redis::RedisError> for StoreError {
    fn from(err: redis::RedisError) -> Self {
        Self(err.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err.0, "cart store failed");
        ApiError::unavailable("cart store unavailable")
    }
}

/// Where carts are kept. Quantities are already validated when they reach a store.
#[tonic::async_trait]
pub trait CartStore: Send + Sync + 'static {
    /// The user's lines, product id to quantity (empty for an unknown user).
    async fn lines(&self, user_id: &str) -> Result<BTreeMap<i64, i64>, StoreError>;
    /// Sets the quantity of one line (creating it if needed).
    async fn set(&self, user_id: &str, product_id: i64, quantity: i64) -> Result<(), StoreError>;
    /// Removes one line (nothing happens if it is absent).
    async fn remove(&self, user_id: &str, product_id: i64) -> Result<(), StoreError>;
    /// Removes the whole cart.
    async fn clear(&self, user_id: &str) -> Result<(), StoreError>;
    /// Readiness: the store answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Carts in process memory (lost on restart; fine for a single replica and for tests).
#[derive(Default)]
pub struct MemoryCarts {
    carts: Mutex<HashMap<String, BTreeMap<i64, i64>>>,
}

impl MemoryCarts {
    fn with_carts<T>(&self, f: impl FnOnce(&mut HashMap<String, BTreeMap<i64, i64>>) -> T) -> T {
        f(&mut self.carts.lock().expect("cart lock poisoned"))
    }
}

#[tonic::async_trait]
impl CartStore for MemoryCarts {
    async fn lines(&self, user_id: &str) -> Result<BTreeMap<i64, i64>, StoreError> {
        Ok(self.with_carts(|carts| carts.get(user_id).cloned().unwrap_or_default()))
    }

    async fn set(&self, user_id: &str, product_id: i64, quantity: i64) -> Result<(), StoreError> {
        self.with_carts(|carts| {
            carts
                .entry(user_id.to_string())
                .or_default()
                .insert(product_id, quantity)
        });
        Ok(())
    }

    async fn remove(&self, user_id: &str, product_id: i64) -> Result<(), StoreError> {
        self.with_carts(|carts| {
            if let Some(cart) = carts.get_mut(user_id) {
                cart.remove(&product_id);
                if cart.is_empty() {
                    carts.remove(user_id);
                }
            }
        });
        Ok(())
    }

    async fn clear(&self, user_id: &str) -> Result<(), StoreError> {
        self.with_carts(|carts| carts.remove(user_id));
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Carts in Redis: hash `cart:{user_id}`, field = product id, value = quantity.
#[derive(Clone)]
pub struct RedisCarts {
    conn: ConnectionManager,
}

impl RedisCarts {
    /// A store for `url`; the connection is made lazily, so the service starts (not ready) while
    /// Redis is down and recovers when it returns.
    pub fn connect(url: &str) -> Result<Self> {
        let client = redis::Client::open(url).context("invalid REDIS_URL")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .context("creating the Redis connection manager")?;
        Ok(Self { conn })
    }

    fn key(user_id: &str) -> String {
        format!("cart:{user_id}")
    }
}

#[tonic::async_trait]
impl CartStore for RedisCarts {
    async fn lines(&self, user_id: &str) -> Result<BTreeMap<i64, i64>, StoreError> {
        let mut conn = self.conn.clone();
        let lines: HashMap<i64, i64> = redis::cmd("HGETALL")
            .arg(Self::key(user_id))
            .query_async(&mut conn)
            .await?;
        Ok(lines.into_iter().collect())
    }

    async fn set(&self, user_id: &str, product_id: i64, quantity: i64) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let key = Self::key(user_id);
        let () = redis::pipe()
            .atomic()
            .cmd("HSET")
            .arg(&key)
            .arg(product_id)
            .arg(quantity)
            .ignore()
            .cmd("EXPIRE")
            .arg(&key)
            .arg(REDIS_TTL_SECS)
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn remove(&self, user_id: &str, product_id: i64) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("HDEL")
            .arg(Self::key(user_id))
            .arg(product_id)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn clear(&self, user_id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("DEL")
            .arg(Self::key(user_id))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}

/// Runs the cart service: Redis when `REDIS_URL` is set, memory otherwise.
pub async fn run(rt: Runtime) -> Result<()> {
    let store: Arc<dyn CartStore> = match &rt.config.redis_url {
        Some(url) => Arc::new(RedisCarts::connect(url)?),
        None => {
            tracing::warn!("no REDIS_URL: carts are kept in memory and lost on restart");
            Arc::new(MemoryCarts::default())
        }
    };
    run_with(rt, store).await
}

/// Runs the cart service on `store`.
pub async fn run_with(rt: Runtime, store: Arc<dyn CartStore>) -> Result<()> {
    let mut rt = rt;
    let probe = store.clone();
    rt.readiness.add("store", move || {
        let store = probe.clone();
        async move { store.ping().await.map_err(|e| e.0) }
    });
    rt.metrics.declare_http_routes(&ROUTES, &[]);
    rt.serve(router(store)).await
}

/// The routes of [`router`] with their success status, for the latency series created at start.
const ROUTES: [HttpRoute; 4] = [
    HttpRoute::new("GET", "/v1/carts/{user_id}", 200),
    HttpRoute::new("DELETE", "/v1/carts/{user_id}", 204),
    HttpRoute::new("PUT", "/v1/carts/{user_id}/items/{product_id}", 200),
    HttpRoute::new("DELETE", "/v1/carts/{user_id}/items/{product_id}", 200),
];

/// The cart API on `store`.
pub fn router(store: Arc<dyn CartStore>) -> Router {
    Router::new()
        .route("/v1/carts/{user_id}", get(get_cart).delete(clear_cart))
        .route(
            "/v1/carts/{user_id}/items/{product_id}",
            put(set_item).delete(remove_item),
        )
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed",
            )
        })
        .with_state(store)
}

/// A cart as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cart {
    pub user_id: String,
    pub items: Vec<CartLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CartLine {
    pub product_id: i64,
    pub quantity: i64,
}

/// Body of `PUT .../items/{product_id}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SetQuantity {
    pub quantity: i64,
}

type Store = State<Arc<dyn CartStore>>;

fn check_user(user_id: &str) -> Result<(), ApiError> {
    if user_id.is_empty() || user_id.len() > MAX_USER_ID_LEN {
        return Err(ApiError::bad_request("user_id must be 1 to 128 bytes"));
    }
    Ok(())
}

fn check_product(product_id: i64) -> Result<(), ApiError> {
    if product_id < 1 {
        return Err(ApiError::bad_request(
            "product_id must be a positive integer",
        ));
    }
    Ok(())
}

async fn cart_of(store: &dyn CartStore, user_id: &str) -> Result<Json<Cart>, ApiError> {
    let items = store
        .lines(user_id)
        .await?
        .into_iter()
        .map(|(product_id, quantity)| CartLine {
            product_id,
            quantity,
        })
        .collect();
    Ok(Json(Cart {
        user_id: user_id.to_string(),
        items,
    }))
}

async fn get_cart(
    State(store): Store,
    ApiPath(user_id): ApiPath<String>,
) -> Result<Json<Cart>, ApiError> {
    check_user(&user_id)?;
    cart_of(store.as_ref(), &user_id).await
}

async fn set_item(
    State(store): Store,
    ApiPath((user_id, product_id)): ApiPath<(String, i64)>,
    ApiJson(body): ApiJson<SetQuantity>,
) -> Result<Json<Cart>, ApiError> {
    check_user(&user_id)?;
    check_product(product_id)?;
    match body.quantity {
        0 => store.remove(&user_id, product_id).await?,
        1..=MAX_QUANTITY => {
            let lines = store.lines(&user_id).await?;
            if !lines.contains_key(&product_id) && lines.len() >= MAX_LINES {
                return Err(ApiError::conflict(
                    "the cart already holds 50 different products",
                ));
            }
            store.set(&user_id, product_id, body.quantity).await?
        }
        _ => return Err(ApiError::bad_request("quantity must be 0 (remove) to 99")),
    }
    cart_of(store.as_ref(), &user_id).await
}

async fn remove_item(
    State(store): Store,
    ApiPath((user_id, product_id)): ApiPath<(String, i64)>,
) -> Result<Json<Cart>, ApiError> {
    check_user(&user_id)?;
    check_product(product_id)?;
    store.remove(&user_id, product_id).await?;
    cart_of(store.as_ref(), &user_id).await
}

async fn clear_cart(
    State(store): Store,
    ApiPath(user_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    check_user(&user_id)?;
    store.clear(&user_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::testkit::{self, RedisServer};

    /// The store contract, run against each implementation.
    async fn exercise_store(store: &dyn CartStore) {
        store.ping().await.unwrap();
        assert!(store.lines("u1").await.unwrap().is_empty());
        store.set("u1", 7, 2).await.unwrap();
        store.set("u1", 3, 1).await.unwrap();
        store.set("u1", 7, 5).await.unwrap();
        store.set("u2", 7, 9).await.unwrap();
        assert_eq!(
            store.lines("u1").await.unwrap(),
            BTreeMap::from([(3, 1), (7, 5)])
        );
        store.remove("u1", 3).await.unwrap();
        store.remove("u1", 99).await.unwrap();
        assert_eq!(store.lines("u1").await.unwrap(), BTreeMap::from([(7, 5)]));
        store.clear("u1").await.unwrap();
        assert!(store.lines("u1").await.unwrap().is_empty());
        assert_eq!(
            store.lines("u2").await.unwrap(),
            BTreeMap::from([(7, 9)]),
            "carts are per user"
        );
    }

    #[tokio::test]
    async fn memory_store_keeps_carts() {
        exercise_store(&MemoryCarts::default()).await;
    }

    #[tokio::test]
    async fn redis_store_keeps_carts() {
        let Some(redis) = RedisServer::start().await else {
            return;
        };
        exercise_store(&RedisCarts::connect(&redis.url).unwrap()).await;
    }

    /// The HTTP API over `store`, including its validation.
    async fn exercise_api(store: Arc<dyn CartStore>) {
        let dir = tempfile::tempdir().unwrap();
        let service = testkit::start("cart", dir.path(), |rt| run_with(rt, store)).await;
        let http = reqwest::Client::new();
        let item =
            |user: &str, product: &str| format!("{}/v1/carts/{user}/items/{product}", service.url);

        let put = |url: String, body: Value| http.put(url).json(&body).send();
        let cart: Value = put(item("ann", "5"), json!({"quantity": 2}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            cart,
            json!({"user_id": "ann", "items": [{"product_id": 5, "quantity": 2}]})
        );
        put(item("ann", "1"), json!({"quantity": 99}))
            .await
            .unwrap();
        let cart: Value = http
            .get(format!("{}/v1/carts/ann", service.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            cart["items"],
            json!([{"product_id": 1, "quantity": 99}, {"product_id": 5, "quantity": 2}])
        );

        for (body, why) in [
            (json!({"quantity": 100}), "too many"),
            (json!({"quantity": -1}), "negative"),
            (json!({"quantity": "2"}), "not a number"),
            (json!({}), "missing"),
        ] {
            let response = put(item("ann", "5"), body).await.unwrap();
            assert_eq!(response.status(), 400, "{why}");
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["error"]["code"], "invalid_request", "{why}");
        }
        let bad_id = put(item("ann", "abc"), json!({"quantity": 1}))
            .await
            .unwrap();
        assert_eq!(bad_id.status(), 400);
        let zero_id = put(item("ann", "0"), json!({"quantity": 1})).await.unwrap();
        assert_eq!(zero_id.status(), 400);

        let removed = put(item("ann", "5"), json!({"quantity": 0})).await.unwrap();
        let cart: Value = removed.json().await.unwrap();
        assert_eq!(cart["items"], json!([{"product_id": 1, "quantity": 99}]));
        let deleted = http.delete(item("ann", "1")).send().await.unwrap();
        assert_eq!(deleted.json::<Value>().await.unwrap()["items"], json!([]));

        put(item("ann", "8"), json!({"quantity": 1})).await.unwrap();
        let cleared = http
            .delete(format!("{}/v1/carts/ann", service.url))
            .send()
            .await
            .unwrap();
        assert_eq!(cleared.status(), 204);
        let cart: Value = http
            .get(format!("{}/v1/carts/ann", service.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(cart["items"], json!([]));

        for product in 1..=MAX_LINES as i64 {
            let response = put(item("bob", &product.to_string()), json!({"quantity": 1}))
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        let full = put(item("bob", "999"), json!({"quantity": 1}))
            .await
            .unwrap();
        assert_eq!(full.status(), 409);
        let update = put(item("bob", "1"), json!({"quantity": 3})).await.unwrap();
        assert_eq!(
            update.status(),
            200,
            "changing an existing line is allowed in a full cart"
        );

        let unknown = http
            .get(format!("{}/v1/nothing", service.url))
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), 404);
        assert_eq!(
            unknown.json::<Value>().await.unwrap()["error"]["code"],
            "not_found"
        );
    }

    #[tokio::test]
    async fn api_on_memory() {
        exercise_api(Arc::new(MemoryCarts::default())).await;
    }

    #[tokio::test]
    async fn api_on_redis_reports_readiness() {
        let Some(redis) = RedisServer::start().await else {
            return;
        };
        let store = Arc::new(RedisCarts::connect(&redis.url).unwrap());
        exercise_api(store.clone()).await;

        let dir = tempfile::tempdir().unwrap();
        let service = testkit::start("cart", dir.path(), |rt| run_with(rt, store)).await;
        let ready = reqwest::get(format!("{}/ready", service.url))
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);
        drop(redis);
        let not_ready = reqwest::get(format!("{}/ready", service.url))
            .await
            .unwrap();
        assert_eq!(not_ready.status(), 503, "readiness follows Redis");
        let body: Value = not_ready.json().await.unwrap();
        assert_ne!(body["checks"]["store"], "ok");
    }
}
