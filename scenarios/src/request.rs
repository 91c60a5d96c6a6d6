//! One timed, checked, recorded request.
//!
//! Every request a Rust step makes goes through [`send`] (scenario files use the same
//! timing and classification in `file/run.rs`): it is timed with our own `Instant`s
//! from just before sending to the end of the body, its status is compared to the one the
//! API promises, its JSON body is checked by the caller's closure, and the outcome is
//! recorded exactly once — success, or an error of kind `connect`, `timeout`, `status`,
//! `check` or `other`.
//!
//! Requests go out on the Goose user's own HTTP client (its connection pool and the
//! profile's request timeout) but not through `GooseUser::request`: Goose's per-request
//! bookkeeping feeds metrics we switch off, and it logs a warning line for every failed
//! request, which floods the console exactly when a target is down.

use std::time::Instant;

use goose::prelude::*;
use reports::ErrorKind;
use reqwest::Method;
use serde_json::Value;

use crate::recorder::RequestRecord;
use crate::session::{custom_error, session};

/// A request to make.
#[derive(Clone, Debug)]
pub struct Call {
    /// Transaction name the request is recorded under.
    pub name: &'static str,
    pub method: Method,
    /// Path relative to the target, e.g. `/api/v1/products?skip=0&limit=10`.
    pub path: String,
    pub body: Option<Value>,
    /// Extra request headers, e.g. `("authorization", "Bearer ...")`.
    pub headers: Vec<(&'static str, String)>,
    /// The status the API promises for this call; anything else is a `status` error.
    pub expect: u16,
}

impl Call {
    fn new(name: &'static str, method: Method, path: impl Into<String>, expect: u16) -> Self {
        Self {
            name,
            method,
            path: path.into(),
            body: None,
            headers: Vec::new(),
            expect,
        }
    }

    pub fn get(name: &'static str, path: impl Into<String>) -> Self {
        Self::new(name, Method::GET, path, 200)
    }

    pub fn post(name: &'static str, path: impl Into<String>, body: Value) -> Self {
        Self::new(name, Method::POST, path, 200).with_body(body)
    }

    pub fn put(name: &'static str, path: impl Into<String>) -> Self {
        Self::new(name, Method::PUT, path, 200)
    }

    pub fn delete(name: &'static str, path: impl Into<String>) -> Self {
        Self::new(name, Method::DELETE, path, 200)
    }

    pub fn with_body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn expect(mut self, status: u16) -> Self {
        self.expect = status;
        self
    }
}

/// Sends `call`, checks the response with `check` and records the outcome.
///
/// `check` sees the parsed JSON body (`Value::Null` for an empty body) and returns what the
/// scenario needs from it, or a short message saying what was wrong. Keep messages free of
/// ids and other per-request values: they are grouped by text in the report.
pub async fn send<T>(
    user: &mut GooseUser,
    call: Call,
    check: impl FnOnce(&Value) -> Result<T, String>,
) -> Result<T, Box<TransactionError>> {
    let (recorder, lateness, url) = {
        let session = session(user)?;
        let url = format!("{}{}", session.run.base_url, call.path);
        (session.run.recorder.clone(), session.lateness, url)
    };

    let mut builder = user.client.request(call.method.clone(), &url);
    if let Some(body) = &call.body {
        builder = builder.json(body);
    }
    for (name, value) in &call.headers {
        builder = builder.header(*name, value);
    }

    let started = Instant::now();
    let (status, outcome) = match builder.send().await {
        Err(error) => (None, Err(transport_error(&error))),
        Ok(response) => {
            let status = response.status().as_u16();
            match response.bytes().await {
                Err(error) => (Some(status), Err(transport_error(&error))),
                Ok(body) => (Some(status), Ok(body)),
            }
        }
    };
    let latency = started.elapsed();

    let result = outcome.and_then(|body| judge(&call, status, &body, check));
    let error = result.as_ref().err().cloned();
    recorder.record(RequestRecord {
        transaction: call.name,
        latency,
        lateness,
        status,
        error,
    });
    result.map_err(|(kind, message)| custom_error(format!("{} {kind}: {message}", call.name)))
}

/// Applies the status rule and the body check to a complete response.
fn judge<T>(
    call: &Call,
    status: Option<u16>,
    body: &[u8],
    check: impl FnOnce(&Value) -> Result<T, String>,
) -> Result<T, (ErrorKind, String)> {
    let parsed: Option<Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Some(Value::Null)
    } else {
        serde_json::from_slice(body).ok()
    };
    let status = status.unwrap_or_default();
    if status != call.expect {
        return Err(status_error(&call.expect, status, parsed.as_ref()));
    }
    let value = parsed.ok_or_else(|| (ErrorKind::Check, "body is not JSON".to_string()))?;
    check(&value).map_err(|message| (ErrorKind::Check, message))
}

/// A `status` error: what was expected, what came, and the API's error code when its body has
/// one (`{"error": {"code": ...}}`), which tells a 503 from shedding and one from a dead peer.
pub(crate) fn status_error(
    expected: &dyn std::fmt::Display,
    status: u16,
    body: Option<&Value>,
) -> (ErrorKind, String) {
    let code = body
        .and_then(|v| v.pointer("/error/code"))
        .and_then(Value::as_str)
        .map(|code| format!(" ({code})"))
        .unwrap_or_default();
    (
        ErrorKind::Status,
        format!("expected {expected}, got {status}{code}"),
    )
}

/// Classifies a transport failure and keeps its innermost cause, which reads like
/// "Connection refused (os error 111)" instead of repeating the URL.
pub(crate) fn transport_error(error: &reqwest::Error) -> (ErrorKind, String) {
    let kind = if error.is_connect() {
        ErrorKind::Connect
    } else if error.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Other
    };
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    (kind, cause.to_string())
}

/// Body checks for Rust steps.
pub mod expect {
    use serde_json::Value;

    /// The field must be present and a JSON string.
    pub fn string<'a>(value: &'a Value, field: &str) -> Result<&'a str, String> {
        value
            .get(field)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("`{field}` missing or not a string"))
    }

    /// The field must be present and a JSON array.
    pub fn array<'a>(value: &'a Value, field: &str) -> Result<&'a Vec<Value>, String> {
        value
            .get(field)
            .and_then(Value::as_array)
            .ok_or_else(|| format!("`{field}` missing or not an array"))
    }

    /// The field must be present and a number.
    pub fn number(value: &Value, field: &str) -> Result<f64, String> {
        value
            .get(field)
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("`{field}` missing or not a number"))
    }

    /// The field must be present (an id may be a number or a string).
    pub fn present<'a>(value: &'a Value, field: &str) -> Result<&'a Value, String> {
        value
            .get(field)
            .filter(|v| !v.is_null())
            .ok_or_else(|| format!("`{field}` missing"))
    }

    /// The string field must have exactly this value.
    pub fn equals(value: &Value, field: &str, expected: &str) -> Result<(), String> {
        let actual = string(value, field)?;
        if actual == expected {
            Ok(())
        } else {
            Err(format!(
                "`{field}` is \"{actual}\", expected \"{expected}\""
            ))
        }
    }
}
