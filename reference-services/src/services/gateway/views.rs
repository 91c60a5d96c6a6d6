//! Views: what the API shows (decimal amounts, RFC 3339 times) for what the backends return.

use super::*;

/// Cents as a decimal amount (1999 -> 19.99).
pub fn money(cents: i64) -> f64 {
    cents as f64 / 100.0
}

/// A decimal amount as cents, rounded to the nearest cent.
pub fn cents(amount: f64) -> i64 {
    (amount * 100.0).round() as i64
}

/// Milliseconds since the epoch as RFC 3339 (UTC).
pub fn rfc3339_ms(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[derive(Debug, Serialize)]
pub(super) struct ProductView {
    id: i64,
    name: String,
    description: String,
    category: String,
    price: f64,
    stock: i64,
}

pub(super) fn product_view(product: Product, stock: &HashMap<i64, i64>) -> ProductView {
    ProductView {
        stock: stock.get(&product.id).copied().unwrap_or(0),
        price: money(product.price_cents),
        id: product.id,
        name: product.name,
        description: product.description,
        category: product.category,
    }
}

pub(super) fn order_view(order: Order) -> Value {
    let items: Vec<Value> = order
        .items
        .iter()
        .map(|i| json!({"product_id": i.product_id, "quantity": i.quantity, "unit_price": money(i.unit_price_cents)}))
        .collect();
    json!({
        "id": order.id,
        "user_id": order.user_id,
        "status": order.status,
        "items": items,
        "total_amount": money(order.total_cents),
        "shipping_address": order.shipping_address,
        "created_at": rfc3339_ms(order.created_at),
    })
}

pub(super) fn user_view(user: User) -> Value {
    json!({
        "id": user.id,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "created_at": rfc3339_ms(user.created_at),
    })
}

pub(super) fn payment_view(payment: Payment) -> Value {
    json!({
        "id": payment.id,
        "order_id": payment.order_id,
        "amount": money(payment.amount_cents),
        "status": payment.status,
        "method": payment.method,
        "created_at": rfc3339_ms(payment.created_at),
    })
}
