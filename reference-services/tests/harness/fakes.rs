//! Small in-test implementations of the offer and inventory services, so the order service can
//! be tested on its own: deterministic prices, and stock that records every reservation.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use shop::proto::{
    CommitRequest, CommitResponse, GetOffersRequest, GetStockRequest, OfferList, QuoteRequest,
    QuoteResponse, QuotedLine, ReleaseRequest, ReleaseResponse, ReserveRequest, ReserveResponse,
    StockItem, StockList,
    inventory_service_server::{InventoryService, InventoryServiceServer},
    offer_service_server::{OfferService, OfferServiceServer},
};
use tonic::{Request, Response, Status};

/// Products 1..=CATALOG_SIZE exist; others are unknown to the offer service.
pub const CATALOG_SIZE: i64 = 1000;
/// A product that exists but has no stock.
pub const SOLD_OUT_PRODUCT: i64 = 13;
const INITIAL_STOCK: i64 = 1_000_000;

/// The unit price the fake offer service quotes for `product_id`.
pub fn unit_price(product_id: i64) -> i64 {
    1000 + product_id
}

/// Reservations the fake inventory holds, by order id.
#[derive(Default)]
pub struct Stock {
    pub reserved: HashMap<String, Vec<(i64, i64)>>,
    pub released: Vec<String>,
    /// Orders whose reservation was committed (paid).
    pub committed: Vec<String>,
    taken: HashMap<i64, i64>,
}

#[derive(Clone, Default)]
pub struct FakeInventory(pub Arc<Mutex<Stock>>);

impl FakeInventory {
    pub fn reservation(&self, order_id: &str) -> Option<Vec<(i64, i64)>> {
        self.0.lock().unwrap().reserved.get(order_id).cloned()
    }

    pub fn was_committed(&self, order_id: &str) -> bool {
        self.0
            .lock()
            .unwrap()
            .committed
            .iter()
            .any(|id| id == order_id)
    }

    /// Gives the order's stock back as the real inventory's sweeper does when a reservation
    /// expires (the order service is not told).
    pub fn expire(&self, order_id: &str) {
        let mut stock = self.0.lock().unwrap();
        let lines = stock.reserved.remove(order_id).expect("a held reservation");
        for (product_id, quantity) in lines {
            *stock.taken.entry(product_id).or_default() -= quantity;
        }
        stock.released.push(order_id.to_string());
    }

    pub fn reservation_count(&self) -> usize {
        self.0.lock().unwrap().reserved.len()
    }

    pub fn was_released(&self, order_id: &str) -> bool {
        self.0
            .lock()
            .unwrap()
            .released
            .iter()
            .any(|id| id == order_id)
    }
}

fn available(stock: &Stock, product_id: i64) -> i64 {
    let initial = if product_id == SOLD_OUT_PRODUCT {
        0
    } else {
        INITIAL_STOCK
    };
    initial - stock.taken.get(&product_id).copied().unwrap_or(0)
}

#[tonic::async_trait]
impl InventoryService for FakeInventory {
    async fn get_stock(
        &self,
        request: Request<GetStockRequest>,
    ) -> Result<Response<StockList>, Status> {
        let stock = self.0.lock().unwrap();
        let items = request
            .into_inner()
            .product_ids
            .into_iter()
            .map(|product_id| StockItem {
                product_id,
                available: available(&stock, product_id),
                reserved: stock.taken.get(&product_id).copied().unwrap_or(0),
            })
            .collect();
        Ok(Response::new(StockList { items }))
    }

    async fn reserve(
        &self,
        request: Request<ReserveRequest>,
    ) -> Result<Response<ReserveResponse>, Status> {
        let req = request.into_inner();
        let mut stock = self.0.lock().unwrap();
        if stock.reserved.contains_key(&req.order_id) {
            return Ok(Response::new(ReserveResponse {
                already_reserved: true,
            }));
        }
        if let Some(short) = req
            .items
            .iter()
            .find(|i| available(&stock, i.product_id) < i.quantity)
        {
            return Err(Status::failed_precondition(format!(
                "insufficient stock for product {}",
                short.product_id
            )));
        }
        for item in &req.items {
            *stock.taken.entry(item.product_id).or_default() += item.quantity;
        }
        let lines = req
            .items
            .iter()
            .map(|i| (i.product_id, i.quantity))
            .collect();
        stock.reserved.insert(req.order_id, lines);
        Ok(Response::new(ReserveResponse {
            already_reserved: false,
        }))
    }

    async fn release(
        &self,
        request: Request<ReleaseRequest>,
    ) -> Result<Response<ReleaseResponse>, Status> {
        let order_id = request.into_inner().order_id;
        let mut stock = self.0.lock().unwrap();
        let Some(lines) = stock.reserved.remove(&order_id) else {
            return Ok(Response::new(ReleaseResponse { released: false }));
        };
        for (product_id, quantity) in lines {
            *stock.taken.entry(product_id).or_default() -= quantity;
        }
        stock.committed.retain(|id| *id != order_id);
        stock.released.push(order_id);
        Ok(Response::new(ReleaseResponse { released: true }))
    }

    async fn commit(
        &self,
        request: Request<CommitRequest>,
    ) -> Result<Response<CommitResponse>, Status> {
        let order_id = request.into_inner().order_id;
        let mut stock = self.0.lock().unwrap();
        if stock.committed.contains(&order_id) {
            return Ok(Response::new(CommitResponse {
                already_committed: true,
            }));
        }
        if !stock.reserved.contains_key(&order_id) {
            return Err(if stock.released.contains(&order_id) {
                Status::failed_precondition(format!("the reservation of {order_id} expired"))
            } else {
                Status::not_found(format!("{order_id} holds no reservation"))
            });
        }
        stock.committed.push(order_id);
        Ok(Response::new(CommitResponse {
            already_committed: false,
        }))
    }
}

#[derive(Clone, Copy, Default)]
pub struct FakeOffers;

#[tonic::async_trait]
impl OfferService for FakeOffers {
    async fn get_offers(
        &self,
        request: Request<GetOffersRequest>,
    ) -> Result<Response<OfferList>, Status> {
        let product_id = request.into_inner().product_id;
        let price = unit_price(product_id);
        Ok(Response::new(OfferList {
            product_id,
            price_cents: price,
            best_price_cents: price,
            offers: vec![],
        }))
    }

    async fn quote(
        &self,
        request: Request<QuoteRequest>,
    ) -> Result<Response<QuoteResponse>, Status> {
        let mut lines = Vec::new();
        for line in request.into_inner().lines {
            if !(1..=CATALOG_SIZE).contains(&line.product_id) {
                return Err(Status::not_found(format!(
                    "product {} not found",
                    line.product_id
                )));
            }
            let unit = unit_price(line.product_id);
            lines.push(QuotedLine {
                product_id: line.product_id,
                quantity: line.quantity,
                unit_price_cents: unit,
                line_total_cents: unit * line.quantity,
                offer_id: String::new(),
            });
        }
        let total_cents = lines.iter().map(|l| l.line_total_cents).sum();
        Ok(Response::new(QuoteResponse { lines, total_cents }))
    }
}

/// The fake offer and inventory services, served together on one loopback port.
pub struct FakePeers {
    pub url: String,
    pub inventory: FakeInventory,
}

impl FakePeers {
    pub async fn start() -> Self {
        let inventory = FakeInventory::default();
        let router = tonic::service::Routes::new(OfferServiceServer::new(FakeOffers))
            .add_service(InventoryServiceServer::new(inventory.clone()))
            .into_axum_router();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, inventory }
    }

    /// Peers of the order service that point at these fakes.
    pub fn order_peers(&self) -> shop::services::order::Peers {
        shop::services::order::Peers {
            offer: self.url.clone(),
            inventory: self.url.clone(),
            payment: self.url.clone(),
        }
    }
}
