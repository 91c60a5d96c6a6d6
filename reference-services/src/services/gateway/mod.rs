//! The API gateway (HTTP, the platform's only public API): the REST API described in
//! `openapi.yaml`, translated into calls to the backends (gRPC, plus HTTP to the cart and to
//! analytics ingest).
//!
//! The gateway owns three concerns so no backend has to: input is validated at the edge (a
//! malformed request is a 400 in the JSON error contract, never a 500); every authenticated
//! request is checked with the auth service (`VerifyToken` on each call, so a logout takes effect
//! at once); and every per-user backend call carries the user id from the verified token, never
//! one from the request, so one user cannot reach another's cart, orders or payments. Money is
//! integer cents inside the platform and decimal amounts (19.99) in this API.
//!
//! Calls to each gRPC backend are spread over all of its instances (client-side balancing over the
//! addresses of its name, re-resolved periodically: see [`crate::platform::balance`]), and the API
//! routes are guarded by a bound on requests in flight and a time budget that is also the
//! deadline of every backend call ([`limits`]).
//!
//! This file holds the backends' addresses, the clients and the route table; the authentication
//! extractor, the views, the shared input checks, the limits and each group of routes have a file
//! of their own.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use axum::{
    Json, Router,
    extract::{FromRequestParts, State},
    http::{HeaderMap, StatusCode, header, request::Parts},
    routing::{delete, get, post, put},
};
use chrono::{DateTime, SecondsFormat};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

use super::{
    auth, cart,
    offer::peer_health_check,
    order, payment,
    product::{self, CATEGORIES},
    recommendation,
};
use crate::{
    platform::{
        api::{ApiError, ApiJson, ApiPath, ApiQuery},
        balance::{self, Balancing},
        config::{parse_env, peer_url},
        deadline,
        grpc::TracedChannel,
        http::Runtime,
        metrics::HttpRoute,
        trace,
    },
    proto::{
        CancelOrderRequest, CreateOrderRequest, CreateUserRequest, GetOffersRequest,
        GetOrderRequest, GetPaymentRequest, GetProductRequest, GetProductsRequest,
        GetRecommendationsRequest, GetStockRequest, GetUserRequest, ListOrdersRequest,
        ListProductsRequest, LoginRequest, LogoutRequest, Order, OrderItem, Payment,
        ProcessPaymentRequest, Product, RegisterRequest, SearchProductsRequest, User,
        VerifyTokenRequest, auth_service_client::AuthServiceClient,
        inventory_service_client::InventoryServiceClient, offer_service_client::OfferServiceClient,
        order_service_client::OrderServiceClient, payment_service_client::PaymentServiceClient,
        product_service_client::ProductServiceClient,
        recommendation_service_client::RecommendationServiceClient,
        user_service_client::UserServiceClient,
    },
};

/// Largest `skip` of a product listing.
pub const MAX_SKIP: i64 = 1_000_000;
/// Longest accepted bearer token, in bytes (a real one is a few hundred).
const MAX_TOKEN_LEN: usize = 4096;
/// Longest order or payment id looked up; longer ones cannot exist.
const MAX_RESOURCE_ID_CHARS: usize = 64;
/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;
/// Longest accepted session id of an event.
const MAX_SESSION_ID_CHARS: usize = 200;
/// Largest payment amount, in currency units.
const MAX_PAYMENT_AMOUNT: f64 = 1_000_000.0;

/// Where the gateway finds its backends.
#[derive(Clone, Debug)]
pub struct Peers {
    pub auth: String,
    pub user: String,
    pub product: String,
    pub inventory: String,
    pub offer: String,
    pub cart: String,
    pub order: String,
    pub payment: String,
    pub recommendation: String,
    pub analytics_ingest: String,
}

impl Peers {
    /// `<NAME>_URL` for each backend, else its in-cluster name and port.
    pub fn from_env() -> Self {
        Self {
            auth: peer_url("auth", 50051),
            user: peer_url("user", 50051),
            product: peer_url("product", 50051),
            inventory: peer_url("inventory", 50051),
            offer: peer_url("offer", 50051),
            cart: peer_url("cart", 7070),
            order: peer_url("order", 50051),
            payment: peer_url("payment", 50051),
            recommendation: peer_url("recommendation", 50051),
            analytics_ingest: peer_url("analytics-ingest", 8080),
        }
    }
}

/// Runs the gateway with backends from the environment.
pub async fn run(rt: Runtime) -> Result<()> {
    run_with(rt, Peers::from_env()).await
}

/// How the gateway balances its backend calls, limits its requests and keeps auth's answers.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub limits: Limits,
    pub balancing: Balancing,
    /// How long a verified token is taken at auth's word without asking again (zero: always
    /// ask); see [`token_cache`].
    pub token_cache_ttl: Duration,
}

/// [`Options::token_cache_ttl`] unless `GATEWAY_TOKEN_CACHE_MS` says otherwise.
pub const DEFAULT_TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);

impl Options {
    /// [`Limits::from_env`], [`Balancing::from_env`] and `GATEWAY_TOKEN_CACHE_MS`.
    pub fn from_env() -> Result<Self> {
        Ok(Self {
            limits: Limits::from_env()?,
            balancing: Balancing::from_env()?,
            token_cache_ttl: parse_env::<u64>("GATEWAY_TOKEN_CACHE_MS")?
                .map_or(DEFAULT_TOKEN_CACHE_TTL, Duration::from_millis),
        })
    }
}

/// Runs the gateway against explicit backends, with options from the environment.
pub async fn run_with(rt: Runtime, peers: Peers) -> Result<()> {
    run_with_options(rt, peers, Options::from_env()?).await
}

/// Runs the gateway against explicit backends with explicit options.
pub async fn run_with_options(rt: Runtime, peers: Peers, options: Options) -> Result<()> {
    tracing::info!(
        limits = ?options.limits,
        balancing = ?options.balancing,
        token_cache_ttl = ?options.token_cache_ttl,
        "gateway options"
    );
    let gateway = Gateway::connect(&peers, &options)?;
    let mut rt = rt;
    // The backends every session needs; the others degrade single endpoints when down.
    rt.readiness
        .add("auth", peer_health_check(peers.auth.clone()));
    rt.readiness
        .add("product", peer_health_check(peers.product.clone()));
    rt.readiness
        .add("cart", peer_health_check(peers.cart.clone()));
    rt.metrics.declare_http_routes(&ROUTES, &GATEWAY_ERRORS);
    rt.serve(router(gateway, options.limits)).await
}

/// The routes of [`router`] with their success status, for the latency series created at start.
pub const ROUTES: [HttpRoute; 20] = [
    HttpRoute::new("POST", "/api/v1/auth/register", 201),
    HttpRoute::new("POST", "/api/v1/auth/login", 200),
    HttpRoute::new("POST", "/api/v1/auth/logout", 204),
    HttpRoute::new("GET", "/api/v1/users/me", 200),
    HttpRoute::new("GET", "/api/v1/products", 200),
    HttpRoute::new("GET", "/api/v1/products/search", 200),
    HttpRoute::new("GET", "/api/v1/products/{id}", 200),
    HttpRoute::new("GET", "/api/v1/cart", 200),
    HttpRoute::new("DELETE", "/api/v1/cart", 204),
    HttpRoute::new("POST", "/api/v1/cart/items", 200),
    HttpRoute::new("DELETE", "/api/v1/cart/items/{product_id}", 200),
    HttpRoute::new("GET", "/api/v1/orders", 200),
    HttpRoute::new("POST", "/api/v1/orders", 201),
    HttpRoute::new("GET", "/api/v1/orders/{id}", 200),
    HttpRoute::new("PUT", "/api/v1/orders/{id}/cancel", 200),
    HttpRoute::new("POST", "/api/v1/payments", 201),
    HttpRoute::new("GET", "/api/v1/payments/{id}", 200),
    HttpRoute::new("GET", "/api/v1/recommendations", 200),
    HttpRoute::new("GET", "/api/v1/offers", 200),
    HttpRoute::new("POST", "/api/v1/events", 202),
];

/// Server errors the gateway answers beyond 500 and 503: 504 when a backend call times out or a
/// request runs out of its time budget.
const GATEWAY_ERRORS: [u16; 1] = [504];

/// Clients of every backend, connected once at start. axum clones the state for every extractor
/// of every request, so it is one `Arc` rather than eight clients and two strings; a handler
/// clones the one client it calls (clones share the connections: one per backend instance).
#[derive(Clone)]
pub struct Gateway(Arc<Backends>);

impl std::ops::Deref for Gateway {
    type Target = Backends;

    fn deref(&self) -> &Backends {
        &self.0
    }
}

pub struct Backends {
    auth: AuthServiceClient<TracedChannel>,
    users: UserServiceClient<TracedChannel>,
    products: ProductServiceClient<TracedChannel>,
    inventory: InventoryServiceClient<TracedChannel>,
    offers: OfferServiceClient<TracedChannel>,
    orders: OrderServiceClient<TracedChannel>,
    payments: PaymentServiceClient<TracedChannel>,
    recommendations: RecommendationServiceClient<TracedChannel>,
    http: reqwest::Client,
    cart_url: String,
    ingest_url: String,
    tokens: TokenCache,
    token_checks: TokenChecks,
}

impl Gateway {
    /// Clients of `peers`, each gRPC one balanced over the instances behind its name (needs a
    /// Tokio runtime: each such name is re-resolved by a task of its own).
    pub fn connect(peers: &Peers, options: &Options) -> Result<Self> {
        let channel = |url: &str| balance::channel(url, &options.balancing);
        Ok(Self(Arc::new(Backends {
            auth: AuthServiceClient::new(channel(&peers.auth)?),
            users: UserServiceClient::new(channel(&peers.user)?),
            products: ProductServiceClient::new(channel(&peers.product)?),
            inventory: InventoryServiceClient::new(channel(&peers.inventory)?),
            offers: OfferServiceClient::new(channel(&peers.offer)?),
            orders: OrderServiceClient::new(channel(&peers.order)?),
            payments: PaymentServiceClient::new(channel(&peers.payment)?),
            recommendations: RecommendationServiceClient::new(channel(&peers.recommendation)?),
            // Nagle off, as on every connection of the platform (reqwest's default, stated
            // because the cart path depends on it).
            http: reqwest::Client::builder()
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(10))
                .build()?,
            cart_url: peers.cart.trim_end_matches('/').to_string(),
            ingest_url: peers.analytics_ingest.trim_end_matches('/').to_string(),
            tokens: TokenCache::new(options.token_cache_ttl),
            token_checks: TokenChecks::new(),
        })))
    }
}

/// The public API, guarded by `limits`.
pub fn router(gateway: Gateway, limits: Limits) -> Router {
    let api = Router::new()
        .route("/api/v1/auth/register", post(register))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/users/me", get(me))
        .route("/api/v1/products", get(list_products))
        .route("/api/v1/products/search", get(search_products))
        .route("/api/v1/products/{id}", get(get_product))
        .route("/api/v1/cart", get(get_cart).delete(clear_cart))
        .route("/api/v1/cart/items", post(add_to_cart))
        .route("/api/v1/cart/items/{product_id}", delete(remove_from_cart))
        .route("/api/v1/orders", get(list_orders).post(create_order))
        .route("/api/v1/orders/{id}", get(get_order))
        .route("/api/v1/orders/{id}/cancel", put(cancel_order))
        .route("/api/v1/payments", post(create_payment))
        .route("/api/v1/payments/{id}", get(get_payment))
        .route("/api/v1/recommendations", get(recommendations))
        .route("/api/v1/offers", get(offers))
        .route("/api/v1/events", post(track_event))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed",
            )
        })
        .with_state(gateway);
    limits::guard(api, limits)
}

mod accounts;
mod authentication;
mod carts;
mod checks;
mod events;
mod limits;
mod orders;
mod payments;
mod products;
mod recommendations;
pub mod token_cache;
mod views;

use accounts::*;
use authentication::TokenChecks;
pub use authentication::{Caller, OptionalCaller};
use carts::*;
use checks::*;
use events::*;
pub use limits::Limits;
use orders::*;
use payments::*;
use products::*;
use recommendations::*;
use token_cache::TokenCache;
use views::*;
pub use views::{cents, money, rfc3339_ms};

#[cfg(test)]
mod robustness_tests;
#[cfg(test)]
mod tests;
