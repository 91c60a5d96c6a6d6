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
    .into_iter()
    .chain(delay_tail(spec).map(|d| {
        format!(
            "wait {} for the requests it delayed to answer",
            humantime::format_duration(d)
        )
    }))
    .collect()
}

/// How long a request admitted just before the clear can still be delayed by `spec`
/// (`latency + jitter`); `None` when the fault adds no delay.
fn delay_tail(spec: &Faults) -> Option<Duration> {
    Some(spec.latency.unwrap_or_default() + spec.jitter.unwrap_or_default())
        .filter(|d| !d.is_zero())
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
            // A request admitted just before the clear still carries the fault's delay: the
            // disruption lasts until it has answered, so the "after" window does not judge it.
            let tail = delay_tail(&self.spec).filter(|_| held && cleared.is_ok());
            if let Some(tail) = tail {
                hold(tail, cancel).await;
            }
            let mut detail = format!("{body}");
            if !held {
                detail.push_str("; cut short (halt or Ctrl-C)");
            } else if let Some(tail) = tail {
                detail.push_str(&format!(
                    "; cleared, then {} for requests it delayed to answer",
                    humantime::format_duration(tail)
                ));
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
        assert_eq!(lines[3], "wait 800ms for the requests it delayed to answer");
    }

    /// An admin endpoint that answers every request with 200 and notes its method and time.
    async fn admin_stub() -> (
        String,
        std::sync::Arc<std::sync::Mutex<Vec<(String, chrono::DateTime<Utc>)>>>,
    ) {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let noted = seen.clone();
        let app = axum::Router::new().fallback(move |method: http::Method| {
            noted.lock().unwrap().push((method.to_string(), Utc::now()));
            async {}
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }

    #[tokio::test]
    async fn the_disruption_lasts_until_the_requests_it_delayed_have_answered() {
        let (url, seen) = admin_stub().await;
        let action = FaultsAction {
            admin: Admin::new("stub", url),
            spec: Faults {
                service: None,
                admin_url: None,
                latency: Some(Duration::from_millis(300)),
                jitter: Some(Duration::from_millis(100)),
                error_ratio: 0.0,
                duration: Duration::from_millis(50),
            },
        };
        let record = action.run(&CancellationToken::new()).await.unwrap();
        let seen = seen.lock().unwrap().clone();
        let methods: Vec<&str> = seen.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(methods, ["PUT", "DELETE"]);
        let ended = record.ended_at.unwrap();
        assert!(
            ended - seen[1].1 >= chrono::Duration::milliseconds(400),
            "ended {ended}, cleared {}",
            seen[1].1
        );
        assert_eq!(record.disruption().unwrap().1, ended);
        assert!(
            record
                .detail
                .as_deref()
                .unwrap()
                .contains("cleared, then 400ms"),
            "{:?}",
            record.detail
        );
    }
}
