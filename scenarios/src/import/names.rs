//! Names for steps and variables. A step name is a transaction name in every report and a
//! variable name is used inside `{{ }}`, so both must be plain identifiers and unique.

use std::collections::HashSet;

/// `GET /api/v1/products/{id}` → `get_api_v1_products_id`; anything but ASCII letters, digits,
/// `_`, `.` and `-` becomes `_`, runs of `_` collapse.
pub fn sanitize(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
            c
        } else {
            '_'
        };
        if c == '_' && (out.is_empty() || out.ends_with('_')) {
            continue;
        }
        out.push(c);
    }
    let out = out.trim_end_matches('_').to_string();
    if out.is_empty() { "step".into() } else { out }
}

/// A template variable name: lowercase snake case that does not start with a digit.
pub fn variable(text: &str) -> String {
    let mut out = String::new();
    let mut previous_lower = false;
    for c in text.chars() {
        if c.is_ascii_uppercase() && previous_lower {
            out.push('_');
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '_'
        });
    }
    let mut name = sanitize(&out).replace(['.', '-'], "_");
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// `products` → `product`, `categories` → `category`: for naming an id by its collection.
pub fn singular(word: &str) -> String {
    if let Some(stem) = word.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = word.strip_suffix("ses") {
        format!("{stem}s")
    } else if let Some(stem) = word.strip_suffix('s') {
        stem.to_string()
    } else {
        word.to_string()
    }
}

/// Hands out names once: a taken name gets `_2`, `_3`, ...
#[derive(Default)]
pub struct Unique(HashSet<String>);

impl Unique {
    pub fn take(&mut self, wanted: &str) -> String {
        let mut name = wanted.to_string();
        let mut n = 1;
        while self.0.contains(&name) {
            n += 1;
            name = format!("{wanted}_{n}");
        }
        self.0.insert(name.clone());
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_and_unique() {
        assert_eq!(
            sanitize("GET /api/v1/products/{id}"),
            "GET_api_v1_products_id"
        );
        assert_eq!(sanitize("///"), "step");
        assert_eq!(variable("productId"), "product_id");
        assert_eq!(variable("Idempotency-Key"), "idempotency_key");
        assert_eq!(variable("2fa"), "_2fa");
        assert_eq!(singular("categories"), "category");
        assert_eq!(singular("addresses"), "address");
        assert_eq!(singular("orders"), "order");
        let mut unique = Unique::default();
        assert_eq!(unique.take("a"), "a");
        assert_eq!(unique.take("a"), "a_2");
        assert_eq!(unique.take("a"), "a_3");
    }
}
