//! The gateway REST API as checked calls.
//!
//! Each function is one endpoint of the documented contract: the path, the promised status
//! and what the body must contain. Scenarios are journeys built from these, so they run
//! unchanged against any platform that exposes the same API — nothing here knows about the
//! reference services.

use goose::prelude::*;
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};

use crate::request::{Call, expect, send};
use crate::session::{Account, PlacedOrder, session, session_mut};

/// The API guarantees product ids 1..=N with N ≥ 1000.
pub const GUARANTEED_PRODUCTS: u64 = 1000;

/// Terms a shopper might search for; any platform may or may not have matches.
const SEARCH_TERMS: [&str; 8] = [
    "keyboard",
    "mouse",
    "monitor",
    "laptop",
    "headphones",
    "camera",
    "chair",
    "desk",
];

const PASSWORD: &str = "shakedown-pass-1";
const SHIPPING_ADDRESS: &str = "1 Load Test Lane, Springfield";

/// A product id the API guarantees to exist.
pub fn random_product_id() -> u64 {
    rand::rng().random_range(1..=GUARANTEED_PRODUCTS)
}

/// `GET /health` → 200 `{"status":"healthy"}`.
pub async fn health(user: &mut GooseUser) -> TransactionResult {
    send(user, Call::get("health", "/health"), |body| {
        expect::equals(body, "status", "healthy")
    })
    .await
}

/// `GET /api/v1/products` → a page of products; remembers one in stock for later steps.
pub async fn list_products(user: &mut GooseUser) -> TransactionResult {
    let skip = rand::rng().random_range(0..GUARANTEED_PRODUCTS / 10) * 10;
    let path = format!("/api/v1/products?skip={skip}&limit=10");
    let picked = send(user, Call::get("list_products", path), |body| {
        let products = expect::array(body, "products")?;
        expect::number(body, "total")?;
        if products.is_empty() {
            return Err("no products on a page the catalogue guarantees".to_string());
        }
        let in_stock: Vec<u64> = products
            .iter()
            .filter(|p| p.get("stock").and_then(Value::as_u64).unwrap_or(0) > 0)
            .filter_map(|p| p.get("id").and_then(Value::as_u64))
            .collect();
        Ok(in_stock.choose(&mut rand::rng()).copied())
    })
    .await?;
    session_mut(user)?.product_id = Some(picked.unwrap_or_else(random_product_id));
    Ok(())
}

/// `GET /api/v1/products/{id}` → that product.
pub async fn get_product(user: &mut GooseUser) -> TransactionResult {
    let id = chosen_product(user)?;
    let path = format!("/api/v1/products/{id}");
    send(user, Call::get("get_product", path), |body| {
        match body.get("id").and_then(Value::as_u64) {
            Some(got) if got == id => {}
            _ => return Err("`id` is not the requested product".to_string()),
        }
        expect::string(body, "name")?;
        expect::number(body, "price")?;
        Ok(())
    })
    .await
}

/// `GET /api/v1/products/search?q=…` → `{results, total}`.
pub async fn search_products(user: &mut GooseUser) -> TransactionResult {
    let term = SEARCH_TERMS
        .choose(&mut rand::rng())
        .copied()
        .unwrap_or("keyboard");
    let path = format!("/api/v1/products/search?q={term}");
    send(user, Call::get("search_products", path), |body| {
        let results = expect::array(body, "results")?;
        let total = expect::number(body, "total")?;
        if (results.len() as f64) > total {
            return Err("more `results` than `total`".to_string());
        }
        Ok(())
    })
    .await
}

/// `GET /api/v1/recommendations?product_id=…`.
pub async fn recommendations(user: &mut GooseUser) -> TransactionResult {
    let id = chosen_product(user)?;
    let path = format!("/api/v1/recommendations?product_id={id}");
    send(user, Call::get("recommendations", path), |body| {
        expect::array(body, "recommendations")?;
        Ok(())
    })
    .await
}

/// `GET /api/v1/offers?product_id=…`.
pub async fn offers(user: &mut GooseUser) -> TransactionResult {
    let id = chosen_product(user)?;
    let path = format!("/api/v1/offers?product_id={id}");
    send(user, Call::get("offers", path), |body| {
        expect::array(body, "offers")?;
        expect::number(body, "best_price")?;
        Ok(())
    })
    .await
}

/// `POST /api/v1/auth/register` with a new unique e-mail → 201.
pub async fn register(user: &mut GooseUser) -> TransactionResult {
    let email = session(user)?.run.unique_email();
    let body = json!({
        "email": email,
        "password": PASSWORD,
        "first_name": "Load",
        "last_name": "Tester",
    });
    let call = Call::post("register", "/api/v1/auth/register", body).expect(201);
    let sent_email = email.clone();
    send(user, call, move |body| {
        expect::present(body, "id")?;
        expect::equals(body, "email", &sent_email)
    })
    .await?;
    session_mut(user)?.account = Some(Account {
        email,
        password: PASSWORD.to_string(),
        token: None,
    });
    Ok(())
}

/// `POST /api/v1/auth/login` with the registered account → 200 with a token.
pub async fn login(user: &mut GooseUser) -> TransactionResult {
    let Some(account) = session(user)?.account.clone() else {
        return Err(crate::session::custom_error("login: no registered account"));
    };
    let body = json!({ "email": account.email, "password": account.password });
    let token = send(
        user,
        Call::post("login", "/api/v1/auth/login", body),
        |body| expect::string(body, "token").map(str::to_string),
    )
    .await?;
    if let Some(account) = session_mut(user)?.account.as_mut() {
        account.token = Some(token);
    }
    Ok(())
}

/// Registers and logs in unless the user already holds a token.
pub async fn ensure_signed_in(user: &mut GooseUser) -> TransactionResult {
    if session(user)?.token().is_some() {
        return Ok(());
    }
    if session(user)?.account.is_none() {
        register(user).await?;
    }
    login(user).await
}

/// `POST /api/v1/auth/logout` → 204; forgets the token.
pub async fn logout(user: &mut GooseUser) -> TransactionResult {
    let call = Call::post("logout", "/api/v1/auth/logout", json!({}))
        .authenticated()
        .expect(204);
    send(user, call, |_| Ok(())).await?;
    session_mut(user)?.account = None;
    Ok(())
}

/// `GET /api/v1/cart` → the user's cart.
pub async fn get_cart(user: &mut GooseUser) -> TransactionResult {
    let call = Call::get("get_cart", "/api/v1/cart").authenticated();
    send(user, call, |body| {
        expect::array(body, "items")?;
        expect::number(body, "total")?;
        Ok(())
    })
    .await
}

/// `POST /api/v1/cart/items` with the chosen product → the cart now holds it.
pub async fn add_to_cart(user: &mut GooseUser) -> TransactionResult {
    let id = chosen_product(user)?;
    let body = json!({ "product_id": id, "quantity": 1 });
    let call = Call::post("add_to_cart", "/api/v1/cart/items", body).authenticated();
    send(user, call, move |body| {
        let items = expect::array(body, "items")?;
        let holds_it = items
            .iter()
            .any(|item| item.get("product_id").and_then(Value::as_u64) == Some(id));
        if holds_it {
            Ok(())
        } else {
            Err("added product is not in the cart".to_string())
        }
    })
    .await
}

/// `DELETE /api/v1/cart/items/{id}` → the cart without it.
pub async fn remove_from_cart(user: &mut GooseUser) -> TransactionResult {
    let id = chosen_product(user)?;
    let call = Call::delete("remove_from_cart", format!("/api/v1/cart/items/{id}")).authenticated();
    send(user, call, move |body| {
        let items = expect::array(body, "items")?;
        let still_there = items
            .iter()
            .any(|item| item.get("product_id").and_then(Value::as_u64) == Some(id));
        if still_there {
            Err("removed product is still in the cart".to_string())
        } else {
            Ok(())
        }
    })
    .await
}

/// `DELETE /api/v1/cart` → 204.
pub async fn clear_cart(user: &mut GooseUser) -> TransactionResult {
    let call = Call::delete("clear_cart", "/api/v1/cart")
        .authenticated()
        .expect(204);
    send(user, call, |_| Ok(())).await
}

/// `POST /api/v1/orders` ordering the cart → 201 pending; remembers the order.
pub async fn place_order(user: &mut GooseUser) -> TransactionResult {
    let body = json!({ "shipping_address": SHIPPING_ADDRESS });
    let order = create_order(user, "place_order", body).await?;
    session_mut(user)?.order = Some(order);
    Ok(())
}

/// `POST /api/v1/orders` with explicit items, then `PUT /api/v1/orders/{id}/cancel`.
pub async fn place_and_cancel_order(user: &mut GooseUser) -> TransactionResult {
    let id = chosen_product(user)?;
    let body = json!({
        "items": [{ "product_id": id, "quantity": 1 }],
        "shipping_address": SHIPPING_ADDRESS,
    });
    let order = create_order(user, "place_order_items", body).await?;
    let path = format!("/api/v1/orders/{}/cancel", id_text(&order.id));
    let call = Call::put("cancel_order", path).authenticated();
    send(user, call, |body| {
        expect::equals(body, "status", "cancelled")?;
        expect::present(body, "cancelled_at")?;
        Ok(())
    })
    .await
}

async fn create_order(
    user: &mut GooseUser,
    name: &'static str,
    body: Value,
) -> Result<PlacedOrder, Box<TransactionError>> {
    let call = Call::post(name, "/api/v1/orders", body)
        .authenticated()
        .expect(201);
    send(user, call, |body| {
        expect::equals(body, "status", "pending")?;
        Ok(PlacedOrder {
            id: expect::present(body, "order_id")?.clone(),
            total_amount: expect::present(body, "total_amount")?.clone(),
        })
    })
    .await
}

/// `POST /api/v1/payments` for the placed order's exact total → 201 succeeded.
pub async fn pay_order(user: &mut GooseUser) -> TransactionResult {
    let Some(order) = session(user)?.order.clone() else {
        return Err(crate::session::custom_error("pay_order: no order placed"));
    };
    // The amount goes back exactly as the server wrote it, so no float rounding can make it
    // differ from the order total.
    let body = json!({ "order_id": order.id, "amount": order.total_amount, "method": "card" });
    let call = Call::post("pay_order", "/api/v1/payments", body)
        .authenticated()
        .expect(201);
    let payment_id = send(user, call, |body| {
        expect::equals(body, "status", "succeeded")?;
        expect::present(body, "transaction_id")?;
        Ok(expect::present(body, "payment_id")?.clone())
    })
    .await?;
    session_mut(user)?.payment_id = Some(payment_id);
    Ok(())
}

/// `GET /api/v1/orders/{id}` → the order, which must be `paid` once a payment succeeded.
pub async fn get_order(user: &mut GooseUser) -> TransactionResult {
    let (order, paid) = {
        let session = session(user)?;
        (session.order.clone(), session.payment_id.is_some())
    };
    let Some(order) = order else {
        return Err(crate::session::custom_error("get_order: no order placed"));
    };
    let call = Call::get(
        "get_order",
        format!("/api/v1/orders/{}", id_text(&order.id)),
    )
    .authenticated();
    send(user, call, move |body| {
        expect::present(body, "items")?;
        expect::present(body, "total_amount")?;
        if paid {
            expect::equals(body, "status", "paid")?;
        }
        Ok(())
    })
    .await
}

/// `GET /api/v1/orders?status=paid` → `{orders}`.
pub async fn list_orders(user: &mut GooseUser) -> TransactionResult {
    let call = Call::get("list_orders", "/api/v1/orders?status=paid").authenticated();
    send(user, call, |body| {
        expect::array(body, "orders")?;
        Ok(())
    })
    .await
}

/// `GET /api/v1/payments/{id}` → the payment, `succeeded`.
pub async fn get_payment(user: &mut GooseUser) -> TransactionResult {
    let Some(payment_id) = session(user)?.payment_id.clone() else {
        return Err(crate::session::custom_error("get_payment: no payment made"));
    };
    let path = format!("/api/v1/payments/{}", id_text(&payment_id));
    let call = Call::get("get_payment", path).authenticated();
    send(user, call, |body| {
        expect::equals(body, "status", "succeeded")?;
        expect::present(body, "amount")?;
        Ok(())
    })
    .await
}

/// `POST /api/v1/events` — a `page.viewed` event for `url`, about `product_id` if given.
pub async fn page_viewed(
    user: &mut GooseUser,
    url: &str,
    product_id: Option<u64>,
) -> TransactionResult {
    let session_id = session(user)?.session_id.clone();
    let mut body = json!({ "type": "page.viewed", "url": url, "session_id": session_id });
    if let Some(id) = product_id {
        body["product_id"] = json!(id);
    }
    let call = Call::post("page_viewed", "/api/v1/events", body).expect(202);
    send(user, call, |body| {
        expect::present(body, "event_id")?;
        Ok(())
    })
    .await
}

/// Forgets the order and payment of the previous iteration.
pub fn start_new_order(user: &mut GooseUser) -> TransactionResult {
    let session = session_mut(user)?;
    session.order = None;
    session.payment_id = None;
    Ok(())
}

/// The product picked earlier in the iteration, or a guaranteed one.
fn chosen_product(user: &GooseUser) -> Result<u64, Box<TransactionError>> {
    Ok(session(user)?.product_id.unwrap_or_else(random_product_id))
}

/// An id as it goes into a path: numbers as digits, strings without quotes.
fn id_text(id: &Value) -> String {
    match id {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
