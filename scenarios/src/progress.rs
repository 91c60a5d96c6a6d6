//! The terminal progress bar: elapsed / planned time, users, throughput and errors.
//!
//! Shown only to a person watching: not with `quiet`, not when stderr is not a terminal
//! (redirected to a file, piped) and not when `CI` is set — progress bars make CI logs
//! unreadable.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::recorder::LiveCounters;

/// A progress display that may be invisible.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar over `planned` time, if a person is watching (see the module docs).
    pub fn new(quiet: bool, planned: Duration, title: &str) -> Self {
        let watching =
            !quiet && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        let bar = watching.then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(planned.as_secs().max(1)),
                ProgressDrawTarget::stderr(),
            );
            let style = ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len}s {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(title.to_string());
            bar
        });
        Self { bar }
    }

    /// Redraws with the latest counters.
    pub fn update(&self, live: &LiveCounters) {
        if let Some(bar) = &self.bar {
            bar.set_position(live.elapsed.as_secs());
            bar.set_message(format!(
                "users {} · {} req/s · {} requests · {} errors",
                live.active_users, live.last_second_requests, live.requests, live.errors
            ));
        }
    }

    /// Redraws at `elapsed` with a message of the caller's (a coordinator's cluster-wide view).
    pub fn show(&self, elapsed: Duration, message: String) {
        if let Some(bar) = &self.bar {
            bar.set_position(elapsed.as_secs());
            bar.set_message(message);
        }
    }

    /// Removes the bar so the summary that follows starts on a clean line.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
