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

use std::collections::{BTreeMap, HashMap};

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
        config::peer_url,
        grpc::{self, TracedChannel},
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

/// Runs the gateway against explicit backends.
pub async fn run_with(rt: Runtime, peers: Peers) -> Result<()> {
    let gateway = Gateway::connect(&peers)?;
    let mut rt = rt;
    // The backends every session needs; the others degrade single endpoints when down.
    rt.readiness
        .add("auth", peer_health_check(peers.auth.clone()));
    rt.readiness
        .add("product", peer_health_check(peers.product.clone()));
    rt.readiness
        .add("cart", peer_health_check(peers.cart.clone()));
    rt.metrics.declare_http_routes(&ROUTES, &GATEWAY_ERRORS);
    rt.serve(router(gateway)).await
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

/// Server errors the gateway answers beyond 500 and 503: 504 when a backend call times out.
const GATEWAY_ERRORS: [u16; 1] = [504];

/// Clients of every backend, connected once at start and cloned per request (clones share the
/// underlying connection).
#[derive(Clone)]
pub struct Gateway {
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
}

impl Gateway {
    pub fn connect(peers: &Peers) -> Result<Self> {
        Ok(Self {
            auth: AuthServiceClient::new(grpc::channel(&peers.auth)?),
            users: UserServiceClient::new(grpc::channel(&peers.user)?),
            products: ProductServiceClient::new(grpc::channel(&peers.product)?),
            inventory: InventoryServiceClient::new(grpc::channel(&peers.inventory)?),
            offers: OfferServiceClient::new(grpc::channel(&peers.offer)?),
            orders: OrderServiceClient::new(grpc::channel(&peers.order)?),
            payments: PaymentServiceClient::new(grpc::channel(&peers.payment)?),
            recommendations: RecommendationServiceClient::new(grpc::channel(
                &peers.recommendation,
            )?),
            http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(2))
                .timeout(std::time::Duration::from_secs(10))
                .build()?,
            cart_url: peers.cart.trim_end_matches('/').to_string(),
            ingest_url: peers.analytics_ingest.trim_end_matches('/').to_string(),
        })
    }
}

/// The public API.
pub fn router(gateway: Gateway) -> Router {
    Router::new()
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
        .with_state(gateway)
}

// ---- Authentication ----

/// The verified caller of an authenticated route. Extracting it calls `VerifyToken`, so a
/// missing, invalid, expired or revoked token ends the request with 401 before anything else.
pub struct Caller {
    pub user_id: String,
    pub email: String,
    pub token: String,
}

impl FromRequestParts<Gateway> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, gateway: &Gateway) -> Result<Self, ApiError> {
        match bearer_token(&parts.headers)? {
            Some(token) => gateway.verify(token).await,
            None => Err(ApiError::unauthorized("missing bearer token")),
        }
    }
}

/// The caller when a token is sent, nobody otherwise (an invalid token is still a 401).
pub struct OptionalCaller(pub Option<Caller>);

impl FromRequestParts<Gateway> for OptionalCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, gateway: &Gateway) -> Result<Self, ApiError> {
        match bearer_token(&parts.headers)? {
            Some(token) => Ok(Self(Some(gateway.verify(token).await?))),
            None => Ok(Self(None)),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header; `None` without the header.
fn bearer_token(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || ApiError::unauthorized("expected Authorization: Bearer <token>");
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(malformed());
    }
    Ok(Some(token.to_string()))
}

impl Gateway {
    async fn verify(&self, token: String) -> Result<Caller, ApiError> {
        let verified = self
            .auth
            .clone()
            .verify_token(VerifyTokenRequest {
                token: token.clone(),
            })
            .await?
            .into_inner();
        Ok(Caller {
            user_id: verified.user_id,
            email: verified.email,
            token,
        })
    }
}

// ---- Views: what the API shows ----

/// Cents as a decimal amount (1999 -> 19.99).
pub fn money(cents: i64) -> f64 {
    cents as f64 / 100.0
}

/// A decimal amount as cents, rounded to the nearest cent.
pub fn cents(amount: f64) -> i64 {
    (amount * 100.0).round() as i64
}

/// Milliseconds since the epoch as RFC 3339 (UTC).
pub fn rfc3339_ms(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[derive(Debug, Serialize)]
struct ProductView {
    id: i64,
    name: String,
    description: String,
    category: String,
    price: f64,
    stock: i64,
}

fn product_view(product: Product, stock: &HashMap<i64, i64>) -> ProductView {
    ProductView {
        stock: stock.get(&product.id).copied().unwrap_or(0),
        price: money(product.price_cents),
        id: product.id,
        name: product.name,
        description: product.description,
        category: product.category,
    }
}

fn order_view(order: Order) -> Value {
    let items: Vec<Value> = order
        .items
        .iter()
        .map(|i| json!({"product_id": i.product_id, "quantity": i.quantity, "unit_price": money(i.unit_price_cents)}))
        .collect();
    json!({
        "id": order.id,
        "user_id": order.user_id,
        "status": order.status,
        "items": items,
        "total_amount": money(order.total_cents),
        "shipping_address": order.shipping_address,
        "created_at": rfc3339_ms(order.created_at),
    })
}

fn user_view(user: User) -> Value {
    json!({
        "id": user.id,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "created_at": rfc3339_ms(user.created_at),
    })
}

fn payment_view(payment: Payment) -> Value {
    json!({
        "id": payment.id,
        "order_id": payment.order_id,
        "amount": money(payment.amount_cents),
        "status": payment.status,
        "method": payment.method,
        "created_at": rfc3339_ms(payment.created_at),
    })
}

// ---- Input checks shared by several routes ----

/// Whether `text` has a character that is not whitespace by the broader of Rust's and Python's
/// definitions (Python's also has U+001C..U+001F), so this check agrees with the `\S` patterns
/// of `openapi.yaml` whichever validator reads them.
fn has_visible_char(text: &str) -> bool {
    text.chars()
        .any(|c| !c.is_whitespace() && !('\u{1c}'..='\u{1f}').contains(&c))
}

fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(ApiError::bad_request(format!(
            "{field} must be {min} to {max} characters"
        )));
    }
    Ok(())
}

/// Text stored by a backend: bounded, and free of NUL (which Postgres cannot store).
fn check_text(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    check_len(field, value, min, max)?;
    if value.contains('\0') {
        return Err(ApiError::bad_request(format!(
            "{field} must not contain NUL characters"
        )));
    }
    Ok(())
}

fn check_range(field: &str, value: i64, min: i64, max: i64) -> Result<i64, ApiError> {
    if value < min || value > max {
        return Err(ApiError::bad_request(format!(
            "{field} must be within {min}..={max}"
        )));
    }
    Ok(value)
}

fn check_product_id(id: i64) -> Result<i64, ApiError> {
    check_range("product_id", id, 1, i64::MAX)
}

fn check_quantity(quantity: i64) -> Result<i64, ApiError> {
    check_range("quantity", quantity, 1, cart::MAX_QUANTITY)
}

/// An order or payment id from the path. One that cannot exist is simply not found, so the
/// answer reveals nothing about the id format.
fn check_resource_id(kind: &str, id: &str) -> Result<(), ApiError> {
    let plausible = (1..=MAX_RESOURCE_ID_CHARS).contains(&id.chars().count())
        && !id.chars().any(char::is_control);
    if plausible {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("{kind} not found")))
    }
}

// ---- Auth and users ----

#[derive(Debug, Deserialize)]
struct RegisterBody {
    email: String,
    password: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
}

async fn register(
    State(gw): State<Gateway>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_text(
        "first_name",
        &body.first_name,
        0,
        super::user::MAX_NAME_CHARS,
    )?;
    check_text("last_name", &body.last_name, 0, super::user::MAX_NAME_CHARS)?;
    let account = gw
        .auth
        .clone()
        .register(RegisterRequest {
            email: body.email,
            password: body.password,
        })
        .await?
        .into_inner();
    let profile = CreateUserRequest {
        id: account.user_id.clone(),
        email: account.email.clone(),
        first_name: body.first_name,
        last_name: body.last_name,
    };
    // The account exists now, so a failed profile write must not fail the registration (a retry
    // would only meet "already registered"); `GET /users/me` recreates a missing profile.
    if let Err(status) = gw.users.clone().create_user(profile).await {
        tracing::warn!(user_id = %account.user_id, error = %status, "profile not created at registration");
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": account.user_id, "email": account.email})),
    ))
}

#[derive(Debug, Deserialize)]
struct LoginBody {
    email: String,
    password: String,
}

async fn login(
    State(gw): State<Gateway>,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<Value>, ApiError> {
    check_len("email", &body.email, 0, auth::MAX_EMAIL_LEN)?;
    check_len("password", &body.password, 0, auth::MAX_PASSWORD_CHARS)?;
    let session = gw
        .auth
        .clone()
        .login(LoginRequest {
            email: body.email,
            password: body.password,
        })
        .await?
        .into_inner();
    Ok(Json(
        json!({"id": session.user_id, "email": session.email, "token": session.token}),
    ))
}

async fn logout(State(gw): State<Gateway>, caller: Caller) -> Result<StatusCode, ApiError> {
    gw.auth
        .clone()
        .logout(LogoutRequest {
            token: caller.token,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(State(gw): State<Gateway>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let found = gw
        .users
        .clone()
        .get_user(GetUserRequest {
            id: caller.user_id.clone(),
        })
        .await;
    let user = match found {
        Ok(user) => user.into_inner(),
        // Registration could not store the profile: make it now from what the token knows.
        Err(status) if status.code() == tonic::Code::NotFound => {
            let profile = CreateUserRequest {
                id: caller.user_id,
                email: caller.email,
                first_name: String::new(),
                last_name: String::new(),
            };
            gw.users.clone().create_user(profile).await?.into_inner()
        }
        Err(status) => return Err(status.into()),
    };
    Ok(Json(user_view(user)))
}

// ---- Products ----

impl Gateway {
    /// Available stock of each product (missing ones count as 0).
    async fn stock(&self, ids: Vec<i64>) -> Result<HashMap<i64, i64>, ApiError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let list = self
            .inventory
            .clone()
            .get_stock(GetStockRequest { product_ids: ids })
            .await?;
        Ok(list
            .into_inner()
            .items
            .into_iter()
            .map(|s| (s.product_id, s.available))
            .collect())
    }

    /// The products as the API shows them, with their stock, in the given order.
    async fn product_views(&self, products: Vec<Product>) -> Result<Vec<ProductView>, ApiError> {
        let stock = self.stock(products.iter().map(|p| p.id).collect()).await?;
        Ok(products
            .into_iter()
            .map(|p| product_view(p, &stock))
            .collect())
    }

    /// The products with these ids (unknown ones left out), keyed by id.
    async fn products_by_id(&self, ids: Vec<i64>) -> Result<HashMap<i64, Product>, ApiError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let list = self
            .products
            .clone()
            .get_products(GetProductsRequest { ids })
            .await?;
        Ok(list
            .into_inner()
            .products
            .into_iter()
            .map(|p| (p.id, p))
            .collect())
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    skip: Option<i64>,
    limit: Option<i64>,
    category: Option<String>,
}

async fn list_products(
    State(gw): State<Gateway>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let skip = check_range("skip", query.skip.unwrap_or(0), 0, MAX_SKIP)?;
    let limit = check_range(
        "limit",
        query.limit.unwrap_or(product::DEFAULT_PAGE_SIZE),
        1,
        product::MAX_PAGE_SIZE,
    )?;
    // A given category must be a real one (`category=` too: it is not a way to say "all").
    if let Some(category) = &query.category
        && !CATEGORIES.contains(&category.as_str())
    {
        return Err(ApiError::bad_request(format!(
            "category must be one of {}",
            CATEGORIES.join(", ")
        )));
    }
    let request = ListProductsRequest {
        skip,
        limit,
        category: query.category.unwrap_or_default(),
    };
    let list = gw
        .products
        .clone()
        .list_products(request)
        .await?
        .into_inner();
    let products = gw.product_views(list.products).await?;
    Ok(Json(json!({"products": products, "total": list.total})))
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    q: Option<String>,
    limit: Option<i64>,
}

async fn search_products(
    State(gw): State<Gateway>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    let q = query.q.unwrap_or_default();
    check_len("q", &q, 1, product::MAX_QUERY_CHARS)?;
    let limit = check_range(
        "limit",
        query.limit.unwrap_or(product::DEFAULT_PAGE_SIZE),
        1,
        product::MAX_PAGE_SIZE,
    )?;
    let found = gw
        .products
        .clone()
        .search_products(SearchProductsRequest { query: q, limit })
        .await?;
    let found = found.into_inner();
    let results = gw.product_views(found.products).await?;
    Ok(Json(json!({"results": results, "total": found.total})))
}

async fn get_product(
    State(gw): State<Gateway>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    check_product_id(id)?;
    let (product, stock) = futures::try_join!(
        async {
            Ok::<_, ApiError>(
                gw.products
                    .clone()
                    .get_product(GetProductRequest { id })
                    .await?
                    .into_inner(),
            )
        },
        gw.stock(vec![id]),
    )?;
    Ok(Json(json!(product_view(product, &stock))))
}

// ---- Cart ----

#[derive(Debug, Serialize)]
struct CartItemView {
    product_id: i64,
    quantity: i64,
    unit_price: f64,
    name: String,
}

impl Gateway {
    /// The cart as the API shows it: lines with names and list prices, and the total.
    async fn cart_view(
        &self,
        user_id: &str,
        lines: Vec<cart::CartLine>,
    ) -> Result<Json<Value>, ApiError> {
        let mut products = self
            .products_by_id(lines.iter().map(|l| l.product_id).collect())
            .await?;
        let mut items = Vec::with_capacity(lines.len());
        let mut total_cents = 0;
        for line in lines {
            // A line whose product left the catalog is not shown (and cannot be ordered).
            let Some(product) = products.remove(&line.product_id) else {
                continue;
            };
            total_cents += line.quantity * product.price_cents;
            items.push(CartItemView {
                product_id: line.product_id,
                quantity: line.quantity,
                unit_price: money(product.price_cents),
                name: product.name,
            });
        }
        Ok(Json(
            json!({"user_id": user_id, "items": items, "total": money(total_cents)}),
        ))
    }
}

async fn get_cart(State(gw): State<Gateway>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let lines = gw.cart_lines(&caller.user_id).await?;
    gw.cart_view(&caller.user_id, lines).await
}

#[derive(Debug, Deserialize)]
struct AddToCartBody {
    product_id: i64,
    quantity: i64,
}

async fn add_to_cart(
    State(gw): State<Gateway>,
    caller: Caller,
    ApiJson(body): ApiJson<AddToCartBody>,
) -> Result<Json<Value>, ApiError> {
    let product_id = check_product_id(body.product_id)?;
    let quantity = check_quantity(body.quantity)?;
    // Only real products go into a cart.
    gw.products
        .clone()
        .get_product(GetProductRequest { id: product_id })
        .await?;
    let lines = gw.cart_lines(&caller.user_id).await?;
    let held = lines
        .iter()
        .find(|l| l.product_id == product_id)
        .map_or(0, |l| l.quantity);
    let wanted = held + quantity;
    if wanted > cart::MAX_QUANTITY {
        return Err(ApiError::conflict(format!(
            "the cart already holds {held} of product {product_id}; a line holds at most {}",
            cart::MAX_QUANTITY
        )));
    }
    let lines = gw.cart_set(&caller.user_id, product_id, wanted).await?;
    gw.cart_view(&caller.user_id, lines).await
}

async fn remove_from_cart(
    State(gw): State<Gateway>,
    caller: Caller,
    ApiPath(product_id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    check_product_id(product_id)?;
    let lines = gw.cart_lines(&caller.user_id).await?;
    if !lines.iter().any(|l| l.product_id == product_id) {
        return Err(ApiError::not_found(format!(
            "product {product_id} is not in the cart"
        )));
    }
    let lines = gw.cart_remove(&caller.user_id, product_id).await?;
    gw.cart_view(&caller.user_id, lines).await
}

async fn clear_cart(State(gw): State<Gateway>, caller: Caller) -> Result<StatusCode, ApiError> {
    gw.cart_clear(&caller.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Calls to the cart service's internal HTTP API.
impl Gateway {
    fn cart_url(&self, user_id: &str, product_id: Option<i64>) -> String {
        match product_id {
            Some(id) => format!("{}/v1/carts/{user_id}/items/{id}", self.cart_url),
            None => format!("{}/v1/carts/{user_id}", self.cart_url),
        }
    }

    async fn cart_lines(&self, user_id: &str) -> Result<Vec<cart::CartLine>, ApiError> {
        let request = self.http.get(self.cart_url(user_id, None));
        Ok(call_json::<cart::Cart>(request, "cart").await?.items)
    }

    async fn cart_set(
        &self,
        user_id: &str,
        product_id: i64,
        quantity: i64,
    ) -> Result<Vec<cart::CartLine>, ApiError> {
        let request = self
            .http
            .put(self.cart_url(user_id, Some(product_id)))
            .json(&cart::SetQuantity { quantity });
        Ok(call_json::<cart::Cart>(request, "cart").await?.items)
    }

    async fn cart_remove(
        &self,
        user_id: &str,
        product_id: i64,
    ) -> Result<Vec<cart::CartLine>, ApiError> {
        let request = self.http.delete(self.cart_url(user_id, Some(product_id)));
        Ok(call_json::<cart::Cart>(request, "cart").await?.items)
    }

    async fn cart_clear(&self, user_id: &str) -> Result<(), ApiError> {
        call(self.http.delete(self.cart_url(user_id, None)), "cart")
            .await
            .map(|_| ())
    }
}

/// Sends an HTTP request to backend `backend` with the trace context; a backend's 4xx passes
/// through as is, anything else that is not a success is a 503.
async fn call(
    request: reqwest::RequestBuilder,
    backend: &str,
) -> Result<reqwest::Response, ApiError> {
    let unavailable = |detail: String| {
        tracing::warn!(backend, %detail, "backend call failed");
        ApiError::unavailable(format!("{backend} service unavailable"))
    };
    let response = request
        .header(trace::HEADER, trace::outgoing_header())
        .send()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    if status.is_client_error() {
        let body: Value = response.json().await.unwrap_or_default();
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or("rejected")
            .to_string();
        let status = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_REQUEST);
        return Err(ApiError::new(status, client_error_code(status), message));
    }
    Err(unavailable(format!("answered {status}")))
}

fn client_error_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        _ => "invalid_request",
    }
}

async fn call_json<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
    backend: &str,
) -> Result<T, ApiError> {
    let response = call(request, backend).await?;
    response.json::<T>().await.map_err(|e| {
        tracing::error!(backend, error = %e, "backend answered an unexpected body");
        ApiError::unavailable(format!("{backend} service answered an unexpected body"))
    })
}

// ---- Orders ----

#[derive(Debug, Deserialize)]
struct LineInput {
    product_id: i64,
    quantity: i64,
}

#[derive(Debug, Deserialize)]
struct CreateOrderBody {
    items: Option<Vec<LineInput>>,
    shipping_address: String,
}

/// The `Idempotency-Key` header: absent, or 1..=128 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(String::new());
    };
    let key = value.to_str().unwrap_or_default();
    let valid = (1..=MAX_IDEMPOTENCY_KEY_LEN).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 128 visible ASCII characters",
        ));
    }
    Ok(key.to_string())
}

/// Checks order lines and sums repeated products into one line each.
fn order_lines(items: Vec<LineInput>) -> Result<Vec<OrderItem>, ApiError> {
    if items.len() > order::MAX_LINES {
        return Err(ApiError::bad_request(format!(
            "an order holds at most {} items",
            order::MAX_LINES
        )));
    }
    let mut lines: BTreeMap<i64, i64> = BTreeMap::new();
    for item in items {
        check_product_id(item.product_id)?;
        check_quantity(item.quantity)?;
        *lines.entry(item.product_id).or_default() += item.quantity;
    }
    lines
        .into_iter()
        .map(|(product_id, quantity)| {
            if quantity > order::MAX_QUANTITY {
                return Err(ApiError::bad_request(format!(
                    "the quantities of product {product_id} add up to more than {}",
                    order::MAX_QUANTITY
                )));
            }
            Ok(OrderItem {
                product_id,
                quantity,
                unit_price_cents: 0,
            })
        })
        .collect()
}

async fn create_order(
    State(gw): State<Gateway>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateOrderBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let idempotency_key = idempotency_key(&headers)?;
    check_text(
        "shipping_address",
        &body.shipping_address,
        1,
        order::MAX_ADDRESS_CHARS,
    )?;
    if !has_visible_char(&body.shipping_address) {
        return Err(ApiError::bad_request("shipping_address must not be blank"));
    }
    let given = body.items.unwrap_or_default();
    let from_cart = given.is_empty();
    let items = if from_cart {
        let lines = gw.cart_lines(&caller.user_id).await?;
        // The request is well formed; it is the cart's state that leaves nothing to order.
        if lines.is_empty() {
            return Err(ApiError::conflict("no items given and the cart is empty"));
        }
        lines
            .into_iter()
            .map(|l| LineInput {
                product_id: l.product_id,
                quantity: l.quantity,
            })
            .collect()
    } else {
        given
    };
    let request = CreateOrderRequest {
        user_id: caller.user_id.clone(),
        items: order_lines(items)?,
        shipping_address: body.shipping_address,
        idempotency_key,
    };
    let created = gw.orders.clone().create_order(request).await?.into_inner();
    if from_cart && let Err(e) = gw.cart_clear(&caller.user_id).await {
        // The order stands; a cart left full is an inconvenience, not a failure of the order.
        tracing::warn!(order_id = %created.id, error = %e.message, "cart not cleared after checkout");
    }
    let body = json!({"order_id": created.id, "status": created.status, "total_amount": money(created.total_cents)});
    Ok((StatusCode::CREATED, Json(body)))
}

async fn get_order(
    State(gw): State<Gateway>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    check_resource_id("order", &id)?;
    let request = GetOrderRequest {
        user_id: caller.user_id,
        order_id: id,
    };
    let found = gw.orders.clone().get_order(request).await?.into_inner();
    Ok(Json(order_view(found)))
}

#[derive(Debug, Deserialize)]
struct OrdersQuery {
    status: Option<String>,
}

async fn list_orders(
    State(gw): State<Gateway>,
    caller: Caller,
    ApiQuery(query): ApiQuery<OrdersQuery>,
) -> Result<Json<Value>, ApiError> {
    let known = [order::PENDING, order::PAID, order::CANCELLED];
    if let Some(status) = &query.status
        && !known.contains(&status.as_str())
    {
        return Err(ApiError::bad_request(
            "status must be pending, paid or cancelled",
        ));
    }
    let request = ListOrdersRequest {
        user_id: caller.user_id,
        status: query.status.unwrap_or_default(),
    };
    let list = gw.orders.clone().list_orders(request).await?.into_inner();
    let orders: Vec<Value> = list.orders.into_iter().map(order_view).collect();
    Ok(Json(json!({"orders": orders})))
}

async fn cancel_order(
    State(gw): State<Gateway>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    check_resource_id("order", &id)?;
    let request = CancelOrderRequest {
        user_id: caller.user_id,
        order_id: id,
    };
    let cancelled = gw.orders.clone().cancel_order(request).await?.into_inner();
    Ok(Json(json!({
        "id": cancelled.id,
        "status": cancelled.status,
        "cancelled_at": rfc3339_ms(cancelled.updated_at),
    })))
}

// ---- Payments ----

#[derive(Debug, Deserialize)]
struct PaymentBody {
    order_id: String,
    amount: f64,
    method: String,
}

async fn create_payment(
    State(gw): State<Gateway>,
    caller: Caller,
    ApiJson(body): ApiJson<PaymentBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_text("order_id", &body.order_id, 1, MAX_RESOURCE_ID_CHARS)?;
    if !has_visible_char(&body.order_id) {
        return Err(ApiError::bad_request("order_id must not be blank"));
    }
    if !(0.01..=MAX_PAYMENT_AMOUNT).contains(&body.amount) {
        return Err(ApiError::bad_request(
            "amount must be within 0.01..=1000000",
        ));
    }
    if !payment::METHODS.contains(&body.method.as_str()) {
        return Err(ApiError::bad_request(format!(
            "method must be one of {}",
            payment::METHODS.join(", ")
        )));
    }
    let request = ProcessPaymentRequest {
        user_id: caller.user_id,
        order_id: body.order_id,
        amount_cents: cents(body.amount),
        method: body.method,
    };
    let paid = gw
        .payments
        .clone()
        .process_payment(request)
        .await
        .map_err(payment_refusal)?
        .into_inner();
    let body = json!({"payment_id": paid.id, "status": paid.status, "transaction_id": paid.transaction_id});
    Ok((StatusCode::CREATED, Json(body)))
}

/// Every argument the payment service checks on its own was checked above, so its
/// InvalidArgument can only be about the order: the amount differs from the order's total.
/// That is a conflict with the order's state, not a malformed request.
fn payment_refusal(status: tonic::Status) -> ApiError {
    match status.code() {
        tonic::Code::InvalidArgument => ApiError::conflict(status.message()),
        _ => status.into(),
    }
}

async fn get_payment(
    State(gw): State<Gateway>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    check_resource_id("payment", &id)?;
    let request = GetPaymentRequest {
        user_id: caller.user_id,
        payment_id: id,
    };
    let found = gw.payments.clone().get_payment(request).await?.into_inner();
    Ok(Json(payment_view(found)))
}

// ---- Recommendations and offers ----

#[derive(Debug, Deserialize)]
struct RecommendationsQuery {
    product_id: Option<i64>,
    limit: Option<i64>,
}

async fn recommendations(
    State(gw): State<Gateway>,
    ApiQuery(query): ApiQuery<RecommendationsQuery>,
) -> Result<Json<Value>, ApiError> {
    let product_id = check_product_id(required(query.product_id, "product_id")?)?;
    let limit = check_range(
        "limit",
        query.limit.unwrap_or(recommendation::DEFAULT_LIMIT),
        1,
        recommendation::MAX_LIMIT,
    )?;
    // The product is checked first, so the recommender is only asked about real products.
    gw.products
        .clone()
        .get_product(GetProductRequest { id: product_id })
        .await?;
    let request = GetRecommendationsRequest { product_id, limit };
    let suggested = gw
        .recommendations
        .clone()
        .get_recommendations(request)
        .await?
        .into_inner();
    let ids: Vec<i64> = suggested.items.iter().map(|r| r.product_id).collect();
    let mut found = gw.products_by_id(ids.clone()).await?;
    // In the recommender's order (best first).
    let products: Vec<Product> = ids.iter().filter_map(|id| found.remove(id)).collect();
    let recommendations = gw.product_views(products).await?;
    Ok(Json(
        json!({"product_id": product_id, "recommendations": recommendations}),
    ))
}

#[derive(Debug, Deserialize)]
struct OffersQuery {
    product_id: Option<i64>,
}

async fn offers(
    State(gw): State<Gateway>,
    ApiQuery(query): ApiQuery<OffersQuery>,
) -> Result<Json<Value>, ApiError> {
    let product_id = check_product_id(required(query.product_id, "product_id")?)?;
    let list = gw
        .offers
        .clone()
        .get_offers(GetOffersRequest { product_id })
        .await?
        .into_inner();
    let offers: Vec<Value> = list
        .offers
        .into_iter()
        .map(|o| {
            json!({
                "id": o.id,
                "description": o.description,
                "discount_percent": o.discount_percent,
                "min_quantity": o.min_quantity,
            })
        })
        .collect();
    Ok(Json(json!({
        "product_id": list.product_id,
        "price": money(list.price_cents),
        "best_price": money(list.best_price_cents),
        "offers": offers,
    })))
}

fn required<T>(value: Option<T>, name: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::bad_request(format!("query parameter {name} is required")))
}

// ---- Events ----

#[derive(Debug, Deserialize)]
struct EventBody {
    #[serde(rename = "type")]
    event_type: String,
    url: String,
    product_id: Option<i64>,
    session_id: Option<String>,
}

async fn track_event(
    State(gw): State<Gateway>,
    OptionalCaller(caller): OptionalCaller,
    ApiJson(body): ApiJson<EventBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if body.event_type != "page.viewed" {
        return Err(ApiError::bad_request("type must be \"page.viewed\""));
    }
    check_len("url", &body.url, 1, 2048)?;
    if !has_visible_char(&body.url) {
        return Err(ApiError::bad_request("url must not be blank"));
    }
    if let Some(id) = body.product_id {
        check_product_id(id)?;
    }
    if let Some(session) = &body.session_id {
        check_len("session_id", session, 0, MAX_SESSION_ID_CHARS)?;
    }
    let event = json!({
        "type": body.event_type,
        "url": body.url,
        "product_id": body.product_id,
        "session_id": body.session_id,
        "user_id": caller.map(|c| c.user_id),
    });
    let request = gw
        .http
        .post(format!("{}/v1/events", gw.ingest_url))
        .json(&event);
    let accepted: Value = call_json(request, "analytics-ingest").await?;
    let event_id = accepted["event_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Ok((StatusCode::ACCEPTED, Json(json!({"event_id": event_id}))))
}

#[cfg(test)]
mod tests;
