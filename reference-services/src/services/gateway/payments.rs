//! Payment routes: paying one of the caller's orders (with an optional `Idempotency-Key`, the
//! same header rule as placing an order) and reading a payment.

use super::*;

#[derive(Debug, Deserialize)]
pub(super) struct PaymentBody {
    order_id: String,
    amount: f64,
    method: String,
}

pub(super) async fn create_payment(
    State(gw): State<Gateway>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PaymentBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let idempotency_key = idempotency_key(&headers)?;
    check_text("order_id", &body.order_id, 1, MAX_RESOURCE_ID_CHARS)?;
    if !has_visible_char(&body.order_id) {
        return Err(ApiError::bad_request("order_id must not be blank"));
    }
    if !(0.01..=MAX_PAYMENT_AMOUNT).contains(&body.amount) {
        return Err(ApiError::bad_request(
            "amount must be within 0.01..=1000000",
        ));
    }
    if !payment::METHODS.contains(&body.method.as_str()) {
        return Err(ApiError::bad_request(format!(
            "method must be one of {}",
            payment::METHODS.join(", ")
        )));
    }
    let request = ProcessPaymentRequest {
        user_id: caller.user_id,
        order_id: body.order_id,
        amount_cents: cents(body.amount),
        method: body.method,
        idempotency_key,
    };
    let paid = gw
        .payments
        .clone()
        .process_payment(request)
        .await
        .map_err(payment_refusal)?
        .into_inner();
    let body = json!({"payment_id": paid.id, "status": paid.status, "transaction_id": paid.transaction_id});
    Ok((StatusCode::CREATED, Json(body)))
}

/// Every argument the payment service checks on its own was checked above, so its
/// InvalidArgument can only be about the order: the amount differs from the order's total.
/// That is a conflict with the order's state, not a malformed request. AlreadyExists is an
/// `Idempotency-Key` reused for a different request: 422, as the request cannot be processed
/// under that key.
pub(super) fn payment_refusal(status: tonic::Status) -> ApiError {
    match status.code() {
        tonic::Code::InvalidArgument => ApiError::conflict(status.message()),
        tonic::Code::AlreadyExists => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            status.message(),
        ),
        _ => status.into(),
    }
}

pub(super) async fn get_payment(
    State(gw): State<Gateway>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    check_resource_id("payment", &id)?;
    let request = GetPaymentRequest {
        user_id: caller.user_id,
        payment_id: id,
    };
    let found = gw.payments.clone().get_payment(request).await?.into_inner();
    Ok(Json(payment_view(found)))
}
