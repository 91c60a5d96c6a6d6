//! A fake product backend for tests of gRPC callers: it answers every call with an empty result,
//! counts the calls, records the deadline (`grpc-timeout`) each arrived with, and can hold
//! `ListProducts` calls until the test releases them, so a test reaches "N calls in flight"
//! by waiting for [`FakeProducts::held`] instead of by timing.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tonic::{Request, Response, Status};

use crate::{
    platform::deadline,
    proto::{
        GetProductRequest, GetProductsRequest, ListProductsRequest, Product, ProductList,
        SearchProductsRequest,
        product_service_server::{ProductService, ProductServiceServer},
    },
};

/// The fake's shared state; clones are the same fake.
#[derive(Clone)]
pub struct FakeProducts {
    calls: Arc<AtomicUsize>,
    held: Arc<AtomicUsize>,
    deadlines: Arc<Mutex<Vec<Option<Duration>>>>,
    hold: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for FakeProducts {
    fn default() -> Self {
        Self {
            calls: Arc::default(),
            held: Arc::default(),
            deadlines: Arc::default(),
            hold: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }
}

impl FakeProducts {
    /// Calls answered or being answered so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// `ListProducts` calls waiting for [`FakeProducts::release`] now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// The `grpc-timeout` of each call so far, in arrival order (`None`: the call had none).
    pub fn deadlines(&self) -> Vec<Option<Duration>> {
        self.deadlines.lock().expect("deadlines lock").clone()
    }

    /// From now on `ListProducts` calls wait until [`FakeProducts::release`].
    pub fn hold(&self) {
        self.hold.send_replace(true);
    }

    /// Lets the held calls (and later ones) through.
    pub fn release(&self) {
        self.hold.send_replace(false);
    }

    /// Serves the fake on `addr` (port 0: any free one) in a background task.
    pub async fn serve(&self, addr: SocketAddr) -> FakeServer {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("binding the fake product backend on {addr}: {e}"));
        let addr = listener.local_addr().expect("bound address");
        let router =
            tonic::service::Routes::new(ProductServiceServer::new(self.clone())).into_axum_router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeServer {
            addr,
            url: format!("http://{addr}"),
            task,
        }
    }

    fn arrived<T>(&self, request: &Request<T>) {
        let timeout = request
            .metadata()
            .get(deadline::GRPC_TIMEOUT_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(deadline::parse_grpc_timeout);
        self.deadlines.lock().expect("deadlines lock").push(timeout);
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

/// A running fake, stopped when dropped.
pub struct FakeServer {
    pub addr: SocketAddr,
    /// `http://<addr>`.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One held call, for as long as it lives.
struct Held(Arc<AtomicUsize>);

impl Held {
    fn count(held: &Arc<AtomicUsize>) -> Self {
        held.fetch_add(1, Ordering::SeqCst);
        Self(held.clone())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn empty_list() -> Response<ProductList> {
    Response::new(ProductList {
        products: Vec::new(),
        total: 0,
    })
}

#[tonic::async_trait]
impl ProductService for FakeProducts {
    async fn get_product(
        &self,
        request: Request<GetProductRequest>,
    ) -> Result<Response<Product>, Status> {
        self.arrived(&request);
        Ok(Response::new(Product {
            id: request.into_inner().id,
            ..Product::default()
        }))
    }

    async fn get_products(
        &self,
        request: Request<GetProductsRequest>,
    ) -> Result<Response<ProductList>, Status> {
        self.arrived(&request);
        Ok(empty_list())
    }

    async fn list_products(
        &self,
        request: Request<ListProductsRequest>,
    ) -> Result<Response<ProductList>, Status> {
        self.arrived(&request);
        let mut hold = self.hold.subscribe();
        if *hold.borrow_and_update() {
            // Counted down on drop too: a caller that gives up cancels the held call.
            let _held = Held::count(&self.held);
            let _ = hold.wait_for(|holding| !holding).await;
        }
        Ok(empty_list())
    }

    async fn search_products(
        &self,
        request: Request<SearchProductsRequest>,
    ) -> Result<Response<ProductList>, Status> {
        self.arrived(&request);
        Ok(empty_list())
    }
}
