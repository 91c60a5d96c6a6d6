//! The path a step requests, as a pattern (`/api/v1/products/*`): what a report needs to set a
//! transaction's client-side latency next to the server's figures for the route it hits
//! (`slo::sources::routes` matches patterns with routes).

use serde::Serialize;

/// One step's transaction, method and path pattern.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequestPath {
    pub transaction: String,
    pub method: String,
    /// The URL's path; a segment with a template in it is `*`.
    pub path: String,
}

/// `url` (relative, or absolute with scheme and host) → its path, query and fragment dropped,
/// every segment holding a template written `*`.
pub fn path_pattern(url: &str) -> String {
    let without_origin = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => url,
    };
    let mut path = String::new();
    let mut rest = without_origin;
    // Templates may contain `?` or `#` (`{{ a ? b }}` is not Jinja, but `{{ "#" }}` is): cut
    // the query only outside them.
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("{{").or_else(|| rest.strip_prefix("{%")) {
            let end = after
                .find("}}")
                .or_else(|| after.find("%}"))
                .map_or(after.len(), |i| i + 2);
            path.push('\u{0}');
            rest = &after[end.min(after.len())..];
            continue;
        }
        let c = rest.chars().next().unwrap_or_default();
        if c == '?' || c == '#' {
            break;
        }
        path.push(c);
        rest = &rest[c.len_utf8()..];
    }
    let pattern = path
        .split('/')
        .map(|segment| {
            if segment.contains('\u{0}') {
                "*"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    if pattern.starts_with('/') {
        pattern
    } else {
        format!("/{pattern}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_become_wildcards_and_queries_go() {
        assert_eq!(
            path_pattern("/api/v1/products/{{ product_id }}"),
            "/api/v1/products/*"
        );
        assert_eq!(
            path_pattern("/api/v1/products?limit=10"),
            "/api/v1/products"
        );
        assert_eq!(
            path_pattern("https://shop.example/api/v1/orders/{{ id }}/cancel?x={{ y }}"),
            "/api/v1/orders/*/cancel"
        );
        assert_eq!(path_pattern("/items/item-{{ n }}"), "/items/*");
        assert_eq!(path_pattern("http://h:8080"), "/");
        assert_eq!(path_pattern("api/v1/cart"), "/api/v1/cart");
    }
}
