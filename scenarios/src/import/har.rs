//! HAR 1.2 (a browser's or proxy's recording) → scenario file: the requests to the application,
//! in recorded order, with their method, the headers that matter, query, body, the recorded status
//! as the check and the user's pauses as think times. Static assets (images, styles, scripts,
//! fonts, media, source maps) and other hosts (CDNs, analytics) are left out: a load test of an
//! API replays what the user asked of it, not what the browser fetched around it.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, FixedOffset};
use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};
use url::Url;

use super::Error;
use super::correlate::Correlator;
use super::doc::{Checks, Doc, Status, Step};
use super::names::{self, Unique};

/// Which requests of the recording become steps.
#[derive(Clone, Debug, Default)]
pub struct HarOptions {
    /// Keep requests to this host (`shop.example.com`, or with a port: `127.0.0.1:8080`);
    /// `None`: the host of the first request that is not a static asset.
    pub host: Option<String>,
}

/// Pauses shorter than this are the browser's own pace, not the user's.
const MIN_THINK_MS: i64 = 50;

#[derive(Debug, Deserialize)]
struct Har {
    log: Log,
}

#[derive(Debug, Deserialize)]
struct Log {
    entries: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Entry {
    #[serde(rename = "startedDateTime")]
    started: DateTime<FixedOffset>,
    /// Total time of the request in milliseconds.
    #[serde(default)]
    time: f64,
    pub(super) request: Request,
    pub(super) response: Response,
}

#[derive(Debug, Deserialize)]
pub(super) struct Request {
    method: String,
    url: String,
    #[serde(default)]
    headers: Vec<NameValue>,
    #[serde(rename = "postData")]
    post_data: Option<PostData>,
}

#[derive(Debug, Deserialize)]
struct NameValue {
    name: String,
    #[serde(default)]
    value: String,
}

#[derive(Debug, Deserialize)]
struct PostData {
    #[serde(rename = "mimeType", default)]
    mime_type: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    params: Vec<NameValue>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Response {
    status: i64,
    #[serde(default)]
    pub(super) content: Content,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Content {
    #[serde(rename = "mimeType", default)]
    mime_type: String,
    #[serde(default)]
    pub(super) text: Option<String>,
    #[serde(default)]
    pub(super) encoding: Option<String>,
}

impl Request {
    /// Everything a recorded value could be sent back in.
    fn raw_text(&self) -> String {
        let mut text = self.url.clone();
        for header in &self.headers {
            text.push('\n');
            text.push_str(&header.value);
        }
        if let Some(post) = &self.post_data {
            text.push('\n');
            text.push_str(post.text.as_deref().unwrap_or(""));
            for param in &post.params {
                text.push('\n');
                text.push_str(&param.value);
            }
        }
        text
    }
}

impl Entry {
    fn end(&self) -> DateTime<FixedOffset> {
        self.started + chrono::Duration::microseconds((self.time.max(0.0) * 1000.0) as i64)
    }
}

pub fn import(text: &str, path: &Path, options: &HarOptions) -> Result<String, Error> {
    let har = parse(text, path)?;
    let mut left_out = LeftOut::default();
    let parsed: Vec<(Url, &Entry)> = har
        .log
        .entries
        .iter()
        .filter_map(|entry| match Url::parse(&entry.request.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some((url, entry)),
            _ => {
                left_out.other_schemes += 1;
                None
            }
        })
        .collect();
    let wanted = match &options.host {
        Some(host) => host.clone(),
        None => parsed
            .iter()
            .find(|(url, entry)| !is_static(url, entry))
            .map(|(url, _)| authority(url))
            .ok_or_else(|| Error::Empty {
                path: path.to_path_buf(),
                message: "the recording has no request other than static assets".into(),
            })?,
    };
    let mut kept: Vec<(Url, &Entry)> = Vec::new();
    for (url, entry) in parsed {
        if is_static(&url, entry) {
            left_out.statics += 1;
        } else if !(authority(&url) == wanted || url.host_str() == Some(wanted.as_str())) {
            *left_out.hosts.entry(authority(&url)).or_default() += 1;
        } else if entry.response.status <= 0 {
            left_out.unanswered += 1;
        } else {
            kept.push((url, entry));
        }
    }
    let Some((first, _)) = kept.first() else {
        return Err(Error::Empty {
            path: path.to_path_buf(),
            message: format!("the recording has no request to {wanted} other than static assets"),
        });
    };
    let origin = first.origin().ascii_serialization();
    let mut doc = Doc {
        name: scenario_name(path),
        description: Some(format!("Recorded journey against {origin}")),
        ..Doc::default()
    };
    let mut names = Unique::default();
    let mut correlator = Correlator::new(kept.iter().map(|(_, e)| e.request.raw_text()).collect());
    for (i, (url, entry)) in kept.iter().enumerate() {
        let mut step = step(url, entry, &mut names);
        if let Some((_, next)) = kept.get(i + 1) {
            let gap = (next.started - entry.end()).num_milliseconds();
            if gap >= MIN_THINK_MS {
                step.think_time = Some(format!("{}ms", (gap + 5) / 10 * 10));
            }
        }
        correlator.request(&mut step);
        correlator.response(&mut step, entry);
        doc.steps.push(step);
    }
    doc.user_variables = correlator.user_variables();
    let once = correlator.once_per_user(&doc.steps);
    if !once.is_empty() && once.len() < doc.steps.len() {
        let all = std::mem::take(&mut doc.steps);
        for (i, mut step) in all.into_iter().enumerate() {
            if once.contains(&i) {
                step.notes.push(format!(
                    "recorded as request {} of {}: moved to on_start, once per user",
                    i + 1,
                    kept.len()
                ));
                doc.on_start.push(step);
            } else {
                doc.steps.push(step);
            }
        }
    }
    doc.header = header(path, &origin, kept.len(), &left_out, &correlator);
    Ok(doc.render())
}

fn parse(text: &str, path: &Path) -> Result<Har, Error> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        Error::Read(config::Error::Invalid {
            path: path.to_path_buf(),
            line: Some(e.line()),
            column: Some(e.column()),
            field: String::new(),
            message: format!("not JSON: {e}"),
        })
    })?;
    if value
        .pointer("/log/entries")
        .and_then(|e| e.as_array())
        .is_none()
    {
        return Err(Error::NotThisKind {
            path: path.to_path_buf(),
            expected: "a HAR 1.2 recording",
            reason: "there is no `log.entries` list (save the recording from the browser's \
                     network panel with \"Save all as HAR\")"
                .into(),
        });
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        Error::Read(config::Error::Invalid {
            path: path.to_path_buf(),
            line: None,
            column: None,
            field: e.path().to_string(),
            message: e.inner().to_string(),
        })
    })
}

/// `host` or `host:port` as the URL spells it (the port only when it is not the default).
fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

const STATIC_EXTENSIONS: [&str; 24] = [
    "png", "jpg", "jpeg", "gif", "svg", "ico", "webp", "avif", "bmp", "css", "js", "mjs", "map",
    "woff", "woff2", "ttf", "otf", "eot", "mp4", "webm", "mp3", "wav", "ogg", "m4a",
];

/// An asset a browser fetches for a page, by the response's MIME type or the path's extension.
fn is_static(url: &Url, entry: &Entry) -> bool {
    let mime = entry.response.content.mime_type.to_ascii_lowercase();
    let mime = mime.split(';').next().unwrap_or("").trim();
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
    by_mime || extension.is_some_and(|e| STATIC_EXTENSIONS.contains(&e.as_str()))
}

/// Headers a browser adds on its own, or that the engine sets itself: replaying them is noise
/// at best (user-agent) and wrong at worst (a stale cookie or content-length).
fn keep_header(name: &str, has_body_field: bool) -> bool {
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

fn step(url: &Url, entry: &Entry, names: &mut Unique) -> Step {
    let method = entry.request.method.to_ascii_uppercase();
    let path = url.path();
    let mut step = Step {
        name: names.take(&names::sanitize(&format!(
            "{}_{}",
            method.to_ascii_lowercase(),
            name_path(path)
        ))),
        method,
        url: path.to_string(),
        ..Step::default()
    };
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let mut keys: Vec<&String> = pairs.iter().map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    if keys.len() == pairs.len() {
        for (k, v) in &pairs {
            step.query.insert(k.as_str().into(), v.as_str().into());
        }
    } else if let Some(query) = url.query() {
        // A repeated key does not fit a map: keep the query as recorded.
        step.url = format!("{path}?{query}");
    }
    if let Some(post) = &entry.request.post_data {
        body(&mut step, post);
    }
    let has_body_field = step.json.is_some() || step.form.is_some();
    for header in &entry.request.headers {
        if keep_header(&header.name, has_body_field) {
            step.headers
                .insert(header.name.as_str().into(), header.value.as_str().into());
        }
    }
    let status = entry.response.status as u16;
    let status = if (300..400).contains(&status) {
        step.notes.push(format!(
            "recorded a {status} redirect: the check also accepts the page it leads to"
        ));
        Status::Any(vec![200, status])
    } else {
        Status::One(status)
    };
    step.checks = Some(Checks { status });
    step
}

/// The path with ids (`/orders/7f3a9c12-...`, `/products/42`) as `id`: a step name is a
/// transaction name, the same for every replay, so it must not carry the recording's ids.
fn name_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            let digits = segment.chars().filter(char::is_ascii_digit).count();
            let all_digits = digits > 0 && digits == segment.len();
            if all_digits || (segment.len() >= 8 && digits > 0) {
                "id"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn body(step: &mut Step, post: &PostData) {
    let mime = post.mime_type.to_ascii_lowercase();
    let text = post.text.clone().unwrap_or_default();
    if mime.contains("json") && serde_json::from_str::<serde_json::Value>(&text).is_ok() {
        // Read as YAML (JSON is YAML) to keep the recorded key order, which serde_json's map
        // would sort.
        step.json = serde_yaml_ng::from_str(&text).ok().or_else(|| {
            serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|j| serde_yaml_ng::to_value(j).ok())
        });
        return;
    }
    if mime.starts_with("application/x-www-form-urlencoded") {
        let mut form = Mapping::new();
        if post.params.is_empty() {
            for (k, v) in url::form_urlencoded::parse(text.as_bytes()) {
                form.insert(Value::from(k.as_ref()), Value::from(v.as_ref()));
            }
        } else {
            for p in &post.params {
                form.insert(p.name.as_str().into(), p.value.as_str().into());
            }
        }
        step.form = Some(form);
        return;
    }
    if !text.is_empty() {
        step.body = Some(text);
    }
}

#[derive(Default)]
struct LeftOut {
    statics: usize,
    other_schemes: usize,
    unanswered: usize,
    hosts: BTreeMap<String, usize>,
}

fn header(
    path: &Path,
    origin: &str,
    steps: usize,
    left_out: &LeftOut,
    correlator: &Correlator,
) -> Vec<String> {
    let file = file_name(path);
    let mut lines = vec![
        format!(
            "Imported by `shakedown scenario import har` from {file}: {steps} requests to {origin}"
        ),
        format!(
            "(give it as --target), in recorded order, with the recorded pauses as think times."
        ),
    ];
    let mut out = Vec::new();
    if left_out.statics > 0 {
        out.push(format!("{} static assets", left_out.statics));
    }
    for (host, n) in &left_out.hosts {
        out.push(format!("{n} to {host}"));
    }
    if left_out.unanswered > 0 {
        out.push(format!("{} without a response", left_out.unanswered));
    }
    if left_out.other_schemes > 0 {
        out.push(format!("{} not http(s)", left_out.other_schemes));
    }
    if !out.is_empty() {
        lines.push(format!(
            "Left out: {} (--host picks another host).",
            out.join(", ")
        ));
    }
    lines.extend(correlator.summary());
    lines.push(
        "Values typed during the recording (search terms, addresses, amounts) are replayed as"
            .into(),
    );
    lines.push("recorded: make them variables to vary them.".into());
    lines
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    )
}

fn scenario_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let name = names::sanitize(&stem).replace('_', "-");
    if name.is_empty() {
        "recording".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// An entry starting `at_ms` after 12:00:00 and taking `ms`.
    fn entry(
        at_ms: i64,
        ms: f64,
        method: &str,
        url: &str,
        mime: &str,
        status: i64,
    ) -> serde_json::Value {
        let started = DateTime::parse_from_rfc3339("2026-11-30T12:00:00.000+01:00").unwrap()
            + chrono::Duration::milliseconds(at_ms);
        json!({
            "startedDateTime": started.to_rfc3339(),
            "time": ms,
            "request": {"method": method, "url": url, "headers": []},
            "response": {"status": status, "content": {"mimeType": mime}},
        })
    }

    fn import_entries(entries: Vec<serde_json::Value>, host: Option<&str>) -> (String, Value) {
        let text = json!({"log": {"version": "1.2", "entries": entries}}).to_string();
        let options = HarOptions {
            host: host.map(String::from),
        };
        let out = import(&text, Path::new("shop.har"), &options).unwrap();
        let parsed = serde_yaml_ng::from_str(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        (out, parsed)
    }

    fn urls(doc: &Value) -> Vec<String> {
        doc["steps"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "{} {}",
                    s["method"].as_str().unwrap(),
                    s["url"].as_str().unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn static_assets_and_other_hosts_are_left_out() {
        let entries = vec![
            entry(
                0,
                5.0,
                "GET",
                "https://cdn.example.net/app.js",
                "application/javascript",
                200,
            ),
            entry(
                10,
                5.0,
                "GET",
                "https://shop.example.com/",
                "text/html",
                200,
            ),
            entry(
                20,
                5.0,
                "GET",
                "https://shop.example.com/img/logo",
                "image/svg+xml",
                200,
            ),
            entry(
                30,
                5.0,
                "GET",
                "https://shop.example.com/main.CSS?v=3",
                "text/plain",
                200,
            ),
            entry(
                40,
                5.0,
                "GET",
                "https://shop.example.com/bundle.js.map",
                "application/json",
                200,
            ),
            entry(
                50,
                5.0,
                "GET",
                "https://shop.example.com/f/inter.woff2",
                "",
                200,
            ),
            entry(
                60,
                5.0,
                "GET",
                "https://shop.example.com/api/items?page=2",
                "application/json",
                200,
            ),
            entry(
                70,
                5.0,
                "POST",
                "https://analytics.example.org/collect",
                "application/json",
                204,
            ),
            entry(
                80,
                5.0,
                "GET",
                "https://shop.example.com/api/items?page=3",
                "application/json",
                0,
            ),
            entry(
                90,
                5.0,
                "GET",
                "data:image/png;base64,AAAA",
                "image/png",
                200,
            ),
        ];
        let (text, doc) = import_entries(entries.clone(), None);
        assert_eq!(urls(&doc), ["GET /", "GET /api/items"]);
        assert_eq!(doc["steps"][1]["query"]["page"], "2");
        assert_eq!(doc["steps"][1]["name"], "get_api_items");
        assert_eq!(doc["steps"][0]["name"], "get");
        assert!(
            text.contains("Left out: 5 static assets, 1 to analytics.example.org, 1 without a response, 1 not http(s)"),
            "{text}"
        );
        assert!(
            text.contains("2 requests to https://shop.example.com"),
            "{text}"
        );

        let (_, doc) = import_entries(entries, Some("analytics.example.org"));
        assert_eq!(urls(&doc), ["POST /collect"]);
        assert_eq!(doc["steps"][0]["checks"]["status"], 204);
    }

    #[test]
    fn ports_tell_hosts_apart_unless_only_the_host_is_given() {
        let entries = vec![
            entry(
                0,
                5.0,
                "GET",
                "http://127.0.0.1:8080/a",
                "application/json",
                200,
            ),
            entry(
                10,
                5.0,
                "GET",
                "http://127.0.0.1:9090/b",
                "application/json",
                200,
            ),
        ];
        let (_, doc) = import_entries(entries.clone(), None);
        assert_eq!(urls(&doc), ["GET /a"]);
        let (_, doc) = import_entries(entries.clone(), Some("127.0.0.1:9090"));
        assert_eq!(urls(&doc), ["GET /b"]);
        let (_, doc) = import_entries(entries, Some("127.0.0.1"));
        assert_eq!(urls(&doc), ["GET /a", "GET /b"]);
    }

    #[test]
    fn think_times_are_the_gaps_rounded_to_10ms_and_short_ones_are_dropped() {
        let entries = vec![
            // ends at 100 ms; the next starts 1234 ms later
            entry(0, 100.0, "GET", "http://h/a", "application/json", 200),
            // a static asset in between does not count
            entry(500, 10.0, "GET", "http://h/x.png", "image/png", 200),
            entry(1334, 20.0, "GET", "http://h/b", "application/json", 200),
            // 45 ms after b ends: the browser's pace, no think time
            entry(1399, 10.0, "GET", "http://h/c", "application/json", 200),
            // overlapping (parallel) requests: no think time
            entry(1400, 300.0, "GET", "http://h/d", "application/json", 200),
            entry(1500, 10.0, "GET", "http://h/e", "application/json", 200),
        ];
        let (_, doc) = import_entries(entries, None);
        let steps = doc["steps"].as_sequence().unwrap();
        let think: Vec<Option<&str>> = steps
            .iter()
            .map(|s| s.get("think_time").and_then(Value::as_str))
            .collect();
        assert_eq!(think, [Some("1230ms"), None, None, None, None]);
    }

    #[test]
    fn headers_bodies_names_and_redirects() {
        let mut post = entry(
            0,
            5.0,
            "POST",
            "http://h/api/items",
            "application/json",
            201,
        );
        post["request"]["headers"] = json!([
            {"name": "Authorization", "value": "Bearer abc"},
            {"name": "Content-Type", "value": "application/json"},
            {"name": "X-Tenant", "value": "t1"},
            {"name": "Idempotency-Key", "value": "k1"},
            {"name": "Cookie", "value": "a=b"},
            {"name": "User-Agent", "value": "Mozilla"},
            {"name": "sec-ch-ua", "value": "x"},
            {"name": ":authority", "value": "h"},
            {"name": "Accept-Encoding", "value": "gzip"},
            {"name": "Content-Length", "value": "9"},
        ]);
        post["request"]["postData"] =
            json!({"mimeType": "application/json; charset=utf-8", "text": "{\"n\":1,\"a\":2}"});
        let mut form = entry(10, 5.0, "POST", "http://h/api/items", "text/html", 302);
        form["request"]["postData"] =
            json!({"mimeType": "application/x-www-form-urlencoded", "text": "a=1&b=x%20y"});
        let mut raw = entry(20, 5.0, "PUT", "http://h/api/items/1", "text/plain", 200);
        raw["request"]["headers"] = json!([{"name": "content-type", "value": "text/csv"}]);
        raw["request"]["postData"] = json!({"mimeType": "text/csv", "text": "a,b\n1,2\n"});
        let twice = entry(
            30,
            5.0,
            "GET",
            "http://h/api/items?tag=a&tag=b",
            "application/json",
            200,
        );
        let (text, doc) = import_entries(vec![post, form, raw, twice], None);
        assert_eq!(
            name_path("/api/v1/orders/7f3a9c12-0b1e/items/42"),
            "/api/v1/orders/id/items/id"
        );
        let steps = doc["steps"].as_sequence().unwrap();
        let headers = steps[0]["headers"].as_mapping().unwrap();
        let kept: Vec<&str> = headers.keys().filter_map(Value::as_str).collect();
        assert_eq!(kept, ["Authorization", "X-Tenant", "Idempotency-Key"]);
        let keys: Vec<&str> = steps[0]["json"]
            .as_mapping()
            .unwrap()
            .keys()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(keys, ["n", "a"], "the recorded key order");
        assert_eq!(steps[0]["checks"]["status"], 201);
        assert_eq!(steps[1]["name"], "post_api_items_2");
        assert_eq!(steps[1]["form"]["b"], "x y");
        assert_eq!(steps[1]["checks"]["status"], Value::from(vec![200, 302]));
        assert!(text.contains("# recorded a 302 redirect"), "{text}");
        assert_eq!(steps[2]["body"], "a,b\n1,2\n");
        assert_eq!(steps[2]["headers"]["content-type"], "text/csv");
        assert_eq!(steps[3]["url"], "/api/items?tag=a&tag=b");
        assert!(steps[3].get("query").is_none());
    }

    #[test]
    fn tokens_and_ids_handed_out_are_extracted_and_registration_and_login_run_once() {
        let mut register = entry(
            0,
            5.0,
            "POST",
            "http://h/auth/register",
            "application/json",
            201,
        );
        register["request"]["postData"] = json!({"mimeType": "application/json", "text": "{\"email\":\"ada@example.com\",\"password\":\"pw-123456\"}"});
        register["response"]["content"]["text"] =
            json!("{\"email\":\"ada@example.com\",\"id\":\"user-0001\"}");
        let mut login = entry(
            10,
            5.0,
            "POST",
            "http://h/auth/login",
            "application/json",
            200,
        );
        login["request"]["postData"] = json!({"mimeType": "application/json", "text": "{\"email\":\"ada@example.com\",\"password\":\"pw-123456\"}"});
        login["response"]["content"]["text"] =
            json!("{\"token\":\"eyJ.secret.token\",\"status\":\"ok\"}");
        let mut order = entry(20, 5.0, "POST", "http://h/orders", "application/json", 201);
        order["request"]["headers"] =
            json!([{"name": "Authorization", "value": "Bearer eyJ.secret.token"}]);
        order["response"]["content"]["text"] =
            json!("{\"order\":{\"id\":\"ord-7f3a9c\"},\"total\":\"19.99-EUR\"}");
        let mut pay = entry(
            30,
            5.0,
            "POST",
            "http://h/payments",
            "application/json",
            201,
        );
        pay["request"]["headers"] =
            json!([{"name": "Authorization", "value": "Bearer eyJ.secret.token"}]);
        pay["request"]["postData"] =
            json!({"mimeType": "application/json", "text": "{\"order_id\":\"ord-7f3a9c\"}"});
        let mut get = entry(
            40,
            5.0,
            "GET",
            "http://h/orders/ord-7f3a9c",
            "application/json",
            200,
        );
        get["request"]["headers"] =
            json!([{"name": "Authorization", "value": "Bearer eyJ.secret.token"}]);
        let (text, doc) = import_entries(vec![register, login, order, pay, get], None);
        assert_eq!(doc["user_variables"]["email"], "{{ unique_email() }}");
        let on_start = doc["on_start"].as_sequence().unwrap();
        assert_eq!(on_start.len(), 2, "{text}");
        assert_eq!(on_start[0]["json"]["email"], "{{ email }}");
        assert_eq!(on_start[1]["json"]["email"], "{{ email }}");
        assert_eq!(on_start[1]["extract"]["token"]["json"], "$.token");
        assert!(
            on_start[0].get("extract").is_none(),
            "the user id is never sent back"
        );
        let steps = doc["steps"].as_sequence().unwrap();
        assert_eq!(steps[0]["headers"]["Authorization"], "Bearer {{ token }}");
        assert_eq!(steps[0]["extract"]["order_id"]["json"], "$.order.id");
        assert!(
            steps[0]["extract"].get("total").is_none(),
            "never sent back"
        );
        assert_eq!(steps[1]["json"]["order_id"], "{{ order_id }}");
        assert_eq!(steps[2]["url"], "/orders/{{ order_id }}");
        assert!(
            text.contains("`token` (from post_auth_login), `order_id` (from post_orders)"),
            "{text}"
        );
        assert_eq!(steps[2]["name"], "get_orders_id");
    }

    #[test]
    fn what_is_not_a_har_is_refused_with_the_reason() {
        let error = |text: &str| {
            import(text, Path::new("x.har"), &HarOptions::default())
                .unwrap_err()
                .to_string()
        };
        let e = error("{\"log\": {\n \"entries\": [ }");
        assert!(e.starts_with("x.har:2:"), "{e}");
        let e = error("{\"openapi\": \"3.0.0\"}");
        assert!(
            e.contains("not a HAR 1.2 recording") && e.contains("log.entries"),
            "{e}"
        );
        let e = error("{\"log\": {\"entries\": [{\"request\": {}}]}}");
        assert!(e.contains("log.entries[0]"), "{e}");
        let e = error("{\"log\": {\"entries\": []}}");
        assert!(e.contains("no request"), "{e}");
    }
}
