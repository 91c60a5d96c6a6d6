//! Recommendation and offer routes.

use super::*;

#[derive(Debug, Deserialize)]
pub(super) struct RecommendationsQuery {
    product_id: Option<i64>,
    limit: Option<i64>,
}

pub(super) async fn recommendations(
    State(gw): State<Gateway>,
    ApiQuery(query): ApiQuery<RecommendationsQuery>,
) -> Result<Json<Value>, ApiError> {
    let product_id = check_product_id(required(query.product_id, "product_id")?)?;
    let limit = check_range(
        "limit",
        query.limit.unwrap_or(recommendation::DEFAULT_LIMIT),
        1,
        recommendation::MAX_LIMIT,
    )?;
    // The product is checked first, so the recommender is only asked about real products.
    gw.products
        .clone()
        .get_product(GetProductRequest { id: product_id })
        .await?;
    let request = GetRecommendationsRequest { product_id, limit };
    let suggested = gw
        .recommendations
        .clone()
        .get_recommendations(request)
        .await?
        .into_inner();
    let ids: Vec<i64> = suggested.items.iter().map(|r| r.product_id).collect();
    let mut found = gw.products_by_id(ids.clone()).await?;
    // In the recommender's order (best first).
    let products: Vec<Product> = ids.iter().filter_map(|id| found.remove(id)).collect();
    let recommendations = gw.product_views(products).await?;
    Ok(Json(
        json!({"product_id": product_id, "recommendations": recommendations}),
    ))
}

#[derive(Debug, Deserialize)]
pub(super) struct OffersQuery {
    product_id: Option<i64>,
}

pub(super) async fn offers(
    State(gw): State<Gateway>,
    ApiQuery(query): ApiQuery<OffersQuery>,
) -> Result<Json<Value>, ApiError> {
    let product_id = check_product_id(required(query.product_id, "product_id")?)?;
    let list = gw
        .offers
        .clone()
        .get_offers(GetOffersRequest { product_id })
        .await?
        .into_inner();
    let offers: Vec<Value> = list
        .offers
        .into_iter()
        .map(|o| {
            json!({
                "id": o.id,
                "description": o.description,
                "discount_percent": o.discount_percent,
                "min_quantity": o.min_quantity,
            })
        })
        .collect();
    Ok(Json(json!({
        "product_id": list.product_id,
        "price": money(list.price_cents),
        "best_price": money(list.best_price_cents),
        "offers": offers,
    })))
}

pub(super) fn required<T>(value: Option<T>, name: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::bad_request(format!("query parameter {name} is required")))
}
