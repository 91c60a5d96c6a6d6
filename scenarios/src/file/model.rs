//! A scenario file exactly as written (`apiVersion: shakedown/v1`, `kind: Scenario`).
//!
//! These serde types reject unknown fields and wrong types, and every value that can be checked
//! on its own — a duration, a status rule, a JSONPath, a regex, a method, a weight — is checked
//! inside its own visitor, so the `config` crate reports it at its own line and column. Rules
//! that need the whole file (which variables exist, which files exist) live in `compile`.

use std::fmt;

use indexmap::IndexMap;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json_path::JsonPath;

use crate::profile::ThinkTime;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    #[serde(rename = "apiVersion")]
    #[allow(dead_code)]
    pub api_version: ApiVersion,
    #[allow(dead_code)]
    pub kind: Kind,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub think_time: Option<Think>,
    #[serde(default)]
    pub accounting: Option<Accounting>,
    #[serde(default)]
    pub variables: IndexMap<String, Value>,
    #[serde(default)]
    pub user_variables: IndexMap<String, Value>,
    #[serde(default)]
    pub feeders: IndexMap<String, FeederSpec>,
    #[serde(default)]
    pub on_start: Vec<Item>,
    pub steps: Vec<Item>,
}

#[derive(Debug, Deserialize)]
pub enum ApiVersion {
    #[serde(rename = "shakedown/v1")]
    V1,
}

#[derive(Debug, Deserialize)]
pub enum Kind {
    Scenario,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accounting {
    /// The transaction that places exactly one order per success.
    pub orders: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeederSpec {
    /// CSV (with a header row) or JSON (an array of objects), relative to the scenario file.
    pub file: String,
    #[serde(default)]
    pub mode: FeederMode,
    /// When a user draws a new row.
    #[serde(default)]
    pub per: FeederPer,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FeederMode {
    #[default]
    Sequential,
    Random,
    Unique,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FeederPer {
    #[default]
    User,
    Iteration,
}

/// A think time: one duration, or `{ min, max }` picked uniformly.
#[derive(Clone, Copy, Debug)]
pub struct Think(pub ThinkTime);

impl<'de> Deserialize<'de> for Think {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Range {
            min: config::Duration,
            max: config::Duration,
        }
        struct ThinkVisitor;
        impl<'de> Visitor<'de> for ThinkVisitor {
            type Value = Think;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 1s, or { min: 500ms, max: 1500ms }")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Think, E> {
                let d = config::duration::parse(text).map_err(E::custom)?;
                Ok(Think(ThinkTime { min: d, max: d }))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Think, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Think, A::Error> {
                let range = Range::deserialize(MapAccessDeserializer::new(map))?;
                if range.min.0 > range.max.0 {
                    return Err(de::Error::custom("`min` is longer than `max`"));
                }
                Ok(Think(ThinkTime {
                    min: range.min.0,
                    max: range.max.0,
                }))
            }
        }
        deserializer.deserialize_any(ThinkVisitor)
    }
}

/// A query, header or form value: any scalar, kept as text.
#[derive(Clone, Debug)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// An HTTP method.
#[derive(Clone, Debug)]
pub struct Method(pub reqwest::Method);

impl TryFrom<String> for Method {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let upper = text.to_ascii_uppercase();
        match upper.as_str() {
            "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => Ok(Method(
                reqwest::Method::from_bytes(upper.as_bytes()).expect("known method"),
            )),
            _ => Err(format!(
                "unknown method \"{text}\" (use GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS)"
            )),
        }
    }
}
config::deserialize_validated!(Method, string);

/// How many times a step or group runs per iteration (at least 1).
#[derive(Clone, Copy, Debug)]
pub struct Weight(pub usize);

impl TryFrom<f64> for Weight {
    type Error = String;
    fn try_from(v: f64) -> Result<Self, String> {
        if v >= 1.0 && v.fract() == 0.0 && v <= 1000.0 {
            Ok(Weight(v as usize))
        } else {
            Err(format!("weight {v} is not a whole number from 1 to 1000"))
        }
    }
}
config::deserialize_validated!(Weight, number);

/// A JSONPath expression, parsed when read.
#[derive(Clone, Debug)]
pub struct Path(pub JsonPath);

impl TryFrom<String> for Path {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        JsonPath::parse(&text)
            .map(Path)
            .map_err(|e| format!("invalid JSONPath \"{text}\": {e}"))
    }
}
config::deserialize_validated!(Path, string);

/// A regular expression, compiled when read.
#[derive(Clone, Debug)]
pub struct Pattern(pub regex::Regex);

impl TryFrom<String> for Pattern {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        regex::Regex::new(&text)
            .map(Pattern)
            .map_err(|e| format!("invalid regex \"{text}\": {e}"))
    }
}
config::deserialize_validated!(Pattern, string);

/// One entry of `steps` or `on_start`: a step, or a group of steps.
#[derive(Debug)]
pub enum Item {
    Step(Box<StepSpec>),
    Group {
        name: String,
        weight: usize,
        steps: Vec<Item>,
    },
}

#[derive(Debug)]
pub struct StepSpec {
    pub name: String,
    pub method: reqwest::Method,
    pub url: String,
    pub query: IndexMap<String, Scalar>,
    pub headers: IndexMap<String, Scalar>,
    pub body: BodySpec,
    pub timeout: Option<std::time::Duration>,
    pub think_time: Option<ThinkTime>,
    pub weight: usize,
    pub variables: IndexMap<String, Value>,
    pub extract: IndexMap<String, Extract>,
    pub checks: Checks,
}

#[derive(Debug)]
pub enum BodySpec {
    None,
    Json(Value),
    /// Raw text; `@path` (or `body_file`) names a file relative to the scenario file.
    Raw(String),
    /// A file's bytes; `field` is where the file was named (`body` or `body_file`).
    File {
        path: String,
        field: &'static str,
    },
    Form(IndexMap<String, Scalar>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawItem {
    name: Option<String>,
    group: Option<String>,
    steps: Option<Vec<Item>>,
    method: Option<Method>,
    url: Option<String>,
    #[serde(default)]
    query: IndexMap<String, Scalar>,
    #[serde(default)]
    headers: IndexMap<String, Scalar>,
    json: Option<Value>,
    body: Option<String>,
    body_file: Option<String>,
    form: Option<IndexMap<String, Scalar>>,
    timeout: Option<config::Duration>,
    think_time: Option<Think>,
    weight: Option<Weight>,
    #[serde(default)]
    variables: IndexMap<String, Value>,
    #[serde(default)]
    extract: IndexMap<String, Extract>,
    checks: Option<Checks>,
}

impl TryFrom<RawItem> for Item {
    type Error = String;
    fn try_from(raw: RawItem) -> Result<Self, String> {
        let weight = raw.weight.map_or(1, |w| w.0);
        if let Some(group) = raw.group {
            let stray = [
                (raw.name.is_some(), "name"),
                (raw.method.is_some(), "method"),
                (raw.url.is_some(), "url"),
                (!raw.query.is_empty(), "query"),
                (!raw.headers.is_empty(), "headers"),
                (raw.json.is_some(), "json"),
                (raw.body.is_some(), "body"),
                (raw.body_file.is_some(), "body_file"),
                (raw.form.is_some(), "form"),
                (raw.timeout.is_some(), "timeout"),
                (raw.think_time.is_some(), "think_time"),
                (!raw.variables.is_empty(), "variables"),
                (!raw.extract.is_empty(), "extract"),
                (raw.checks.is_some(), "checks"),
            ];
            if let Some((_, field)) = stray.iter().find(|(set, _)| *set) {
                return Err(format!(
                    "group \"{group}\" takes only `group`, `weight` and `steps`, not `{field}`"
                ));
            }
            let steps = raw
                .steps
                .filter(|s| !s.is_empty())
                .ok_or_else(|| format!("group \"{group}\" has no `steps`"))?;
            if steps.iter().any(|s| matches!(s, Item::Group { .. })) {
                return Err(format!(
                    "group \"{group}\" contains a group; groups do not nest"
                ));
            }
            return Ok(Item::Group {
                name: group,
                weight,
                steps,
            });
        }
        if raw.steps.is_some() {
            return Err("`steps` belongs to a group: add `group: NAME`".to_string());
        }
        let name = raw
            .name
            .filter(|n| !n.trim().is_empty())
            .ok_or("a step needs a `name` (the transaction name in reports)")?;
        let url = raw
            .url
            .ok_or_else(|| format!("step \"{name}\" has no `url`"))?;
        let bodies = [
            raw.json.is_some(),
            raw.body.is_some(),
            raw.body_file.is_some(),
            raw.form.is_some(),
        ];
        if bodies.iter().filter(|b| **b).count() > 1 {
            return Err(format!(
                "step \"{name}\": use one of `json`, `body`, `body_file` and `form`"
            ));
        }
        let body = if let Some(json) = raw.json {
            BodySpec::Json(json)
        } else if let Some(text) = raw.body {
            match text.strip_prefix('@') {
                Some(path) if !path.is_empty() => BodySpec::File {
                    path: path.to_string(),
                    field: "body",
                },
                _ => BodySpec::Raw(text),
            }
        } else if let Some(path) = raw.body_file {
            BodySpec::File {
                path,
                field: "body_file",
            }
        } else if let Some(form) = raw.form {
            BodySpec::Form(form)
        } else {
            BodySpec::None
        };
        Ok(Item::Step(Box::new(StepSpec {
            name,
            method: raw.method.map_or(reqwest::Method::GET, |m| m.0),
            url,
            query: raw.query,
            headers: raw.headers,
            body,
            timeout: raw.timeout.map(|t| t.0),
            think_time: raw.think_time.map(|t| t.0),
            weight,
            variables: raw.variables,
            extract: raw.extract,
            checks: raw.checks.unwrap_or_default(),
        })))
    }
}
config::deserialize_validated!(Item, map RawItem);

/// Where an extracted value comes from.
#[derive(Clone, Debug)]
pub enum Source {
    Json(JsonPath),
    Pointer(String),
    Header(String),
    Status,
    Regex(regex::Regex, usize),
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Pick {
    #[default]
    First,
    Random,
    All,
}

#[derive(Debug)]
pub struct Extract {
    pub source: Source,
    pub pick: Pick,
    /// Used when nothing matches (templates allowed); without it, no match is a `check` error.
    pub default: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExtract {
    json: Option<Path>,
    json_pointer: Option<String>,
    header: Option<String>,
    status: Option<bool>,
    regex: Option<Pattern>,
    group: Option<usize>,
    pick: Option<Pick>,
    default: Option<Value>,
}

impl TryFrom<RawExtract> for Extract {
    type Error = String;
    fn try_from(raw: RawExtract) -> Result<Self, String> {
        let count = [
            raw.json.is_some(),
            raw.json_pointer.is_some(),
            raw.header.is_some(),
            raw.status == Some(true),
            raw.regex.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if count != 1 {
            return Err(
                "an extraction takes exactly one of `json`, `json_pointer`, `header`, `status: true`, `regex`"
                    .to_string(),
            );
        }
        if raw.group.is_some() && raw.regex.is_none() {
            return Err("`group` belongs to a `regex` extraction".to_string());
        }
        if raw.pick.is_some_and(|p| p != Pick::First) && raw.json.is_none() {
            return Err("`pick` belongs to a `json` (JSONPath) extraction".to_string());
        }
        let source = if let Some(path) = raw.json {
            Source::Json(path.0)
        } else if let Some(pointer) = raw.json_pointer {
            if !(pointer.is_empty() || pointer.starts_with('/')) {
                return Err(format!(
                    "invalid JSON Pointer \"{pointer}\": it starts with `/` (e.g. /token)"
                ));
            }
            Source::Pointer(pointer)
        } else if let Some(header) = raw.header {
            reqwest::header::HeaderName::from_bytes(header.as_bytes())
                .map_err(|_| format!("invalid header name \"{header}\""))?;
            Source::Header(header)
        } else if let Some(pattern) = raw.regex {
            let group = raw
                .group
                .unwrap_or(if pattern.0.captures_len() > 1 { 1 } else { 0 });
            if group >= pattern.0.captures_len() {
                return Err(format!(
                    "regex \"{}\" has no group {group}",
                    pattern.0.as_str()
                ));
            }
            Source::Regex(pattern.0, group)
        } else {
            Source::Status
        };
        Ok(Extract {
            source,
            pick: raw.pick.unwrap_or_default(),
            default: raw.default,
        })
    }
}
config::deserialize_validated!(Extract, map RawExtract);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checks {
    pub status: Option<StatusRule>,
    #[serde(default)]
    pub json: Vec<JsonCheck>,
    pub body_contains: Option<String>,
    pub latency_below: Option<config::Duration>,
}

/// Accepted statuses: a number, a list, `2xx`, or `{ min, max }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusRule {
    List(Vec<u16>),
    Range(u16, u16),
}

impl Default for StatusRule {
    fn default() -> Self {
        StatusRule::Range(200, 299)
    }
}

impl StatusRule {
    pub fn accepts(&self, status: u16) -> bool {
        match self {
            StatusRule::List(list) => list.contains(&status),
            StatusRule::Range(min, max) => (*min..=*max).contains(&status),
        }
    }
}

impl fmt::Display for StatusRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusRule::List(list) if list.len() == 1 => write!(f, "{}", list[0]),
            StatusRule::List(list) => {
                let texts: Vec<String> = list.iter().map(u16::to_string).collect();
                write!(f, "one of {}", texts.join(", "))
            }
            StatusRule::Range(min, max) if min % 100 == 0 && *max == min + 99 => {
                write!(f, "{}xx", min / 100)
            }
            StatusRule::Range(min, max) => write!(f, "{min}–{max}"),
        }
    }
}

fn status_code<E: de::Error>(v: u64) -> Result<u16, E> {
    if (100..=599).contains(&v) {
        Ok(v as u16)
    } else {
        Err(E::custom(format!("{v} is not an HTTP status (100–599)")))
    }
}

impl<'de> Deserialize<'de> for StatusRule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Range {
            min: u64,
            max: u64,
        }
        struct StatusVisitor;
        impl<'de> Visitor<'de> for StatusVisitor {
            type Value = StatusRule;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a status (201), a list ([200, 201]), a class (\"2xx\") or { min, max }",
                )
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StatusRule, E> {
                Ok(StatusRule::List(vec![status_code(v)?]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StatusRule, E> {
                self.visit_u64(v.max(0) as u64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StatusRule, E> {
                let class = v
                    .strip_suffix("xx")
                    .and_then(|d| d.parse::<u16>().ok())
                    .filter(|d| (1..=5).contains(d));
                match class {
                    Some(d) => Ok(StatusRule::Range(d * 100, d * 100 + 99)),
                    None => match v.parse::<u64>() {
                        Ok(n) => self.visit_u64(n),
                        Err(_) => Err(E::custom(format!(
                            "\"{v}\" is not a status or a class such as \"2xx\""
                        ))),
                    },
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StatusRule, A::Error> {
                let mut list = Vec::new();
                while let Some(v) = seq.next_element::<u64>()? {
                    list.push(status_code(v)?);
                }
                if list.is_empty() {
                    return Err(de::Error::custom("an empty list accepts no status"));
                }
                Ok(StatusRule::List(list))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StatusRule, A::Error> {
                let range = Range::deserialize(MapAccessDeserializer::new(map))?;
                let (min, max) = (status_code(range.min)?, status_code(range.max)?);
                if min > max {
                    return Err(de::Error::custom("`min` is above `max`"));
                }
                Ok(StatusRule::Range(min, max))
            }
        }
        deserializer.deserialize_any(StatusVisitor)
    }
}

/// A JSON type for `type:` checks.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JsonType {
    String,
    Number,
    Boolean,
    Array,
    Object,
    Null,
}

impl JsonType {
    pub fn of(value: &Value) -> JsonType {
        match value {
            Value::String(_) => JsonType::String,
            Value::Number(_) => JsonType::Number,
            Value::Bool(_) => JsonType::Boolean,
            Value::Array(_) => JsonType::Array,
            Value::Object(_) => JsonType::Object,
            Value::Null => JsonType::Null,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            JsonType::String => "string",
            JsonType::Number => "number",
            JsonType::Boolean => "boolean",
            JsonType::Array => "array",
            JsonType::Object => "object",
            JsonType::Null => "null",
        }
    }
}

/// What a JSON check asserts about the nodes its path selects.
#[derive(Debug)]
pub enum JsonOp {
    /// The first node equals the value (templates allowed).
    Equals(Value),
    /// Some node is there (`true`) or none is (`false`).
    Exists(bool),
    /// The first node, as text, matches the regex.
    Matches(regex::Regex),
    /// Some node equals the value (templates allowed).
    Contains(Value),
    /// No node equals the value (templates allowed).
    Excludes(Value),
    /// The first node has this JSON type.
    Type(JsonType),
}

#[derive(Debug)]
pub struct JsonCheck {
    pub path_text: String,
    pub path: JsonPath,
    pub op: JsonOp,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJsonCheck {
    path: Path,
    equals: Option<Value>,
    exists: Option<bool>,
    matches: Option<Pattern>,
    contains: Option<Value>,
    excludes: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<JsonType>,
}

impl TryFrom<RawJsonCheck> for JsonCheck {
    type Error = String;
    fn try_from(raw: RawJsonCheck) -> Result<Self, String> {
        let path = raw.path.0;
        let path_text = path.to_string();
        let mut ops = Vec::new();
        if let Some(v) = raw.equals {
            ops.push(JsonOp::Equals(v));
        }
        if let Some(v) = raw.exists {
            ops.push(JsonOp::Exists(v));
        }
        if let Some(v) = raw.matches {
            ops.push(JsonOp::Matches(v.0));
        }
        if let Some(v) = raw.contains {
            ops.push(JsonOp::Contains(v));
        }
        if let Some(v) = raw.excludes {
            ops.push(JsonOp::Excludes(v));
        }
        if let Some(v) = raw.kind {
            ops.push(JsonOp::Type(v));
        }
        if ops.len() != 1 {
            return Err(format!(
                "a JSON check on \"{}\" takes exactly one of `equals`, `exists`, `matches`, `contains`, `excludes`, `type`",
                path_text
            ));
        }
        Ok(JsonCheck {
            path_text,
            path,
            op: ops.pop().expect("one op"),
        })
    }
}
config::deserialize_validated!(JsonCheck, map RawJsonCheck);
