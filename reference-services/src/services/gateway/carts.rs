//! Cart routes, and the HTTP calls to the cart service behind them.

use super::*;

#[derive(Debug, Serialize)]
pub(super) struct CartItemView {
    product_id: i64,
    quantity: i64,
    unit_price: f64,
    name: String,
}

impl Gateway {
    /// The cart as the API shows it: lines with names and list prices, and the total.
    pub(super) async fn cart_view(
        &self,
        user_id: &str,
        lines: Vec<cart::CartLine>,
    ) -> Result<Json<Value>, ApiError> {
        let mut products = self
            .products_by_id(lines.iter().map(|l| l.product_id).collect())
            .await?;
        let mut items = Vec::with_capacity(lines.len());
        let mut total_cents = 0;
        for line in lines {
            // A line whose product left the catalog is not shown (and cannot be ordered).
            let Some(product) = products.remove(&line.product_id) else {
                continue;
            };
            total_cents += line.quantity * product.price_cents;
            items.push(CartItemView {
                product_id: line.product_id,
                quantity: line.quantity,
                unit_price: money(product.price_cents),
                name: product.name,
            });
        }
        Ok(Json(
            json!({"user_id": user_id, "items": items, "total": money(total_cents)}),
        ))
    }
}

pub(super) async fn get_cart(
    State(gw): State<Gateway>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let lines = gw.cart_lines(&caller.user_id).await?;
    gw.cart_view(&caller.user_id, lines).await
}

#[derive(Debug, Deserialize)]
pub(super) struct AddToCartBody {
    product_id: i64,
    quantity: i64,
}

pub(super) async fn add_to_cart(
    State(gw): State<Gateway>,
    caller: Caller,
    ApiJson(body): ApiJson<AddToCartBody>,
) -> Result<Json<Value>, ApiError> {
    let product_id = check_product_id(body.product_id)?;
    let quantity = check_quantity(body.quantity)?;
    // Only real products go into a cart.
    gw.products
        .clone()
        .get_product(GetProductRequest { id: product_id })
        .await?;
    let lines = gw.cart_lines(&caller.user_id).await?;
    let held = lines
        .iter()
        .find(|l| l.product_id == product_id)
        .map_or(0, |l| l.quantity);
    let wanted = held + quantity;
    if wanted > cart::MAX_QUANTITY {
        return Err(ApiError::conflict(format!(
            "the cart already holds {held} of product {product_id}; a line holds at most {}",
            cart::MAX_QUANTITY
        )));
    }
    let lines = gw.cart_set(&caller.user_id, product_id, wanted).await?;
    gw.cart_view(&caller.user_id, lines).await
}

pub(super) async fn remove_from_cart(
    State(gw): State<Gateway>,
    caller: Caller,
    ApiPath(product_id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    check_product_id(product_id)?;
    let lines = gw.cart_lines(&caller.user_id).await?;
    if !lines.iter().any(|l| l.product_id == product_id) {
        return Err(ApiError::not_found(format!(
            "product {product_id} is not in the cart"
        )));
    }
    let lines = gw.cart_remove(&caller.user_id, product_id).await?;
    gw.cart_view(&caller.user_id, lines).await
}

pub(super) async fn clear_cart(
    State(gw): State<Gateway>,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    gw.cart_clear(&caller.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Calls to the cart service's internal HTTP API.
impl Gateway {
    pub(super) fn cart_url(&self, user_id: &str, product_id: Option<i64>) -> String {
        match product_id {
            Some(id) => format!("{}/v1/carts/{user_id}/items/{id}", self.cart_url),
            None => format!("{}/v1/carts/{user_id}", self.cart_url),
        }
    }

    pub(super) async fn cart_lines(&self, user_id: &str) -> Result<Vec<cart::CartLine>, ApiError> {
        let request = self.http.get(self.cart_url(user_id, None));
        Ok(call_json::<cart::Cart>(request, "cart").await?.items)
    }

    pub(super) async fn cart_set(
        &self,
        user_id: &str,
        product_id: i64,
        quantity: i64,
    ) -> Result<Vec<cart::CartLine>, ApiError> {
        let request = self
            .http
            .put(self.cart_url(user_id, Some(product_id)))
            .json(&cart::SetQuantity { quantity });
        Ok(call_json::<cart::Cart>(request, "cart").await?.items)
    }

    pub(super) async fn cart_remove(
        &self,
        user_id: &str,
        product_id: i64,
    ) -> Result<Vec<cart::CartLine>, ApiError> {
        let request = self.http.delete(self.cart_url(user_id, Some(product_id)));
        Ok(call_json::<cart::Cart>(request, "cart").await?.items)
    }

    pub(super) async fn cart_clear(&self, user_id: &str) -> Result<(), ApiError> {
        call(self.http.delete(self.cart_url(user_id, None)), "cart")
            .await
            .map(|_| ())
    }
}

/// Sends an HTTP request to backend `backend` with the trace context; a backend's 4xx passes
/// through as is, anything else that is not a success is a 503.
pub(super) async fn call(
    request: reqwest::RequestBuilder,
    backend: &str,
) -> Result<reqwest::Response, ApiError> {
    let unavailable = |detail: String| {
        tracing::warn!(backend, %detail, "backend call failed");
        ApiError::unavailable(format!("{backend} service unavailable"))
    };
    let mut request = request.header(trace::HEADER, trace::outgoing_header());
    // The request's remaining budget bounds the call, as grpc-timeout does for gRPC backends.
    if let Some(left) = deadline::remaining() {
        request = request.timeout(left);
    }
    let response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                format!("{backend} service did not answer in time"),
            )
        } else {
            unavailable(e.to_string())
        }
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    if status.is_client_error() {
        let body: Value = response.json().await.unwrap_or_default();
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or("rejected")
            .to_string();
        let status = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_REQUEST);
        return Err(ApiError::new(status, client_error_code(status), message));
    }
    Err(unavailable(format!("answered {status}")))
}

pub(super) fn client_error_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        _ => "invalid_request",
    }
}

pub(super) async fn call_json<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
    backend: &str,
) -> Result<T, ApiError> {
    let response = call(request, backend).await?;
    response.json::<T>().await.map_err(|e| {
        tracing::error!(backend, error = %e, "backend answered an unexpected body");
        ApiError::unavailable(format!("{backend} service answered an unexpected body"))
    })
}
