//! `browse`: an anonymous shopper looking around.
//!
//! List a catalogue page, open a product from it (twice as often as anything else, as
//! shoppers do), search, and look at the product's recommendations and offers.

use super::{ScenarioDef, step, think};
use crate::gateway;

pub fn scenario() -> ScenarioDef {
    ScenarioDef {
        name: "browse",
        description: "List → product detail → search, recommendations and offers (anonymous)",
        think_time: think(500, 1500),
        on_start: vec![],
        steps: vec![
            step!("list_products", gateway::list_products),
            step!("get_product", gateway::get_product).weight(2),
            step!("search_products", gateway::search_products),
            step!("recommendations", gateway::recommendations),
            step!("offers", gateway::offers),
        ],
    }
}
