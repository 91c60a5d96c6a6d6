//! The product service (gRPC `ProductService`): the catalog.
//!
//! The catalog is generated, not loaded: a fixed-seed generator combines word lists into names
//! like "Ergonomic Steel Keyboard", so every run of every environment has the same products with
//! the same ids (1..=N), prices and categories. Load scenarios can therefore name products by id
//! and expect the same answer everywhere. The catalog is written to the database on first start
//! (`PRODUCT_COUNT`, default 1000) and served from there.

use anyhow::{Result, bail};
use tonic::{Request, Response, Status};

use crate::{
    platform::{
        config::parse_env,
        http::Runtime,
        storage::{Db, db_status},
    },
    proto::{
        GetProductRequest, GetProductsRequest, ListProductsRequest, Product, ProductList,
        SearchProductsRequest,
        product_service_server::{ProductService, ProductServiceServer},
    },
};

/// Catalog size when `PRODUCT_COUNT` is not set.
pub const DEFAULT_PRODUCT_COUNT: i64 = 1000;
/// Page size when a request does not give one.
pub const DEFAULT_PAGE_SIZE: i64 = 10;
/// Largest page a request may ask for.
pub const MAX_PAGE_SIZE: i64 = 100;
/// Most ids one `GetProducts` call may ask for.
pub const MAX_BATCH: usize = 500;
/// Longest search query, in characters.
pub const MAX_QUERY_CHARS: usize = 100;

/// The categories of the catalog; every product is in exactly one.
pub const CATEGORIES: [&str; 10] = [
    "electronics",
    "books",
    "clothing",
    "home",
    "garden",
    "sports",
    "toys",
    "beauty",
    "grocery",
    "automotive",
];

/// The catalog size from `PRODUCT_COUNT` (shared with the inventory service, which stocks the
/// same ids).
pub fn product_count_from_env() -> Result<i64> {
    let count = parse_env::<i64>("PRODUCT_COUNT")?.unwrap_or(DEFAULT_PRODUCT_COUNT);
    if !(1..=1_000_000).contains(&count) {
        bail!("PRODUCT_COUNT must be within 1..=1000000, got {count}");
    }
    Ok(count)
}

/// Runs the product service with the catalog size from the environment.
pub async fn run(rt: Runtime) -> Result<()> {
    run_with(rt, product_count_from_env()?).await
}

/// Runs the product service with a catalog of `count` products.
pub async fn run_with(rt: Runtime, count: i64) -> Result<()> {
    let db = Db::connect(&rt.config).await?;
    db.migrate(&[
        "CREATE TABLE IF NOT EXISTS products (
            id BIGINT PRIMARY KEY,
            name TEXT NOT NULL,
            description TEXT NOT NULL,
            category TEXT NOT NULL,
            price_cents BIGINT NOT NULL
        )"
        .to_string(),
        "CREATE INDEX IF NOT EXISTS products_category ON products (category, id)".to_string(),
    ])
    .await?;
    seed(&db, count).await?;

    let mut rt = rt;
    let probe = db.clone();
    rt.readiness.add("db", move || {
        let db = probe.clone();
        async move { db.ping().await }
    });
    let service = ProductServiceServer::new(Catalog { db });
    rt.serve(tonic::service::Routes::new(service).into_axum_router())
        .await
}

/// Writes the generated catalog unless it is already there (rows that exist are kept: they are
/// the same rows, since generation is deterministic).
async fn seed(db: &Db, count: i64) -> Result<()> {
    let (present,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM products WHERE id <= $1")
        .bind(count)
        .fetch_one(&db.pool)
        .await?;
    if present >= count {
        return Ok(());
    }
    let products = catalog(count);
    let mut tx = db.pool.begin().await?;
    for chunk in products.chunks(100) {
        let rows = (0..chunk.len())
            .map(|i| {
                let p = i * 5;
                format!(
                    "(${}, ${}, ${}, ${}, ${})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO products (id, name, description, category, price_cents) VALUES {rows}
             ON CONFLICT (id) DO NOTHING"
        );
        let mut query = sqlx::query(&sql);
        for product in chunk {
            query = query
                .bind(product.id)
                .bind(&product.name)
                .bind(&product.description)
                .bind(&product.category)
                .bind(product.price_cents);
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    tracing::info!(count, "catalog seeded");
    Ok(())
}

/// The `ProductService` implementation.
struct Catalog {
    db: Db,
}

type ProductRow = (i64, String, String, String, i64);
const COLUMNS: &str = "id, name, description, category, price_cents";

fn to_product((id, name, description, category, price_cents): ProductRow) -> Product {
    Product {
        id,
        name,
        description,
        category,
        price_cents,
    }
}

/// `$first, $first+1, ...` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The page size a request asked for, defaulted and bounded.
fn page_size(limit: i64) -> Result<i64, Status> {
    match limit {
        0 => Ok(DEFAULT_PAGE_SIZE),
        1..=MAX_PAGE_SIZE => Ok(limit),
        _ => Err(Status::invalid_argument("limit must be within 1..=100")),
    }
}

/// A `LIKE` pattern matching `text` anywhere, with the wildcards in `text` taken literally.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Catalog {
    async fn by_ids(&self, ids: &[i64]) -> Result<Vec<Product>, Status> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM products WHERE id IN ({})",
            placeholders(1, ids.len())
        );
        let mut query = sqlx::query_as::<_, ProductRow>(&sql);
        for id in ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&self.db.pool).await.map_err(db_status)?;
        Ok(rows.into_iter().map(to_product).collect())
    }
}

#[tonic::async_trait]
impl ProductService for Catalog {
    async fn get_product(
        &self,
        request: Request<GetProductRequest>,
    ) -> Result<Response<Product>, Status> {
        let id = request.into_inner().id;
        let found = self.by_ids(&[id]).await?.pop();
        found
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("product {id} not found")))
    }

    async fn get_products(
        &self,
        request: Request<GetProductsRequest>,
    ) -> Result<Response<ProductList>, Status> {
        let mut ids = request.into_inner().ids;
        ids.sort_unstable();
        ids.dedup();
        if ids.len() > MAX_BATCH {
            return Err(Status::invalid_argument("at most 500 ids per call"));
        }
        let mut products = self.by_ids(&ids).await?;
        products.sort_by_key(|p| p.id);
        let total = products.len() as i64;
        Ok(Response::new(ProductList { products, total }))
    }

    async fn list_products(
        &self,
        request: Request<ListProductsRequest>,
    ) -> Result<Response<ProductList>, Status> {
        let ListProductsRequest {
            skip,
            limit,
            category,
        } = request.into_inner();
        let limit = page_size(limit)?;
        if skip < 0 {
            return Err(Status::invalid_argument("skip must not be negative"));
        }
        if !category.is_empty() && !CATEGORIES.contains(&category.as_str()) {
            return Err(Status::invalid_argument(format!(
                "unknown category {category:?}; categories: {}",
                CATEGORIES.join(", ")
            )));
        }
        // An empty category matches every row, so one pair of statements serves both cases.
        let filter = "WHERE ($1 = '' OR category = $1)";
        let (total,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM products {filter}"))
            .bind(&category)
            .fetch_one(&self.db.pool)
            .await
            .map_err(db_status)?;
        let rows: Vec<ProductRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM products {filter} ORDER BY id LIMIT $2 OFFSET $3"
        ))
        .bind(&category)
        .bind(limit)
        .bind(skip)
        .fetch_all(&self.db.pool)
        .await
        .map_err(db_status)?;
        let products = rows.into_iter().map(to_product).collect();
        Ok(Response::new(ProductList { products, total }))
    }

    async fn search_products(
        &self,
        request: Request<SearchProductsRequest>,
    ) -> Result<Response<ProductList>, Status> {
        let SearchProductsRequest { query, limit } = request.into_inner();
        let limit = page_size(limit)?;
        let chars = query.chars().count();
        if chars == 0 || chars > MAX_QUERY_CHARS {
            return Err(Status::invalid_argument(
                "query must be 1 to 100 characters",
            ));
        }
        if query.contains('\0') {
            return Err(Status::invalid_argument(
                "query must not contain NUL characters",
            ));
        }
        let pattern = contains_pattern(&query);
        let filter = "WHERE LOWER(name) LIKE $1 ESCAPE '\\' OR LOWER(category) LIKE $1 ESCAPE '\\'";
        let (total,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM products {filter}"))
            .bind(&pattern)
            .fetch_one(&self.db.pool)
            .await
            .map_err(db_status)?;
        let rows: Vec<ProductRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM products {filter} ORDER BY id LIMIT $2"
        ))
        .bind(&pattern)
        .bind(limit)
        .fetch_all(&self.db.pool)
        .await
        .map_err(db_status)?;
        let products = rows.into_iter().map(to_product).collect();
        Ok(Response::new(ProductList { products, total }))
    }
}

// ---- The deterministic catalog generator ----

const SEED: u64 = 0x5EED_CA7A_1060_0001;

const ADJECTIVES: [&str; 16] = [
    "Ergonomic",
    "Rustic",
    "Sleek",
    "Intelligent",
    "Gorgeous",
    "Incredible",
    "Practical",
    "Durable",
    "Lightweight",
    "Compact",
    "Handcrafted",
    "Refined",
    "Modern",
    "Classic",
    "Premium",
    "Essential",
];

const MATERIALS: [&str; 12] = [
    "Steel", "Wooden", "Cotton", "Granite", "Plastic", "Leather", "Bamboo", "Aluminum", "Ceramic",
    "Wool", "Glass", "Carbon",
];

/// Nouns and the price range in whole currency units, per category (same order as
/// [`CATEGORIES`]).
#[rustfmt::skip] // one category per line reads better than rustfmt's one word per line
const CATEGORY_ITEMS: [(&[&str], (u64, u64)); 10] = [
    (&["Keyboard", "Mouse", "Monitor", "Headphones", "Speaker", "Charger", "Webcam", "Router"], (15, 900)),
    (&["Notebook", "Journal", "Cookbook", "Atlas", "Novel", "Planner", "Sketchbook", "Almanac"], (5, 60)),
    (&["Shirt", "Jacket", "Scarf", "Hat", "Sweater", "Socks", "Gloves", "Coat"], (8, 250)),
    (&["Chair", "Table", "Lamp", "Clock", "Pillow", "Shelf", "Mirror", "Rug"], (10, 600)),
    (&["Shovel", "Planter", "Hose", "Rake", "Trowel", "Bench", "Birdhouse", "Watering Can"], (6, 300)),
    (&["Ball", "Racket", "Bicycle", "Helmet", "Yoga Mat", "Dumbbell", "Skateboard", "Tent"], (10, 800)),
    (&["Puzzle", "Robot", "Kite", "Yo-Yo", "Train Set", "Doll", "Building Blocks", "Spinning Top"], (4, 150)),
    (&["Brush", "Comb", "Soap", "Razor", "Hair Dryer", "Lotion", "Perfume", "Nail Kit"], (3, 120)),
    (&["Cheese", "Coffee", "Tea", "Chocolate", "Honey", "Pasta", "Olive Oil", "Granola"], (2, 45)),
    (&["Car Mat", "Tire Gauge", "Jump Starter", "Seat Cover", "Wiper", "Tool Kit", "Phone Mount", "Dash Cam"], (5, 350)),
];

const TAGLINES: [&str; 8] = [
    "Built to last.",
    "A customer favourite.",
    "Ships in recyclable packaging.",
    "Backed by a two-year warranty.",
    "Designed for everyday use.",
    "Tested by our own team.",
    "Easy to clean and care for.",
    "Makes a thoughtful gift.",
];

/// SplitMix64: tiny, fast, and fully specified here, so the catalog cannot change with a
/// dependency's version (unlike `rand`'s `StdRng`, whose algorithm may change).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// The first `count` products of the catalog, ids `1..=count`. Pure: the same `count` always
/// gives the same products, and a larger catalog extends a smaller one.
pub fn catalog(count: i64) -> Vec<Product> {
    let mut rng = SplitMix64(SEED);
    (1..=count).map(|id| generate(id, &mut rng)).collect()
}

fn generate(id: i64, rng: &mut SplitMix64) -> Product {
    let category = rng.below(CATEGORIES.len());
    let (nouns, (min_price, max_price)) = CATEGORY_ITEMS[category];
    let adjective = rng.pick(&ADJECTIVES);
    let material = rng.pick(&MATERIALS);
    let noun = rng.pick(nouns);
    let whole = min_price + rng.next() % (max_price - min_price + 1);
    let cents = [0, 49, 99][rng.below(3)];
    let tagline = rng.pick(&TAGLINES);
    Product {
        id,
        name: format!("{adjective} {material} {noun}"),
        description: format!(
            "{} {} {} made of {}. {tagline}",
            if adjective.starts_with(['A', 'E', 'I', 'O', 'U']) {
                "An"
            } else {
                "A"
            },
            adjective.to_lowercase(),
            noun.to_lowercase(),
            material.to_lowercase(),
        ),
        category: CATEGORIES[category].to_string(),
        price_cents: (whole * 100 + cents) as i64,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use tonic::Code;

    use super::*;
    use crate::{platform::grpc, proto::product_service_client::ProductServiceClient, testkit};

    type Client = ProductServiceClient<grpc::TracedChannel>;

    #[test]
    fn catalog_is_deterministic_and_varied() {
        let first = catalog(DEFAULT_PRODUCT_COUNT);
        assert_eq!(first, catalog(DEFAULT_PRODUCT_COUNT), "same catalog twice");
        assert_eq!(first.len(), 1000);
        assert_eq!(
            catalog(10)[..],
            first[..10],
            "a small catalog is a prefix of a larger one"
        );
        assert!(first.iter().map(|p| p.id).eq(1..=1000));
        let categories: BTreeSet<&str> = first.iter().map(|p| p.category.as_str()).collect();
        assert_eq!(categories.len(), CATEGORIES.len());
        assert!(
            first
                .iter()
                .all(|p| p.price_cents > 0 && p.name.split(' ').count() >= 3)
        );
        let names: BTreeSet<&str> = first.iter().map(|p| p.name.as_str()).collect();
        assert!(
            names.len() > 500,
            "names should vary, got {} distinct",
            names.len()
        );
        // Pinned, so an accidental change of the generator (which would silently change every
        // environment's catalog) fails here.
        let pinned = &first[0];
        assert_eq!(
            (
                pinned.name.as_str(),
                pinned.category.as_str(),
                pinned.price_cents
            ),
            PINNED_FIRST_PRODUCT
        );
    }

    const PINNED_FIRST_PRODUCT: (&str, &str, i64) = ("Sleek Wool Perfume", "beauty", 4700);

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(contains_pattern("Key"), "%key%");
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }

    async fn start_catalog(dir: &std::path::Path) -> (testkit::Running, Client) {
        let running = testkit::start("product", dir, |rt| run_with(rt, 1000)).await;
        let client = ProductServiceClient::new(grpc::channel(&running.url).unwrap());
        (running, client)
    }

    fn search(query: &str, limit: i64) -> SearchProductsRequest {
        SearchProductsRequest {
            query: query.into(),
            limit,
        }
    }

    #[tokio::test]
    async fn serves_the_seeded_catalog() {
        let dir = tempfile::tempdir().unwrap();
        let (service, mut client) = start_catalog(dir.path()).await;
        let expected = catalog(1000);

        let page = client
            .list_products(ListProductsRequest {
                skip: 10,
                limit: 5,
                category: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.total, 1000);
        assert_eq!(page.products, expected[10..15]);

        let mut per_category = 0;
        for category in CATEGORIES {
            let request = ListProductsRequest {
                skip: 0,
                limit: 100,
                category: category.into(),
            };
            let list = client.list_products(request).await.unwrap().into_inner();
            assert!(list.products.iter().all(|p| p.category == category));
            per_category += list.total;
        }
        assert_eq!(per_category, 1000);

        let one = client
            .get_product(GetProductRequest { id: 1000 })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(one, expected[999]);
        let missing = client
            .get_product(GetProductRequest { id: 1001 })
            .await
            .unwrap_err();
        assert_eq!(missing.code(), Code::NotFound);

        let batch = client
            .get_products(GetProductsRequest {
                ids: vec![3, 1, 3, 5000],
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            batch.products,
            vec![expected[0].clone(), expected[2].clone()]
        );

        // Restarting on the same data keeps exactly one catalog.
        service.stop().await;
        let (_service, mut client) = start_catalog(dir.path()).await;
        let all = client
            .list_products(ListProductsRequest::default())
            .await
            .unwrap();
        assert_eq!(all.into_inner().total, 1000);
    }

    #[tokio::test]
    async fn search_matches_names_and_categories_case_insensitively() {
        let dir = tempfile::tempdir().unwrap();
        let (_service, mut client) = start_catalog(dir.path()).await;
        let expected = catalog(1000);

        let keyboards = client
            .search_products(search("KEYboard", 100))
            .await
            .unwrap()
            .into_inner();
        let expected_keyboards = expected
            .iter()
            .filter(|p| p.name.contains("Keyboard"))
            .count();
        assert!(expected_keyboards > 0);
        assert_eq!(keyboards.total as usize, expected_keyboards);
        assert!(
            keyboards
                .products
                .iter()
                .all(|p| p.name.contains("Keyboard"))
        );

        let books = client
            .search_products(search("books", 5))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(books.products.len(), 5);
        let expected_books = expected.iter().filter(|p| p.category == "books").count();
        assert_eq!(books.total as usize, expected_books);

        let wildcard = client
            .search_products(search("%", 10))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            wildcard.total, 0,
            "% is a literal character, not a wildcard"
        );

        let nul = client
            .search_products(search("a\0b", 10))
            .await
            .unwrap_err();
        assert_eq!(nul.code(), Code::InvalidArgument);
        let empty = client.search_products(search("", 10)).await.unwrap_err();
        assert_eq!(empty.code(), Code::InvalidArgument);
        let too_many = client
            .search_products(search("lamp", 101))
            .await
            .unwrap_err();
        assert_eq!(too_many.code(), Code::InvalidArgument);
        let unknown_category = client
            .list_products(ListProductsRequest {
                category: "weapons".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(unknown_category.code(), Code::InvalidArgument);
    }
}
