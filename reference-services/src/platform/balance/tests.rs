//! Balanced channels against real gRPC servers on loopback, with a resolver the test controls:
//! two instances behind one name both get calls, and an instance removed from the name gets no
//! more.

use std::net::SocketAddr;

use super::*;
use crate::{
    proto::{GetProductRequest, product_service_client::ProductServiceClient},
    testkit::{
        self, DEADLINE,
        fakes::{FakeProducts, FakeServer},
    },
};

/// Re-resolution period of the tests: short, so a change is picked up at once.
const INTERVAL: Duration = Duration::from_millis(20);

async fn two_instances() -> (FakeProducts, FakeServer, FakeProducts, FakeServer) {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (a, b) = (FakeProducts::default(), FakeProducts::default());
    let (a_server, b_server) = (a.serve(any).await, b.serve(any).await);
    (a, a_server, b, b_server)
}

async fn call(client: &mut ProductServiceClient<TracedChannel>) {
    client
        .get_product(GetProductRequest { id: 1 })
        .await
        .expect("call through the balanced channel");
}

/// Calls until every fake has answered at least one (a hang guard, not a timing assertion).
async fn until_each_is_called(
    client: &mut ProductServiceClient<TracedChannel>,
    fakes: &[&FakeProducts],
) {
    let started = std::time::Instant::now();
    while fakes.iter().any(|f| f.calls() == 0) {
        assert!(
            started.elapsed() < DEADLINE,
            "calls did not reach every instance: {:?}",
            fakes.iter().map(|f| f.calls()).collect::<Vec<_>>()
        );
        call(client).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_spread_over_every_instance_behind_a_name() {
    let (a, a_server, b, b_server) = two_instances().await;
    let resolver = StaticResolver::new([a_server.addr, b_server.addr]);
    let balancing = Balancing::with(resolver, INTERVAL);
    let channel = channel("http://product.test:50051", &balancing).unwrap();
    let mut client = ProductServiceClient::new(channel);
    until_each_is_called(&mut client, &[&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_removed_from_the_name_gets_no_more_calls() {
    let (a, a_server, b, b_server) = two_instances().await;
    let resolver = StaticResolver::new([a_server.addr, b_server.addr]);
    let channel = channel(
        "http://product.test:50051",
        &Balancing::with(resolver.clone(), INTERVAL),
    )
    .unwrap();
    let mut client = ProductServiceClient::new(channel);
    until_each_is_called(&mut client, &[&a, &b]).await;

    resolver.set([a_server.addr]);
    // The resolution after the one that saw the change starts only once that one has sent its
    // changes to the balancer, which applies them before routing the next call.
    let seen = resolver.lookups();
    testkit::eventually("the name is resolved twice more", DEADLINE, || {
        let done = resolver.lookups() >= seen + 2;
        async move { done.then_some(()) }
    })
    .await;
    let (a_before, b_before) = (a.calls(), b.calls());
    for _ in 0..20 {
        call(&mut client).await;
    }
    assert_eq!(b.calls(), b_before, "the removed instance still got calls");
    assert_eq!(a.calls(), a_before + 20);

    // And one that comes back gets calls again.
    resolver.set([a_server.addr, b_server.addr]);
    until_each_is_called(&mut client, &[&b]).await;
}

#[tokio::test]
async fn an_ip_literal_is_one_channel_without_resolution() {
    let fake = FakeProducts::default();
    let server = fake.serve("127.0.0.1:0".parse().unwrap()).await;
    let elsewhere = StaticResolver::new(["127.0.0.1:1".parse().unwrap()]);
    let channel = channel(&server.url, &Balancing::with(elsewhere.clone(), INTERVAL)).unwrap();
    call(&mut ProductServiceClient::new(channel)).await;
    assert_eq!(fake.calls(), 1);
    assert_eq!(elsewhere.lookups(), 0, "an IP literal is not resolved");
}

#[tokio::test]
async fn dns_resolves_localhost_to_loopback() {
    let addrs = DnsResolver.resolve("localhost", 50051).await.unwrap();
    assert!(
        addrs
            .iter()
            .any(|a| a.ip().is_loopback() && a.port() == 50051),
        "{addrs:?}"
    );
}

#[test]
fn urls_without_a_host_are_refused() {
    let err = channel("not a url", &Balancing::default()).unwrap_err();
    assert!(err.to_string().contains("not a url"), "{err}");
    assert!(Balancing::default().interval == DEFAULT_RESOLVE_INTERVAL);
}
