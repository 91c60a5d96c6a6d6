//! Product routes: listing, search and one product, each with its stock.

use super::*;

impl Gateway {
    /// Available stock of each product (missing ones count as 0).
    pub(super) async fn stock(&self, ids: Vec<i64>) -> Result<HashMap<i64, i64>, ApiError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let list = self
            .inventory
            .clone()
            .get_stock(GetStockRequest { product_ids: ids })
            .await?;
        Ok(list
            .into_inner()
            .items
            .into_iter()
            .map(|s| (s.product_id, s.available))
            .collect())
    }

    /// The products as the API shows them, with their stock, in the given order.
    pub(super) async fn product_views(
        &self,
        products: Vec<Product>,
    ) -> Result<Vec<ProductView>, ApiError> {
        let stock = self.stock(products.iter().map(|p| p.id).collect()).await?;
        Ok(products
            .into_iter()
            .map(|p| product_view(p, &stock))
            .collect())
    }

    /// The products with these ids (unknown ones left out), keyed by id.
    pub(super) async fn products_by_id(
        &self,
        ids: Vec<i64>,
    ) -> Result<HashMap<i64, Product>, ApiError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let list = self
            .products
            .clone()
            .get_products(GetProductsRequest { ids })
            .await?;
        Ok(list
            .into_inner()
            .products
            .into_iter()
            .map(|p| (p.id, p))
            .collect())
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    skip: Option<i64>,
    limit: Option<i64>,
    category: Option<String>,
}

pub(super) async fn list_products(
    State(gw): State<Gateway>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let skip = check_range("skip", query.skip.unwrap_or(0), 0, MAX_SKIP)?;
    let limit = check_range(
        "limit",
        query.limit.unwrap_or(product::DEFAULT_PAGE_SIZE),
        1,
        product::MAX_PAGE_SIZE,
    )?;
    // A given category must be a real one (`category=` too: it is not a way to say "all").
    if let Some(category) = &query.category
        && !CATEGORIES.contains(&category.as_str())
    {
        return Err(ApiError::bad_request(format!(
            "category must be one of {}",
            CATEGORIES.join(", ")
        )));
    }
    let request = ListProductsRequest {
        skip,
        limit,
        category: query.category.unwrap_or_default(),
    };
    let list = gw
        .products
        .clone()
        .list_products(request)
        .await?
        .into_inner();
    let products = gw.product_views(list.products).await?;
    Ok(Json(json!({"products": products, "total": list.total})))
}

#[derive(Debug, Deserialize)]
pub(super) struct SearchQuery {
    q: Option<String>,
    limit: Option<i64>,
}

pub(super) async fn search_products(
    State(gw): State<Gateway>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    let q = query.q.unwrap_or_default();
    check_len("q", &q, 1, product::MAX_QUERY_CHARS)?;
    let limit = check_range(
        "limit",
        query.limit.unwrap_or(product::DEFAULT_PAGE_SIZE),
        1,
        product::MAX_PAGE_SIZE,
    )?;
    let found = gw
        .products
        .clone()
        .search_products(SearchProductsRequest { query: q, limit })
        .await?;
    let found = found.into_inner();
    let results = gw.product_views(found.products).await?;
    Ok(Json(json!({"results": results, "total": found.total})))
}

pub(super) async fn get_product(
    State(gw): State<Gateway>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    check_product_id(id)?;
    let (product, stock) = futures::try_join!(
        async {
            Ok::<_, ApiError>(
                gw.products
                    .clone()
                    .get_product(GetProductRequest { id })
                    .await?
                    .into_inner(),
            )
        },
        gw.stock(vec![id]),
    )?;
    Ok(Json(json!(product_view(product, &stock))))
}
