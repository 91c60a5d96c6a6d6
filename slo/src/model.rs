//! The SLO file model (`apiVersion: shakedown/v1`, `kind: SLOSet`), as serde types.
//!
//! Every rule a file must follow is checked while it is deserialized (newtypes and conversions
//! that run inside each YAML node, see `config::validated`), so an invalid file fails with the
//! line and the field at fault instead of a later, placeless error. `slo/schema/sloset.schema.json` documents the same layout for editors.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

use crate::budget::Budget;
use crate::sources::SourceKind;
use crate::value::{Bound, BoundVisitor, HumanDuration, Unit, Written};
use config::deserialize_validated;

/// A named set of SLOs, the content of one SLO file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSet {
    #[serde(rename = "apiVersion")]
    pub api_version: ApiVersion,
    pub kind: SetKind,
    pub metadata: Metadata,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(deserialize_with = "unique_slos")]
    pub slos: Vec<Slo>,
}

impl SloSet {
    /// The sources this set needs, each once, in a fixed order.
    pub fn source_kinds(&self) -> BTreeSet<SourceKind> {
        self.slos.iter().map(Slo::source_kind).collect()
    }
}

// Types whose rules are checked inside their own YAML node (see `config::validated`).
deserialize_validated!(Quantile, number);
deserialize_validated!(MetricName, string);
deserialize_validated!(Selector, string);
deserialize_validated!(KafkaLagSli, map RawKafkaLagSli);
deserialize_validated!(After, string);
deserialize_validated!(ClientSli, map RawClientSli);

/// The only layout version this build reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum ApiVersion {
    #[serde(rename = "shakedown/v1")]
    V1,
}

/// The only kind of document an SLO file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum SetKind {
    #[serde(rename = "SLOSet")]
    SloSet,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// Settings shared by every SLO of the set.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// How far back from the window's end to look when no explicit start is given.
    #[serde(default = "default_window", deserialize_with = "duration")]
    pub window: Duration,
    /// Resolution of Prometheus range queries (HPA time at max, lag recovery).
    #[serde(default = "default_step", deserialize_with = "duration")]
    pub step: Duration,
    /// How often live sources (kafka, kube) take a sample while the window runs.
    #[serde(default = "default_sample_every", deserialize_with = "duration")]
    pub sample_every: Duration,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            window: default_window(),
            step: default_step(),
            sample_every: default_sample_every(),
        }
    }
}

fn default_window() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_step() -> Duration {
    Duration::from_secs(15)
}

fn default_sample_every() -> Duration {
    Duration::from_secs(5)
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    HumanDuration::deserialize(deserializer).map(|d| d.0)
}

/// One objective: what to measure, where, and the bound it must keep.
#[derive(Clone, Debug)]
pub struct Slo {
    pub name: String,
    pub description: Option<String>,
    pub sli: Sli,
    pub objective: Objective,
    /// Where to measure; `None` means the SLI's usual source ([`Sli::default_source`]).
    pub source: Option<SourceKind>,
    /// The error budget, for burn-rate alerts (`slo rules`); only latency and error-ratio SLIs,
    /// which count good and bad requests, can have one.
    pub budget: Option<Budget>,
}

impl Slo {
    /// The source that measures this SLO.
    pub fn source_kind(&self) -> SourceKind {
        self.source.unwrap_or_else(|| self.sli.default_source())
    }
}

struct RawSlo {
    name: String,
    description: Option<String>,
    sli: Sli,
    objective: Objective,
    source: Option<SourceKind>,
    budget: Option<Budget>,
}

/// The keys an SLO may have.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum SloField {
    Name,
    Description,
    Sli,
    Objective,
    Source,
    Budget,
}

// Read key by key rather than derived: the objective's bounds must be written in the SLI's
// unit, and when the `sli` key comes first (as in every example) the objective is read knowing
// that unit, so a bound in the wrong unit is refused inside its own YAML node — the error then
// carries the line and field path of `lt: 500` itself.
impl<'de> Deserialize<'de> for Slo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Slo;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an SLO: a map with `name`, `sli` and `objective`")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Slo, A::Error> {
                use serde::de::Error as _;
                let mut name: Option<String> = None;
                let mut description: Option<Option<String>> = None;
                let mut sli: Option<Sli> = None;
                let mut objective: Option<Objective> = None;
                let mut source: Option<Option<SourceKind>> = None;
                let mut budget: Option<Budget> = None;
                let mut unit_checked = false;
                let duplicate = |field: &'static str| Err(A::Error::duplicate_field(field));
                while let Some(field) = map.next_key::<SloField>()? {
                    match field {
                        SloField::Name if name.is_some() => return duplicate("name"),
                        SloField::Name => name = Some(map.next_value()?),
                        SloField::Description if description.is_some() => {
                            return duplicate("description");
                        }
                        SloField::Description => description = Some(map.next_value()?),
                        SloField::Sli if sli.is_some() => return duplicate("sli"),
                        SloField::Sli => sli = Some(map.next_value()?),
                        SloField::Objective if objective.is_some() => {
                            return duplicate("objective");
                        }
                        SloField::Objective => {
                            let unit = sli.as_ref().map(Sli::unit);
                            unit_checked = unit.is_some();
                            objective = Some(map.next_value_seed(ObjectiveSeed { unit })?);
                        }
                        SloField::Source if source.is_some() => return duplicate("source"),
                        SloField::Source => source = Some(map.next_value()?),
                        SloField::Budget if budget.is_some() => return duplicate("budget"),
                        SloField::Budget => budget = Some(map.next_value()?),
                    }
                }
                let raw = RawSlo {
                    name: name.ok_or_else(|| A::Error::missing_field("name"))?,
                    description: description.flatten(),
                    sli: sli.ok_or_else(|| A::Error::missing_field("sli"))?,
                    objective: objective.ok_or_else(|| A::Error::missing_field("objective"))?,
                    source: source.flatten(),
                    budget,
                };
                if !unit_checked {
                    // `objective` came before `sli`: its node is gone, name the field instead.
                    raw.objective
                        .check_unit(raw.sli.unit())
                        .map_err(|e| A::Error::custom(format!("in `objective`: {e}")))?;
                }
                Slo::try_from(raw).map_err(A::Error::custom)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

impl TryFrom<RawSlo> for Slo {
    type Error = String;

    fn try_from(raw: RawSlo) -> Result<Self, String> {
        if raw.name.trim().is_empty() {
            return Err("`name` must not be empty".into());
        }
        if let Some(source) = raw.source
            && !raw.sli.supported_sources().contains(&source)
        {
            let supported: Vec<String> = raw
                .sli
                .supported_sources()
                .iter()
                .map(|s| format!("`{s}`"))
                .collect();
            return Err(format!(
                "SLO `{}`: source `{source}` cannot measure a `{}` SLI (use {})",
                raw.name,
                raw.sli.kind_name(),
                supported.join(" or ")
            ));
        }
        if raw.budget.is_some() {
            match &raw.sli {
                Sli::Latency(_) if !raw.objective.comparison.lower_is_better() => {
                    return Err(format!(
                        "SLO `{}`: a budget on a latency SLO counts the requests slower than the \
                         objective's bound, so the objective must be `lt` or `lte`",
                        raw.name
                    ));
                }
                Sli::Latency(_) | Sli::ErrorRatio(_) => {}
                other => {
                    return Err(format!(
                        "SLO `{}`: a `budget` needs an SLI that counts good and bad requests \
                         (latency or error_ratio), not `{}`",
                        raw.name,
                        other.kind_name()
                    ));
                }
            }
        }
        Ok(Slo {
            name: raw.name,
            description: raw.description,
            sli: raw.sli,
            objective: raw.objective,
            source: raw.source,
            budget: raw.budget,
        })
    }
}

fn unique_slos<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Slo>, D::Error> {
    let slos = Vec::<Slo>::deserialize(deserializer)?;
    if slos.is_empty() {
        return Err(serde::de::Error::custom("the set has no SLOs"));
    }
    let mut seen = BTreeSet::new();
    for slo in &slos {
        if !seen.insert(slo.name.as_str()) {
            return Err(serde::de::Error::custom(format!(
                "two SLOs are named `{}`; names identify verdicts and must be unique",
                slo.name
            )));
        }
    }
    Ok(slos)
}

/// What is measured (the service level indicator). Written as a one-key map:
/// `sli: { latency: { quantile: 0.95 } }`.
#[derive(Clone, Debug)]
pub enum Sli {
    /// A quantile of a Prometheus latency histogram.
    Latency(LatencySli),
    /// Bad requests over all requests, from a Prometheus counter.
    ErrorRatio(ErrorRatioSli),
    /// Any PromQL expression that yields one value.
    Promql(PromqlSli),
    /// How a HorizontalPodAutoscaler behaved.
    Hpa(HpaSli),
    /// The lag of a Kafka consumer group.
    KafkaLag(KafkaLagSli),
    /// The load generator's own numbers from a run report.
    Client(ClientSli),
}

/// The keys an `sli` map may have.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum SliKind {
    Latency,
    ErrorRatio,
    Promql,
    Hpa,
    KafkaLag,
    Client,
}

// serde_yaml_ng reads data-carrying enums only from YAML tags (`!latency {...}`); SLO files use
// the plainer one-key map, read here key first so errors keep their line and field path.
impl<'de> Deserialize<'de> for Sli {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Sli;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a map with one key naming the SLI kind: latency, error_ratio, promql, hpa, kafka_lag or client",
                )
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Sli, A::Error> {
                use serde::de::Error as _;
                // Read the key as text first: that is what puts it in the error path.
                let Some(key) = map.next_key::<String>()? else {
                    return Err(A::Error::custom(
                        "the SLI is empty; name its kind, e.g. `latency: {quantile: 0.95}`",
                    ));
                };
                let kind = SliKind::deserialize(serde::de::value::StrDeserializer::<
                    serde::de::value::Error,
                >::new(&key))
                .map_err(A::Error::custom)?;
                let sli = match kind {
                    SliKind::Latency => Sli::Latency(map.next_value()?),
                    SliKind::ErrorRatio => Sli::ErrorRatio(map.next_value()?),
                    SliKind::Promql => Sli::Promql(map.next_value()?),
                    SliKind::Hpa => Sli::Hpa(map.next_value()?),
                    SliKind::KafkaLag => Sli::KafkaLag(map.next_value()?),
                    SliKind::Client => Sli::Client(map.next_value()?),
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(A::Error::custom(format!(
                        "an SLI has exactly one kind, `{extra}` is a second one"
                    )));
                }
                Ok(sli)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

impl Sli {
    /// The key used in the file, e.g. `error_ratio`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Sli::Latency(_) => "latency",
            Sli::ErrorRatio(_) => "error_ratio",
            Sli::Promql(_) => "promql",
            Sli::Hpa(_) => "hpa",
            Sli::KafkaLag(_) => "kafka_lag",
            Sli::Client(_) => "client",
        }
    }

    /// Sources able to measure this SLI, the default first.
    pub fn supported_sources(&self) -> &'static [SourceKind] {
        match self {
            Sli::Latency(_) | Sli::ErrorRatio(_) | Sli::Promql(_) => &[SourceKind::Prometheus],
            Sli::Hpa(_) => &[SourceKind::Prometheus, SourceKind::Kube],
            Sli::KafkaLag(_) => &[SourceKind::Prometheus, SourceKind::Kafka],
            Sli::Client(_) => &[SourceKind::Client],
        }
    }

    /// The source used when the SLO names none.
    pub fn default_source(&self) -> SourceKind {
        self.supported_sources()[0]
    }

    /// The unit of the measured value.
    pub fn unit(&self) -> Unit {
        match self {
            Sli::Latency(_) => Unit::Latency,
            Sli::ErrorRatio(_) => Unit::Ratio,
            Sli::Promql(p) => p.unit,
            Sli::Hpa(h) => match h.measure {
                HpaMeasure::ScaleOut | HpaMeasure::EndGap => Unit::Replicas,
                HpaMeasure::TimeAtMax => Unit::Duration,
            },
            Sli::KafkaLag(k) => match k.measure {
                KafkaMeasure::MaxLag => Unit::Messages,
                KafkaMeasure::TimeLag | KafkaMeasure::RecoveryTime => Unit::Duration,
            },
            Sli::Client(c) => match c.measure {
                ClientMeasure::Latency => Unit::Latency,
                ClientMeasure::ErrorRate => Unit::Ratio,
            },
        }
    }

    /// A few words naming the measured quantity, e.g. `p95 latency`.
    pub fn quantity(&self) -> String {
        match self {
            Sli::Latency(l) => format!("{} latency", l.quantile),
            Sli::ErrorRatio(_) => "error ratio".into(),
            Sli::Promql(_) => "value".into(),
            Sli::Hpa(h) => match h.measure {
                HpaMeasure::ScaleOut => "peak replicas above min".into(),
                HpaMeasure::TimeAtMax => "longest time at max replicas".into(),
                HpaMeasure::EndGap => "desired - current replicas at the end".into(),
            },
            Sli::KafkaLag(k) => match (k.measure, k.below) {
                (KafkaMeasure::MaxLag, _) => "max lag".into(),
                (KafkaMeasure::TimeLag, _) => "max time lag".into(),
                (KafkaMeasure::RecoveryTime, Some(below)) => match k.lag {
                    LagKind::Messages => format!("time until lag < {below} after {}", k.after),
                    LagKind::Time => format!(
                        "time until time lag < {} after {}",
                        Unit::Duration.format(below),
                        k.after
                    ),
                },
                (KafkaMeasure::RecoveryTime, None) => "time to recover".into(),
            },
            Sli::Client(c) => match (c.measure, c.quantile) {
                (ClientMeasure::Latency, Some(q)) => format!("client {q} latency"),
                (ClientMeasure::Latency, None) => "client latency".into(),
                (ClientMeasure::ErrorRate, _) => "client error rate".into(),
            },
        }
    }
}

/// A quantile strictly between 0 and 1, shown as `p95`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantile(pub f64);

impl TryFrom<f64> for Quantile {
    type Error = String;
    fn try_from(q: f64) -> Result<Self, String> {
        if q > 0.0 && q < 1.0 {
            Ok(Quantile(q))
        } else {
            Err(format!(
                "quantile {q} is not between 0 and 1 (write 0.95 for p95)"
            ))
        }
    }
}

impl fmt::Display for Quantile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let percent = format!("{:.3}", self.0 * 100.0);
        write!(
            f,
            "p{}",
            percent.trim_end_matches('0').trim_end_matches('.')
        )
    }
}

/// A Prometheus metric name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricName(pub String);

impl TryFrom<String> for MetricName {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        let mut chars = name.chars();
        let valid_start = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
        if valid_start && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            Ok(MetricName(name))
        } else {
            Err(format!("`{name}` is not a Prometheus metric name"))
        }
    }
}

/// Label matchers in PromQL syntax without braces: `service="api-gateway", route!~"/health"`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector(pub String);

impl TryFrom<String> for Selector {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let text = text.trim().trim_end_matches(',').trim().to_string();
        // Braces inside label values are fine: templated routes look like `/products/{id}`.
        if has_brace_outside_quotes(&text) {
            return Err(format!(
                "write the label matchers without braces, e.g. `service=\"api-gateway\"` (got `{text}`)"
            ));
        }
        if !text.is_empty() && !text.contains('=') && !text.contains("!~") {
            return Err(format!(
                "`{text}` has no label matcher; write e.g. `service=\"api-gateway\"`"
            ));
        }
        Ok(Selector(text))
    }
}

/// Whether `text` has `{` or `}` outside PromQL string literals (`"..."`, `'...'` with backslash
/// escapes, and raw `` `...` ``).
fn has_brace_outside_quotes(text: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(q) if c == '\\' && q != '`' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if matches!(c, '"' | '\'' | '`') => quote = Some(c),
            None if matches!(c, '{' | '}') => return true,
            None => {}
        }
    }
    false
}

impl Selector {
    /// The matchers of `self` and `more` joined, for use inside `{...}`.
    pub fn and(&self, more: &Selector) -> String {
        [self.0.as_str(), more.0.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySli {
    pub quantile: Quantile,
    /// The histogram's name, without `_bucket`.
    #[serde(default = "default_histogram")]
    pub metric: MetricName,
    #[serde(default)]
    pub selector: Selector,
}

fn default_histogram() -> MetricName {
    MetricName("http_request_duration_seconds".into())
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRatioSli {
    /// A counter of all requests (a histogram's `_count` works).
    #[serde(default = "default_request_counter")]
    pub metric: MetricName,
    /// Matchers for all requests.
    #[serde(default)]
    pub selector: Selector,
    /// Extra matchers that pick the bad requests among them.
    #[serde(default = "default_bad")]
    pub bad: Selector,
}

fn default_request_counter() -> MetricName {
    MetricName("http_request_duration_seconds_count".into())
}

fn default_bad() -> Selector {
    Selector("status=~\"5..\"".into())
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromqlSli {
    /// PromQL evaluated at the window's end; `$window` becomes the window length (`900s`),
    /// `$from` / `$to` its bounds in Unix seconds.
    pub query: String,
    /// What the value means (`latency`, `duration`, `ratio`, `replicas`, `messages`, `number`).
    #[serde(default = "default_promql_unit")]
    pub unit: Unit,
}

fn default_promql_unit() -> Unit {
    Unit::Number
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HpaSli {
    pub namespace: String,
    pub name: String,
    pub measure: HpaMeasure,
}

/// What to judge about an autoscaler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HpaMeasure {
    /// Peak current replicas in the window minus `minReplicas` (> 0: it scaled out).
    ScaleOut,
    /// Longest continuous time at `maxReplicas` in the window, in seconds.
    TimeAtMax,
    /// |desired - current| replicas at the end of the window (0: it settled).
    EndGap,
}

#[derive(Clone, Debug)]
pub struct KafkaLagSli {
    pub group: String,
    /// Topics to sum the lag over; empty means every topic the group consumes (Prometheus
    /// only: the `kafka` source needs them listed).
    pub topics: Vec<String>,
    pub measure: KafkaMeasure,
    /// Recovery means the lag dropped below this: messages, or seconds when `lag` is `Time`.
    pub below: Option<f64>,
    /// The instant recovery is counted from.
    pub after: After,
    /// What the lag is counted in: messages for `max_lag`, seconds for `time_lag`, and for
    /// `recovery_time` whatever `below` is written in (`1000` messages, `5s`).
    pub lag: LagKind,
}

/// How a consumer group's lag is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LagKind {
    /// Messages not yet consumed (high watermark − committed offset), summed over partitions.
    Messages,
    /// Age of the oldest unconsumed message in seconds, the maximum over partitions.
    Time,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKafkaLagSli {
    group: String,
    #[serde(default)]
    topics: Vec<String>,
    measure: KafkaMeasure,
    #[serde(default)]
    below: Option<LagBound>,
    #[serde(default)]
    after: Option<After>,
}

impl TryFrom<RawKafkaLagSli> for KafkaLagSli {
    type Error = String;
    fn try_from(raw: RawKafkaLagSli) -> Result<Self, String> {
        let lag = match (raw.measure, raw.below) {
            (KafkaMeasure::RecoveryTime, None) => {
                return Err(
                    "measure `recovery_time` needs `below` (the lag that counts as recovered: \
                     messages like `100`, or a time like `5s`)"
                        .into(),
                );
            }
            (KafkaMeasure::RecoveryTime, Some(below)) => below.kind(),
            (KafkaMeasure::MaxLag | KafkaMeasure::TimeLag, _)
                if raw.below.is_some() || raw.after.is_some() =>
            {
                return Err("`below` and `after` only apply to measure `recovery_time`".into());
            }
            (KafkaMeasure::MaxLag, _) => LagKind::Messages,
            (KafkaMeasure::TimeLag, _) => LagKind::Time,
        };
        Ok(KafkaLagSli {
            group: raw.group,
            topics: raw.topics,
            measure: raw.measure,
            below: raw.below.map(LagBound::value),
            after: raw.after.unwrap_or(After::LoadEnd),
            lag,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaMeasure {
    /// Highest total lag in messages (summed over partitions and topics) in the window.
    MaxLag,
    /// Highest time lag in the window: the age of the oldest unconsumed message, in seconds,
    /// the maximum over partitions (kafka-lag-exporter's and Burrow's "lag in time").
    TimeLag,
    /// Seconds from `after` until the lag is below `below` (messages or, written `5s`, time).
    RecoveryTime,
}

/// A lag bound in an SLO file: a plain number counts messages (`1000`), a duration counts the
/// time lag (`5s`). Kept apart from [`Bound`] because there the forms are one quantity in
/// different units, and here they name different measurements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LagBound {
    Messages(f64),
    Seconds(f64),
}

impl LagBound {
    pub fn kind(self) -> LagKind {
        match self {
            LagBound::Messages(_) => LagKind::Messages,
            LagBound::Seconds(_) => LagKind::Time,
        }
    }

    pub fn value(self) -> f64 {
        match self {
            LagBound::Messages(v) | LagBound::Seconds(v) => v,
        }
    }

    fn messages(count: f64) -> Result<LagBound, String> {
        if count.is_finite() && count >= 0.0 {
            Ok(LagBound::Messages(count))
        } else {
            Err(format!(
                "a lag of {count} messages is not a count of 0 or more"
            ))
        }
    }

    fn parse(text: &str) -> Result<LagBound, String> {
        let text = text.trim();
        if let Ok(count) = text.parse::<f64>() {
            return LagBound::messages(count);
        }
        humantime::parse_duration(text)
            .map(|d| LagBound::Seconds(d.as_secs_f64()))
            .map_err(|_| {
                format!(
                    "`{text}` is not a lag: write a number of messages (`1000`) or a time (`5s`, `500ms`)"
                )
            })
    }
}

impl<'de> Deserialize<'de> for LagBound {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = LagBound;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of messages like `1000` or a time like `5s`")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<LagBound, E> {
                LagBound::messages(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<LagBound, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<LagBound, E> {
                self.visit_f64(v as f64)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<LagBound, E> {
                LagBound::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// An instant inside the window that recovery is counted from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum After {
    /// The end of the load (a run report's end, or `--load-end`).
    LoadEnd,
    /// The start of the window.
    WindowStart,
    /// The end (or, for instant events, the time) of the first journal event of this kind,
    /// written `event:chaos.kill-pod`.
    Event(String),
    /// A fixed instant, written in RFC 3339.
    At(DateTime<Utc>),
}

impl TryFrom<String> for After {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match text.trim() {
            "load_end" => Ok(After::LoadEnd),
            "window_start" => Ok(After::WindowStart),
            other => {
                if let Some(kind) = other.strip_prefix("event:") {
                    return Ok(After::Event(kind.trim().to_string()));
                }
                DateTime::parse_from_rfc3339(other)
                    .map(|t| After::At(t.with_timezone(&Utc)))
                    .map_err(|_| {
                        format!(
                            "`{other}` is not `load_end`, `window_start`, `event:KIND` or an RFC 3339 time"
                        )
                    })
            }
        }
    }
}

impl fmt::Display for After {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            After::LoadEnd => f.write_str("the end of load"),
            After::WindowStart => f.write_str("the window start"),
            After::Event(kind) => write!(f, "event {kind}"),
            After::At(at) => write!(f, "{}", at.to_rfc3339()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ClientSli {
    pub measure: ClientMeasure,
    /// For `latency`: which quantile.
    pub quantile: Option<Quantile>,
    /// One transaction, or the whole run when absent.
    pub transaction: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClientSli {
    measure: ClientMeasure,
    #[serde(default)]
    quantile: Option<Quantile>,
    #[serde(default)]
    transaction: Option<String>,
}

impl TryFrom<RawClientSli> for ClientSli {
    type Error = String;
    fn try_from(raw: RawClientSli) -> Result<Self, String> {
        match (raw.measure, raw.quantile) {
            (ClientMeasure::Latency, None) => {
                Err("measure `latency` needs `quantile`, e.g. 0.95".into())
            }
            (ClientMeasure::ErrorRate, Some(_)) => {
                Err("`quantile` only applies to measure `latency`".into())
            }
            _ => Ok(ClientSli {
                measure: raw.measure,
                quantile: raw.quantile,
                transaction: raw.transaction,
            }),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientMeasure {
    Latency,
    ErrorRate,
}

/// The bound an SLI must keep, with an optional early-warning band on the passing side.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Objective {
    pub comparison: Comparison,
    pub value: f64,
    /// Values between `warn` and `value` still pass the objective but are reported as `warn`.
    pub warn: Option<f64>,
    /// How `value` and `warn` were written, to check them against the SLI's unit.
    pub(crate) written: (Written, Option<Written>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    Lt,
    Lte,
    Gt,
    Gte,
}

impl Comparison {
    /// The key that writes it in an objective: `lt`, `lte`, `gt`, `gte`.
    pub fn key(self) -> &'static str {
        match self {
            Comparison::Lt => "lt",
            Comparison::Lte => "lte",
            Comparison::Gt => "gt",
            Comparison::Gte => "gte",
        }
    }

    /// Whether `measured` satisfies `measured <op> bound`.
    pub fn holds(self, measured: f64, bound: f64) -> bool {
        match self {
            Comparison::Lt => measured < bound,
            Comparison::Lte => measured <= bound,
            Comparison::Gt => measured > bound,
            Comparison::Gte => measured >= bound,
        }
    }

    /// True for `lt`/`lte`: smaller values are better.
    pub fn lower_is_better(self) -> bool {
        matches!(self, Comparison::Lt | Comparison::Lte)
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Lt => "<",
            Comparison::Lte => "<=",
            Comparison::Gt => ">",
            Comparison::Gte => ">=",
        }
    }
}

impl Objective {
    /// Whether the bounds are written in a unit an SLI measuring `unit` can be compared with
    /// (see [`Unit::check_bound`]). SLO files are checked while they are read; this is for
    /// objectives read apart from their SLI, such as a chaos experiment's halt bounds.
    pub fn check_unit(&self, unit: Unit) -> Result<(), crate::value::UnitError> {
        let (value_written, warn_written) = self.written;
        let bounds = [
            Some((self.comparison.key(), self.value, value_written)),
            self.warn
                .zip(warn_written)
                .map(|(w, written)| ("warn", w, written)),
        ];
        for (field, value, written) in bounds.into_iter().flatten() {
            let bound = Bound {
                value,
                written,
                text: written.text(value),
            };
            unit.check_bound(field, &bound)?;
        }
        Ok(())
    }

    /// The objective in words, e.g. `p95 latency < 500 ms (warn band 400 ms..500 ms)`.
    pub fn text(&self, quantity: &str, unit: Unit) -> String {
        let mut text = format!(
            "{quantity} {} {}",
            self.comparison.symbol(),
            unit.format(self.value)
        );
        if let Some(warn) = self.warn {
            text.push_str(&format!(
                " (warn band {}..{})",
                unit.format(warn.min(self.value)),
                unit.format(warn.max(self.value))
            ));
        }
        text
    }
}

#[derive(Default)]
struct RawObjective {
    lt: Option<Bound>,
    lte: Option<Bound>,
    gt: Option<Bound>,
    gte: Option<Bound>,
    warn: Option<Bound>,
}

/// The keys an objective may have.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum ObjectiveField {
    Lt,
    Lte,
    Gt,
    Gte,
    Warn,
}

/// Reads an objective; with `unit` (the SLI's), every bound must be written in that unit.
struct ObjectiveSeed {
    unit: Option<Unit>,
}

impl<'de> serde::de::DeserializeSeed<'de> for ObjectiveSeed {
    type Value = Objective;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Objective, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ObjectiveSeed {
    type Value = Objective;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an objective such as `{lt: 500ms, warn: 400ms}`")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Objective, A::Error> {
        use serde::de::Error as _;
        let mut raw = RawObjective::default();
        while let Some(field) = map.next_key::<ObjectiveField>()? {
            let (slot, name) = match field {
                ObjectiveField::Lt => (&mut raw.lt, "lt"),
                ObjectiveField::Lte => (&mut raw.lte, "lte"),
                ObjectiveField::Gt => (&mut raw.gt, "gt"),
                ObjectiveField::Gte => (&mut raw.gte, "gte"),
                ObjectiveField::Warn => (&mut raw.warn, "warn"),
            };
            if slot.is_some() {
                return Err(A::Error::duplicate_field(name));
            }
            let check = self.unit.map(|unit| (unit, name));
            *slot = Some(map.next_value_seed(BoundVisitor { check })?);
        }
        Objective::try_from(raw).map_err(A::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Objective {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::DeserializeSeed::deserialize(ObjectiveSeed { unit: None }, deserializer)
    }
}

impl TryFrom<RawObjective> for Objective {
    type Error = String;
    fn try_from(raw: RawObjective) -> Result<Self, String> {
        let given: Vec<(Comparison, Bound)> = [
            (Comparison::Lt, raw.lt),
            (Comparison::Lte, raw.lte),
            (Comparison::Gt, raw.gt),
            (Comparison::Gte, raw.gte),
        ]
        .into_iter()
        .filter_map(|(c, v)| v.map(|v| (c, v)))
        .collect();
        let [(comparison, bound)] = &given[..] else {
            return Err(format!(
                "give exactly one of `lt`, `lte`, `gt`, `gte` (got {})",
                given.len()
            ));
        };
        let (comparison, value) = (*comparison, bound.value);
        let warn = raw.warn.as_ref().map(|w| w.value);
        if let Some(warn) = warn {
            // The band sits on the passing side: for `lt 500ms` a warning at 400 ms makes
            // sense, one at 600 ms would never be reached before the objective fails.
            let on_passing_side = if comparison.lower_is_better() {
                warn <= value
            } else {
                warn >= value
            };
            if !on_passing_side {
                return Err(format!(
                    "`warn` ({}) must be on the passing side of the objective ({} {})",
                    raw.warn.as_ref().map_or(String::new(), |w| w.text.clone()),
                    comparison.symbol(),
                    bound.text
                ));
            }
        }
        Ok(Objective {
            comparison,
            value,
            warn,
            written: (bound.written, raw.warn.map(|w| w.written)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_read_as_percentiles() {
        assert_eq!(Quantile(0.95).to_string(), "p95");
        assert_eq!(Quantile(0.999).to_string(), "p99.9");
        assert!(Quantile::try_from(1.0).is_err());
        assert!(Quantile::try_from(95.0).unwrap_err().contains("0.95"));
    }

    #[test]
    fn objectives_need_exactly_one_bound_and_a_sensible_warn_band() {
        let parse = |text: &str| serde_yaml_ng::from_str::<Objective>(text);
        let o = parse("{lt: 500ms, warn: 400ms}").unwrap();
        assert_eq!(
            (o.comparison, o.value, o.warn),
            (Comparison::Lt, 0.5, Some(0.4))
        );
        assert!(parse("{lt: 1, gt: 0}").is_err());
        assert!(parse("{warn: 1}").is_err());
        assert!(
            parse("{lt: 500ms, warn: 600ms}")
                .unwrap_err()
                .to_string()
                .contains("passing side")
        );
        assert!(parse("{gte: 99%, warn: 98%}").is_err());
        assert_eq!(
            o.text("p95 latency", Unit::Latency),
            "p95 latency < 500 ms (warn band 400 ms..500 ms)"
        );
    }

    #[test]
    fn selectors_are_matchers_without_braces() {
        assert!(Selector::try_from("{service=\"a\"}".to_string()).is_err());
        assert!(Selector::try_from("api-gateway".to_string()).is_err());
        assert!(Selector::try_from("route!~\"/health\"".to_string()).is_ok());
        let s = Selector::try_from("service=\"a\", ".to_string()).unwrap();
        assert_eq!(
            s.and(&Selector("status=~\"5..\"".into())),
            "service=\"a\", status=~\"5..\""
        );
        assert_eq!(Selector::default().and(&s), "service=\"a\"");
    }

    #[test]
    fn kafka_lag_is_counted_in_messages_or_in_time() {
        let parse = |text: &str| serde_yaml_ng::from_str::<KafkaLagSli>(text);
        let time = parse("{group: g, topics: [orders], measure: time_lag}").unwrap();
        assert_eq!(
            (time.measure, time.lag),
            (KafkaMeasure::TimeLag, LagKind::Time)
        );
        let sli = Sli::KafkaLag(time);
        assert_eq!(sli.unit(), Unit::Duration);
        assert_eq!(sli.quantity(), "max time lag");

        // `below` written as a time makes recovery a time-lag recovery; a number counts messages.
        let by_time = parse("{group: g, measure: recovery_time, below: 500ms}").unwrap();
        assert_eq!((by_time.lag, by_time.below), (LagKind::Time, Some(0.5)));
        assert_eq!(
            Sli::KafkaLag(by_time).quantity(),
            "time until time lag < 0.5 s after the end of load"
        );
        for messages in ["1000", "'1000'"] {
            let by_count = parse(&format!(
                "{{group: g, measure: recovery_time, below: {messages}}}"
            ))
            .unwrap();
            assert_eq!(
                (by_count.lag, by_count.below),
                (LagKind::Messages, Some(1000.0))
            );
        }
        let max = parse("{group: g, measure: max_lag}").unwrap();
        assert_eq!(max.lag, LagKind::Messages);
        assert_eq!(Sli::KafkaLag(max).unit(), Unit::Messages);

        let error = |text: &str| parse(text).unwrap_err().to_string();
        assert!(
            error("{group: g, measure: lag_time}").contains("`time_lag`"),
            "the error lists the measures"
        );
        assert!(
            error("{group: g, measure: recovery_time, below: 5%}").contains("`5%` is not a lag")
        );
        assert!(error("{group: g, measure: recovery_time, below: -3}").contains("-3 messages"));
        assert!(error("{group: g, measure: time_lag, below: 5s}").contains("only apply"));
        assert!(error("{group: g, measure: recovery_time}").contains("`5s`"));
    }

    #[test]
    fn a_bad_lag_bound_names_its_field() {
        let text = "apiVersion: shakedown/v1\nkind: SLOSet\nmetadata: {name: t}\nslos:\n  - name: lag\n    sli: {kafka_lag: {group: g, measure: recovery_time, below: soon}}\n    objective: {lt: 30s}\n";
        let error = crate::parse(text, std::path::Path::new("lag.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("lag.yaml:6:")
                && error.contains("field `slos[0].sli.kafka_lag.below`"),
            "{error}"
        );
        assert!(error.contains("`soon` is not a lag"), "{error}");
        let text = text.replace("measure: recovery_time, below: soon", "measure: seconds");
        let error = crate::parse(&text, std::path::Path::new("lag.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("field `slos[0].sli.kafka_lag.measure`"),
            "{error}"
        );
        assert!(error.contains("time_lag"), "{error}");
    }

    #[test]
    fn after_accepts_marks_events_and_times() {
        let parse = |t: &str| After::try_from(t.to_string());
        assert_eq!(parse("load_end").unwrap(), After::LoadEnd);
        assert_eq!(
            parse("event:chaos.kill-pod").unwrap(),
            After::Event("chaos.kill-pod".into())
        );
        assert!(matches!(
            parse("2025-01-02T03:04:05Z").unwrap(),
            After::At(_)
        ));
        assert!(parse("later").is_err());
    }
}
