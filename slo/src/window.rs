//! The evaluation window: the span every SLO of a check is judged over, the marks inside it
//! (end of load, journal events) that recovery SLIs count from, and the sampling resolution.
//!
//! Prometheus works in whole seconds, so the bounds are kept in whole seconds too: the window a
//! verdict prints is exactly the one that was queried.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use reports::{JournalEvent, Report};

use crate::model::{After, Defaults};
use crate::time::parse_instant;

/// A window that cannot be built, or an instant it does not know.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    /// `to` is not after `from` (RFC 3339, whole seconds).
    #[error("the window must end after it starts (from {from} to {to})")]
    Empty { from: String, to: String },
    /// `--from`, `--to` or `--load-end` is not an instant.
    #[error(transparent)]
    Instant(#[from] crate::time::TimeError),
    /// The SLO file's default window does not fit a date.
    #[error("window {window:?}: {reason}")]
    TooLong { window: Duration, reason: String },
    /// A recovery SLI counts from the end of load, and nobody said when that was.
    #[error("the end of load is not known: evaluate a run report (--run) or pass --load-end")]
    NoLoadEnd,
    /// A recovery SLI counts from a journal event the run does not have.
    #[error("no journal event of kind `{0}` in this run")]
    NoEvent(String),
}

/// Instants inside a window that an SLI can refer to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Marks {
    /// When the load stopped.
    pub load_end: Option<DateTime<Utc>>,
    /// What happened during the run (chaos actions...), from a run report's journal.
    pub events: Vec<JournalEvent>,
}

/// The first instant at or after `at` from which a window counts nothing that happened before
/// `at`. Prometheus counter SLIs count whole steps on multiples of `step` (see
/// `sources::promql`), widening a window's start back to the step before it: a window that must
/// not see what came before (the "after" check of an experiment, which must not see the fault's
/// tail) starts on the next multiple instead. `step` under a second counts as one second, as the
/// engine's windows are whole seconds.
pub fn clean_start(at: DateTime<Utc>, step: Duration) -> DateTime<Utc> {
    let step = step_seconds(step);
    let seconds = at.timestamp();
    let exact = at.timestamp_subsec_nanos() == 0 && seconds.rem_euclid(step) == 0;
    let start = if exact {
        seconds
    } else {
        (seconds.div_euclid(step) + 1) * step
    };
    DateTime::from_timestamp(start, 0).unwrap_or(at)
}

/// The step in whole seconds, at least one: the resolution the engine counts in.
pub(crate) fn step_seconds(step: Duration) -> i64 {
    (step.as_secs() as i64).max(1)
}

/// A span of time with its marks and resolution.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub marks: Marks,
    /// Resolution of Prometheus range queries.
    pub step: Duration,
    /// Interval between samples of live sources.
    pub sample_every: Duration,
    /// Set when the window is that of a run that did not complete its plan (a partial report):
    /// why. Such a run never passes a gate, whatever its SLOs say.
    pub partial_run: Option<String>,
}

impl Window {
    /// The window `[from, to]`, truncated to whole seconds, with the set's resolution.
    pub fn new(
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        defaults: &Defaults,
    ) -> Result<Window, WindowError> {
        let (from, to) = (from.trunc_subsecs(0), to.trunc_subsecs(0));
        if from >= to {
            return Err(WindowError::Empty {
                from: from.to_rfc3339(),
                to: to.to_rfc3339(),
            });
        }
        Ok(Window {
            from,
            to,
            marks: Marks::default(),
            step: defaults.step,
            sample_every: defaults.sample_every,
            partial_run: None,
        })
    }

    /// The window a run report covers, with its end of load and journal as marks.
    pub fn of_run(report: &Report, defaults: &Defaults) -> Result<Window, WindowError> {
        let mut window = Window::new(
            report.started_at,
            // Round the end up: the last requests of the run must be inside the window.
            report.ended_at.trunc_subsecs(0)
                + if report.ended_at.timestamp_subsec_nanos() > 0 {
                    chrono::Duration::seconds(1)
                } else {
                    chrono::Duration::zero()
                },
            defaults,
        )?;
        window.marks = Marks {
            load_end: Some(report.ended_at),
            events: report.journal.clone(),
        };
        window.partial_run = report.partial.then(|| {
            report
                .partial_reason
                .clone()
                .unwrap_or_else(|| "reason not recorded".to_string())
        });
        Ok(window)
    }

    /// The window given as command-line text (RFC 3339 or `now-15m`, see
    /// [`crate::parse_instant`]): `to` defaults to now, `from` to `to` minus the set's default
    /// window; `load_end` is the mark recovery SLIs count from.
    pub fn from_text(
        from: Option<&str>,
        to: Option<&str>,
        load_end: Option<&str>,
        defaults: &Defaults,
    ) -> Result<Window, WindowError> {
        Window::from_text_at(from, to, load_end, defaults, Utc::now())
    }

    /// [`Window::from_text`] with "now" given.
    pub fn from_text_at(
        from: Option<&str>,
        to: Option<&str>,
        load_end: Option<&str>,
        defaults: &Defaults,
        now: DateTime<Utc>,
    ) -> Result<Window, WindowError> {
        let instant = |text: &str| parse_instant(text, now);
        let to = to.map(instant).transpose()?.unwrap_or(now);
        let from = match from {
            Some(text) => instant(text)?,
            None => {
                to - chrono::Duration::from_std(defaults.window).map_err(|e| {
                    WindowError::TooLong {
                        window: defaults.window,
                        reason: e.to_string(),
                    }
                })?
            }
        };
        let mut window = Window::new(from, to, defaults)?;
        window.marks.load_end = load_end.map(instant).transpose()?;
        Ok(window)
    }

    pub fn with_marks(mut self, marks: Marks) -> Window {
        self.marks = marks;
        self
    }

    /// Whether the window's end has passed (live sources have nothing left to sample).
    pub fn is_over(&self) -> bool {
        Utc::now() >= self.to
    }

    /// Length in whole seconds (at least 1).
    pub fn seconds(&self) -> i64 {
        (self.to - self.from).num_seconds().max(1)
    }

    /// The length as a PromQL range, e.g. `900s`.
    pub fn promql_range(&self) -> String {
        format!("{}s", self.seconds())
    }

    /// `2025-01-02T03:04:05Z..2025-01-02T03:19:05Z (15m)`.
    pub fn describe(&self) -> String {
        let length = humantime::format_duration(Duration::from_secs(self.seconds() as u64));
        format!(
            "{}..{} ({length})",
            self.from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            self.to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }

    /// The instant `after` refers to.
    pub fn instant(&self, after: &After) -> Result<DateTime<Utc>, WindowError> {
        match after {
            After::LoadEnd => self.marks.load_end.ok_or(WindowError::NoLoadEnd),
            After::WindowStart => Ok(self.from),
            After::At(at) => Ok(*at),
            After::Event(kind) => self
                .marks
                .events
                .iter()
                .filter(|e| &e.kind == kind)
                .map(|e| e.ended_at.unwrap_or(e.at))
                .min()
                .ok_or_else(|| WindowError::NoEvent(kind.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }

    #[test]
    fn a_clean_start_is_the_next_step_boundary_so_nothing_before_is_counted() {
        let t = |s: i64, ms: u32| Utc.timestamp_opt(s, ms * 1_000_000).unwrap();
        let (fifteen, second) = (Duration::from_secs(15), Duration::from_secs(1));
        // 1_700_000_010 is a multiple of 15 (and of 1 s); under a second counts as one.
        let cases = [
            (t(1_700_000_010, 0), fifteen, t(1_700_000_010, 0)),
            (t(1_700_000_010, 1), fifteen, t(1_700_000_025, 0)),
            (t(1_700_000_024, 999), fifteen, t(1_700_000_025, 0)),
            (t(1_700_000_011, 814), second, t(1_700_000_012, 0)),
            (t(1_700_000_011, 0), second, t(1_700_000_011, 0)),
            (
                t(1_700_000_011, 1),
                Duration::from_millis(200),
                t(1_700_000_012, 0),
            ),
        ];
        for (at, step, expected) in cases {
            assert_eq!(clean_start(at, step), expected, "{at} with {step:?}");
        }
    }

    #[test]
    fn windows_are_whole_seconds_and_ordered() {
        let defaults = Defaults::default();
        let w = Window::new(
            at(0) + chrono::Duration::milliseconds(700),
            at(900),
            &defaults,
        )
        .unwrap();
        assert_eq!(w.from, at(0));
        assert_eq!(w.promql_range(), "900s");
        assert!(w.describe().ends_with("(15m)"), "{}", w.describe());
        assert!(Window::new(at(5), at(5), &defaults).is_err());
    }

    #[test]
    fn windows_from_command_line_text() {
        let defaults = Defaults::default();
        let now = at(1000);
        let w = Window::from_text_at(None, None, None, &defaults, now).unwrap();
        assert_eq!((w.from, w.to), (at(100), at(1000)), "the last 15 minutes");
        let w = Window::from_text_at(
            Some("now-1h"),
            Some("now-30m"),
            Some("now-40m"),
            &defaults,
            now,
        )
        .unwrap();
        assert_eq!(
            (w.from, w.to, w.marks.load_end),
            (at(-2600), at(-800), Some(at(-1400)))
        );
        let error =
            Window::from_text_at(Some("now"), Some("now-1m"), None, &defaults, now).unwrap_err();
        assert!(matches!(error, WindowError::Empty { .. }), "{error}");
        assert!(
            error.to_string().contains("must end after it starts"),
            "{error}"
        );
        assert!(Window::from_text_at(Some("soon"), None, None, &defaults, now).is_err());
    }

    #[test]
    fn marks_resolve_to_instants() {
        let mut w = Window::new(at(0), at(900), &Defaults::default()).unwrap();
        assert!(
            w.instant(&After::LoadEnd)
                .unwrap_err()
                .to_string()
                .contains("--load-end")
        );
        w.marks.load_end = Some(at(600));
        w.marks.events.push(JournalEvent {
            at: at(300),
            ended_at: Some(at(330)),
            kind: "chaos.broker-failure".into(),
            target: "kafka-1".into(),
            outcome: "ok".into(),
            detail: None,
        });
        assert_eq!(w.instant(&After::LoadEnd).unwrap(), at(600));
        assert_eq!(w.instant(&After::WindowStart).unwrap(), at(0));
        assert_eq!(
            w.instant(&After::Event("chaos.broker-failure".into()))
                .unwrap(),
            at(330)
        );
        assert!(matches!(
            w.instant(&After::Event("chaos.kill-pod".into())),
            Err(WindowError::NoEvent(kind)) if kind == "chaos.kill-pod"
        ));
    }
}
