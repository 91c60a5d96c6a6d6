//! Scenario files against a local server that records what it received: templated values
//! arrive rendered, an extracted token is reused, unique feeder rows are used once each,
//! weights hold, failed checks are `check` errors with their message, `on_start` runs once per
//! user, and bad files are refused with file, line, column and field before any request.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use scenarios::{Profile, RunSpec, Scenario, ScenarioError, execute};
use serde_json::{Value, json};
use tokio::sync::Mutex as AsyncMutex;

/// Goose's killswitch and Ctrl-C handler are process-wide: one run at a time.
static ONE_RUN_AT_A_TIME: AsyncMutex<()> = AsyncMutex::const_new(());

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Received {
    method: String,
    path: String,
    query: String,
    authorization: Option<String>,
    body: Value,
}

/// A server on 127.0.0.1 that records every request and answers by path:
/// `/login` → `{"token": "tok-<email>"}`, `/health` → healthy, `/empty` → `{"items": []}`,
/// anything else → `{"ok": true, "n": 7, "path": ...}`.
struct Server {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Dropped inside the test's runtime: must not block.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Server {
    fn start() -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let log = received.clone();
        runtime.spawn(async move {
            let app = Router::new().fallback(move |method, uri, headers, body| {
                let log = log.clone();
                async move { answer(&log, method, uri, headers, body) }
            });
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await
        });
        Server {
            url,
            received,
            runtime: Some(runtime),
        }
    }

    /// Requests to `path`, in arrival order (the pre-flight `/health` probe included).
    fn to(&self, path: &str) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

fn answer(
    log: &Mutex<Vec<Received>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.path().to_string();
    log.lock().unwrap().push(Received {
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().unwrap_or_default().to_string(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: body.clone(),
    });
    let reply = match path.as_str() {
        "/login" => json!({ "token": format!("tok-{}", body["email"].as_str().unwrap_or("")) }),
        "/health" => json!({ "status": "healthy" }),
        "/empty" => json!({ "items": [] }),
        "/products" => json!({ "products": [
            { "id": 1, "stock": 0 }, { "id": 2, "stock": 5 }, { "id": 3, "stock": 0 }
        ] }),
        _ => json!({ "ok": true, "n": 7, "path": path }),
    };
    axum::Json(reply).into_response()
}

fn profile(users: u32, seconds: u32) -> Profile {
    let yaml = format!(
        "name: t\nclosed:\n  stages:\n    - {{ duration: 1s, users: {users} }}\n    - {{ duration: {seconds}s, users: {users} }}\n"
    );
    Profile::from_yaml(&yaml, "test profile").unwrap()
}

async fn run(dir: &Path, yaml: &str, server: &Server, profile: Profile) -> reports::Report {
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, yaml).unwrap();
    let _turn = ONE_RUN_AT_A_TIME.lock().await;
    execute(RunSpec {
        scenario: path.to_string_lossy().into_owned(),
        target: server.url.clone(),
        profile,
        quiet: true,
        thresholds: Vec::new(),
        live: None,
    })
    .await
    .unwrap()
}

fn requests(report: &reports::Report, name: &str) -> u64 {
    report
        .transactions
        .iter()
        .find(|t| t.name == name)
        .map_or(0, |t| t.requests)
}

const HEADER: &str = "apiVersion: shakedown/v1\nkind: Scenario\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_render_tokens_are_reused_and_on_start_runs_once_per_user() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"{HEADER}name: login-flow
think_time: 20ms
variables:
  page_size: 25
user_variables:
  email: "{{{{ unique_email() }}}}"
on_start:
  - name: login
    method: POST
    url: /login
    json: {{ email: "{{{{ email }}}}", password: secret }}
    extract:
      token: {{ json: "$.token" }}
steps:
  - name: list
    url: /items
    query: {{ limit: "{{{{ page_size }}}}", q: plain }}
    headers: {{ Authorization: "Bearer {{{{ token }}}}" }}
    extract:
      n: {{ json_pointer: /n }}
  - name: post
    method: POST
    url: "/things/{{{{ n }}}}"
    json: {{ count: "{{{{ n + 1 }}}}", label: "n={{{{ n }}}}", fixed: [1, 2] }}
  - name: products
    url: /products
    extract:
      in_stock: {{ json: "$.products[?@.stock > 0].id", pick: random }}
  - name: product
    url: "/product/{{{{ in_stock }}}}"
"#
    );
    let report = run(dir.path(), &yaml, &server, profile(2, 1)).await;
    assert_eq!(report.totals.errors, 0, "{:#?}", report.error_samples);
    assert_eq!(report.scenario, "login-flow");

    let logins = server.to("/login");
    assert_eq!(logins.len(), 2, "on_start once per user: {logins:?}");
    assert_eq!(requests(&report, "login"), 2);
    let emails: Vec<String> = logins
        .iter()
        .map(|r| r.body["email"].as_str().unwrap().to_string())
        .collect();
    assert_ne!(emails[0], emails[1], "unique_email() per user");
    assert!(emails.iter().all(|e| e.starts_with("shakedown-")));
    assert!(logins.iter().all(|r| r.body["password"] == "secret"));

    let lists = server.to("/items");
    assert!(lists.len() >= 2, "{lists:?}");
    for list in &lists {
        assert_eq!(list.method, "GET");
        let auth = list.authorization.as_deref().unwrap();
        let email = auth.strip_prefix("Bearer tok-").unwrap();
        assert!(emails.iter().any(|e| e == email), "{auth}");
        assert!(list.query.contains("limit=25") && list.query.contains("q=plain"));
    }
    let posts = server.to("/things/7");
    assert!(!posts.is_empty());
    for post in &posts {
        // A whole-expression template keeps its type; text stays text.
        assert_eq!(
            post.body,
            json!({"count": 8, "label": "n=7", "fixed": [1, 2]})
        );
    }
    assert_eq!(requests(&report, "post"), posts.len() as u64);
    // A JSONPath filter picks the only product in stock.
    assert!(!server.to("/product/2").is_empty());
    assert!(server.to("/product/1").is_empty() && server.to("/product/3").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_feeder_rows_are_used_once_and_an_exhausted_feeder_stops_a_user() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("accounts.csv"),
        "email,password\na@x.test,p1\nb@x.test,p2\nc@x.test,p3\n",
    )
    .unwrap();
    let yaml = format!(
        r#"{HEADER}name: accounts
think_time: 50ms
feeders:
  account: {{ file: accounts.csv, mode: unique }}
on_start:
  - name: login
    method: POST
    url: /login
    json: {{ email: "{{{{ account.email }}}}", password: "{{{{ account.password }}}}" }}
    extract:
      token: {{ json: "$.token" }}
steps:
  - name: ping
    url: /ping
    headers: {{ Authorization: "Bearer {{{{ token }}}}" }}
"#
    );
    let report = run(dir.path(), &yaml, &server, profile(4, 1)).await;

    let mut used: Vec<(String, String)> = server
        .to("/login")
        .iter()
        .map(|r| {
            (
                r.body["email"].as_str().unwrap().to_string(),
                r.body["password"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    used.sort();
    assert_eq!(
        used,
        vec![
            ("a@x.test".to_string(), "p1".to_string()),
            ("b@x.test".to_string(), "p2".to_string()),
            ("c@x.test".to_string(), "p3".to_string()),
        ],
        "each row once"
    );
    // The fourth user found the feeder used up: one check error, and it sent nothing.
    assert_eq!(
        report.errors_by_kind.check, 1,
        "{:#?}",
        report.error_samples
    );
    assert_eq!(report.totals.errors, 1);
    let sample = &report.error_samples[0];
    assert!(
        sample.message.contains("feeder `account` is used up"),
        "{sample:?}"
    );
    let pings = server.to("/ping");
    let tokens: std::collections::BTreeSet<_> = pings
        .iter()
        .map(|r| r.authorization.clone().unwrap())
        .collect();
    assert_eq!(tokens.len(), 3, "three users ping, with their own tokens");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_repeat_steps_and_groups_within_each_iteration() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"{HEADER}name: weights
steps:
  - name: a
    url: /a
  - name: b
    url: /b
    weight: 3
  - group: pair
    weight: 2
    steps:
      - {{ name: c, url: /c }}
      - {{ name: d, url: /d }}
"#
    );
    let report = run(dir.path(), &yaml, &server, profile(1, 1)).await;
    assert_eq!(report.totals.errors, 0);
    let (a, b, c, d) = (
        requests(&report, "a"),
        requests(&report, "b"),
        requests(&report, "c"),
        requests(&report, "d"),
    );
    assert!(a >= 5, "{a} iterations");
    // The one user may stop anywhere in its last iteration.
    assert!(b <= 3 * a && b + 3 >= 3 * a, "a={a} b={b}");
    assert!(c <= 2 * a && c + 2 >= 2 * a, "a={a} c={c}");
    assert!(d <= c && d + 1 >= c, "c={c} d={d}");
    // A group runs its steps in order: c, d, c, d.
    let paths: Vec<String> = server
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.path.clone())
        .filter(|p| p != "/health")
        .take(8)
        .collect();
    assert_eq!(paths, ["/a", "/b", "/b", "/b", "/c", "/d", "/c", "/d"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_checks_are_check_errors_with_their_message_and_end_the_iteration() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"{HEADER}name: checks
think_time: 10ms
steps:
  - name: fine
    url: /fine
    checks:
      status: 2xx
      json:
        - {{ path: "$.ok", equals: true }}
        - {{ path: "$.path", matches: "^/fi" }}
      body_contains: '"n":7'
  - name: wrong_value
    url: /wrong
    checks:
      json:
        - {{ path: "$.n", equals: 8 }}
  - name: never_sent
    url: /never
"#
    );
    let report = run(dir.path(), &yaml, &server, profile(1, 1)).await;
    let fine = requests(&report, "fine");
    let wrong = requests(&report, "wrong_value");
    assert!(fine >= 3);
    assert!(wrong == fine || wrong + 1 == fine, "{fine} {wrong}");
    assert_eq!(report.errors_by_kind.check, wrong);
    assert_eq!(report.totals.errors, wrong);
    assert_eq!(report.error_samples.len(), 1, "{:#?}", report.error_samples);
    assert_eq!(report.error_samples[0].message, "`$.n` is 7, expected 8");
    assert!(
        server.to("/never").is_empty(),
        "the iteration stops at the failed step"
    );

    let yaml = format!(
        r#"{HEADER}name: extraction
think_time: 10ms
steps:
  - name: find
    url: /empty
    extract:
      first_id: {{ json: "$.items[0].id" }}
  - name: use
    url: "/use/{{{{ first_id }}}}"
"#
    );
    let report = run(dir.path(), &yaml, &server, profile(1, 1)).await;
    let finds = requests(&report, "find");
    assert!(finds >= 3);
    assert_eq!(report.errors_by_kind.check, finds);
    assert_eq!(
        report.error_samples[0].message,
        "extract `first_id`: JSONPath $.items[0].id matched nothing"
    );
    assert_eq!(report.error_samples[0].transaction, "find");
    assert_eq!(requests(&report, "use"), 0);
    assert!(!report.partial, "the run goes on");
}

/// Loads `yaml` from a file in `dir` and returns the error text.
fn refused(dir: &Path, yaml: &str) -> String {
    let path = dir.join("bad.yaml");
    std::fs::write(&path, yaml).unwrap();
    match Scenario::from_file(&path) {
        Ok(_) => panic!("accepted:\n{yaml}"),
        Err(ScenarioError::Invalid(error)) => {
            let text = error.to_string();
            let prefix = format!("{}:", path.display());
            text.strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{text}"))
                .to_string()
        }
        Err(other) => panic!("{other}"),
    }
}

#[test]
fn bad_files_are_refused_with_line_column_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let ok_step = "steps:\n  - name: a\n    url: /a\n";
    std::fs::write(dir.path().join("empty.csv"), "email\n").unwrap();

    let cases: Vec<(String, &str)> = vec![
        (
            format!("{HEADER}name: x\nsteps:\n  - name: a\n    url: /a\n    headerz: {{}}\n"),
            "7:5: field `steps[0].headerz`: unknown field `headerz`",
        ),
        (
            format!("{HEADER}name: x\nsteps:\n  - name: a\n    url: /a\n    weight: many\n"),
            "7:13: field `steps[0].weight`: invalid type",
        ),
        (
            format!(
                "{HEADER}name: x\nsteps:\n  - name: a\n    url: /a\n    headers:\n      Authorization: \"Bearer {{{{ tokn }}}}\"\n"
            ),
            "8:22: field `steps[0].headers.Authorization`: undefined variable `tokn`",
        ),
        (
            format!(
                "{HEADER}name: x\nsteps:\n  - name: a\n    url: \"/a/{{{{ later }}}}\"\n  - name: b\n    url: /b\n    extract:\n      later: {{ status: true }}\n"
            ),
            "6:10: field `steps[0].url`: undefined variable `later`",
        ),
        (
            format!("{HEADER}name: x\nfeeders:\n  acct: {{ file: nope.csv }}\n{ok_step}"),
            "5:17: field `feeders.acct.file`: cannot read feeder file",
        ),
        (
            format!("{HEADER}name: x\nfeeders:\n  acct: {{ file: empty.csv }}\n{ok_step}"),
            "5:17: field `feeders.acct.file`: feeder file",
        ),
        (
            format!(
                "{HEADER}name: x\nsteps:\n  - name: a\n    method: POST\n    url: /a\n    body: \"@missing.json\"\n"
            ),
            "8:11: field `steps[0].body`: cannot read body file",
        ),
        (
            format!(
                "{HEADER}name: x\nsteps:\n  - name: a\n    url: /a\n    extract:\n      id: {{ json: \"$.items[\" }}\n"
            ),
            "8:19: field `steps[0].extract.id.json`: invalid JSONPath \"$.items[\"",
        ),
        (
            format!(
                "{HEADER}name: x\nsteps:\n  - name: a\n    url: /a\n    checks:\n      json:\n        - {{ path: $.a, matches: \"(\" }}\n"
            ),
            "9:33: field `steps[0].checks.json[0].matches`: invalid regex \"(\"",
        ),
        (
            format!("{HEADER}name: x\nthink_time: soon\n{ok_step}"),
            "4:13: field `think_time`: invalid duration \"soon\"",
        ),
        (
            format!("{HEADER}name: x\nsteps:\n  - name: a\n    url: /a\n    timeout: 5 parsecs\n"),
            "7:14: field `steps[0].timeout`: invalid duration",
        ),
        (
            "apiVersion: shakedown/v2\nkind: Scenario\nname: x\nsteps: []\n".to_string(),
            "1:13: field `apiVersion`: unknown variant `shakedown/v2`",
        ),
        (
            format!("{HEADER}name: x\naccounting: {{ orders: buy }}\n{ok_step}"),
            "4:23: field `accounting.orders`: no step is named \"buy\"",
        ),
    ];
    let mut wrong = Vec::new();
    for (yaml, expected) in cases {
        let error = refused(dir.path(), &yaml);
        if !error.starts_with(expected) {
            wrong.push(format!(
                "expected `{expected}`\n     got `{error}`\nfor\n{yaml}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn built_ins_resolve_by_name_and_declare_their_order_transaction() {
    for name in scenarios::scenario_names() {
        let scenario = Scenario::resolve(name).unwrap();
        assert_eq!(scenario.name(), name);
        assert!(!scenario.description().is_empty());
    }
    let checkout = Scenario::resolve("checkout").unwrap();
    assert_eq!(checkout.order_transaction(), Some("place_order"));
    assert_eq!(
        Scenario::resolve("smoke").unwrap().order_transaction(),
        Some("place_order")
    );
    assert_eq!(
        Scenario::resolve("health").unwrap().order_transaction(),
        None
    );
    assert!(matches!(
        Scenario::resolve("shopping-spree"),
        Err(ScenarioError::Unknown { .. })
    ));
    let descriptions = scenarios::scenario_descriptions();
    assert_eq!(descriptions.len(), 5);
    // The files users copy are the built-ins.
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("builtin/checkout.yaml");
    let from_file = Scenario::from_file(&file).unwrap();
    assert_eq!(from_file.transaction_names(), checkout.transaction_names());
}
