//! `faults` and `faults-clear`: injected latency and errors through a service's admin endpoint
//! (`PUT|DELETE {admin}/admin/faults`, see the reference services' `platform::faults`). Works on
//! the embedded stack (by service name) and on anything serving that endpoint (by URL).

use std::time::Duration;

use chrono::Utc;
use futures::FutureExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::action::{Action, ActionFuture, hold};
use crate::error::ChaosError;
use crate::journal::{ActionRecord, Outcome};
use crate::model::Faults;

/// A request to an admin endpoint may take this long; the endpoint is on the service's own
/// listener, so a slow answer means the service is in trouble, not that it is busy.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The JSON body `PUT /admin/faults` takes for `spec`.
pub fn body(spec: &Faults) -> Value {
    json!({
        "latency_ms": spec.latency.unwrap_or_default().as_millis() as u64,
        "jitter_ms": spec.jitter.unwrap_or_default().as_millis() as u64,
        "error_ratio": spec.error_ratio,
    })
}

/// The dry-run description of `faults` against `admin` (a URL or a placeholder naming it).
pub fn describe(spec: &Faults, admin: &str) -> Vec<String> {
    vec![
        format!("PUT {admin}/admin/faults {}", body(spec)),
        format!(
            "wait {} (less if halted or interrupted)",
            humantime::format_duration(spec.duration)
        ),
        format!("DELETE {admin}/admin/faults"),
    ]
}

pub fn describe_clear(admin: &str) -> Vec<String> {
    vec![format!("DELETE {admin}/admin/faults")]
}

/// An admin endpoint and a client for it.
#[derive(Clone)]
pub struct Admin {
    /// What the journal names as the target (a service name or the URL).
    pub name: String,
    pub url: String,
    http: reqwest::Client,
}

impl Admin {
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Admin {
        Admin {
            name: name.into(),
            url: url.into().trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .timeout(ADMIN_TIMEOUT)
                .build()
                .expect("building an HTTP client"),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> Result<(), ChaosError> {
        let response = request.send().await.map_err(|e| {
            ChaosError::Unreachable(format!("{what} {}/admin/faults: {e}", self.url))
        })?;
        if response.status().is_success() {
            Ok(())
        } else {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            Err(ChaosError::Failed(format!(
                "{what} {}/admin/faults answered {status}: {text}",
                self.url
            )))
        }
    }

    pub async fn set(&self, body: &Value) -> Result<(), ChaosError> {
        let url = format!("{}/admin/faults", self.url);
        self.send(self.http.put(url).json(body), "PUT").await
    }

    pub async fn clear(&self) -> Result<(), ChaosError> {
        let url = format!("{}/admin/faults", self.url);
        self.send(self.http.delete(url), "DELETE").await
    }
}

/// `faults` bound to an endpoint.
pub struct FaultsAction {
    pub admin: Admin,
    pub spec: Faults,
}

impl Action for FaultsAction {
    fn kind(&self) -> &str {
        "faults"
    }

    fn target(&self) -> String {
        self.admin.name.clone()
    }

    fn run<'a>(&'a self, cancel: &'a CancellationToken) -> ActionFuture<'a> {
        async move {
            let started_at = Utc::now();
            let body = body(&self.spec);
            self.admin.set(&body).await?;
            let in_force = crate::in_force::enter(
                format!("faults {body} on {}", self.admin.name),
                format!("curl -X DELETE {}/admin/faults", self.admin.url),
            );
            let held = hold(self.spec.duration, cancel).await;
            // Always clear, also when cut short: a halted drill must not leave latency behind.
            let cleared = self.admin.clear().await;
            match cleared {
                Ok(()) => drop(in_force),
                // Still in force: stay listed for the rest of the process, so a later signal
                // still tells the operator how to undo it.
                Err(_) => std::mem::forget(in_force),
            }
            let mut detail = format!("{body}");
            if !held {
                detail.push_str("; cut short (halt or Ctrl-C)");
            }
            let outcome = match &cleared {
                Ok(()) => Outcome::Ok,
                Err(e) => {
                    detail.push_str(&format!("; clearing failed: {e}"));
                    Outcome::Failed
                }
            };
            Ok(ActionRecord {
                action: "faults".into(),
                target: self.admin.name.clone(),
                started_at,
                ended_at: Some(Utc::now()),
                outcome,
                affected: vec![self.admin.url.clone()],
                recovery: None,
                detail: Some(detail),
            })
        }
        .boxed()
    }
}

/// `faults-clear` bound to an endpoint.
pub struct FaultsClearAction {
    pub admin: Admin,
}

impl Action for FaultsClearAction {
    fn kind(&self) -> &str {
        "faults-clear"
    }

    fn target(&self) -> String {
        self.admin.name.clone()
    }

    fn run<'a>(&'a self, _cancel: &'a CancellationToken) -> ActionFuture<'a> {
        async move {
            let started_at = Utc::now();
            self.admin.clear().await?;
            Ok(ActionRecord::completed(
                "faults-clear",
                self.admin.name.clone(),
                started_at,
                vec![self.admin.url.clone()],
            ))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_what_the_admin_endpoint_reads() {
        let spec = Faults {
            service: None,
            admin_url: Some("http://x".into()),
            latency: Some(Duration::from_millis(800)),
            jitter: None,
            error_ratio: 0.25,
            duration: Duration::from_secs(20),
        };
        assert_eq!(
            body(&spec),
            json!({"latency_ms": 800, "jitter_ms": 0, "error_ratio": 0.25})
        );
        let lines = describe(&spec, "http://x");
        assert_eq!(
            lines[0],
            "PUT http://x/admin/faults {\"error_ratio\":0.25,\"jitter_ms\":0,\"latency_ms\":800}"
        );
        assert_eq!(lines[2], "DELETE http://x/admin/faults");
    }
}
