//! `checkout`: a customer buying something, end to end.
//!
//! Each Goose user signs up with its own unique e-mail and logs in once, then every
//! iteration browses to a product, adds it to the cart, orders the cart, pays the exact order
//! total and checks that the order is now `paid`. A user whose sign-in failed tries again at
//! the start of its next iteration instead of failing every step for the rest of the run.

use goose::prelude::*;

use super::{ScenarioDef, step, think};
use crate::gateway;

pub fn scenario() -> ScenarioDef {
    ScenarioDef {
        name: "checkout",
        description: "Register → login → browse → add to cart → order → pay → order status",
        think_time: think(500, 1500),
        on_start: vec![
            step!("register", gateway::register),
            step!("login", gateway::login),
        ],
        steps: vec![
            step!("browse", browse),
            step!("get_product", gateway::get_product),
            step!("add_to_cart", gateway::add_to_cart),
            step!("place_order", gateway::place_order),
            step!("pay_order", gateway::pay_order),
            step!("get_order", gateway::get_order),
        ],
    }
}

/// Starts an iteration: forget the last order, make sure we are signed in, pick a product.
async fn browse(user: &mut GooseUser) -> TransactionResult {
    gateway::start_new_order(user)?;
    gateway::ensure_signed_in(user).await?;
    gateway::list_products(user).await
}
