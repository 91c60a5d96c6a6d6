//! Order routes: placing (with an idempotency key), listing, reading and cancelling the caller's
//! orders.

use super::*;

#[derive(Debug, Deserialize)]
pub(super) struct LineInput {
    product_id: i64,
    quantity: i64,
}

#[derive(Debug, Deserialize)]
pub(super) struct CreateOrderBody {
    items: Option<Vec<LineInput>>,
    shipping_address: String,
}

/// The `Idempotency-Key` header: absent, or 1..=128 visible ASCII characters.
pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(String::new());
    };
    let key = value.to_str().unwrap_or_default();
    let valid = (1..=MAX_IDEMPOTENCY_KEY_LEN).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 128 visible ASCII characters",
        ));
    }
    Ok(key.to_string())
}

/// Checks order lines and sums repeated products into one line each.
pub(super) fn order_lines(items: Vec<LineInput>) -> Result<Vec<OrderItem>, ApiError> {
    if items.len() > order::MAX_LINES {
        return Err(ApiError::bad_request(format!(
            "an order holds at most {} items",
            order::MAX_LINES
        )));
    }
    let mut lines: BTreeMap<i64, i64> = BTreeMap::new();
    for item in items {
        check_product_id(item.product_id)?;
        check_quantity(item.quantity)?;
        *lines.entry(item.product_id).or_default() += item.quantity;
    }
    lines
        .into_iter()
        .map(|(product_id, quantity)| {
            if quantity > order::MAX_QUANTITY {
                return Err(ApiError::bad_request(format!(
                    "the quantities of product {product_id} add up to more than {}",
                    order::MAX_QUANTITY
                )));
            }
            Ok(OrderItem {
                product_id,
                quantity,
                unit_price_cents: 0,
            })
        })
        .collect()
}

pub(super) async fn create_order(
    State(gw): State<Gateway>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateOrderBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let idempotency_key = idempotency_key(&headers)?;
    check_text(
        "shipping_address",
        &body.shipping_address,
        1,
        order::MAX_ADDRESS_CHARS,
    )?;
    if !has_visible_char(&body.shipping_address) {
        return Err(ApiError::bad_request("shipping_address must not be blank"));
    }
    let given = body.items.unwrap_or_default();
    let from_cart = given.is_empty();
    let items = if from_cart {
        let lines = gw.cart_lines(&caller.user_id).await?;
        // The request is well formed; it is the cart's state that leaves nothing to order.
        if lines.is_empty() {
            return Err(ApiError::conflict("no items given and the cart is empty"));
        }
        lines
            .into_iter()
            .map(|l| LineInput {
                product_id: l.product_id,
                quantity: l.quantity,
            })
            .collect()
    } else {
        given
    };
    let request = CreateOrderRequest {
        user_id: caller.user_id.clone(),
        items: order_lines(items)?,
        shipping_address: body.shipping_address,
        idempotency_key,
    };
    let created = gw.orders.clone().create_order(request).await?.into_inner();
    if from_cart && let Err(e) = gw.cart_clear(&caller.user_id).await {
        // The order stands; a cart left full is an inconvenience, not a failure of the order.
        tracing::warn!(order_id = %created.id, error = %e.message, "cart not cleared after checkout");
    }
    let body = json!({"order_id": created.id, "status": created.status, "total_amount": money(created.total_cents)});
    Ok((StatusCode::CREATED, Json(body)))
}

pub(super) async fn get_order(
    State(gw): State<Gateway>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    check_resource_id("order", &id)?;
    let request = GetOrderRequest {
        user_id: caller.user_id,
        order_id: id,
    };
    let found = gw.orders.clone().get_order(request).await?.into_inner();
    Ok(Json(order_view(found)))
}

#[derive(Debug, Deserialize)]
pub(super) struct OrdersQuery {
    status: Option<String>,
}

pub(super) async fn list_orders(
    State(gw): State<Gateway>,
    caller: Caller,
    ApiQuery(query): ApiQuery<OrdersQuery>,
) -> Result<Json<Value>, ApiError> {
    let known = [order::PENDING, order::PAID, order::CANCELLED];
    if let Some(status) = &query.status
        && !known.contains(&status.as_str())
    {
        return Err(ApiError::bad_request(
            "status must be pending, paid or cancelled",
        ));
    }
    let request = ListOrdersRequest {
        user_id: caller.user_id,
        status: query.status.unwrap_or_default(),
    };
    let list = gw.orders.clone().list_orders(request).await?.into_inner();
    let orders: Vec<Value> = list.orders.into_iter().map(order_view).collect();
    Ok(Json(json!({"orders": orders})))
}

pub(super) async fn cancel_order(
    State(gw): State<Gateway>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    check_resource_id("order", &id)?;
    let request = CancelOrderRequest {
        user_id: caller.user_id,
        order_id: id,
    };
    let cancelled = gw.orders.clone().cancel_order(request).await?.into_inner();
    Ok(Json(json!({
        "id": cancelled.id,
        "status": cancelled.status,
        "cancelled_at": rfc3339_ms(cancelled.updated_at),
    })))
}
