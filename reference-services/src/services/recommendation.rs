//! Recommendation service (gRPC `RecommendationService`): "bought together" suggestions learnt
//! from the `order.created` events on Kafka topic `orders`.
//!
//! Every order adds one to the co-purchase count of each pair of its products (both directions)
//! and to the purchase count of each product. The counts live in the database and are updated in
//! the same transaction that records the event id, so a redelivered event is recognised and
//! counted once. A query ranks the most co-purchased products first, then fills up with the
//! best sellers and finally with neighbouring product ids, so a caller always gets as many
//! suggestions as it asked for, even before the first order.

use std::collections::{BTreeSet, HashSet};

use anyhow::{Result, ensure};
use tonic::{Request, Response, Status};

use crate::{
    platform::{
        config::parse_env,
        events::{self, Envelope, TOPIC_ORDERS},
        http::Runtime,
        metrics::{Metrics, TopicLabels},
        storage::{Db, db_status},
    },
    proto::{
        GetRecommendationsRequest, Recommendation, RecommendationList,
        recommendation_service_server::{RecommendationService, RecommendationServiceServer},
    },
};

pub const CONSUMER_GROUP: &str = "recommendation-group";
pub const DEFAULT_LIMIT: i64 = 5;
pub const MAX_LIMIT: i64 = 20;
/// Size of the catalog when `PRODUCT_COUNT` is not set (the product service's default seed).
pub const DEFAULT_PRODUCT_COUNT: i64 = 1000;

/// Runs the service with the catalog size from `PRODUCT_COUNT` until shutdown.
pub async fn run(rt: Runtime) -> Result<()> {
    let product_count = parse_env::<i64>("PRODUCT_COUNT")?.unwrap_or(DEFAULT_PRODUCT_COUNT);
    run_with(rt, product_count).await
}

/// Runs the service for a catalog of products `1..=product_count`.
pub async fn run_with(mut rt: Runtime, product_count: i64) -> Result<()> {
    ensure!(
        product_count >= 1,
        "PRODUCT_COUNT must be at least 1, got {product_count}"
    );
    let db = Db::connect(&rt.config).await?;
    db.migrate(&schema()).await?;
    let bootstrap = rt.config.require_kafka()?;
    let consumer = events::consumer(bootstrap, CONSUMER_GROUP, &[TOPIC_ORDERS])?;

    let ping_db = db.clone();
    rt.readiness.add("database", move || {
        let db = ping_db.clone();
        async move { db.ping().await }
    });
    rt.readiness.add(
        "kafka",
        events::metadata_check(events::producer(bootstrap)?),
    );

    let counts = Counts {
        db: db.clone(),
        metrics: rt.metrics.clone(),
    };
    rt.shutdown.spawn(events::consume(
        consumer,
        rt.metrics.clone(),
        rt.shutdown.clone(),
        move |_topic, envelope| {
            let counts = counts.clone();
            async move { counts.apply(&envelope).await }
        },
    ));
    let service = Recommendations { db, product_count };
    let router =
        tonic::service::Routes::new(RecommendationServiceServer::new(service)).into_axum_router();
    rt.serve(router).await
}

fn schema() -> Vec<String> {
    vec![
        "CREATE TABLE IF NOT EXISTS processed_events (
            event_id TEXT PRIMARY KEY,
            processed_at BIGINT NOT NULL
        )"
        .to_string(),
        "CREATE TABLE IF NOT EXISTS co_purchases (
            product_id BIGINT NOT NULL,
            other_id BIGINT NOT NULL,
            times BIGINT NOT NULL,
            PRIMARY KEY (product_id, other_id)
        )"
        .to_string(),
        "CREATE TABLE IF NOT EXISTS purchases (
            product_id BIGINT PRIMARY KEY,
            times BIGINT NOT NULL
        )"
        .to_string(),
    ]
}

/// Applies order events to the counts.
#[derive(Clone)]
struct Counts {
    db: Db,
    metrics: std::sync::Arc<Metrics>,
}

impl Counts {
    async fn apply(&self, envelope: &Envelope) -> Result<()> {
        if envelope.event_type != "order.created" {
            return Ok(());
        }
        let products = ordered_products(&envelope.data);
        if products.is_empty() {
            tracing::warn!(event_id = %envelope.event_id, "order.created without products; skipped");
            return Ok(());
        }
        let mut tx = self.db.pool.begin().await?;
        let first_time = sqlx::query(
            "INSERT INTO processed_events (event_id, processed_at) VALUES ($1, $2)
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(&envelope.event_id)
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !first_time {
            self.metrics
                .events_duplicate
                .get_or_create(&TopicLabels {
                    topic: TOPIC_ORDERS.to_string(),
                })
                .inc();
            return Ok(());
        }
        for &product in &products {
            sqlx::query(
                "INSERT INTO purchases (product_id, times) VALUES ($1, 1)
                 ON CONFLICT (product_id) DO UPDATE SET times = purchases.times + 1",
            )
            .bind(product)
            .execute(&mut *tx)
            .await?;
        }
        for (a, b) in pairs(&products) {
            sqlx::query(
                "INSERT INTO co_purchases (product_id, other_id, times) VALUES ($1, $2, 1)
                 ON CONFLICT (product_id, other_id) DO UPDATE SET times = co_purchases.times + 1",
            )
            .bind(a)
            .bind(b)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The distinct product ids of an `order.created` payload.
fn ordered_products(data: &serde_json::Value) -> Vec<i64> {
    let items = data["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let ids: BTreeSet<i64> = items
        .iter()
        .filter_map(|item| item["product_id"].as_i64())
        .filter(|id| *id > 0)
        .collect();
    ids.into_iter().collect()
}

/// Every ordered pair of different products: co-purchase counts are kept in both directions.
fn pairs(products: &[i64]) -> impl Iterator<Item = (i64, i64)> + '_ {
    products.iter().flat_map(move |&a| {
        products
            .iter()
            .filter(move |&&b| b != a)
            .map(move |&b| (a, b))
    })
}

/// The gRPC side: reads the counts.
#[derive(Clone)]
struct Recommendations {
    db: Db,
    product_count: i64,
}

#[tonic::async_trait]
impl RecommendationService for Recommendations {
    async fn get_recommendations(
        &self,
        request: Request<GetRecommendationsRequest>,
    ) -> Result<Response<RecommendationList>, Status> {
        let req = request.into_inner();
        if req.product_id <= 0 {
            return Err(Status::invalid_argument("product_id must be positive"));
        }
        if req.product_id > self.product_count {
            return Err(Status::not_found(format!(
                "product {} not found",
                req.product_id
            )));
        }
        let limit = effective_limit(req.limit);
        let bought_with: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT other_id, times FROM co_purchases WHERE product_id = $1
             ORDER BY times DESC, other_id LIMIT $2",
        )
        .bind(req.product_id)
        .bind(limit)
        .fetch_all(&self.db.pool)
        .await
        .map_err(db_status)?;
        // Enough best sellers to fill up after dropping the product itself and those above.
        let best_sellers: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT product_id, times FROM purchases ORDER BY times DESC, product_id LIMIT $1",
        )
        .bind(2 * limit + 1)
        .fetch_all(&self.db.pool)
        .await
        .map_err(db_status)?;
        let items = rank(
            req.product_id,
            limit,
            self.product_count,
            &bought_with,
            &best_sellers,
        );
        Ok(Response::new(RecommendationList {
            product_id: req.product_id,
            items,
        }))
    }
}

/// The requested number of suggestions: the default for 0 (or less), at most [`MAX_LIMIT`].
pub fn effective_limit(requested: i64) -> i64 {
    if requested <= 0 {
        DEFAULT_LIMIT
    } else {
        requested.min(MAX_LIMIT)
    }
}

/// Up to `limit` suggestions for `product_id`: co-purchased products (by count), then best
/// sellers, then neighbouring ids (+1, -1, +2, -2, ...) within `1..=product_count`, never the
/// product itself nor one product twice. Scores are co-purchase or purchase counts (0 for fill).
pub fn rank(
    product_id: i64,
    limit: i64,
    product_count: i64,
    bought_with: &[(i64, i64)],
    best_sellers: &[(i64, i64)],
) -> Vec<Recommendation> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let mut chosen = Vec::with_capacity(limit);
    let mut seen = HashSet::from([product_id]);
    let neighbours = (1..product_count)
        .flat_map(|d| [product_id + d, product_id - d])
        .filter(|id| (1..=product_count).contains(id))
        .map(|id| (id, 0));
    let candidates = bought_with
        .iter()
        .copied()
        .chain(best_sellers.iter().copied())
        .chain(neighbours);
    for (id, score) in candidates {
        if chosen.len() == limit {
            break;
        }
        if seen.insert(id) {
            chosen.push(Recommendation {
                product_id: id,
                score,
            });
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(items: &[Recommendation]) -> Vec<i64> {
        items.iter().map(|r| r.product_id).collect()
    }

    #[test]
    fn co_purchases_first_then_best_sellers_then_neighbours() {
        let ranked = rank(10, 6, 1000, &[(3, 5), (7, 2)], &[(10, 9), (3, 8), (42, 4)]);
        assert_eq!(ids(&ranked), vec![3, 7, 42, 11, 9, 12]);
        assert_eq!(
            ranked.iter().map(|r| r.score).collect::<Vec<_>>(),
            vec![5, 2, 4, 0, 0, 0]
        );
    }

    #[test]
    fn neighbours_stay_inside_the_catalog() {
        assert_eq!(ids(&rank(1, 3, 1000, &[], &[])), vec![2, 3, 4]);
        assert_eq!(ids(&rank(1000, 2, 1000, &[], &[])), vec![999, 998]);
        assert_eq!(
            ids(&rank(2, 5, 3, &[], &[])),
            vec![3, 1],
            "a tiny catalog has fewer"
        );
    }

    #[test]
    fn limits_default_and_cap() {
        assert_eq!(effective_limit(0), DEFAULT_LIMIT);
        assert_eq!(effective_limit(-3), DEFAULT_LIMIT);
        assert_eq!(effective_limit(7), 7);
        assert_eq!(effective_limit(500), MAX_LIMIT);
    }

    #[test]
    fn pairs_go_both_ways_and_products_are_distinct() {
        let data = serde_json::json!({"items": [
            {"product_id": 2}, {"product_id": 1}, {"product_id": 2}, {"product_id": "x"}
        ]});
        let products = ordered_products(&data);
        assert_eq!(products, vec![1, 2]);
        assert_eq!(pairs(&products).collect::<Vec<_>>(), vec![(1, 2), (2, 1)]);
    }
}
