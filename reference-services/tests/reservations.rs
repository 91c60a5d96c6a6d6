//! Stock reservations on a real PostgreSQL: the inventory service's sweeper gives back what an
//! unpaid order held once the TTL passed, and never what a paid order committed. The same
//! behaviour on SQLite is covered by the inventory module's own tests.

mod harness;

use std::time::Duration;

use harness::postgres::Postgres;
use shop::{
    platform::{config::ServiceConfig, grpc, storage::Db},
    proto::{
        CommitRequest, GetStockRequest, LineItem, ReleaseRequest, ReserveRequest, StockItem,
        inventory_service_client::InventoryServiceClient,
    },
    services::inventory::{self, Settings, Sweeper, initial_stock},
    testkit::{self, DEADLINE},
};
use tonic::Code;

type Client = InventoryServiceClient<grpc::TracedChannel>;

fn reserve(order_id: &str, product_id: i64, quantity: i64) -> ReserveRequest {
    ReserveRequest {
        order_id: order_id.into(),
        items: vec![LineItem {
            product_id,
            quantity,
        }],
    }
}

fn commit(order_id: &str) -> CommitRequest {
    CommitRequest {
        order_id: order_id.into(),
    }
}

async fn stock_of(client: &mut Client, product_id: i64) -> StockItem {
    let list = client
        .get_stock(GetStockRequest {
            product_ids: vec![product_id],
        })
        .await
        .unwrap()
        .into_inner();
    list.items.into_iter().next().expect("stocked product")
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_and_commit_on_postgres() {
    let Some(pg) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();

    // A sweeper whose clock the test sets, on a service with the default (long) TTL.
    let url = pg.database("inventory_clock").await;
    let config = ServiceConfig {
        database_url: Some(url.clone()),
        ..ServiceConfig::for_test("inventory", dir.path())
    };
    let service = testkit::start_with(config, |rt| inventory::run_with(rt, 100)).await;
    let mut client = Client::new(grpc::channel(&service.url).unwrap());
    client.reserve(reserve("abandoned", 1, 2)).await.unwrap();
    client.reserve(reserve("paid", 1, 3)).await.unwrap();
    assert!(
        !client
            .commit(commit("paid"))
            .await
            .unwrap()
            .into_inner()
            .already_committed
    );
    assert!(
        client
            .commit(commit("paid"))
            .await
            .unwrap()
            .into_inner()
            .already_committed
    );
    let sweeper = Sweeper::open(
        Db::connect_url(&url).await.unwrap(),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let now = now_ms();
    assert_eq!(sweeper.sweep(now).await.unwrap(), 0);
    assert_eq!(sweeper.sweep(now + 61_000).await.unwrap(), 1);
    assert_eq!(
        sweeper.sweep(now + 61_000).await.unwrap(),
        0,
        "stock goes back once"
    );
    let left = stock_of(&mut client, 1).await;
    assert_eq!((left.available, left.reserved), (initial_stock(1) - 3, 3));
    let expired = client.commit(commit("abandoned")).await.unwrap_err();
    assert_eq!(expired.code(), Code::FailedPrecondition);
    let released = client
        .release(ReleaseRequest {
            order_id: "paid".into(),
        })
        .await
        .unwrap();
    assert!(
        released.into_inner().released,
        "a refunded order's stock goes back"
    );
    assert_eq!(stock_of(&mut client, 1).await.available, initial_stock(1));
    service.stop().await;

    // The service's own sweeper with a short TTL.
    let config = ServiceConfig {
        database_url: Some(pg.database("inventory_ttl").await),
        ..ServiceConfig::for_test("inventory", dir.path())
    };
    let settings = Settings {
        product_count: 100,
        reservation_ttl: Duration::from_secs(1),
    };
    let service = testkit::start_with(config, |rt| inventory::run_settings(rt, settings)).await;
    let mut client = Client::new(grpc::channel(&service.url).unwrap());
    // Committed before the other reservation exists, so it cannot have expired first.
    client.reserve(reserve("paid", 2, 2)).await.unwrap();
    client.commit(commit("paid")).await.unwrap();
    client.reserve(reserve("abandoned", 3, 2)).await.unwrap();
    let probe = client.clone();
    testkit::eventually("the abandoned reservation expires", DEADLINE, || {
        let mut client = probe.clone();
        async move { (stock_of(&mut client, 3).await.reserved == 0).then_some(()) }
    })
    .await;
    assert_eq!(stock_of(&mut client, 3).await.available, initial_stock(3));
    assert_eq!(
        stock_of(&mut client, 2).await.reserved,
        2,
        "paid stock stays sold"
    );
    service.stop().await;
}
