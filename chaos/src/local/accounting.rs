//! Reads a reference service's accounting (`GET {admin}/admin/accounting`, see shop's
//! `platform::accounting`): what it holds and what waits in its outbox. Drills count through this
//! API rather than the services' databases, so they keep working whatever storage a service uses.

use std::time::Duration;

use shop::platform::accounting::AccountingReport;
use shop::stack::Endpoint;

use crate::error::ChaosError;

/// A read that takes longer than this is a service that does not answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The accounting report of `endpoint`'s service.
pub async fn read(
    http: &reqwest::Client,
    endpoint: &Endpoint,
) -> Result<AccountingReport, ChaosError> {
    let url = format!("{}/admin/accounting", endpoint.admin_url);
    let response =
        http.get(&url).timeout(TIMEOUT).send().await.map_err(|e| {
            ChaosError::Unreachable(format!("reading {url} ({}): {e}", endpoint.name))
        })?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(ChaosError::Failed(format!(
            "{url} ({}) answered {status}: {body}",
            endpoint.name
        )));
    }
    response
        .json()
        .await
        .map_err(|e| ChaosError::Failed(format!("{url} ({}): {e}", endpoint.name)))
}

/// Count `name` of a report; its absence is an error naming the service.
pub fn count(report: &AccountingReport, name: &str) -> Result<u64, ChaosError> {
    report.counts.get(name).copied().ok_or_else(|| {
        ChaosError::Failed(format!(
            "{}'s /admin/accounting has no {name:?} count",
            report.service
        ))
    })
}

/// The outbox backlog of a report; its absence is an error naming the service.
pub fn outbox(
    report: &AccountingReport,
) -> Result<&shop::platform::accounting::OutboxBacklog, ChaosError> {
    report.outbox.as_ref().ok_or_else(|| {
        ChaosError::Failed(format!(
            "{} declares an outbox but its /admin/accounting reports none",
            report.service
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn report(counts: &[(&str, u64)], outbox: bool) -> AccountingReport {
        AccountingReport {
            service: "order".into(),
            counts: counts.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            outbox: outbox.then(|| shop::platform::accounting::OutboxBacklog {
                pending: 2,
                pending_by_type: BTreeMap::from([("order.created".to_string(), 2)]),
            }),
        }
    }

    #[test]
    fn a_missing_count_or_outbox_is_a_failure_naming_the_service() {
        let with = report(&[("orders", 7)], true);
        assert_eq!(count(&with, "orders").unwrap(), 7);
        assert_eq!(outbox(&with).unwrap().pending, 2);
        let without = report(&[], false);
        let error = count(&without, "orders").unwrap_err();
        assert!(matches!(error, ChaosError::Failed(_)));
        assert_eq!(
            error.to_string(),
            "order's /admin/accounting has no \"orders\" count"
        );
        assert_eq!(
            outbox(&without).unwrap_err().to_string(),
            "order declares an outbox but its /admin/accounting reports none"
        );
    }
}
