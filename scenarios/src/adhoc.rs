//! Ad-hoc URL mode (`shakedown run --url URL`), like hey or oha but with shakedown's recording,
//! reports, thresholds and SLO gate: one request, repeated by N users or at a fixed rate.
//!
//! The request becomes a one-step scenario file built in memory and compiled by the same loader
//! as any file, so it is timed, checked (any 2xx passes) and recorded exactly like a step a user
//! wrote. What the user typed is sent literally: text that would read as a template is wrapped in
//! `{% raw %}`, so a JSON body with `{{` in it is not mistaken for one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml_ng::{Mapping, Value};

use crate::file::{Scenario, ScenarioError};
use crate::profile::{Profile, ProfileError};

/// The request to repeat.
#[derive(Clone, Debug)]
pub struct Request {
    /// An absolute http(s) URL.
    pub url: String,
    pub method: String,
    /// `(name, value)` pairs, in the order given.
    pub headers: Vec<(String, String)>,
    pub body: Option<Body>,
}

/// A request body: text given on the command line, or a file's bytes.
#[derive(Clone, Debug)]
pub enum Body {
    Text(String),
    File(PathBuf),
}

/// How much load: `users` looping without pause, or iterations at `rate` per second (open
/// model, with at most `users` concurrent users when given).
#[derive(Clone, Copy, Debug)]
pub enum Pace {
    Users(u32),
    Rate { rate: f64, max_users: Option<u32> },
}

/// Parses `Name: value` as curl and hey write headers.
pub fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("header `{text}` is not `Name: value`"))?;
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("header `{text}` has no valid name before `:`"));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

impl Request {
    /// The origin (`scheme://host[:port]`) the run is reported against.
    pub fn origin(&self) -> Result<String, ScenarioError> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| self.invalid(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(self.invalid("an http(s) URL with a host is needed".to_string()));
        }
        Ok(url.origin().ascii_serialization())
    }

    /// The one-step scenario; its transaction is named `METHOD /path`.
    pub fn scenario(&self) -> Result<Scenario, ScenarioError> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| self.invalid(e.to_string()))?;
        let method = self.method.to_ascii_uppercase();
        let mut step = Mapping::new();
        step.insert("name".into(), format!("{method} {}", url.path()).into());
        step.insert("method".into(), method.clone().into());
        step.insert("url".into(), literal(&self.url).into());
        if !self.headers.is_empty() {
            let mut headers = Mapping::new();
            for (name, value) in &self.headers {
                headers.insert(name.clone().into(), literal(value).into());
            }
            step.insert("headers".into(), Value::Mapping(headers));
        }
        match &self.body {
            None => {}
            Some(Body::Text(text)) => {
                step.insert("body".into(), literal(text).into());
            }
            Some(Body::File(path)) => {
                step.insert("body_file".into(), path.display().to_string().into());
            }
        }
        let mut file = Mapping::new();
        file.insert("apiVersion".into(), "shakedown/v1".into());
        file.insert("kind".into(), "Scenario".into());
        file.insert("name".into(), "url".into());
        file.insert(
            "description".into(),
            format!("{method} {} (ad-hoc --url)", self.url).into(),
        );
        file.insert("steps".into(), Value::Sequence(vec![Value::Mapping(step)]));
        let text = serde_yaml_ng::to_string(&Value::Mapping(file))
            .map_err(|e| self.invalid(e.to_string()))?;
        Scenario::from_yaml(&text, Path::new("--url"), Some(Path::new(".")))
    }

    fn invalid(&self, reason: String) -> ScenarioError {
        ScenarioError::Invalid(Box::new(config::Error::field(
            "--url",
            "url",
            format!("{}: {reason}", self.url),
        )))
    }
}

/// A constant load for `duration`: all users from the start (closed; rounded up to whole seconds,
/// as Goose plans), or the rate from the start (open), written as a profile and read by the profile loader so it is checked like any file.
/// Thresholds, think time and timeouts are the defaults of any profile.
pub fn profile(pace: Pace, duration: Duration) -> Result<Profile, ProfileError> {
    let text = match pace {
        // Goose plans in whole seconds: all users start at once and stay for the duration.
        Pace::Users(users) => {
            let seconds = duration.as_secs_f64().ceil().max(1.0) as u64;
            format!(
                "name: url\ndescription: {users} users for {seconds} s\nclosed:\n  stages:\n    - {{ duration: 0s, users: {users} }}\n    - {{ duration: {seconds}s, users: {users} }}\n"
            )
        }
        Pace::Rate { rate, max_users } => format!(
            "name: url\ndescription: {rate} iterations/s for {} ms\nopen:\n  start_rate: {rate}\n  max_users: {}\n  stages:\n    - {{ duration: {}ms, rate: {rate} }}\n",
            duration.as_millis(),
            max_users.unwrap_or_else(|| suggested_max_users(rate)),
            duration.as_millis()
        ),
    };
    Profile::from_yaml(&text, "--url")
}

/// Enough users for the rate at up to ~2 s per iteration.
fn suggested_max_users(rate: f64) -> u32 {
    ((rate * 2.0).ceil() as u32).clamp(10, 10_000)
}

/// Text sent as written, even when it looks like a template.
fn literal(text: &str) -> String {
    if text.contains("{{") || text.contains("{%") || text.contains("{#") {
        format!("{{% raw %}}{text}{{% endraw %}}")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str) -> Request {
        Request {
            url: url.into(),
            method: "post".into(),
            headers: vec![("X-Token".into(), "{{ not a template }}".into())],
            body: Some(Body::Text(r#"{"a": "{{b}}"}"#.into())),
        }
    }

    #[test]
    fn the_request_is_one_step_named_after_method_and_path() {
        let scenario = request("http://127.0.0.1:9/api/items?x=1")
            .scenario()
            .unwrap();
        assert_eq!(scenario.name(), "url");
        assert_eq!(scenario.transaction_names(), vec!["POST /api/items"]);
    }

    #[test]
    fn headers_parse_like_curl_and_bad_ones_are_refused() {
        assert_eq!(
            parse_header("Authorization:  Bearer x:y ").unwrap(),
            ("Authorization".to_string(), "Bearer x:y".to_string())
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header(": value").is_err());
        assert!(parse_header("two words: value").is_err());
    }

    #[test]
    fn the_origin_needs_an_http_url() {
        assert_eq!(
            request("https://shop.example:8443/a/b").origin().unwrap(),
            "https://shop.example:8443"
        );
        assert!(request("ftp://x/y").origin().is_err());
        assert!(request("not a url").origin().is_err());
    }

    #[test]
    fn text_that_looks_like_a_template_is_sent_literally() {
        assert_eq!(literal("plain"), "plain");
        assert_eq!(literal("{{x}}"), "{% raw %}{{x}}{% endraw %}");
    }

    #[test]
    fn a_missing_body_file_is_an_error_before_any_request() {
        let mut r = request("http://127.0.0.1:9/x");
        r.body = Some(Body::File("/nonexistent/body.json".into()));
        let Err(error) = r.scenario() else {
            panic!("a missing body file must be refused");
        };
        let error = error.to_string();
        assert!(error.contains("/nonexistent/body.json"), "{error}");
    }

    #[test]
    fn the_profile_is_constant() {
        let closed = profile(Pace::Users(8), Duration::from_secs(5)).unwrap();
        assert_eq!(closed.planned_duration(), Duration::from_secs(5));
        assert_eq!(closed.peak_users(), 8);
        let open = profile(
            Pace::Rate {
                rate: 50.0,
                max_users: None,
            },
            Duration::from_secs(4),
        )
        .unwrap();
        assert_eq!(open.planned_duration(), Duration::from_secs(4));
    }
}
