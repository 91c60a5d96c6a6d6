//! Order and payment end to end against the real product, offer and inventory services (no
//! fakes): prices come from the offer service's quote, stock moves in the inventory service when
//! an order is placed, cancelled, paid or refunded, and the events reach Kafka.

mod harness;

use harness::kafka::{self, TopicReader};
use shop::testkit;
use shop::{
    platform::events::{TOPIC_ORDERS, TOPIC_PAYMENTS},
    proto::{
        CancelOrderRequest, CreateOrderRequest, GetOrderRequest, GetPaymentRequest,
        GetStockRequest, OrderItem, ProcessPaymentRequest, QuoteLine, QuoteRequest,
        inventory_service_client::InventoryServiceClient, offer_service_client::OfferServiceClient,
        order_service_client::OrderServiceClient, payment_service_client::PaymentServiceClient,
    },
    services::{inventory, offer, order, payment, product},
};
use tonic::{Code, transport::Channel};

const PRODUCTS: i64 = 1000;

fn create(user: &str, lines: &[(i64, i64)]) -> CreateOrderRequest {
    CreateOrderRequest {
        user_id: user.into(),
        items: lines
            .iter()
            .map(|&(product_id, quantity)| OrderItem {
                product_id,
                quantity,
                unit_price_cents: 0,
            })
            .collect(),
        shipping_address: "3 Real Avenue".into(),
        idempotency_key: String::new(),
    }
}

/// Units of `product_id` the inventory still has available.
async fn available(client: &mut InventoryServiceClient<Channel>, product_id: i64) -> i64 {
    let stock = client
        .get_stock(GetStockRequest {
            product_ids: vec![product_id],
        })
        .await
        .unwrap();
    stock.into_inner().items[0].available
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_priced_reserved_paid_and_released_by_the_real_services() {
    let cluster = kafka::cluster();
    let bootstrap = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let config = |name: &str| testkit::config(name, dir.path(), &bootstrap);

    let products =
        testkit::start_with(config("product"), |rt| product::run_with(rt, PRODUCTS)).await;
    let product_url = products.url.clone();
    let offers = testkit::start_with(config("offer"), |rt| offer::run_with(rt, product_url)).await;
    let stock =
        testkit::start_with(config("inventory"), |rt| inventory::run_with(rt, PRODUCTS)).await;
    // Order and payment call each other: the payment service's address is chosen first.
    let payment_config = config("payment");
    let peers = order::Peers {
        offer: offers.url.clone(),
        inventory: stock.url.clone(),
        payment: format!("http://{}", payment_config.listen),
    };
    let orders = testkit::start_with(config("order"), |rt| order::run_with(rt, peers)).await;
    let order_url = orders.url.clone();
    let payments = testkit::start_with(payment_config, move |rt| async move {
        payment::run_with(rt, &order_url).await
    })
    .await;

    let mut order_client = OrderServiceClient::connect(orders.url.clone())
        .await
        .unwrap();
    let mut offer_client = OfferServiceClient::connect(offers.url.clone())
        .await
        .unwrap();
    let mut stock_client = InventoryServiceClient::connect(stock.url.clone())
        .await
        .unwrap();
    let mut payment_client = PaymentServiceClient::connect(payments.url.clone())
        .await
        .unwrap();

    let lines = [(11, 2), (12, 1)];
    let quote = offer_client
        .quote(QuoteRequest {
            lines: lines
                .iter()
                .map(|&(product_id, quantity)| QuoteLine {
                    product_id,
                    quantity,
                })
                .collect(),
        })
        .await
        .unwrap()
        .into_inner();
    let before = available(&mut stock_client, 11).await;

    let paid_order = order_client
        .create_order(create("rita", &lines))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        paid_order.total_cents, quote.total_cents,
        "priced by the offer service"
    );
    assert_eq!(
        paid_order.items[0].unit_price_cents,
        quote.lines[0].unit_price_cents
    );
    assert_eq!(
        available(&mut stock_client, 11).await,
        before - 2,
        "stock reserved"
    );

    let payment = payment_client
        .process_payment(ProcessPaymentRequest {
            user_id: "rita".into(),
            order_id: paid_order.id.clone(),
            amount_cents: paid_order.total_cents,
            method: "card".into(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let get = GetOrderRequest {
        user_id: "rita".into(),
        order_id: paid_order.id.clone(),
    };
    assert_eq!(
        order_client
            .get_order(get)
            .await
            .unwrap()
            .into_inner()
            .status,
        "paid"
    );

    let cancelled = order_client
        .create_order(create("rita", &[(11, 3)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(available(&mut stock_client, 11).await, before - 5);
    let cancel = CancelOrderRequest {
        user_id: "rita".into(),
        order_id: cancelled.id.clone(),
    };
    order_client.cancel_order(cancel).await.unwrap();
    assert_eq!(
        available(&mut stock_client, 11).await,
        before - 2,
        "cancelling gives stock back"
    );

    // The paid order: its refund comes first, then its committed stock goes back.
    let cancel_paid = CancelOrderRequest {
        user_id: "rita".into(),
        order_id: paid_order.id.clone(),
    };
    let refunded_order = order_client
        .cancel_order(cancel_paid)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refunded_order.status, "cancelled");
    assert_eq!(
        available(&mut stock_client, 11).await,
        before,
        "a refunded order's goods go back"
    );
    let receipt = payment_client
        .get_payment(GetPaymentRequest {
            user_id: "rita".into(),
            payment_id: payment.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(receipt.status, "refunded");

    let unknown = order_client
        .create_order(create("rita", &[(PRODUCTS + 1, 1)]))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let mut order_events = TopicReader::new(&bootstrap, TOPIC_ORDERS);
    order_events
        .read_until("created, paid and cancelled", |events| {
            ["order.created", "order.paid", "order.cancelled"]
                .iter()
                .all(|t| events.iter().any(|e| e.event_type == *t))
        })
        .await;
    let mut payment_events = TopicReader::new(&bootstrap, TOPIC_PAYMENTS);
    let events = payment_events
        .read_until("the payment", |events| !events.is_empty())
        .await;
    assert_eq!(events[0].data["payment_id"], payment.id.as_str());

    for service in [payments, orders, stock, offers, products] {
        service.stop().await;
    }
}
