//! What of a recording is not the application's traffic: the static assets a browser fetches
//! around the API calls, and the headers it adds on its own. Kept apart from the importer because
//! these lists are what users will want tuned.

use url::Url;

use super::har::Entry;

const STATIC_EXTENSIONS: [&str; 24] = [
    "png", "jpg", "jpeg", "gif", "svg", "ico", "webp", "avif", "bmp", "css", "js", "mjs", "map",
    "woff", "woff2", "ttf", "otf", "eot", "mp4", "webm", "mp3", "wav", "ogg", "m4a",
];

/// An asset a browser fetches for a page, by the response's MIME type or the path's extension.
pub(super) fn is_static(url: &Url, entry: &Entry) -> bool {
    let mime = entry.response_mime_type().to_ascii_lowercase();
    let mime = mime.split(';').next().unwrap_or("").trim();
    let by_type = entry.resource_type().is_some_and(|t| {
        ["image", "stylesheet", "script", "font", "media", "manifest"].contains(&t)
    });
    let by_mime = ["image/", "font/", "video/", "audio/", "text/css"]
        .iter()
        .any(|p| mime.starts_with(p))
        || mime.contains("javascript")
        || mime.contains("ecmascript")
        || mime.starts_with("application/font")
        || mime.starts_with("application/x-font")
        || mime == "application/wasm";
    let extension = url
        .path()
        .rsplit('/')
        .next()
        .and_then(|file| file.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase());
    by_type || by_mime || extension.is_some_and(|e| STATIC_EXTENSIONS.contains(&e.as_str()))
}

/// Headers a browser adds on its own, or that the engine sets itself: replaying them is noise
/// at best (user-agent) and wrong at worst (a stale cookie or content-length).
pub(super) fn keep_header(name: &str, has_body_field: bool) -> bool {
    let name = name.to_ascii_lowercase();
    const DROP: [&str; 22] = [
        "cookie",
        "user-agent",
        "accept-encoding",
        "accept-language",
        "content-length",
        "host",
        "connection",
        "keep-alive",
        "origin",
        "referer",
        "pragma",
        "cache-control",
        "upgrade-insecure-requests",
        "dnt",
        "te",
        "priority",
        "if-none-match",
        "if-modified-since",
        "purpose",
        "x-client-data",
        "transfer-encoding",
        "upgrade",
    ];
    !(name.starts_with(':')
        || name.starts_with("sec-")
        || name.starts_with("proxy-")
        || DROP.contains(&name.as_str())
        || (has_body_field && name == "content-type"))
}
