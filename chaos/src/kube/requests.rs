//! The API requests of the kube target as text, and kube errors as [`ChaosError`]s. One place
//! spells the paths so that a dry run describes exactly what a real run would send, and so that
//! every error names the request that failed.

use crate::ChaosError;

/// How often recovery is polled; also shown in dry-run descriptions.
pub const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

pub fn pods_path(ns: &str) -> String {
    format!("/api/v1/namespaces/{ns}/pods")
}

pub fn pod_path(ns: &str, name: &str) -> String {
    format!("{}/{name}", pods_path(ns))
}

/// `kind` is the plural resource of `apps/v1`: `deployments`, `statefulsets`, `replicasets`.
pub fn apps_path(ns: &str, kind: &str, name: &str) -> String {
    format!("/apis/apps/v1/namespaces/{ns}/{kind}/{name}")
}

pub fn list_pods_request(ns: &str, selector: &str) -> String {
    format!(
        "GET {}?labelSelector={}",
        pods_path(ns),
        form_encode(selector)
    )
}

/// The body of each pod DELETE, as the API server receives it.
pub fn delete_body(grace_period_seconds: u32) -> String {
    format!("{{\"gracePeriodSeconds\":{grace_period_seconds}}}")
}

/// `application/x-www-form-urlencoded`, as kube (via `form_urlencoded`) encodes query values.
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// True when the API answered 404: the object is gone (or was never there).
pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// An answer from the API server (403, 404, 422...) means the action failed; anything else (no
/// connection, TLS, timeouts, no credentials) means the API could not be reached.
pub fn api_error(request: &str, error: kube::Error) -> ChaosError {
    match error {
        kube::Error::Api(status) => ChaosError::Failed(format!(
            "{request}: {} {} {}",
            status.code, status.reason, status.message
        )),
        kube::Error::SerdeError(e) => {
            ChaosError::Failed(format!("{request}: unexpected response: {e}"))
        }
        other => ChaosError::Unreachable(format!("{request}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_encoded_like_kube_does() {
        assert_eq!(
            list_pods_request("ecommerce", "app=order"),
            "GET /api/v1/namespaces/ecommerce/pods?labelSelector=app%3Dorder"
        );
        assert_eq!(
            form_encode("strimzi.io/cluster=shop-kafka,tier in (a b)"),
            "strimzi.io%2Fcluster%3Dshop-kafka%2Ctier+in+%28a+b%29"
        );
        assert_eq!(delete_body(0), r#"{"gracePeriodSeconds":0}"#);
    }
}
