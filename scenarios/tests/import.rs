//! The importers on real inputs: the reference gateway's own OpenAPI description, a small
//! OpenAPI 3.1 JSON file, and a HAR recorded against the embedded stack
//! (`tests/har_fixture.rs` at the workspace root recorded it). The produced YAML is read back and
//! its structure checked: steps, names, methods, URLs, variables, checks, think times.

use std::path::{Path, PathBuf};

use scenarios::import::{self, HarOptions};
use serde_yaml_ng::Value;

fn workspace_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn parse(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("not YAML: {e}\n{text}"))
}

fn step<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

#[test]
fn the_reference_gateway_description_becomes_one_step_per_operation() {
    let text = import::openapi(&workspace_file("reference-services/openapi.yaml")).unwrap();
    let doc = parse(&text);
    assert_eq!(doc["apiVersion"], "shakedown/v1");
    assert_eq!(doc["kind"], "Scenario");
    assert_eq!(doc["name"], "shop-api-gateway");

    let steps = doc["steps"].as_sequence().unwrap();
    let list: Vec<String> = steps
        .iter()
        .map(|s| {
            format!(
                "{} {} {}",
                s["name"].as_str().unwrap(),
                s["method"].as_str().unwrap(),
                s["url"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        list,
        [
            "health GET /health",
            "ready GET /ready",
            "register POST /api/v1/auth/register",
            "login POST /api/v1/auth/login",
            "logout POST /api/v1/auth/logout",
            "getProfile GET /api/v1/users/me",
            "listProducts GET /api/v1/products",
            "searchProducts GET /api/v1/products/search",
            "getProduct GET /api/v1/products/{{ product_id }}",
            "getCart GET /api/v1/cart",
            "clearCart DELETE /api/v1/cart",
            "addToCart POST /api/v1/cart/items",
            "removeFromCart DELETE /api/v1/cart/items/{{ product_id }}",
            "listOrders GET /api/v1/orders",
            "createOrder POST /api/v1/orders",
            "getOrder GET /api/v1/orders/{{ order_id }}",
            "cancelOrder PUT /api/v1/orders/{{ order_id }}/cancel",
            "createPayment POST /api/v1/payments",
            "getPayment GET /api/v1/payments/{{ payment_id }}",
            "getRecommendations GET /api/v1/recommendations",
            "getOffers GET /api/v1/offers",
            "trackEvent POST /api/v1/events",
        ]
    );

    let variables = doc["variables"].as_mapping().unwrap();
    let names: Vec<&str> = variables.keys().filter_map(Value::as_str).collect();
    assert_eq!(names, ["token", "product_id", "order_id", "payment_id"]);
    assert_eq!(doc["variables"]["product_id"], 1, "ProductId's minimum");
    assert_eq!(doc["variables"]["order_id"], "string");

    let status = |name: &str| step(&doc, name)["checks"]["status"].clone();
    assert_eq!(status("register"), 201);
    assert_eq!(status("logout"), 204);
    assert_eq!(status("createOrder"), 201);
    assert_eq!(status("trackEvent"), 202);
    assert_eq!(status("ready"), 200, "the 503 is not a success");

    let bearer = Value::from("Bearer {{ token }}");
    assert_eq!(step(&doc, "getCart")["headers"]["Authorization"], bearer);
    assert_eq!(
        step(&doc, "createPayment")["headers"]["Authorization"],
        bearer
    );
    for open in ["health", "login", "register", "listProducts", "trackEvent"] {
        assert!(
            step(&doc, open).get("headers").is_none(),
            "{open} needs no token"
        );
    }

    assert_eq!(step(&doc, "searchProducts")["query"]["q"], "string");
    assert_eq!(step(&doc, "getOffers")["query"]["product_id"], "1");
    assert!(
        step(&doc, "listProducts").get("query").is_none(),
        "all optional"
    );

    let register = &step(&doc, "register")["json"];
    assert_eq!(
        register["email"], "ada@example.com",
        "the property's example"
    );
    assert_eq!(register["password"], "stringxx", "minLength 8");
    assert!(register.get("first_name").is_none(), "optional");
    assert_eq!(
        step(&doc, "addToCart")["json"],
        parse("{ product_id: 1, quantity: 1 }")
    );
    assert_eq!(
        step(&doc, "createPayment")["json"],
        parse("{ order_id: string, amount: 59.97, method: card }")
    );
    assert_eq!(
        step(&doc, "trackEvent")["json"],
        parse("{ type: page.viewed, url: string }")
    );
    assert!(step(&doc, "health").get("json").is_none());

    // What the user must look at is said in comments.
    assert!(text.contains("# application/json body generated from the schema: edit"));
    assert!(
        text.contains("#       token: { json: \"$.token\" }"),
        "{text}"
    );
    assert!(text.contains("`login` looks like the login operation"));
    assert!(text.contains("http://localhost:8080"));
}

#[test]
fn an_openapi_3_1_json_description_is_read_too() {
    let text = import::openapi(&fixture("petstore-3.1.json")).unwrap();
    let doc = parse(&text);
    assert_eq!(step(&doc, "listPets")["url"], "/api/v3/pets");
    assert_eq!(step(&doc, "listPets")["query"]["limit"], "20");
    assert_eq!(
        step(&doc, "createPet")["json"],
        parse("{ name: Rex, kind: dog, owner: { email: user@example.com } }")
    );
    assert_eq!(
        step(&doc, "showPetById")["url"],
        "/api/v3/pets/{{ pet_id }}"
    );
    assert_eq!(
        doc["variables"]["pet_id"],
        "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    );
}

/// Think time in milliseconds, as the importer writes it (`1230ms`).
fn think_ms(step: &Value) -> Option<u64> {
    step.get("think_time").map(|t| {
        t.as_str()
            .unwrap()
            .strip_suffix("ms")
            .unwrap()
            .parse()
            .unwrap()
    })
}

#[test]
fn the_recording_of_the_embedded_stack_becomes_a_replayable_journey() {
    let text = import::har(&fixture("embedded-stack.har"), &HarOptions::default()).unwrap();
    let doc = parse(&text);
    let line = |s: &Value| {
        format!(
            "{} {} {}",
            s["name"].as_str().unwrap(),
            s["method"].as_str().unwrap(),
            s["url"].as_str().unwrap()
        )
    };
    let on_start: Vec<String> = doc["on_start"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(line)
        .collect();
    assert_eq!(
        on_start,
        [
            "post_api_v1_auth_register POST /api/v1/auth/register",
            "post_api_v1_auth_login POST /api/v1/auth/login",
        ]
    );
    let steps = doc["steps"].as_sequence().unwrap();
    let list: Vec<String> = steps.iter().map(line).collect();
    let product = steps[1]["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    assert!(product.parse::<u64>().is_ok(), "{product}");
    assert_eq!(
        list,
        [
            "get_api_v1_products GET /api/v1/products".to_string(),
            format!("get_api_v1_products_id GET /api/v1/products/{product}"),
            "get_api_v1_products_search GET /api/v1/products/search".into(),
            "post_api_v1_cart_items POST /api/v1/cart/items".into(),
            "get_api_v1_cart GET /api/v1/cart".into(),
            "post_api_v1_orders POST /api/v1/orders".into(),
            "post_api_v1_payments POST /api/v1/payments".into(),
            "get_api_v1_orders_id GET /api/v1/orders/{{ order_id }}".into(),
        ]
    );
    // No static asset, favicon, CDN or analytics call survived.
    assert!(
        text.contains("Left out: 6 static assets, 1 to 127.0.0.1:"),
        "{text}"
    );

    // Statuses as recorded.
    let status = |s: &Value| s["checks"]["status"].as_u64().unwrap();
    let statuses: Vec<u64> = steps.iter().map(status).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 201, 201, 200]);
    assert_eq!(status(&doc["on_start"][0]), 201);

    // Query, bodies and headers worth keeping; the browser's headers are gone.
    assert_eq!(steps[0]["query"], parse("{ skip: '0', limit: '10' }"));
    assert_eq!(steps[0]["headers"], parse("{ Accept: application/json }"));
    assert_eq!(steps[2]["query"]["q"], "keyboard");
    assert!(steps[1].get("headers").is_none(), "{text}");
    for s in &steps[3..] {
        assert_eq!(
            s["headers"],
            parse("{ Authorization: 'Bearer {{ token }}' }")
        );
    }
    assert_eq!(steps[3]["json"]["quantity"], 2);
    assert_eq!(steps[6]["json"]["order_id"], "{{ order_id }}");
    assert_eq!(steps[6]["json"]["method"], "card");

    // The server's token and order id are extracted; the account is each user's own.
    assert_eq!(doc["on_start"][1]["extract"]["token"]["json"], "$.token");
    assert_eq!(steps[5]["extract"]["order_id"]["json"], "$.order_id");
    assert_eq!(doc["user_variables"]["email"], "{{ unique_email() }}");
    assert_eq!(doc["on_start"][0]["json"]["email"], "{{ email }}");
    assert_eq!(doc["on_start"][1]["json"]["email"], "{{ email }}");

    // Think times: the recorder paused 1200, 700, 1500 (before register), 400 (before login),
    // 900, 600, 2000, 1000, 300 ms between requests; the recorded gaps add request overhead.
    let within = |ms: Option<u64>, pause: u64| {
        let ms = ms.unwrap_or_else(|| panic!("no think time where {pause} ms were paused"));
        assert_eq!(ms % 10, 0, "{ms} is rounded to 10 ms");
        assert!(
            (pause..pause + 300).contains(&ms),
            "{ms} ms for a {pause} ms pause"
        );
    };
    within(think_ms(&steps[0]), 1200);
    within(think_ms(&steps[1]), 700);
    within(think_ms(&steps[2]), 1500);
    within(think_ms(&doc["on_start"][0]), 400);
    within(think_ms(&doc["on_start"][1]), 900);
    within(think_ms(&steps[3]), 600);
    within(think_ms(&steps[4]), 2000);
    within(think_ms(&steps[5]), 1000);
    within(think_ms(&steps[6]), 300);
    assert_eq!(
        think_ms(&steps[7]),
        None,
        "nothing follows the last request"
    );
}

#[test]
fn host_picks_another_host_of_the_recording() {
    let text = std::fs::read_to_string(fixture("embedded-stack.har")).unwrap();
    // The CDN is the host of the recording's first request (app.js).
    let har: serde_json::Value = serde_json::from_str(&text).unwrap();
    let first =
        url::Url::parse(har["log"]["entries"][0]["request"]["url"].as_str().unwrap()).unwrap();
    let cdn = format!("{}:{}", first.host_str().unwrap(), first.port().unwrap());
    let out = import::har(
        &fixture("embedded-stack.har"),
        &HarOptions {
            host: Some(cdn.clone()),
        },
    )
    .unwrap();
    let doc = parse(&out);
    let steps = doc["steps"].as_sequence().unwrap();
    assert_eq!(steps.len(), 1, "{out}");
    assert_eq!(steps[0]["url"], "/collect");
    assert_eq!(steps[0]["checks"]["status"], 204);
}

#[test]
fn missing_and_foreign_files_say_what_and_where() {
    let missing = import::openapi(Path::new("no/such/spec.yaml"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("no/such/spec.yaml"), "{missing}");
    let har_as_openapi = import::openapi(&fixture("embedded-stack.har"))
        .unwrap_err()
        .to_string();
    assert!(
        har_as_openapi.contains("not an OpenAPI 3 description"),
        "{har_as_openapi}"
    );
    let openapi_as_har = import::har(
        &workspace_file("reference-services/openapi.yaml"),
        &HarOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        openapi_as_har.contains("openapi.yaml:1:1"),
        "{openapi_as_har}"
    );
}
