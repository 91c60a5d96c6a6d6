//! Test support: an in-memory gateway that implements the documented REST API, with knobs
//! for latency (a fixed delay, a one-off stall) and for dying (the whole server vanishes).
//!
//! It lives on its own runtime thread so that killing it closes every socket at once, the
//! way a crashed process would, and so its CPU use does not sit on the test's runtime.
//! Each test binary uses a different part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde_json::{Value, json};

/// Latency knobs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Behaviour {
    /// Added to every request.
    pub delay: Duration,
    /// When the n-th request (1-based) arrives, the whole server stalls for this long:
    /// that request and every request arriving during the stall wait until it ends.
    pub stall: Option<(u64, Duration)>,
}

/// A running fake gateway.
pub struct Gateway {
    pub addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    requests: Arc<AtomicU64>,
}

impl Gateway {
    pub fn start(behaviour: Behaviour) -> Gateway {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("local addr");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("gateway runtime");
        let shop = Arc::new(Shop::new(behaviour));
        let requests = shop.requests.clone();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            axum::serve(listener, router(shop)).await
        });
        Gateway {
            addr,
            runtime: Some(runtime),
            requests,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests the gateway received.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Kills the server: listener and every connection close at once.
    pub fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port on 127.0.0.1 that nothing listens on.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

struct Shop {
    behaviour: Behaviour,
    requests: Arc<AtomicU64>,
    stalled_until: Mutex<Option<Instant>>,
    state: Mutex<ShopState>,
}

#[derive(Default)]
struct ShopState {
    next_id: u64,
    accounts: HashMap<String, (u64, String)>,
    tokens: HashMap<String, u64>,
    carts: HashMap<u64, Vec<Value>>,
    orders: HashMap<u64, Value>,
    payments: HashMap<u64, Value>,
    events: u64,
}

impl ShopState {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

impl Shop {
    fn new(behaviour: Behaviour) -> Self {
        Self {
            behaviour,
            requests: Arc::new(AtomicU64::new(0)),
            stalled_until: Mutex::new(None),
            state: Mutex::new(ShopState::default()),
        }
    }
}

const PRODUCTS: u64 = 1000;
const KINDS: [(&str, &str); 4] = [
    ("Mechanical keyboard", "peripherals"),
    ("Wireless mouse", "peripherals"),
    ("4K monitor", "displays"),
    ("Office chair", "furniture"),
];

fn product(id: u64) -> Value {
    let (name, category) = KINDS[(id % KINDS.len() as u64) as usize];
    json!({
        "id": id,
        "name": format!("{name} #{id}"),
        "description": "A fine product",
        "category": category,
        "price": price(id),
        "stock": 10 + id % 5,
    })
}

fn price(id: u64) -> f64 {
    (id % 100) as f64 + 0.99
}

fn error(status: StatusCode, code: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": code}})),
    )
        .into_response()
}

type Shared = State<Arc<Shop>>;

fn router(shop: Arc<Shop>) -> Router {
    Router::new()
        .route(
            "/health",
            get(|| async { Json(json!({"status": "healthy"})) }),
        )
        .route("/api/v1/auth/register", post(register))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/products", get(list_products))
        .route("/api/v1/products/search", get(search))
        .route("/api/v1/products/{id}", get(get_product))
        .route("/api/v1/cart", get(get_cart).delete(clear_cart))
        .route("/api/v1/cart/items", post(add_item))
        .route("/api/v1/cart/items/{product_id}", delete(remove_item))
        .route("/api/v1/orders", post(create_order).get(list_orders))
        .route("/api/v1/orders/{id}", get(get_order))
        .route("/api/v1/orders/{id}/cancel", put(cancel_order))
        .route("/api/v1/payments", post(pay))
        .route("/api/v1/payments/{id}", get(get_payment))
        .route("/api/v1/recommendations", get(recommendations))
        .route("/api/v1/offers", get(offers))
        .route("/api/v1/events", post(event))
        .layer(middleware::from_fn_with_state(shop.clone(), latency))
        .with_state(shop)
}

/// Applies the behaviour's delay and stall before the handler runs.
async fn latency(State(shop): Shared, request: Request, next: Next) -> Response {
    let n = shop.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let until = {
        let mut stalled_until = shop.stalled_until.lock().unwrap();
        if let Some((at, length)) = shop.behaviour.stall
            && n == at
        {
            *stalled_until = Some(Instant::now() + length);
        }
        *stalled_until
    };
    if let Some(until) = until {
        tokio::time::sleep_until(until.into()).await;
    }
    if !shop.behaviour.delay.is_zero() {
        tokio::time::sleep(shop.behaviour.delay).await;
    }
    next.run(request).await
}

fn user_of(shop: &Shop, headers: &HeaderMap) -> Option<u64> {
    let token = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    shop.state.lock().unwrap().tokens.get(token).copied()
}

async fn register(State(shop): Shared, Json(body): Json<Value>) -> Response {
    let (Some(email), Some(password)) = (body["email"].as_str(), body["password"].as_str()) else {
        return error(StatusCode::BAD_REQUEST, "invalid");
    };
    if password.len() < 8 || body["first_name"].as_str().is_none() {
        return error(StatusCode::BAD_REQUEST, "invalid");
    }
    let mut state = shop.state.lock().unwrap();
    if state.accounts.contains_key(email) {
        return error(StatusCode::CONFLICT, "exists");
    }
    let id = state.id();
    state
        .accounts
        .insert(email.to_string(), (id, password.to_string()));
    (StatusCode::CREATED, Json(json!({"id": id, "email": email}))).into_response()
}

async fn login(State(shop): Shared, Json(body): Json<Value>) -> Response {
    let email = body["email"].as_str().unwrap_or_default();
    let mut state = shop.state.lock().unwrap();
    let Some((id, password)) = state.accounts.get(email).cloned() else {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    };
    if body["password"].as_str() != Some(password.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let token = format!("token-{}", state.id());
    state.tokens.insert(token.clone(), id);
    Json(json!({"id": id, "email": email, "token": token})).into_response()
}

async fn logout(State(shop): Shared, headers: HeaderMap) -> Response {
    if user_of(&shop, &headers).is_none() {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn list_products(Query(q): Query<HashMap<String, u64>>) -> Json<Value> {
    let skip = q.get("skip").copied().unwrap_or(0);
    let limit = q.get("limit").copied().unwrap_or(10).min(100);
    let products: Vec<Value> = (skip + 1..=PRODUCTS)
        .take(limit as usize)
        .map(product)
        .collect();
    Json(json!({"products": products, "total": PRODUCTS}))
}

async fn search(Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    let term = q.get("q").cloned().unwrap_or_default().to_lowercase();
    let results: Vec<Value> = (1..=PRODUCTS)
        .map(product)
        .filter(|p| {
            p["name"]
                .as_str()
                .unwrap_or("")
                .to_lowercase()
                .contains(&term)
        })
        .take(10)
        .collect();
    let total = results.len();
    Json(json!({"results": results, "total": total}))
}

async fn get_product(Path(id): Path<u64>) -> Response {
    if (1..=PRODUCTS).contains(&id) {
        Json(product(id)).into_response()
    } else {
        error(StatusCode::NOT_FOUND, "not_found")
    }
}

fn cart_json(user: u64, items: &[Value]) -> Value {
    let total: f64 = items
        .iter()
        .map(|i| i["unit_price"].as_f64().unwrap_or(0.0) * i["quantity"].as_f64().unwrap_or(0.0))
        .sum();
    json!({"user_id": user, "items": items, "total": (total * 100.0).round() / 100.0})
}

async fn get_cart(State(shop): Shared, headers: HeaderMap) -> Response {
    let Some(user) = user_of(&shop, &headers) else {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    };
    let state = shop.state.lock().unwrap();
    let items = state.carts.get(&user).cloned().unwrap_or_default();
    Json(cart_json(user, &items)).into_response()
}

async fn clear_cart(State(shop): Shared, headers: HeaderMap) -> Response {
    let Some(user) = user_of(&shop, &headers) else {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    };
    shop.state.lock().unwrap().carts.remove(&user);
    StatusCode::NO_CONTENT.into_response()
}

async fn add_item(State(shop): Shared, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let Some(user) = user_of(&shop, &headers) else {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    };
    let id = body["product_id"].as_u64().unwrap_or(0);
    if !(1..=PRODUCTS).contains(&id) {
        return error(StatusCode::NOT_FOUND, "not_found");
    }
    let quantity = body["quantity"].as_u64().unwrap_or(1);
    let mut state = shop.state.lock().unwrap();
    let cart = state.carts.entry(user).or_default();
    match cart.iter_mut().find(|i| i["product_id"] == json!(id)) {
        Some(item) => item["quantity"] = json!(item["quantity"].as_u64().unwrap_or(0) + quantity),
        None => cart.push(json!({
            "product_id": id,
            "quantity": quantity,
            "unit_price": price(id),
            "name": product(id)["name"],
        })),
    }
    let items = cart.clone();
    Json(cart_json(user, &items)).into_response()
}

async fn remove_item(State(shop): Shared, headers: HeaderMap, Path(id): Path<u64>) -> Response {
    let Some(user) = user_of(&shop, &headers) else {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    };
    let mut state = shop.state.lock().unwrap();
    let cart = state.carts.entry(user).or_default();
    cart.retain(|i| i["product_id"] != json!(id));
    let items = cart.clone();
    Json(cart_json(user, &items)).into_response()
}

async fn create_order(
    State(shop): Shared,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let Some(user) = user_of(&shop, &headers) else {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    };
    let mut state = shop.state.lock().unwrap();
    let explicit: Vec<Value> = body["items"].as_array().cloned().unwrap_or_default();
    let items: Vec<Value> = if explicit.is_empty() {
        state.carts.remove(&user).unwrap_or_default()
    } else {
        explicit
            .iter()
            .map(|i| {
                let id = i["product_id"].as_u64().unwrap_or(0);
                json!({"product_id": id, "quantity": i["quantity"], "unit_price": price(id)})
            })
            .collect()
    };
    if items.is_empty() {
        return error(StatusCode::BAD_REQUEST, "empty_order");
    }
    let total = cart_json(user, &items)["total"].clone();
    let id = state.id();
    state.orders.insert(
        id,
        json!({
            "id": id, "user_id": user, "status": "pending", "items": items,
            "total_amount": total, "shipping_address": body["shipping_address"],
            "created_at": "2025-01-01T00:00:00Z",
        }),
    );
    (
        StatusCode::CREATED,
        Json(json!({"order_id": id, "status": "pending", "total_amount": total})),
    )
        .into_response()
}

async fn list_orders(
    State(shop): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(user) = user_of(&shop, &headers) else {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    };
    let state = shop.state.lock().unwrap();
    let orders: Vec<&Value> = state
        .orders
        .values()
        .filter(|o| o["user_id"] == json!(user))
        .filter(|o| q.get("status").is_none_or(|s| o["status"] == json!(s)))
        .collect();
    Json(json!({"orders": orders})).into_response()
}

async fn get_order(State(shop): Shared, headers: HeaderMap, Path(id): Path<u64>) -> Response {
    let Some(user) = user_of(&shop, &headers) else {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    };
    match shop.state.lock().unwrap().orders.get(&id) {
        Some(order) if order["user_id"] == json!(user) => Json(order.clone()).into_response(),
        _ => error(StatusCode::NOT_FOUND, "not_found"),
    }
}

async fn cancel_order(State(shop): Shared, headers: HeaderMap, Path(id): Path<u64>) -> Response {
    let Some(user) = user_of(&shop, &headers) else {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    };
    let mut state = shop.state.lock().unwrap();
    match state.orders.get_mut(&id) {
        Some(order) if order["user_id"] == json!(user) => {
            order["status"] = json!("cancelled");
            Json(json!({"id": id, "status": "cancelled", "cancelled_at": "2025-01-01T00:00:01Z"}))
                .into_response()
        }
        _ => error(StatusCode::NOT_FOUND, "not_found"),
    }
}

async fn pay(State(shop): Shared, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let Some(user) = user_of(&shop, &headers) else {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    };
    let order_id = body["order_id"].as_u64().unwrap_or(0);
    let mut state = shop.state.lock().unwrap();
    let Some(order) = state.orders.get_mut(&order_id) else {
        return error(StatusCode::NOT_FOUND, "not_found");
    };
    if order["user_id"] != json!(user) {
        return error(StatusCode::NOT_FOUND, "not_found");
    }
    if order["total_amount"].as_f64() != body["amount"].as_f64() {
        return error(StatusCode::BAD_REQUEST, "amount_mismatch");
    }
    order["status"] = json!("paid");
    let id = state.id();
    let payment = json!({
        "id": id, "order_id": order_id, "amount": body["amount"], "status": "succeeded",
        "method": body["method"], "created_at": "2025-01-01T00:00:02Z",
    });
    state.payments.insert(id, payment);
    (
        StatusCode::CREATED,
        Json(
            json!({"payment_id": id, "status": "succeeded", "transaction_id": format!("tx-{id}")}),
        ),
    )
        .into_response()
}

async fn get_payment(State(shop): Shared, headers: HeaderMap, Path(id): Path<u64>) -> Response {
    if user_of(&shop, &headers).is_none() {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    match shop.state.lock().unwrap().payments.get(&id) {
        Some(payment) => Json(payment.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found"),
    }
}

async fn recommendations(Query(q): Query<HashMap<String, u64>>) -> Json<Value> {
    let id = q.get("product_id").copied().unwrap_or(1);
    let related: Vec<Value> = (1..=3)
        .map(|k| product((id + k - 1) % PRODUCTS + 1))
        .collect();
    Json(json!({"product_id": id, "recommendations": related}))
}

async fn offers(Query(q): Query<HashMap<String, u64>>) -> Json<Value> {
    let id = q.get("product_id").copied().unwrap_or(1);
    let base = price(id);
    Json(json!({
        "product_id": id, "price": base, "best_price": base - 0.5,
        "offers": [{"seller": "a", "price": base - 0.5}, {"seller": "b", "price": base}],
    }))
}

async fn event(State(shop): Shared, Json(body): Json<Value>) -> Response {
    if body["type"] != json!("page.viewed") || body["url"].as_str().is_none() {
        return error(StatusCode::BAD_REQUEST, "invalid");
    }
    let mut state = shop.state.lock().unwrap();
    state.events += 1;
    let id = state.events;
    (
        StatusCode::ACCEPTED,
        Json(json!({"event_id": format!("evt-{id}")})),
    )
        .into_response()
}
