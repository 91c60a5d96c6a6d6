//! The offer service (gRPC `OfferService`): price rules and quotes.
//!
//! It is the one place that knows discounts, so the order service asks it for the price of every
//! line instead of trusting a client. The rules are fixed and held in memory: two category sales,
//! a quantity discount, and a weekly deal on the products whose id ends in the digit of the
//! current ISO week. A line gets the single best offer that applies to it (offers do not stack).
//! List prices come from the product service.

use std::collections::HashMap;

use anyhow::Result;
use chrono::Datelike;
use tonic::{Request, Response, Status};

use crate::{
    platform::{
        balance::{self, Balancing},
        config::peer_url,
        grpc::TracedChannel,
        http::Runtime,
    },
    proto::{
        GetOffersRequest, GetProductRequest, GetProductsRequest, Offer, OfferList, Product,
        QuoteLine, QuoteRequest, QuoteResponse, QuotedLine,
        offer_service_server::{OfferService, OfferServiceServer},
        product_service_client::ProductServiceClient,
    },
};

/// Most lines one quote may have.
pub const MAX_QUOTE_LINES: usize = 100;
/// Largest quantity of one quoted line (keeps totals far from overflow).
pub const MAX_QUOTE_QUANTITY: i64 = 1_000_000;

/// Runs the offer service with the product service from `PRODUCT_URL`.
pub async fn run(rt: Runtime) -> Result<()> {
    run_with(rt, peer_url("product", 50051)).await
}

/// Runs the offer service against the product service at `product_url`.
pub async fn run_with(rt: Runtime, product_url: String) -> Result<()> {
    let products =
        ProductServiceClient::new(balance::channel(&product_url, &Balancing::from_env()?)?);
    let mut rt = rt;
    rt.readiness.add("product", peer_health_check(product_url));
    let service = OfferServiceServer::new(Offers { products });
    rt.serve(tonic::service::Routes::new(service).into_axum_router())
        .await
}

/// A readiness check that the service at `base_url` answers its `/health` route.
pub(crate) fn peer_health_check(
    base_url: String,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>>
+ Send
+ Sync
+ 'static {
    let client = reqwest::Client::new();
    let url = format!("{}/health", base_url.trim_end_matches('/'));
    move || {
        let request = client.get(&url).send();
        Box::pin(async move {
            let response = request.await.map_err(|e| e.to_string())?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(format!("health answered {}", response.status()))
            }
        })
    }
}

/// Which products a rule applies to.
#[derive(Clone, Debug, PartialEq)]
enum Scope {
    Category(&'static str),
    AnyProduct,
    /// Products whose id ends in this digit.
    IdEndingIn(i64),
}

/// One price rule.
#[derive(Clone, Debug, PartialEq)]
struct Rule {
    id: &'static str,
    description: String,
    discount_percent: i64,
    min_quantity: i64,
    scope: Scope,
}

impl Rule {
    fn covers(&self, product: &Product) -> bool {
        match &self.scope {
            Scope::Category(category) => product.category == *category,
            Scope::AnyProduct => true,
            Scope::IdEndingIn(digit) => product.id % 10 == *digit,
        }
    }

    fn as_offer(&self) -> Offer {
        Offer {
            id: self.id.to_string(),
            description: self.description.clone(),
            discount_percent: self.discount_percent,
            min_quantity: self.min_quantity,
        }
    }
}

/// The rules in force during ISO week `week`.
#[derive(Clone, Debug)]
pub struct PriceRules {
    rules: Vec<Rule>,
}

impl PriceRules {
    pub fn for_week(week: u32) -> Self {
        let digit = i64::from(week % 10);
        let rule = |id, description: String, discount_percent, min_quantity, scope| Rule {
            id,
            description,
            discount_percent,
            min_quantity,
            scope,
        };
        Self {
            rules: vec![
                rule(
                    "electronics-sale",
                    "10% off electronics".into(),
                    10,
                    1,
                    Scope::Category("electronics"),
                ),
                rule(
                    "books-sale",
                    "15% off books".into(),
                    15,
                    1,
                    Scope::Category("books"),
                ),
                rule(
                    "bulk-3",
                    "10% off from 3 items".into(),
                    10,
                    3,
                    Scope::AnyProduct,
                ),
                rule(
                    "weekly-deal",
                    format!("Deal of the week: 25% off products whose id ends in {digit}"),
                    25,
                    1,
                    Scope::IdEndingIn(digit),
                ),
            ],
        }
    }

    /// The rules of the current ISO week.
    pub fn current() -> Self {
        Self::for_week(chrono::Utc::now().iso_week().week())
    }

    /// Every offer that can apply to `product` at some quantity.
    fn offers_for(&self, product: &Product) -> Vec<Offer> {
        self.rules
            .iter()
            .filter(|r| r.covers(product))
            .map(Rule::as_offer)
            .collect()
    }

    /// The biggest discount that applies to `quantity` of `product` (the first one on a tie).
    fn best(&self, product: &Product, quantity: i64) -> Option<&Rule> {
        self.rules
            .iter()
            .filter(|r| r.covers(product) && quantity >= r.min_quantity)
            .fold(None, |best: Option<&Rule>, r| match best {
                Some(b) if b.discount_percent >= r.discount_percent => Some(b),
                _ => Some(r),
            })
    }

    /// Prices `quantity` of `product` with its best offer.
    fn quote_line(&self, product: &Product, quantity: i64) -> QuotedLine {
        let best = self.best(product, quantity);
        let unit_price_cents = discounted(
            product.price_cents,
            best.map_or(0, |rule| rule.discount_percent),
        );
        QuotedLine {
            product_id: product.id,
            quantity,
            unit_price_cents,
            line_total_cents: unit_price_cents * quantity,
            offer_id: best.map_or_else(String::new, |rule| rule.id.to_string()),
        }
    }
}

/// `price_cents` less `percent`, the discount rounded to the nearest cent (half up).
pub fn discounted(price_cents: i64, percent: i64) -> i64 {
    price_cents - (price_cents * percent + 50) / 100
}

/// The `OfferService` implementation.
struct Offers {
    products: ProductServiceClient<TracedChannel>,
}

fn validate_quote(lines: &[QuoteLine]) -> Result<(), Status> {
    if lines.is_empty() || lines.len() > MAX_QUOTE_LINES {
        return Err(Status::invalid_argument("a quote needs 1 to 100 lines"));
    }
    for line in lines {
        if !(1..=MAX_QUOTE_QUANTITY).contains(&line.quantity) {
            return Err(Status::invalid_argument(format!(
                "quantity of product {} must be 1 to {MAX_QUOTE_QUANTITY}",
                line.product_id
            )));
        }
    }
    Ok(())
}

#[tonic::async_trait]
impl OfferService for Offers {
    async fn get_offers(
        &self,
        request: Request<GetOffersRequest>,
    ) -> Result<Response<OfferList>, Status> {
        let id = request.into_inner().product_id;
        let product = self
            .products
            .clone()
            .get_product(GetProductRequest { id })
            .await?
            .into_inner();
        let rules = PriceRules::current();
        Ok(Response::new(OfferList {
            product_id: product.id,
            price_cents: product.price_cents,
            best_price_cents: rules.quote_line(&product, 1).unit_price_cents,
            offers: rules.offers_for(&product),
        }))
    }

    async fn quote(
        &self,
        request: Request<QuoteRequest>,
    ) -> Result<Response<QuoteResponse>, Status> {
        let lines = request.into_inner().lines;
        validate_quote(&lines)?;
        let ids = lines.iter().map(|l| l.product_id).collect();
        let found = self
            .products
            .clone()
            .get_products(GetProductsRequest { ids })
            .await?;
        let products: HashMap<i64, Product> = found
            .into_inner()
            .products
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        let rules = PriceRules::current();
        let quoted = lines
            .iter()
            .map(|line| match products.get(&line.product_id) {
                Some(product) => Ok(rules.quote_line(product, line.quantity)),
                None => Err(Status::not_found(format!(
                    "product {} not found",
                    line.product_id
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let total_cents = quoted.iter().map(|l| l.line_total_cents).sum();
        Ok(Response::new(QuoteResponse {
            lines: quoted,
            total_cents,
        }))
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;
    use crate::{
        platform::grpc, proto::offer_service_client::OfferServiceClient, services::product, testkit,
    };

    fn product(id: i64, category: &str, price_cents: i64) -> Product {
        Product {
            id,
            name: "Thing".into(),
            description: String::new(),
            category: category.into(),
            price_cents,
        }
    }

    #[test]
    fn discounts_round_to_the_nearest_cent() {
        assert_eq!(discounted(1999, 0), 1999);
        assert_eq!(discounted(1999, 10), 1799); // 199.9 off rounds to 200
        assert_eq!(discounted(1995, 10), 1795); // 199.5 off rounds half up to 200
        assert_eq!(discounted(1000, 25), 750);
        assert_eq!(discounted(1, 15), 1); // 0.15 cent off rounds to nothing
    }

    #[test]
    fn the_best_single_offer_wins() {
        let rules = PriceRules::for_week(13); // weekly deal: ids ending in 3
        let keyboard = product(11, "electronics", 10_000);
        assert_eq!(rules.quote_line(&keyboard, 1).unit_price_cents, 9_000);
        assert_eq!(rules.quote_line(&keyboard, 1).offer_id, "electronics-sale");
        // From 3 items bulk (10%) ties with the category sale: the first rule is kept.
        assert_eq!(rules.quote_line(&keyboard, 3).offer_id, "electronics-sale");

        let book = product(12, "books", 2_000);
        let line = rules.quote_line(&book, 4);
        assert_eq!(
            (
                line.unit_price_cents,
                line.line_total_cents,
                line.offer_id.as_str()
            ),
            (1_700, 6_800, "books-sale")
        );

        let deal = product(23, "books", 2_000);
        assert_eq!(
            rules.quote_line(&deal, 1).unit_price_cents,
            1_500,
            "25% weekly deal beats 15%"
        );

        let lamp = product(14, "home", 999);
        let single = rules.quote_line(&lamp, 2);
        assert_eq!(
            (single.unit_price_cents, single.offer_id.as_str()),
            (999, "")
        );
        let bulk = rules.quote_line(&lamp, 3);
        assert_eq!((bulk.unit_price_cents, bulk.line_total_cents), (899, 2_697));

        let offers: Vec<String> = rules.offers_for(&deal).into_iter().map(|o| o.id).collect();
        assert_eq!(offers, ["books-sale", "bulk-3", "weekly-deal"]);
        assert!(
            PriceRules::for_week(14)
                .offers_for(&deal)
                .iter()
                .all(|o| o.id != "weekly-deal")
        );
    }

    #[tokio::test]
    async fn quotes_with_catalog_prices() {
        let dir = tempfile::tempdir().unwrap();
        let products =
            testkit::start("product", dir.path(), |rt| product::run_with(rt, 1000)).await;
        let product_url = products.url.clone();
        let offers = testkit::start("offer", dir.path(), |rt| run_with(rt, product_url)).await;
        let mut client = OfferServiceClient::new(grpc::channel(&offers.url).unwrap());

        let catalog = product::catalog(1000);
        let rules = PriceRules::current();
        let (first, second) = (&catalog[0], &catalog[1]);
        let quote = client
            .quote(QuoteRequest {
                lines: vec![
                    QuoteLine {
                        product_id: first.id,
                        quantity: 1,
                    },
                    QuoteLine {
                        product_id: second.id,
                        quantity: 3,
                    },
                ],
            })
            .await
            .unwrap()
            .into_inner();
        let expected = [rules.quote_line(first, 1), rules.quote_line(second, 3)];
        assert_eq!(quote.lines, expected);
        assert_eq!(
            quote.total_cents,
            expected[0].line_total_cents + expected[1].line_total_cents
        );
        assert!(
            quote.lines[1].unit_price_cents < second.price_cents,
            "3 items get a discount"
        );

        let list = client
            .get_offers(GetOffersRequest {
                product_id: first.id,
            })
            .await
            .unwrap();
        let list = list.into_inner();
        assert_eq!(list.price_cents, first.price_cents);
        assert_eq!(list.best_price_cents, expected[0].unit_price_cents);
        assert!(
            list.offers
                .iter()
                .any(|o| o.id == "bulk-3" && o.min_quantity == 3)
        );

        let unknown = client
            .quote(QuoteRequest {
                lines: vec![QuoteLine {
                    product_id: 5_000,
                    quantity: 1,
                }],
            })
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), Code::NotFound);
        let missing = client
            .get_offers(GetOffersRequest { product_id: 5_000 })
            .await
            .unwrap_err();
        assert_eq!(missing.code(), Code::NotFound);
        let empty = client
            .quote(QuoteRequest { lines: vec![] })
            .await
            .unwrap_err();
        assert_eq!(empty.code(), Code::InvalidArgument);
    }
}
