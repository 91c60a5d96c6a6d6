//! Alerts as Prometheus knows them, for drills that say which alerts must (or must not) fire:
//! the names of its alerting rules (`/api/v1/rules`), and when an alert first fired, read from the
//! `ALERTS` series Prometheus writes at every evaluation of a firing alert — history, unlike
//! `/api/v1/alerts`, which only knows the alerts active now.

use prometheus_http_query::RuleKind;
use prometheus_http_query::response::Data;

use super::SourceError;
use super::prometheus::{PrometheusSource, classify};

impl PrometheusSource {
    /// The names of every alerting rule Prometheus has loaded.
    pub async fn alert_rule_names(&self) -> Result<Vec<String>, SourceError> {
        let groups = self
            .client
            .rules()
            .kind(RuleKind::Alerting)
            .get()
            .await
            .map_err(classify)?;
        Ok(groups
            .iter()
            .flat_map(|g| g.rules())
            .filter_map(|r| r.as_alerting().map(|a| a.name().to_string()))
            .collect())
    }

    /// The first instant (Unix seconds, at 1 s resolution) in `[from, to]` at which `alert` was
    /// firing, or `None` if it never was.
    pub async fn first_firing(
        &self,
        alert: &str,
        from: i64,
        to: i64,
    ) -> Result<Option<f64>, SourceError> {
        let expr = firing_query(alert);
        let result = self
            .client
            .query_range(&expr, from, to.max(from), 1.0)
            .get()
            .await
            .map_err(classify)?;
        match result.data() {
            Data::Matrix(series) => Ok(series
                .iter()
                .filter_map(|s| s.samples().first().map(|p| p.timestamp()))
                .reduce(f64::min)),
            _ => Err(SourceError::rejected(
                "a range query did not return a matrix",
            )),
        }
    }
}

/// The `ALERTS` samples of `alert` while firing (not pending).
pub fn firing_query(alert: &str) -> String {
    let escaped = alert.replace('\\', "\\\\").replace('"', "\\\"");
    format!("ALERTS{{alertname=\"{escaped}\", alertstate=\"firing\"}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_firing_query_names_the_alert() {
        assert_eq!(
            firing_query("ProductPageP95BurnRatePage"),
            "ALERTS{alertname=\"ProductPageP95BurnRatePage\", alertstate=\"firing\"}"
        );
    }
}
