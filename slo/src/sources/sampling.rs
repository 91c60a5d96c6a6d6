//! Sampling a live value while a window runs, for sources that have no history (Kafka offsets,
//! the Kubernetes API).
//!
//! A failed read is counted and skipped rather than ending the measurement: during a chaos
//! drill the very thing being measured (brokers, the API server) may be briefly down, and the
//! samples around the gap still tell the story. Only a window without a single good read
//! makes the source unreachable.

use std::fmt::Display;
use std::future::Future;

use chrono::{DateTime, Utc};

use crate::series::Point;
use crate::window::Window;

/// What a sampler collected.
#[derive(Debug)]
pub struct Samples<T, E> {
    /// Good reads, oldest first.
    pub taken: Vec<(DateTime<Utc>, T)>,
    /// Reads that failed.
    pub failures: usize,
    pub last_error: Option<E>,
    /// The window had already ended when sampling would have started.
    pub window_over: bool,
}

impl<T, E: Display> Samples<T, E> {
    /// The samples as points of one numeric aspect.
    pub fn points(&self, value: impl Fn(&T) -> f64) -> Vec<Point> {
        self.taken
            .iter()
            .map(|(at, v)| Point {
                at: at.timestamp_millis() as f64 / 1000.0,
                value: value(v),
            })
            .collect()
    }

    /// A note for the verdict: how many samples, how many failed.
    pub fn summary(&self) -> String {
        let mut text = format!("{} samples", self.taken.len());
        if self.failures > 0 {
            text.push_str(&format!(
                ", {} failed reads (last: {})",
                self.failures,
                self.last_error
                    .as_ref()
                    .map_or_else(|| "?".to_string(), ToString::to_string)
            ));
        }
        text
    }
}

/// Reads a value every `window.sample_every` from the window's start (or now, if later) to its
/// end, stopping early once `enough` says the samples answer the question.
pub async fn sample<T, E, F, Fut>(
    window: &Window,
    mut read: F,
    mut enough: impl FnMut(&[(DateTime<Utc>, T)]) -> bool,
) -> Samples<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut samples = Samples {
        taken: Vec::new(),
        failures: 0,
        last_error: None,
        window_over: false,
    };
    if Utc::now() >= window.to {
        samples.window_over = true;
        return samples;
    }
    sleep_until(window.from).await;
    let every = chrono::Duration::from_std(window.sample_every)
        .unwrap_or_else(|_| chrono::Duration::seconds(1));
    loop {
        let at = Utc::now();
        match read().await {
            Ok(value) => samples.taken.push((at, value)),
            Err(error) => {
                samples.failures += 1;
                samples.last_error = Some(error);
            }
        }
        // Done after the read at the window's end, or when a slow read ran past it.
        if at >= window.to || Utc::now() >= window.to || enough(&samples.taken) {
            return samples;
        }
        sleep_until((at + every).min(window.to)).await;
    }
}

async fn sleep_until(at: DateTime<Utc>) {
    if let Ok(left) = (at - Utc::now()).to_std() {
        tokio::time::sleep(left).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Defaults;
    use std::time::Duration;

    #[tokio::test]
    async fn samples_until_the_end_and_skips_failed_reads() {
        let now = Utc::now();
        let defaults = Defaults {
            sample_every: Duration::from_millis(50),
            ..Defaults::default()
        };
        let window = Window::new(
            now - chrono::Duration::seconds(1),
            now + chrono::Duration::milliseconds(1300),
            &defaults,
        )
        .unwrap();
        let mut count = 0;
        let samples = sample(
            &window,
            || {
                count += 1;
                let n = count;
                async move {
                    if n == 2 {
                        Err("boom".to_string())
                    } else {
                        Ok(n)
                    }
                }
            },
            |_| false,
        )
        .await;
        assert_eq!(samples.failures, 1);
        assert!(samples.taken.len() >= 3, "{:?}", samples.taken.len());
        let (last_at, _) = samples.taken.last().unwrap();
        assert!(
            *last_at >= window.to,
            "the last sample is taken at the window's end"
        );
        assert!(samples.summary().contains("last: boom"));
    }

    #[tokio::test]
    async fn a_past_window_cannot_be_sampled() {
        let now = Utc::now();
        let window = Window::new(
            now - chrono::Duration::seconds(60),
            now - chrono::Duration::seconds(30),
            &Defaults::default(),
        )
        .unwrap();
        let samples: Samples<i32, String> = sample(&window, || async { Ok(1) }, |_| false).await;
        assert!(samples.window_over);
        assert!(samples.taken.is_empty());
    }
}
