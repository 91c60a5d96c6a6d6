//! `smoke`: one call of every kind the gateway offers, in a sensible order.
//!
//! Meant for "is everything wired up" runs: a failing step names the broken endpoint. Every
//! iteration signs up a fresh account so the account-bound calls start from a clean slate.

use goose::prelude::*;

use super::{ScenarioDef, step, think};
use crate::gateway;

pub fn scenario() -> ScenarioDef {
    ScenarioDef {
        name: "smoke",
        description: "Health plus one call of each kind: catalogue, search, recommendations, offers, events, auth, cart, orders, payments",
        think_time: think(100, 300),
        on_start: vec![],
        steps: vec![
            step!("health", gateway::health),
            step!("list_products", gateway::list_products),
            step!("get_product", gateway::get_product),
            step!("search_products", gateway::search_products),
            step!("recommendations", gateway::recommendations),
            step!("offers", gateway::offers),
            step!("page_viewed", view_product_page),
            step!("register", new_account),
            step!("login", gateway::login),
            step!("add_to_cart", gateway::add_to_cart),
            step!("get_cart", gateway::get_cart),
            step!("remove_from_cart", gateway::remove_from_cart),
            step!("clear_cart", gateway::clear_cart),
            step!("add_to_cart_again", gateway::add_to_cart),
            step!("place_order", gateway::place_order),
            step!("pay_order", gateway::pay_order),
            step!("get_order", gateway::get_order),
            step!("get_payment", gateway::get_payment),
            step!("list_orders", gateway::list_orders),
            step!("cancel_order", gateway::place_and_cancel_order),
            step!("logout", gateway::logout),
        ],
    }
}

async fn view_product_page(user: &mut GooseUser) -> TransactionResult {
    let id = gateway::random_product_id();
    gateway::page_viewed(user, &format!("/products/{id}"), Some(id)).await
}

/// Forgets last iteration's account and order, then signs up anew.
async fn new_account(user: &mut GooseUser) -> TransactionResult {
    gateway::start_new_order(user)?;
    crate::session::session_mut(user)?.account = None;
    gateway::register(user).await
}
