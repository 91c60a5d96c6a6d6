//! Records `scenarios/tests/fixtures/embedded-stack.har`, the HAR fixture of the importer's tests:
//! a short shopping journey (page assets from a CDN, browse, register, log in, cart, order, pay)
//! against the embedded stack, sent with reqwest and written as HAR 1.2 with the real timings,
//! headers, bodies and responses. A browser is not available here; what a browser adds around
//! the API calls (its own headers, static assets, a third-party analytics call, a favicon) is
//! sent for real too, so that the importer's filters meet the real thing.
//!
//! Regenerate: `cargo test --workspace --test har_fixture -- --ignored`, then commit the file.

mod common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

const FIXTURE: &str = "scenarios/tests/fixtures/embedded-stack.har";

/// What a browser sends with every request (the importer must drop these).
const BROWSER: [(&str, &str); 6] = [
    (
        "User-Agent",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    ),
    ("Accept-Language", "en-GB,en;q=0.9"),
    ("Accept-Encoding", "gzip, deflate, br"),
    ("sec-ch-ua-platform", "\"Linux\""),
    ("Sec-Fetch-Mode", "cors"),
    ("Cookie", "_ga=GA1.1.2044851.1732950000; theme=dark"),
];

struct Recorder {
    http: reqwest::Client,
    entries: Vec<Value>,
}

impl Recorder {
    /// Sends one request and records it; returns the status and the JSON body (Null if none).
    async fn send(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        json_body: Option<Value>,
    ) -> (u16, Value) {
        let mut all: Vec<(String, String)> = BROWSER
            .iter()
            .chain(headers)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let body_text = json_body.as_ref().map(|b| b.to_string());
        if body_text.is_some() {
            all.push(("Content-Type".into(), "application/json".into()));
        }
        let mut request = self.http.request(method.parse().unwrap(), url);
        for (k, v) in &all {
            request = request.header(k, v);
        }
        if let Some(text) = &body_text {
            request = request.body(text.clone());
        }
        let started = chrono::Utc::now();
        let clock = Instant::now();
        let response = request.send().await.expect("the target answers");
        let status = response.status().as_u16();
        let response_headers: Vec<Value> = response
            .headers()
            .iter()
            .map(|(k, v)| json!({"name": k.as_str(), "value": v.to_str().unwrap_or("")}))
            .collect();
        let mime = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = response.bytes().await.expect("the body arrives");
        let elapsed_ms = clock.elapsed().as_secs_f64() * 1000.0;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let parsed = url::Url::parse(url).unwrap();
        let query: Vec<Value> = parsed
            .query_pairs()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        let mut request_json = json!({
            "method": method,
            "url": url,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": all.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
            "queryString": query,
            "headersSize": -1,
            "bodySize": body_text.as_ref().map_or(0, |t| t.len()),
        });
        if let Some(text) = &body_text {
            request_json["postData"] = json!({"mimeType": "application/json", "text": text});
        }
        self.entries.push(json!({
            "startedDateTime": started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "time": (elapsed_ms * 1000.0).round() / 1000.0,
            "request": request_json,
            "response": {
                "status": status,
                "statusText": reqwest::StatusCode::from_u16(status).unwrap().canonical_reason().unwrap_or(""),
                "httpVersion": "HTTP/1.1",
                "cookies": [],
                "headers": response_headers,
                "content": {"size": bytes.len(), "mimeType": mime, "text": text},
                "redirectURL": "",
                "headersSize": -1,
                "bodySize": bytes.len(),
            },
            "cache": {},
            "timings": {"send": 0, "wait": (elapsed_ms * 1000.0).round() / 1000.0, "receive": 0},
        }));
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// A stand-in CDN and analytics host on another loopback port: real static files with their
/// content types, and an analytics endpoint.
async fn start_cdn() -> String {
    use axum::{Router, http::header, routing::get, routing::post};
    let file = |mime: &'static str, body: &'static [u8]| {
        get(move || async move { ([(header::CONTENT_TYPE, mime)], body) })
    };
    let app = Router::new()
        .route(
            "/static/app.js",
            file("application/javascript", b"console.log('shop');"),
        )
        .route(
            "/static/app.js.map",
            file("application/json", b"{\"version\":3}"),
        )
        .route("/static/style.css", file("text/css", b"body{margin:0}"))
        .route("/static/logo.png", file("image/png", b"\x89PNG\r\n\x1a\n"))
        .route("/fonts/inter.woff2", file("font/woff2", b"wOF2"))
        .route(
            "/collect",
            post(|| async { axum::http::StatusCode::NO_CONTENT }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "regenerates the committed HAR fixture: run it on purpose"]
async fn record_embedded_stack_har() {
    let stack = common::start_stack(false).await;
    let api = stack.gateway_url().trim_end_matches('/').to_string();
    let cdn = start_cdn().await;
    let mut r = Recorder {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        entries: Vec::new(),
    };
    let pause = |ms| tokio::time::sleep(Duration::from_millis(ms));
    let referer = [("Referer", "http://shop.local/")];

    // The page loads: assets from the CDN, the favicon from the API host (a 404 there).
    for asset in [
        "/static/app.js",
        "/static/style.css",
        "/static/logo.png",
        "/fonts/inter.woff2",
        "/static/app.js.map",
    ] {
        r.send("GET", &format!("{cdn}{asset}"), &referer, None)
            .await;
    }
    r.send("GET", &format!("{api}/favicon.ico"), &referer, None)
        .await;
    let (status, page) = r
        .send(
            "GET",
            &format!("{api}/api/v1/products?skip=0&limit=10"),
            &[("Accept", "application/json")],
            None,
        )
        .await;
    assert_eq!(status, 200);
    r.send(
        "POST",
        &format!("{cdn}/collect"),
        &[],
        Some(json!({"event": "page_view", "page": "/products"})),
    )
    .await;
    let product = page["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["stock"].as_i64().unwrap_or(0) >= 5)
        .expect("a product in stock")["id"]
        .as_i64()
        .unwrap();

    pause(1200).await;
    let (status, _) = r
        .send(
            "GET",
            &format!("{api}/api/v1/products/{product}"),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200);
    pause(700).await;
    let (status, _) = r
        .send(
            "GET",
            &format!("{api}/api/v1/products/search?q=keyboard&limit=5"),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200);

    pause(1500).await;
    let email = format!("har-{}@example.com", chrono::Utc::now().timestamp_millis());
    let credentials = json!({"email": email, "password": "correct horse battery"});
    let mut register = credentials.clone();
    register["first_name"] = json!("Ada");
    register["last_name"] = json!("Lovelace");
    let (status, _) = r
        .send(
            "POST",
            &format!("{api}/api/v1/auth/register"),
            &[],
            Some(register),
        )
        .await;
    assert_eq!(status, 201);
    pause(400).await;
    let (status, session) = r
        .send(
            "POST",
            &format!("{api}/api/v1/auth/login"),
            &[],
            Some(credentials),
        )
        .await;
    assert_eq!(status, 200);
    let bearer = format!("Bearer {}", session["token"].as_str().unwrap());
    let auth = [("Authorization", bearer.as_str())];

    pause(900).await;
    let (status, _) = r
        .send(
            "POST",
            &format!("{api}/api/v1/cart/items"),
            &auth,
            Some(json!({"product_id": product, "quantity": 2})),
        )
        .await;
    assert_eq!(status, 200);
    pause(600).await;
    let (status, _) = r
        .send("GET", &format!("{api}/api/v1/cart"), &auth, None)
        .await;
    assert_eq!(status, 200);

    pause(2000).await;
    let (status, order) = r
        .send(
            "POST",
            &format!("{api}/api/v1/orders"),
            &auth,
            Some(json!({"shipping_address": "12 Analytical Engine Way, London"})),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    let order_id = order["order_id"].as_str().unwrap().to_string();
    pause(1000).await;
    let (status, payment) = r
        .send(
            "POST",
            &format!("{api}/api/v1/payments"),
            &auth,
            Some(json!({"order_id": order_id, "amount": order["total_amount"], "method": "card"})),
        )
        .await;
    assert_eq!(status, 201, "{payment}");
    pause(300).await;
    let (status, _) = r
        .send(
            "GET",
            &format!("{api}/api/v1/orders/{order_id}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, 200);
    stack.stop().await;

    let har = json!({
        "log": {
            "version": "1.2",
            "creator": {"name": "shakedown tests/har_fixture.rs", "version": env!("CARGO_PKG_VERSION")},
            "pages": [],
            "entries": r.entries,
        }
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    std::fs::write(&path, serde_json::to_string_pretty(&har).unwrap() + "\n").unwrap();
    eprintln!("wrote {}", path.display());
}
