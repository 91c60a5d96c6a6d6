//! Unit tests of the HAR importer on small inline inputs, one behaviour each.

use serde_json::json;

use super::*;

/// An entry starting `at_ms` after 12:00:00 and taking `ms`.
fn entry(
    at_ms: i64,
    ms: f64,
    method: &str,
    url: &str,
    mime: &str,
    status: i64,
) -> serde_json::Value {
    let started = DateTime::parse_from_rfc3339("2026-11-30T12:00:00.000+01:00").unwrap()
        + chrono::Duration::milliseconds(at_ms);
    json!({
        "startedDateTime": started.to_rfc3339(),
        "time": ms,
        "request": {"method": method, "url": url, "headers": []},
        "response": {"status": status, "content": {"mimeType": mime}},
    })
}

fn preflight() -> serde_json::Value {
    let mut e = entry(
        95,
        1.0,
        "OPTIONS",
        "https://shop.example.com/api/items",
        "",
        204,
    );
    e["request"]["headers"] = json!([{"name": "Access-Control-Request-Method", "value": "POST"}]);
    e
}

/// A script Chrome classified, served without a telling MIME type or extension.
fn typed(kind: &str) -> serde_json::Value {
    let mut e = entry(
        97,
        1.0,
        "GET",
        "https://shop.example.com/loader",
        "text/plain",
        200,
    );
    e["_resourceType"] = json!(kind);
    e
}

fn import_entries(entries: Vec<serde_json::Value>, host: Option<&str>) -> (String, Value) {
    let text = json!({"log": {"version": "1.2", "entries": entries}}).to_string();
    let options = HarOptions {
        host: host.map(String::from),
    };
    let out = import(&text, Path::new("shop.har"), &options).unwrap();
    let parsed = serde_yaml_ng::from_str(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    (out, parsed)
}

fn urls(doc: &Value) -> Vec<String> {
    doc["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["method"].as_str().unwrap(),
                s["url"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn static_assets_and_other_hosts_are_left_out() {
    let entries = vec![
        entry(
            0,
            5.0,
            "GET",
            "https://cdn.example.net/app.js",
            "application/javascript",
            200,
        ),
        entry(
            10,
            5.0,
            "GET",
            "https://shop.example.com/",
            "text/html",
            200,
        ),
        entry(
            20,
            5.0,
            "GET",
            "https://shop.example.com/img/logo",
            "image/svg+xml",
            200,
        ),
        entry(
            30,
            5.0,
            "GET",
            "https://shop.example.com/main.CSS?v=3",
            "text/plain",
            200,
        ),
        entry(
            40,
            5.0,
            "GET",
            "https://shop.example.com/bundle.js.map",
            "application/json",
            200,
        ),
        entry(
            50,
            5.0,
            "GET",
            "https://shop.example.com/f/inter.woff2",
            "",
            200,
        ),
        entry(
            60,
            5.0,
            "GET",
            "https://shop.example.com/api/items?page=2",
            "application/json",
            200,
        ),
        entry(
            70,
            5.0,
            "POST",
            "https://analytics.example.org/collect",
            "application/json",
            204,
        ),
        entry(
            80,
            5.0,
            "GET",
            "https://shop.example.com/api/items?page=3",
            "application/json",
            0,
        ),
        entry(
            90,
            5.0,
            "GET",
            "data:image/png;base64,AAAA",
            "image/png",
            200,
        ),
        preflight(),
        typed("script"),
    ];
    let (text, doc) = import_entries(entries.clone(), None);
    assert_eq!(urls(&doc), ["GET /", "GET /api/items"]);
    assert_eq!(doc["steps"][1]["query"]["page"], "2");
    assert_eq!(doc["steps"][1]["name"], "get_api_items");
    assert_eq!(doc["steps"][0]["name"], "get");
    assert!(
        text.contains("Left out: 6 static assets, 1 to analytics.example.org, 1 without a response, 1 CORS preflights, 1 not http(s)"),
        "{text}"
    );
    assert!(
        text.contains("2 requests to https://shop.example.com"),
        "{text}"
    );

    let (_, doc) = import_entries(entries, Some("analytics.example.org"));
    assert_eq!(urls(&doc), ["POST /collect"]);
    assert_eq!(doc["steps"][0]["checks"]["status"], 204);
}

#[test]
fn ports_tell_hosts_apart_unless_only_the_host_is_given() {
    let entries = vec![
        entry(
            0,
            5.0,
            "GET",
            "http://127.0.0.1:8080/a",
            "application/json",
            200,
        ),
        entry(
            10,
            5.0,
            "GET",
            "http://127.0.0.1:9090/b",
            "application/json",
            200,
        ),
    ];
    let (_, doc) = import_entries(entries.clone(), None);
    assert_eq!(urls(&doc), ["GET /a"]);
    let (_, doc) = import_entries(entries.clone(), Some("127.0.0.1:9090"));
    assert_eq!(urls(&doc), ["GET /b"]);
    let (_, doc) = import_entries(entries, Some("127.0.0.1"));
    assert_eq!(urls(&doc), ["GET /a", "GET /b"]);
}

#[test]
fn think_times_are_the_gaps_rounded_to_10ms_and_short_ones_are_dropped() {
    let entries = vec![
        // ends at 100 ms; the next starts 1234 ms later
        entry(0, 100.0, "GET", "http://h/a", "application/json", 200),
        // a static asset in between does not count
        entry(500, 10.0, "GET", "http://h/x.png", "image/png", 200),
        entry(1334, 20.0, "GET", "http://h/b", "application/json", 200),
        // 45 ms after b ends: the browser's pace, no think time
        entry(1399, 10.0, "GET", "http://h/c", "application/json", 200),
        // overlapping (parallel) requests: no think time
        entry(1400, 300.0, "GET", "http://h/d", "application/json", 200),
        entry(1500, 10.0, "GET", "http://h/e", "application/json", 200),
    ];
    let (_, doc) = import_entries(entries, None);
    let steps = doc["steps"].as_sequence().unwrap();
    let think: Vec<Option<&str>> = steps
        .iter()
        .map(|s| s.get("think_time").and_then(Value::as_str))
        .collect();
    assert_eq!(think, [Some("1230ms"), None, None, None, None]);
}

#[test]
fn headers_bodies_names_and_redirects() {
    let mut post = entry(
        0,
        5.0,
        "POST",
        "http://h/api/items",
        "application/json",
        201,
    );
    post["request"]["headers"] = json!([
        {"name": "Authorization", "value": "Bearer abc"},
        {"name": "Content-Type", "value": "application/json"},
        {"name": "X-Tenant", "value": "t1"},
        {"name": "Idempotency-Key", "value": "k1"},
        {"name": "Cookie", "value": "a=b"},
        {"name": "User-Agent", "value": "Mozilla"},
        {"name": "sec-ch-ua", "value": "x"},
        {"name": ":authority", "value": "h"},
        {"name": "Accept-Encoding", "value": "gzip"},
        {"name": "Content-Length", "value": "9"},
    ]);
    post["request"]["postData"] =
        json!({"mimeType": "application/json; charset=utf-8", "text": "{\"n\":1,\"a\":2}"});
    let mut form = entry(10, 5.0, "POST", "http://h/api/items", "text/html", 302);
    form["request"]["postData"] =
        json!({"mimeType": "application/x-www-form-urlencoded", "text": "a=1&b=x%20y"});
    let mut raw = entry(20, 5.0, "PUT", "http://h/api/items/1", "text/plain", 200);
    raw["request"]["headers"] = json!([{"name": "content-type", "value": "text/csv"}]);
    raw["request"]["postData"] = json!({"mimeType": "text/csv", "text": "a,b\n1,2\n"});
    let twice = entry(
        30,
        5.0,
        "GET",
        "http://h/api/items?tag=a&tag=b",
        "application/json",
        200,
    );
    let (text, doc) = import_entries(vec![post, form, raw, twice], None);
    assert_eq!(
        name_path("/api/v1/orders/7f3a9c12-0b1e/items/42"),
        "/api/v1/orders/id/items/id"
    );
    let steps = doc["steps"].as_sequence().unwrap();
    let headers = steps[0]["headers"].as_mapping().unwrap();
    let kept: Vec<&str> = headers.keys().filter_map(Value::as_str).collect();
    assert_eq!(kept, ["Authorization", "X-Tenant", "Idempotency-Key"]);
    let keys: Vec<&str> = steps[0]["json"]
        .as_mapping()
        .unwrap()
        .keys()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(keys, ["n", "a"], "the recorded key order");
    assert_eq!(steps[0]["checks"]["status"], 201);
    assert_eq!(steps[1]["name"], "post_api_items_2");
    assert_eq!(steps[1]["form"]["b"], "x y");
    assert_eq!(steps[1]["checks"]["status"], Value::from(vec![200, 302]));
    assert!(text.contains("# recorded a 302 redirect"), "{text}");
    assert_eq!(steps[2]["body"], "a,b\n1,2\n");
    assert_eq!(steps[2]["headers"]["content-type"], "text/csv");
    assert_eq!(steps[3]["url"], "/api/items?tag=a&tag=b");
    assert!(steps[3].get("query").is_none());
}

#[test]
fn tokens_and_ids_handed_out_are_extracted_and_registration_and_login_run_once() {
    let mut register = entry(
        0,
        5.0,
        "POST",
        "http://h/auth/register",
        "application/json",
        201,
    );
    register["request"]["postData"] = json!({"mimeType": "application/json", "text": "{\"email\":\"ada@example.com\",\"password\":\"pw-123456\"}"});
    register["response"]["content"]["text"] =
        json!("{\"email\":\"ada@example.com\",\"id\":\"user-0001\"}");
    let mut login = entry(
        10,
        5.0,
        "POST",
        "http://h/auth/login",
        "application/json",
        200,
    );
    login["request"]["postData"] = json!({"mimeType": "application/json", "text": "{\"email\":\"ada@example.com\",\"password\":\"pw-123456\"}"});
    // base64, as browsers store some bodies: {"token":"eyJ.secret.token","status":"ok"}
    login["response"]["content"]["text"] =
        json!("eyJ0b2tlbiI6ImV5Si5zZWNyZXQudG9rZW4iLCJzdGF0dXMiOiJvayJ9");
    login["response"]["content"]["encoding"] = json!("base64");
    let mut order = entry(20, 5.0, "POST", "http://h/orders", "application/json", 201);
    order["request"]["headers"] =
        json!([{"name": "Authorization", "value": "Bearer eyJ.secret.token"}]);
    order["response"]["content"]["text"] =
        json!("{\"order\":{\"id\":\"ord-7f3a9c\"},\"total\":\"19.99-EUR\"}");
    let mut pay = entry(
        30,
        5.0,
        "POST",
        "http://h/payments",
        "application/json",
        201,
    );
    pay["request"]["headers"] =
        json!([{"name": "Authorization", "value": "Bearer eyJ.secret.token"}]);
    pay["request"]["postData"] =
        json!({"mimeType": "application/json", "text": "{\"order_id\":\"ord-7f3a9c\"}"});
    let mut get = entry(
        40,
        5.0,
        "GET",
        "http://h/orders/ord-7f3a9c",
        "application/json",
        200,
    );
    get["request"]["headers"] =
        json!([{"name": "Authorization", "value": "Bearer eyJ.secret.token"}]);
    let (text, doc) = import_entries(vec![register, login, order, pay, get], None);
    assert_eq!(doc["user_variables"]["email"], "{{ unique_email() }}");
    let on_start = doc["on_start"].as_sequence().unwrap();
    assert_eq!(on_start.len(), 2, "{text}");
    assert_eq!(on_start[0]["json"]["email"], "{{ email }}");
    assert_eq!(on_start[1]["json"]["email"], "{{ email }}");
    assert_eq!(on_start[1]["extract"]["token"]["json"], "$.token");
    assert!(
        on_start[0].get("extract").is_none(),
        "the user id is never sent back"
    );
    let steps = doc["steps"].as_sequence().unwrap();
    assert_eq!(steps[0]["headers"]["Authorization"], "Bearer {{ token }}");
    assert_eq!(steps[0]["extract"]["order_id"]["json"], "$.order.id");
    assert!(
        steps[0]["extract"].get("total").is_none(),
        "never sent back"
    );
    assert_eq!(steps[1]["json"]["order_id"], "{{ order_id }}");
    assert_eq!(steps[2]["url"], "/orders/{{ order_id }}");
    assert!(
        text.contains("`token` (from post_auth_login), `order_id` (from post_orders)"),
        "{text}"
    );
    assert_eq!(steps[2]["name"], "get_orders_id");
}

#[test]
fn what_is_not_a_har_is_refused_with_the_reason() {
    let error = |text: &str| {
        import(text, Path::new("x.har"), &HarOptions::default())
            .unwrap_err()
            .to_string()
    };
    let e = error("{\"log\": {\n \"entries\": [ }");
    assert!(e.starts_with("x.har:2:"), "{e}");
    let e = error("{\"openapi\": \"3.0.0\"}");
    assert!(
        e.contains("not a HAR 1.2 recording") && e.contains("log.entries"),
        "{e}"
    );
    let e = error("{\"log\": {\"entries\": [{\"request\": {}}]}}");
    assert!(e.contains("log.entries[0]"), "{e}");
    let e = error("{\"log\": {\"entries\": []}}");
    assert!(e.contains("no request"), "{e}");
}
