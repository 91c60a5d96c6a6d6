//! The payment service end to end: it pays orders of a real order service (with fake offer and
//! inventory peers) on a mock Kafka cluster, refuses wrong amounts, second payments and other
//! users' orders, and refunds a charge whose order was cancelled while it was being paid.

mod harness;

use harness::{
    fakes::FakePeers,
    kafka::{self, TopicReader},
};
use shop::testkit;
use shop::{
    platform::events::{TOPIC_ORDERS, TOPIC_PAYMENTS},
    proto::{
        CancelOrderRequest, CreateOrderRequest, GetOrderRequest, GetPaymentRequest,
        ListOrdersRequest, MarkPaidRequest, Order, OrderItem, OrderList, ProcessPaymentRequest,
        order_service_client::OrderServiceClient,
        order_service_server::{OrderService, OrderServiceServer},
        payment_service_client::PaymentServiceClient,
    },
    services::{order, payment},
};
use tonic::{Code, Request, Response, Status};

fn pay(user: &str, order_id: &str, amount_cents: i64, method: &str) -> ProcessPaymentRequest {
    ProcessPaymentRequest {
        user_id: user.into(),
        order_id: order_id.into(),
        amount_cents,
        method: method.into(),
    }
}

fn new_order(user: &str, product_id: i64) -> CreateOrderRequest {
    CreateOrderRequest {
        user_id: user.into(),
        items: vec![OrderItem {
            product_id,
            quantity: 2,
            unit_price_cents: 0,
        }],
        shipping_address: "2 Test Road".into(),
        idempotency_key: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pays_pending_orders_once_and_only_the_owners() {
    let cluster = kafka::cluster();
    let bootstrap = cluster.bootstrap_servers();
    let peers = FakePeers::start().await;
    let dir = tempfile::tempdir().unwrap();
    let order_peers = peers.order_peers();
    let orders_service =
        testkit::start_with(testkit::config("order", dir.path(), &bootstrap), |rt| {
            order::run_with(rt, order_peers)
        })
        .await;
    let order_url = orders_service.url.clone();
    let payments_service = testkit::start_with(
        testkit::config("payment", dir.path(), &bootstrap),
        move |rt| async move { payment::run_with(rt, &order_url).await },
    )
    .await;
    let mut orders = OrderServiceClient::connect(orders_service.url.clone())
        .await
        .unwrap();
    let mut payments = PaymentServiceClient::connect(payments_service.url.clone())
        .await
        .unwrap();

    let order = orders
        .create_order(new_order("dave", 5))
        .await
        .unwrap()
        .into_inner();
    let total = order.total_cents;

    let wrong = payments
        .process_payment(pay("dave", &order.id, total - 1, "card"))
        .await;
    assert_eq!(wrong.unwrap_err().code(), Code::InvalidArgument);
    let method = payments
        .process_payment(pay("dave", &order.id, total, "cash"))
        .await;
    assert_eq!(method.unwrap_err().code(), Code::InvalidArgument);
    let foreign = payments
        .process_payment(pay("erin", &order.id, total, "card"))
        .await;
    assert_eq!(
        foreign.unwrap_err().code(),
        Code::NotFound,
        "another user's order is not found"
    );
    let missing = payments
        .process_payment(pay("dave", "no-such-order", total, "card"))
        .await;
    assert_eq!(missing.unwrap_err().code(), Code::NotFound);

    let paid = payments
        .process_payment(pay("dave", &order.id, total, "paypal"))
        .await
        .unwrap();
    let paid = paid.into_inner();
    assert_eq!(paid.status, "succeeded");
    assert_eq!(paid.amount_cents, total);
    assert!(!paid.transaction_id.is_empty());
    let get = GetOrderRequest {
        user_id: "dave".into(),
        order_id: order.id.clone(),
    };
    assert_eq!(
        orders.get_order(get).await.unwrap().into_inner().status,
        "paid"
    );

    let again = payments
        .process_payment(pay("dave", &order.id, total, "card"))
        .await;
    assert_eq!(
        again.unwrap_err().code(),
        Code::FailedPrecondition,
        "an order is paid once"
    );

    let own = GetPaymentRequest {
        user_id: "dave".into(),
        payment_id: paid.id.clone(),
    };
    assert_eq!(payments.get_payment(own).await.unwrap().into_inner(), paid);
    let other = GetPaymentRequest {
        user_id: "erin".into(),
        payment_id: paid.id.clone(),
    };
    assert_eq!(
        payments.get_payment(other).await.unwrap_err().code(),
        Code::NotFound
    );

    let cancelled = orders
        .create_order(new_order("dave", 6))
        .await
        .unwrap()
        .into_inner();
    let cancel = CancelOrderRequest {
        user_id: "dave".into(),
        order_id: cancelled.id.clone(),
    };
    orders.cancel_order(cancel).await.unwrap();
    let late = payments
        .process_payment(pay("dave", &cancelled.id, cancelled.total_cents, "card"))
        .await;
    assert_eq!(late.unwrap_err().code(), Code::FailedPrecondition);

    let mut payment_events = TopicReader::new(&bootstrap, TOPIC_PAYMENTS);
    let events = payment_events
        .read_until("payment.succeeded", |events| !events.is_empty())
        .await;
    assert_eq!(events.len(), 1, "one payment, one event: {events:?}");
    assert_eq!(events[0].event_type, "payment.succeeded");
    assert_eq!(events[0].data["payment_id"], paid.id.as_str());
    assert_eq!(events[0].data["order_id"], order.id.as_str());
    assert_eq!(events[0].data["amount_cents"], total);

    let mut order_events = TopicReader::new(&bootstrap, TOPIC_ORDERS);
    let events = order_events
        .read_until("order.paid", |events| {
            events.iter().any(|e| e.event_type == "order.paid")
        })
        .await;
    let paid_event = events
        .iter()
        .find(|e| e.event_type == "order.paid")
        .unwrap();
    assert_eq!(paid_event.data["payment_id"], paid.id.as_str());

    payments_service.stop().await;
    orders_service.stop().await;
}

/// An order service whose order is pending when looked at, but cancelled by the time it is
/// marked paid: the race between a payment and a cancellation.
struct CancelledMeanwhile;

#[tonic::async_trait]
impl OrderService for CancelledMeanwhile {
    async fn create_order(
        &self,
        _: Request<CreateOrderRequest>,
    ) -> Result<Response<Order>, Status> {
        Err(Status::unimplemented("not needed"))
    }

    async fn get_order(
        &self,
        request: Request<GetOrderRequest>,
    ) -> Result<Response<Order>, Status> {
        let req = request.into_inner();
        Ok(Response::new(Order {
            id: req.order_id,
            user_id: req.user_id,
            status: "pending".into(),
            total_cents: 500,
            ..Default::default()
        }))
    }

    async fn list_orders(
        &self,
        _: Request<ListOrdersRequest>,
    ) -> Result<Response<OrderList>, Status> {
        Err(Status::unimplemented("not needed"))
    }

    async fn cancel_order(
        &self,
        _: Request<CancelOrderRequest>,
    ) -> Result<Response<Order>, Status> {
        Err(Status::unimplemented("not needed"))
    }

    async fn mark_paid(&self, _: Request<MarkPaidRequest>) -> Result<Response<Order>, Status> {
        Err(Status::failed_precondition("order o-race is cancelled"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_for_an_order_cancelled_meanwhile_is_refunded() {
    let cluster = kafka::cluster();
    let bootstrap = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let router =
        tonic::service::Routes::new(OrderServiceServer::new(CancelledMeanwhile)).into_axum_router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let order_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let service = testkit::start_with(
        testkit::config("payment", dir.path(), &bootstrap),
        move |rt| async move { payment::run_with(rt, &order_url).await },
    )
    .await;
    let mut payments = PaymentServiceClient::connect(service.url.clone())
        .await
        .unwrap();

    let refused = payments
        .process_payment(pay("fay", "o-race", 500, "card"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("refunded"),
        "{}",
        refused.message()
    );

    let mut reader = TopicReader::new(&bootstrap, TOPIC_PAYMENTS);
    let events = reader
        .read_until("the refund", |events| {
            events.iter().any(|e| e.event_type == "payment.refunded")
        })
        .await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, vec!["payment.succeeded", "payment.refunded"]);
    let payment_id = events[1].data["payment_id"].as_str().unwrap().to_string();
    assert_eq!(events[0].data["payment_id"], payment_id.as_str());
    let get = GetPaymentRequest {
        user_id: "fay".into(),
        payment_id,
    };
    let stored = payments.get_payment(get).await.unwrap().into_inner();
    assert_eq!(stored.status, "refunded");

    let retry = payments
        .process_payment(pay("fay", "o-race", 500, "card"))
        .await
        .unwrap_err();
    assert_eq!(
        retry.code(),
        Code::FailedPrecondition,
        "a refunded order is not charged again"
    );
    service.stop().await;
}
