//! End-to-end tests of the public API: every backend runs in-process (Kafka is librdkafka's mock
//! cluster), and the tests speak HTTP to the gateway as a client would.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use super::{Options, Peers, run_with_options};
use crate::{
    services::{
        analytics_ingest, auth,
        cart::{self, MemoryCarts},
        inventory, offer, order, payment, product, recommendation, user,
    },
    stack::kafka::MockKafka,
    testkit::{self, Running},
};

/// Every service behind a gateway, torn down when dropped.
struct Stack {
    gateway: String,
    /// The auth service, for what happens behind the gateway's back.
    auth: String,
    http: reqwest::Client,
    _services: Vec<Running>,
    _kafka: MockKafka,
    _dir: tempfile::TempDir,
}

async fn stack() -> Stack {
    stack_with(auth::test_settings()).await
}

/// [`stack`] with the auth service's settings (limits, hashing bound) given.
async fn stack_with(auth_settings: auth::AuthSettings) -> Stack {
    stack_with_options(auth_settings, Options::from_env().unwrap()).await
}

/// [`stack_with`], with the gateway's options given.
async fn stack_with_options(auth_settings: auth::AuthSettings, options: Options) -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let kafka = MockKafka::start(1).unwrap();
    let with_kafka = |name: &str| testkit::config(name, path, kafka.bootstrap_servers());

    let auth = testkit::start("auth", path, |rt| auth::run_with(rt, auth_settings)).await;
    let user = testkit::start("user", path, user::run).await;
    let product = testkit::start("product", path, |rt| product::run_with(rt, 1000)).await;
    let inventory = testkit::start("inventory", path, |rt| inventory::run_with(rt, 1000)).await;
    let product_url = product.url.clone();
    let offer = testkit::start("offer", path, |rt| offer::run_with(rt, product_url)).await;
    let carts = Arc::new(MemoryCarts::default());
    let cart = testkit::start("cart", path, |rt| cart::run_with(rt, carts)).await;
    // Order and payment call each other: the payment service's address is chosen first.
    let payment_config = with_kafka("payment");
    let order_peers = order::Peers {
        offer: offer.url.clone(),
        inventory: inventory.url.clone(),
        payment: format!("http://{}", payment_config.listen),
    };
    let order =
        testkit::start_with(with_kafka("order"), |rt| order::run_with(rt, order_peers)).await;
    let order_url = order.url.clone();
    let payment = testkit::start_with(payment_config, |rt| async move {
        payment::run_with(rt, &order_url).await
    })
    .await;
    let recommendation = testkit::start_with(with_kafka("recommendation"), |rt| {
        recommendation::run_with(rt, 1000)
    })
    .await;
    let ingest = testkit::start_with(with_kafka("analytics-ingest"), analytics_ingest::run).await;

    let peers = Peers {
        auth: auth.url.clone(),
        user: user.url.clone(),
        product: product.url.clone(),
        inventory: inventory.url.clone(),
        offer: offer.url.clone(),
        cart: cart.url.clone(),
        order: order.url.clone(),
        payment: payment.url.clone(),
        recommendation: recommendation.url.clone(),
        analytics_ingest: ingest.url.clone(),
    };
    let gateway = testkit::start("api-gateway", path, |rt| {
        run_with_options(rt, peers, options)
    })
    .await;
    Stack {
        gateway: gateway.url.clone(),
        auth: auth.url.clone(),
        http: reqwest::Client::new(),
        _services: vec![
            gateway,
            auth,
            user,
            product,
            inventory,
            offer,
            cart,
            order,
            payment,
            recommendation,
            ingest,
        ],
        _kafka: kafka,
        _dir: dir,
    }
}

impl Stack {
    /// Sends a request; returns the status and the JSON body (`null` when there is none).
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.gateway));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, body)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.call(Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Registers `email` and logs in; returns the token.
    async fn session(&self, email: &str) -> String {
        let account = json!({"email": email, "password": "s3cret-pass", "first_name": "Test", "last_name": "User"});
        let (status, _) = self.post("/api/v1/auth/register", None, account).await;
        assert_eq!(status, 201);
        let credentials = json!({"email": email, "password": "s3cret-pass"});
        let (status, body) = self.post("/api/v1/auth/login", None, credentials).await;
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_string()
    }
}

/// Asserts the JSON error contract: the status and `{"error":{"code","message"}}`.
fn assert_error(actual: (u16, Value), status: u16, code: &str) {
    assert_eq!(actual.0, status, "{}", actual.1);
    assert_eq!(actual.1["error"]["code"], code, "{}", actual.1);
    assert!(actual.1["error"]["message"].is_string(), "{}", actual.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_flow_and_profile() {
    let s = stack().await;
    let account = json!({"email": "Ada@Example.com", "password": "analytical", "first_name": "Ada", "last_name": "Lovelace"});
    let (status, created) = s.post("/api/v1/auth/register", None, account.clone()).await;
    assert_eq!(status, 201);
    assert_eq!(created["email"], "ada@example.com");
    assert!(created["id"].is_string());

    assert_error(
        s.post("/api/v1/auth/register", None, account).await,
        409,
        "conflict",
    );
    let short = json!({"email": "bob@example.com", "password": "short"});
    assert_error(
        s.post("/api/v1/auth/register", None, short).await,
        400,
        "invalid_request",
    );
    let malformed = json!({"email": "bob", "password": "long enough"});
    assert_error(
        s.post("/api/v1/auth/register", None, malformed).await,
        400,
        "invalid_request",
    );

    let wrong = json!({"email": "ada@example.com", "password": "not the one"});
    assert_error(
        s.post("/api/v1/auth/login", None, wrong).await,
        401,
        "unauthorized",
    );
    let (status, session) = s
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "ada@example.com", "password": "analytical"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(session["id"], created["id"]);
    let token = session["token"].as_str().unwrap();

    let (status, me) = s.get("/api/v1/users/me", Some(token)).await;
    assert_eq!(status, 200);
    assert_eq!(
        (&me["id"], &me["email"], &me["first_name"], &me["last_name"]),
        (
            &created["id"],
            &json!("ada@example.com"),
            &json!("Ada"),
            &json!("Lovelace")
        )
    );
    assert!(me["created_at"].as_str().unwrap().ends_with('Z'));

    assert_error(s.get("/api/v1/users/me", None).await, 401, "unauthorized");
    assert_error(
        s.get("/api/v1/users/me", Some("not-a-token")).await,
        401,
        "unauthorized",
    );

    let (status, body) = s
        .call(Method::POST, "/api/v1/auth/logout", Some(token), None)
        .await;
    assert_eq!((status, body), (204, Value::Null));
    // The token is refused at once after logout.
    assert_error(
        s.get("/api/v1/users/me", Some(token)).await,
        401,
        "unauthorized",
    );
    assert_error(
        s.call(Method::POST, "/api/v1/auth/logout", Some(token), None)
            .await,
        401,
        "unauthorized",
    );
}

/// Signs up and in through the gateway; the token.
async fn signed_in(s: &Stack, email: &str) -> String {
    let credentials = json!({"email": email, "password": "analytical"});
    let (status, _) = s
        .post("/api/v1/auth/register", None, credentials.clone())
        .await;
    assert_eq!(status, 201);
    let (status, session) = s.post("/api/v1/auth/login", None, credentials).await;
    assert_eq!(status, 200, "{session}");
    session["token"].as_str().unwrap().to_string()
}

/// Logs `token` out at the auth service itself, behind the gateway's back (as another gateway
/// replica would).
async fn logout_at_auth(s: &Stack, token: &str) {
    use crate::proto::{LogoutRequest, auth_service_client::AuthServiceClient};
    AuthServiceClient::connect(s.auth.clone())
        .await
        .unwrap()
        .logout(LogoutRequest {
            token: token.to_string(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_token_revoked_behind_the_gateways_back_is_honoured_at_most_for_its_cache_ttl() {
    let ttl = std::time::Duration::from_millis(1500);
    let s = stack_with_options(
        auth::test_settings(),
        Options {
            token_cache_ttl: ttl,
            ..Options::default()
        },
    )
    .await;
    let token = signed_in(&s, "grace@example.com").await;
    let checks = |kind: &str| {
        crate::platform::metrics::Metrics::global()
            .gateway_token_checks
            .get_or_create(&crate::platform::metrics::KindLabels { kind: kind.into() })
            .get()
    };
    let from_cache = checks("cache");
    assert_eq!(s.get("/api/v1/users/me", Some(&token)).await.0, 200);
    assert_eq!(s.get("/api/v1/users/me", Some(&token)).await.0, 200);
    // The second was answered from the cache (other tests in this process only add to it).
    assert!(checks("cache") > from_cache);
    let revoked = std::time::Instant::now();
    logout_at_auth(&s, &token).await;
    // The gateway still takes auth's earlier word for it...
    let (status, me) = s.get("/api/v1/users/me", Some(&token)).await;
    if revoked.elapsed() < ttl {
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["email"], "grace@example.com");
    }
    // ...and asks again once the TTL is over.
    tokio::time::sleep(ttl.saturating_sub(revoked.elapsed())).await;
    assert_error(
        s.get("/api/v1/users/me", Some(&token)).await,
        401,
        "unauthorized",
    );
}

#[tokio::test]
async fn without_a_token_cache_a_revocation_anywhere_is_seen_at_once() {
    let s = stack_with_options(auth::test_settings(), Options::default()).await;
    let token = signed_in(&s, "hopper@example.com").await;
    assert_eq!(s.get("/api/v1/users/me", Some(&token)).await.0, 200);
    logout_at_auth(&s, &token).await;
    assert_error(
        s.get("/api/v1/users/me", Some(&token)).await,
        401,
        "unauthorized",
    );
}

/// A login through the gateway: the status and the `Retry-After` header, if any.
async fn login_status(s: &Stack, email: &str, password: &str) -> (u16, Option<u64>) {
    let response = s
        .http
        .post(format!("{}/api/v1/auth/login", s.gateway))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let status = response.status().as_u16();
    if status == 429 {
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "resource_exhausted", "{body}");
    }
    (status, retry_after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_logins_get_429_with_retry_after() {
    let s = stack().await;
    let account = json!({"email": "mallory@example.com", "password": "the right one"});
    let (status, _) = s.post("/api/v1/auth/register", None, account).await;
    assert_eq!(status, 201);
    // The default budget is 5 attempts per account: the registration and 4 wrong guesses.
    for _ in 0..4 {
        let answer = login_status(&s, "mallory@example.com", "a wrong guess").await;
        assert_eq!(answer, (401, None));
    }
    let (status, retry_after) = login_status(&s, "mallory@example.com", "a wrong guess").await;
    assert_eq!(status, 429);
    assert!(retry_after.is_some_and(|secs| secs >= 1), "{retry_after:?}");
    let (status, _) = login_status(&s, "mallory@example.com", "the right one").await;
    assert_eq!(
        status, 429,
        "a throttled account answers nothing, not even a right guess"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_logins_answer_200_or_429_within_the_hashing_bound() {
    let bound = Arc::new(crate::platform::limits::WorkBound::new(2, 8, None));
    let hour = std::time::Duration::from_secs(3600);
    let settings = auth::AuthSettings {
        limits: auth::AuthLimits {
            per_account: crate::platform::limits::Rate::new(1000, hour),
            per_address: crate::platform::limits::Rate::new(1000, hour),
            ..auth::AuthLimits::default()
        },
        // 2 MiB hashes: unbounded, 100 concurrent verifications would overlap far beyond 2.
        hashing: argon2::Params::new(2 * 1024, 1, 1, None).unwrap(),
        hash_bound: Some(bound.clone()),
        ..auth::test_settings()
    };
    let s = stack_with(settings).await;
    for n in 0..10 {
        let account = json!({"email": format!("crowd{n}@example.com"), "password": "password1"});
        let (status, body) = s.post("/api/v1/auth/register", None, account).await;
        assert_eq!(status, 201, "{body}");
    }
    let s = Arc::new(s);
    let logins = (0..100).map(|i| {
        let s = s.clone();
        tokio::spawn(async move {
            login_status(&s, &format!("crowd{}@example.com", i % 10), "password1").await
        })
    });
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for answer in futures::future::join_all(logins).await {
        let (status, retry_after) = answer.unwrap();
        assert!(
            status != 429 || retry_after.is_some(),
            "429 without Retry-After"
        );
        *statuses.entry(status).or_default() += 1;
    }
    assert!(
        statuses.keys().all(|status| [200, 429].contains(status)),
        "{statuses:?}"
    );
    assert!(
        statuses.get(&200).is_some_and(|ok| *ok >= 10),
        "{statuses:?}"
    );
    let peak = bound.peak();
    assert!((1..=2).contains(&peak), "hashes in flight peaked at {peak}");
    assert_eq!(
        login_status(&s, "crowd0@example.com", "password1").await.0,
        200
    );
}

#[test]
fn the_client_address_is_the_peer_unless_proxies_are_trusted() {
    use super::authentication::client_address;
    let peer = Some("10.0.0.9".parse().unwrap());
    let mut headers = axum::http::HeaderMap::new();
    headers.append(
        "x-forwarded-for",
        "203.0.113.1, 198.51.100.2".parse().unwrap(),
    );
    headers.append("x-forwarded-for", "192.0.2.3".parse().unwrap());
    // Nobody trusted: what the client wrote is ignored.
    assert_eq!(client_address(&headers, peer, 0), peer);
    // One proxy in front: the entry it appended, the rightmost.
    assert_eq!(
        client_address(&headers, peer, 1),
        Some("192.0.2.3".parse().unwrap())
    );
    assert_eq!(
        client_address(&headers, peer, 2),
        Some("198.51.100.2".parse().unwrap())
    );
    // A chain shorter than configured, or garbage, falls back to the peer.
    assert_eq!(client_address(&headers, peer, 4), peer);
    let mut garbage = axum::http::HeaderMap::new();
    garbage.append("x-forwarded-for", "not-an-address".parse().unwrap());
    assert_eq!(client_address(&garbage, peer, 1), peer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_offers_recommendations_and_events() {
    let s = stack().await;
    let catalog = product::catalog(1000);

    let (status, page) = s.get("/api/v1/products", None).await;
    assert_eq!(status, 200);
    assert_eq!(page["total"], 1000);
    let products = page["products"].as_array().unwrap();
    assert_eq!(products.len(), 10);
    let first = &products[0];
    assert_eq!(first["id"], 1);
    assert_eq!(first["name"], catalog[0].name.as_str());
    assert_eq!(first["price"], json!(catalog[0].price_cents as f64 / 100.0));
    assert!(first["stock"].as_i64().unwrap() >= inventory::MIN_INITIAL_STOCK);

    let (_, page) = s
        .get("/api/v1/products?skip=20&limit=3&category=books", None)
        .await;
    let books: Vec<&crate::proto::Product> =
        catalog.iter().filter(|p| p.category == "books").collect();
    assert_eq!(page["total"], books.len());
    let ids: Vec<i64> = page["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, books[20..23].iter().map(|p| p.id).collect::<Vec<_>>());

    for bad in [
        "limit=0",
        "limit=101",
        "skip=-1",
        "skip=abc",
        "limit=1.5",
        "category=weapons",
        "category=",
    ] {
        assert_error(
            s.get(&format!("/api/v1/products?{bad}"), None).await,
            400,
            "invalid_request",
        );
    }

    let (status, one) = s.get("/api/v1/products/42", None).await;
    assert_eq!(status, 200);
    assert_eq!(one["description"], catalog[41].description.as_str());
    assert_error(s.get("/api/v1/products/1001", None).await, 404, "not_found");
    assert_error(
        s.get("/api/v1/products/abc", None).await,
        400,
        "invalid_request",
    );
    assert_error(
        s.get("/api/v1/products/0", None).await,
        400,
        "invalid_request",
    );

    let (status, found) = s
        .get("/api/v1/products/search?q=keyboard&limit=100", None)
        .await;
    assert_eq!(status, 200);
    let keyboards = catalog
        .iter()
        .filter(|p| p.name.contains("Keyboard"))
        .count();
    assert_eq!(found["total"], keyboards);
    assert!(
        found["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["name"].as_str().unwrap().contains("Keyboard"))
    );
    assert_error(
        s.get("/api/v1/products/search", None).await,
        400,
        "invalid_request",
    );
    assert_error(
        s.get("/api/v1/products/search?q=", None).await,
        400,
        "invalid_request",
    );

    let (status, offers) = s.get("/api/v1/offers?product_id=1", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        offers["price"],
        json!(catalog[0].price_cents as f64 / 100.0)
    );
    assert!(offers["best_price"].as_f64().unwrap() <= offers["price"].as_f64().unwrap());
    assert!(
        offers["offers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == "bulk-3")
    );
    assert_error(
        s.get("/api/v1/offers?product_id=5000", None).await,
        404,
        "not_found",
    );
    assert_error(s.get("/api/v1/offers", None).await, 400, "invalid_request");

    let (status, suggested) = s
        .get("/api/v1/recommendations?product_id=10&limit=3", None)
        .await;
    assert_eq!(status, 200, "{suggested}");
    let suggestions = suggested["recommendations"].as_array().unwrap();
    assert_eq!(suggestions.len(), 3);
    assert!(
        suggestions
            .iter()
            .all(|p| p["id"] != 10 && p["name"].is_string() && p["stock"].is_i64())
    );
    assert_error(
        s.get("/api/v1/recommendations?product_id=10&limit=21", None)
            .await,
        400,
        "invalid_request",
    );
    assert_error(
        s.get("/api/v1/recommendations?product_id=5000", None).await,
        404,
        "not_found",
    );

    let view =
        json!({"type": "page.viewed", "url": "/products/1", "product_id": 1, "session_id": "s-1"});
    let (status, accepted) = s.post("/api/v1/events", None, view.clone()).await;
    assert_eq!(status, 202, "{accepted}");
    assert!(!accepted["event_id"].as_str().unwrap().is_empty());
    let token = s.session("viewer@example.com").await;
    let (status, _) = s.post("/api/v1/events", Some(&token), view.clone()).await;
    assert_eq!(status, 202);
    assert_error(
        s.post("/api/v1/events", Some("bogus"), view).await,
        401,
        "unauthorized",
    );
    let wrong_type = json!({"type": "order.created", "url": "/"});
    assert_error(
        s.post("/api/v1/events", None, wrong_type).await,
        400,
        "invalid_request",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carts_are_per_user() {
    let s = stack().await;
    let (alice, bob) = (
        s.session("alice@example.com").await,
        s.session("bob@example.com").await,
    );
    let catalog = product::catalog(1000);

    let (status, cart) = s
        .post(
            "/api/v1/cart/items",
            Some(&alice),
            json!({"product_id": 3, "quantity": 2}),
        )
        .await;
    assert_eq!(status, 200, "{cart}");
    let (_, cart) = s
        .post(
            "/api/v1/cart/items",
            Some(&alice),
            json!({"product_id": 3, "quantity": 5}),
        )
        .await;
    let (_, cart2) = s
        .post(
            "/api/v1/cart/items",
            Some(&alice),
            json!({"product_id": 8, "quantity": 1}),
        )
        .await;
    assert_eq!(cart["items"][0]["quantity"], 7, "adding adds to the line");
    let items = cart2["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["name"], catalog[2].name.as_str());
    assert_eq!(
        items[0]["unit_price"],
        json!(catalog[2].price_cents as f64 / 100.0)
    );
    let total_cents = 7 * catalog[2].price_cents + catalog[7].price_cents;
    assert_eq!(cart2["total"], json!(total_cents as f64 / 100.0));

    assert_error(
        s.post(
            "/api/v1/cart/items",
            Some(&alice),
            json!({"product_id": 5000, "quantity": 1}),
        )
        .await,
        404,
        "not_found",
    );
    assert_error(
        s.post(
            "/api/v1/cart/items",
            Some(&alice),
            json!({"product_id": 3, "quantity": 0}),
        )
        .await,
        400,
        "invalid_request",
    );
    assert_error(
        s.post(
            "/api/v1/cart/items",
            Some(&alice),
            json!({"product_id": 3, "quantity": 100}),
        )
        .await,
        400,
        "invalid_request",
    );
    assert_error(
        s.post(
            "/api/v1/cart/items",
            Some(&alice),
            json!({"product_id": 3, "quantity": 93}),
        )
        .await,
        409,
        "conflict",
    );
    assert_error(
        s.post(
            "/api/v1/cart/items",
            None,
            json!({"product_id": 3, "quantity": 1}),
        )
        .await,
        401,
        "unauthorized",
    );

    // Bob sees and touches only his own (empty) cart.
    let (status, bobs) = s.get("/api/v1/cart", Some(&bob)).await;
    assert_eq!(status, 200);
    assert_eq!(bobs["items"], json!([]));
    assert_eq!(bobs["total"], json!(0.0));
    assert_error(
        s.call(Method::DELETE, "/api/v1/cart/items/3", Some(&bob), None)
            .await,
        404,
        "not_found",
    );
    let (status, _) = s
        .call(Method::DELETE, "/api/v1/cart", Some(&bob), None)
        .await;
    assert_eq!(status, 204);
    let (_, alices) = s.get("/api/v1/cart", Some(&alice)).await;
    assert_eq!(
        alices["items"].as_array().unwrap().len(),
        2,
        "Bob's calls left Alice's cart alone"
    );

    let (status, after) = s
        .call(Method::DELETE, "/api/v1/cart/items/3", Some(&alice), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(after["items"].as_array().unwrap().len(), 1);
    assert_error(
        s.call(Method::DELETE, "/api/v1/cart/items/3", Some(&alice), None)
            .await,
        404,
        "not_found",
    );
    let (status, _) = s
        .call(Method::DELETE, "/api/v1/cart", Some(&alice), None)
        .await;
    assert_eq!(status, 204);
    let (_, emptied) = s.get("/api/v1/cart", Some(&alice)).await;
    assert_eq!(emptied["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_and_payments_are_per_user() {
    let s = stack().await;
    let (alice, bob) = (
        s.session("alice@example.com").await,
        s.session("bob@example.com").await,
    );
    let address = "1 Analytical Engine Way";

    let order = json!({"items": [{"product_id": 1, "quantity": 2}, {"product_id": 2, "quantity": 1}], "shipping_address": address});
    let (status, created) = s.post("/api/v1/orders", Some(&alice), order).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "pending");
    let order_id = created["order_id"].as_str().unwrap().to_string();
    let total = created["total_amount"].as_f64().unwrap();
    assert!(total > 0.0);

    let (status, fetched) = s
        .get(&format!("/api/v1/orders/{order_id}"), Some(&alice))
        .await;
    assert_eq!(status, 200);
    assert_eq!(fetched["shipping_address"], address);
    assert_eq!(fetched["items"].as_array().unwrap().len(), 2);
    assert_eq!(fetched["total_amount"].as_f64().unwrap(), total);
    assert!(fetched["created_at"].as_str().unwrap().ends_with('Z'));

    // Bob cannot see, cancel or pay Alice's order.
    assert_error(
        s.get(&format!("/api/v1/orders/{order_id}"), Some(&bob))
            .await,
        404,
        "not_found",
    );
    let cancel = format!("/api/v1/orders/{order_id}/cancel");
    assert_error(
        s.call(Method::PUT, &cancel, Some(&bob), None).await,
        404,
        "not_found",
    );
    let payment = json!({"order_id": order_id, "amount": total, "method": "card"});
    assert_error(
        s.post("/api/v1/payments", Some(&bob), payment.clone())
            .await,
        404,
        "not_found",
    );
    let (_, bobs_orders) = s.get("/api/v1/orders", Some(&bob)).await;
    assert_eq!(bobs_orders["orders"], json!([]));

    let wrong_amount = json!({"order_id": order_id, "amount": total + 1.0, "method": "card"});
    let refused = s.post("/api/v1/payments", Some(&alice), wrong_amount).await;
    assert_error(refused, 409, "conflict");
    let (status, paid) = s.post("/api/v1/payments", Some(&alice), payment).await;
    assert_eq!(status, 201, "{paid}");
    let payment_id = paid["payment_id"].as_str().unwrap().to_string();
    let (status, receipt) = s
        .get(&format!("/api/v1/payments/{payment_id}"), Some(&alice))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (receipt["order_id"].as_str(), receipt["amount"].as_f64()),
        (Some(order_id.as_str()), Some(total))
    );
    assert_error(
        s.get(&format!("/api/v1/payments/{payment_id}"), Some(&bob))
            .await,
        404,
        "not_found",
    );

    let (_, paid_orders) = s.get("/api/v1/orders?status=paid", Some(&alice)).await;
    assert_eq!(paid_orders["orders"][0]["id"], order_id.as_str());
    let (_, pending) = s.get("/api/v1/orders?status=pending", Some(&alice)).await;
    assert_eq!(pending["orders"], json!([]));
    assert_error(
        s.get("/api/v1/orders?status=lost", Some(&alice)).await,
        400,
        "invalid_request",
    );

    // Cancelling the paid order refunds it first; a second cancellation is a conflict.
    let (status, cancelled) = s.call(Method::PUT, &cancel, Some(&alice), None).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let (_, receipt) = s
        .get(&format!("/api/v1/payments/{payment_id}"), Some(&alice))
        .await;
    assert_eq!(receipt["status"], "refunded");
    assert_error(
        s.call(Method::PUT, &cancel, Some(&alice), None).await,
        409,
        "failed_precondition",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_with_an_idempotency_key() {
    let s = stack().await;
    let alice = s.session("alice@example.com").await;
    let order =
        json!({"items": [{"product_id": 4, "quantity": 1}], "shipping_address": "4 Mill Lane"});
    let (status, created) = s.post("/api/v1/orders", Some(&alice), order).await;
    assert_eq!(status, 201, "{created}");
    let order_id = created["order_id"].as_str().unwrap().to_string();
    let total = created["total_amount"].as_f64().unwrap();

    let pay = |key: &str, method: &str| {
        s.http
            .post(format!("{}/api/v1/payments", s.gateway))
            .bearer_auth(&alice)
            .header("Idempotency-Key", key)
            .json(&json!({"order_id": order_id, "amount": total, "method": method}))
            .send()
    };
    let first = pay("pay-key-1", "card").await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let repeat = pay("pay-key-1", "card").await.unwrap();
    assert_eq!(
        repeat.status(),
        201,
        "a repeat answers as the first request did"
    );
    let repeat: Value = repeat.json().await.unwrap();
    assert_eq!(repeat["payment_id"], first["payment_id"]);
    assert_eq!(repeat["transaction_id"], first["transaction_id"]);

    let other_body = pay("pay-key-1", "paypal").await.unwrap();
    assert_eq!(other_body.status(), 422);
    let other_body: Value = other_body.json().await.unwrap();
    assert_eq!(
        other_body["error"]["code"], "idempotency_key_reused",
        "{other_body}"
    );
    assert_eq!(
        pay("bad key with spaces", "card").await.unwrap().status(),
        400
    );
    let without_key = json!({"order_id": order_id, "amount": total, "method": "card"});
    assert_error(
        s.post("/api/v1/payments", Some(&alice), without_key).await,
        409,
        "failed_precondition",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_from_cart_idempotency_and_cancel() {
    let s = stack().await;
    let alice = s.session("alice@example.com").await;
    let address = json!({"shipping_address": "2 Difference Road"});

    let empty_cart = s
        .post("/api/v1/orders", Some(&alice), address.clone())
        .await;
    assert_error(empty_cart, 409, "conflict");
    s.post(
        "/api/v1/cart/items",
        Some(&alice),
        json!({"product_id": 5, "quantity": 3}),
    )
    .await;
    let (status, created) = s
        .post("/api/v1/orders", Some(&alice), address.clone())
        .await;
    assert_eq!(status, 201, "{created}");
    let order_id = created["order_id"].as_str().unwrap();
    let (_, order) = s
        .get(&format!("/api/v1/orders/{order_id}"), Some(&alice))
        .await;
    let lines = order["items"].as_array().unwrap();
    assert_eq!(
        (lines.len(), &lines[0]["product_id"], &lines[0]["quantity"]),
        (1, &json!(5), &json!(3))
    );
    let (_, cart) = s.get("/api/v1/cart", Some(&alice)).await;
    assert_eq!(cart["items"], json!([]), "checkout empties the cart");

    let keyed = |key: &str| {
        s.http
            .post(format!("{}/api/v1/orders", s.gateway))
            .bearer_auth(&alice)
            .header("Idempotency-Key", key)
            .json(&json!({"items": [{"product_id": 9, "quantity": 1}], "shipping_address": "3 Loom St"}))
            .send()
    };
    let first: Value = keyed("order-key-1").await.unwrap().json().await.unwrap();
    let retried: Value = keyed("order-key-1").await.unwrap().json().await.unwrap();
    assert_eq!(
        first["order_id"], retried["order_id"],
        "a retried order is the same order"
    );
    assert_eq!(keyed("bad key with spaces").await.unwrap().status(), 400);

    let cancel = format!(
        "/api/v1/orders/{}/cancel",
        first["order_id"].as_str().unwrap()
    );
    let (status, cancelled) = s.call(Method::PUT, &cancel, Some(&alice), None).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["cancelled_at"].as_str().unwrap().ends_with('Z'));

    let blank =
        json!({"items": [{"product_id": 1, "quantity": 1}], "shipping_address": " \u{1c} "});
    assert_error(
        s.post("/api/v1/orders", Some(&alice), blank).await,
        400,
        "invalid_request",
    );
    let too_much = json!({"items": [{"product_id": 1, "quantity": 60}, {"product_id": 1, "quantity": 40}], "shipping_address": "x"});
    assert_error(
        s.post("/api/v1/orders", Some(&alice), too_much).await,
        400,
        "invalid_request",
    );
    assert_error(
        s.get("/api/v1/orders/no-such-order", Some(&alice)).await,
        404,
        "not_found",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_json_errors() {
    let s = stack().await;
    let token = s.session("edge@example.com").await;

    let bad_json = s
        .http
        .post(format!("{}/api/v1/auth/login", s.gateway))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);
    assert_eq!(
        bad_json.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_request"
    );
    let wrong_type = json!({"product_id": "three", "quantity": 1});
    assert_error(
        s.post("/api/v1/cart/items", Some(&token), wrong_type).await,
        400,
        "invalid_request",
    );
    assert_error(
        s.post("/api/v1/payments", Some(&token), json!([1, 2]))
            .await,
        400,
        "invalid_request",
    );
    let cash = json!({"order_id": "x", "amount": 1.0, "method": "cash"});
    assert_error(
        s.post("/api/v1/payments", Some(&token), cash).await,
        400,
        "invalid_request",
    );

    assert_error(s.get("/api/v1/nowhere", None).await, 404, "not_found");
    assert_error(s.get("/", None).await, 404, "not_found");
    assert_error(
        s.call(Method::PATCH, "/api/v1/products", None, None).await,
        405,
        "method_not_allowed",
    );

    let huge = json!({"email": "a".repeat(70 * 1024), "password": "x"});
    assert_error(
        s.post("/api/v1/auth/login", None, huge).await,
        413,
        "payload_too_large",
    );

    let protected = [
        (Method::POST, "/api/v1/auth/logout"),
        (Method::GET, "/api/v1/users/me"),
        (Method::GET, "/api/v1/cart"),
        (Method::DELETE, "/api/v1/cart"),
        (Method::POST, "/api/v1/cart/items"),
        (Method::DELETE, "/api/v1/cart/items/1"),
        (Method::GET, "/api/v1/orders"),
        (Method::POST, "/api/v1/orders"),
        (Method::GET, "/api/v1/orders/x"),
        (Method::PUT, "/api/v1/orders/x/cancel"),
        (Method::POST, "/api/v1/payments"),
        (Method::GET, "/api/v1/payments/x"),
    ];
    for (method, path) in protected {
        let answer = s.call(method.clone(), path, None, None).await;
        assert_eq!(answer.0, 401, "{method} {path} without a token");
        assert_error(answer, 401, "unauthorized");
    }

    let (status, health) = s.get("/health", None).await;
    assert_eq!((status, &health["status"]), (200, &json!("healthy")));
}

/// The route table the latency series are created from is the router's: every declared
/// (method, route) reaches a handler, not the "no such route" / "method not allowed" fallbacks.
/// Backends point at a closed loopback port; authenticated routes answer 401 before any call.
#[tokio::test]
async fn declared_routes_are_the_routers_routes() {
    use tower::ServiceExt;
    let closed = "http://127.0.0.1:1".to_string();
    let peers = Peers {
        auth: closed.clone(),
        user: closed.clone(),
        product: closed.clone(),
        inventory: closed.clone(),
        offer: closed.clone(),
        cart: closed.clone(),
        order: closed.clone(),
        payment: closed.clone(),
        recommendation: closed.clone(),
        analytics_ingest: closed,
    };
    let app = super::router(
        super::Gateway::connect(&peers, &Default::default()).unwrap(),
        super::Limits::default(),
    );
    for route in super::ROUTES {
        let path = route
            .route
            .replace("{id}", "1")
            .replace("{product_id}", "1");
        let request = axum::http::Request::builder()
            .method(route.method)
            .uri(&path)
            .header("content-type", "application/json")
            .body(axum::body::Body::from("{}"))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .unwrap();
        let body = String::from_utf8_lossy(&body);
        assert!(
            status != 405 && !body.contains("no such route"),
            "{} {path}: {status} {body}",
            route.method
        );
    }
}
