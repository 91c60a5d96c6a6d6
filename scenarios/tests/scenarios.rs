//! Every scenario runs cleanly against an implementation of the documented API — here an
//! in-memory fake gateway — with zero errors, all of its transactions recorded, consistent
//! counts, and a report every renderer accepts.

mod support;

use scenarios::{Profile, RunSpec, execute};
use support::{Behaviour, Gateway};
use tokio::sync::Mutex;

/// Goose's killswitch and Ctrl-C handler are process-wide: one run at a time.
static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::const_new(());

const PROFILE: &str = "name: quick\nclosed:\n  stages:\n    - { duration: 1s, users: 2 }\n    - { duration: 2s, users: 2 }\nthink_time: { min: 10ms, max: 20ms }\n";

async fn run_clean(scenario: &str, expected_transactions: &[&str]) -> reports::Report {
    let _turn = ONE_RUN_AT_A_TIME.lock().await;
    let gateway = Gateway::start(Behaviour::default());
    let report = execute(RunSpec {
        scenario: scenario.into(),
        target: gateway.url(),
        profile: Profile::from_yaml(PROFILE, "test profile").unwrap(),
        quiet: true,
        thresholds: Vec::new(),
        live: None,
    })
    .await
    .unwrap();

    assert!(!report.partial, "{scenario}: {:?}", report.partial_reason);
    assert_eq!(report.scenario, scenario);
    assert_eq!(
        report.totals.errors, 0,
        "{scenario} against the documented API: {:#?}",
        report.error_samples
    );
    let names: Vec<&str> = report
        .transactions
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    for expected in expected_transactions {
        assert!(
            names.contains(expected),
            "{scenario}: {expected} missing from {names:?}"
        );
    }
    assert_eq!(report.consistency_problems(), Vec::<String>::new());
    let series: u64 = report.timeseries.iter().map(|s| s.requests).sum();
    let transactions: u64 = report.transactions.iter().map(|t| t.requests).sum();
    assert_eq!(report.totals.requests, series);
    assert_eq!(report.totals.requests, transactions);
    assert_eq!(report.verdict, reports::Verdict::Pass);

    let dir = tempfile::tempdir().unwrap();
    reports::write_all(dir.path(), &report).unwrap();
    let loaded = reports::Report::load(dir.path().join("report.json")).unwrap();
    assert_eq!(loaded, report);
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_calls_every_endpoint() {
    run_clean(
        "smoke",
        &[
            "health",
            "list_products",
            "get_product",
            "search_products",
            "recommendations",
            "offers",
            "page_viewed",
            "register",
            "login",
            "add_to_cart",
            "get_cart",
            "remove_from_cart",
            "clear_cart",
            "place_order",
            "pay_order",
            "get_order",
            "get_payment",
            "list_orders",
            "place_order_items",
            "cancel_order",
            "logout",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_lists_then_looks_closer() {
    let report = run_clean(
        "browse",
        &[
            "list_products",
            "get_product",
            "search_products",
            "recommendations",
            "offers",
        ],
    )
    .await;
    let count = |name: &str| {
        report
            .transactions
            .iter()
            .find(|t| t.name == name)
            .map_or(0, |t| t.requests)
    };
    // get_product has weight 2: twice per iteration. Each of the 2 users may be stopped
    // right after its last list_products, missing at most 2 get_products.
    let (lists, gets) = (count("list_products"), count("get_product"));
    assert!(
        gets + 4 >= 2 * lists && gets <= 2 * lists,
        "{gets} gets for {lists} lists"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_buys_end_to_end_with_one_account_per_user() {
    let report = run_clean(
        "checkout",
        &[
            "register",
            "login",
            "list_products",
            "get_product",
            "add_to_cart",
            "place_order",
            "pay_order",
            "get_order",
        ],
    )
    .await;
    let register = report
        .transactions
        .iter()
        .find(|t| t.name == "register")
        .unwrap();
    assert_eq!(register.requests, 2, "one account per Goose user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_sends_page_views() {
    run_clean("ingest", &["page_viewed"]).await;
}
