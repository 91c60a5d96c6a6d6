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
use super::har_filter::{is_static, keep_header};
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
    /// Chrome's own classification (`script`, `image`, `fetch`, ...), when it wrote one.
    #[serde(rename = "_resourceType", default)]
    resource_type: Option<String>,
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
    /// A CORS preflight: the browser asks before the real request, which is replayed anyway.
    fn is_preflight(&self) -> bool {
        self.method.eq_ignore_ascii_case("OPTIONS")
            && self
                .headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case("access-control-request-method"))
    }

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
    pub(super) fn resource_type(&self) -> Option<&str> {
        self.resource_type.as_deref()
    }

    pub(super) fn response_mime_type(&self) -> &str {
        &self.response.content.mime_type
    }

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
        } else if entry.request.is_preflight() {
            left_out.preflights += 1;
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
    preflights: usize,
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
    if left_out.preflights > 0 {
        out.push(format!("{} CORS preflights", left_out.preflights));
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
#[path = "har_tests.rs"]
mod tests;
