//! `ingest`: the analytics firehose — `page.viewed` events, mostly for product pages.

use goose::prelude::*;

use super::{ScenarioDef, step, think};
use crate::gateway;

pub fn scenario() -> ScenarioDef {
    ScenarioDef {
        name: "ingest",
        description: "page.viewed events, three product pages for every home page",
        think_time: think(100, 300),
        on_start: vec![],
        steps: vec![
            step!("view_home", view_home),
            step!("view_product", view_product).weight(3),
        ],
    }
}

async fn view_home(user: &mut GooseUser) -> TransactionResult {
    gateway::page_viewed(user, "/", None).await
}

async fn view_product(user: &mut GooseUser) -> TransactionResult {
    let id = gateway::random_product_id();
    gateway::page_viewed(user, &format!("/products/{id}"), Some(id)).await
}
