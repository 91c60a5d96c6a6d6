//! `--remote-write URL`: pushes the live figures to a Prometheus remote-write endpoint
//! (protocol 1.0: a protobuf `WriteRequest`, snappy block-compressed, POSTed) every interval
//! and once more when the load ends, so the receiver holds the final counters.
//!
//! A receiver that fails never stops the run: failures are counted, the first one is reported
//! at once through the caller's `warn`, and [`RemoteWriter::finish`] returns the tally.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::LiveMetrics;
use super::metrics::Sample;

/// The remote-write 1.0 messages (`prompb`), field numbers as in Prometheus's
/// `prompb/remote.proto` and `prompb/types.proto`; only what a counter/gauge push needs.
mod prompb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// Sorted by name, `__name__` included.
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        /// Milliseconds since the Unix epoch.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }
}

/// A `--remote-write` URL that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("--remote-write {url:?}: {reason}")]
pub struct RemoteWriteError {
    url: String,
    reason: String,
}

/// How the pushes went.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PushTally {
    pub pushes: u64,
    pub failures: u64,
    pub last_error: Option<String>,
}

/// Where and how to push.
#[derive(Clone, Debug)]
pub struct RemoteWrite {
    url: reqwest::Url,
    /// Added to every series (`job`, `instance`), so pushes from several workers stay apart.
    labels: Vec<(String, String)>,
    interval: Duration,
}

impl RemoteWrite {
    /// Checks `url` (http or https with a host) and `interval` (at least 100 ms); every series
    /// gets `job="shakedown"` and `instance=<this host's name>`.
    pub fn new(url: &str, interval: Duration) -> Result<Self, RemoteWriteError> {
        let invalid = |reason: &str| RemoteWriteError {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let parsed = reqwest::Url::parse(url.trim()).map_err(|e| {
            invalid(&format!(
                "{e}; expected a URL such as http://prometheus:9090/api/v1/write"
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(invalid("expected an http(s) URL with a host"));
        }
        if interval < Duration::from_millis(100) {
            return Err(invalid("the push interval must be at least 100ms"));
        }
        Ok(Self {
            url: parsed,
            labels: vec![
                ("job".to_string(), "shakedown".to_string()),
                ("instance".to_string(), hostname()),
            ],
            interval,
        })
    }

    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The compressed body of one push of `samples` taken at `timestamp_ms`.
    fn body(&self, samples: &[Sample], timestamp_ms: i64) -> Vec<u8> {
        let timeseries = samples
            .iter()
            .map(|sample| {
                let mut labels: Vec<prompb::Label> = std::iter::once(prompb::Label {
                    name: "__name__".to_string(),
                    value: sample.name.clone(),
                })
                .chain(sample.labels.iter().map(|(name, value)| prompb::Label {
                    name: (*name).to_string(),
                    value: value.clone(),
                }))
                .chain(self.labels.iter().map(|(name, value)| prompb::Label {
                    name: name.clone(),
                    value: value.clone(),
                }))
                .collect();
                labels.sort_by(|a, b| a.name.cmp(&b.name));
                prompb::TimeSeries {
                    labels,
                    samples: vec![prompb::Sample {
                        value: sample.value,
                        timestamp: timestamp_ms,
                    }],
                }
            })
            .collect();
        let request = prompb::WriteRequest { timeseries };
        let mut encoder = snap::raw::Encoder::new();
        encoder
            .compress_vec(&request.encode_to_vec())
            // Only inputs beyond ~4 GB fail to compress; our figures are kilobytes.
            .unwrap_or_default()
    }
}

/// A running pusher.
pub struct RemoteWriter {
    stop: CancellationToken,
    task: JoinHandle<PushTally>,
}

impl RemoteWriter {
    /// Starts pushing `metrics` every interval; `warn` is called once, on the first failure.
    /// Must be called inside a Tokio runtime.
    pub fn start(
        target: RemoteWrite,
        metrics: Arc<LiveMetrics>,
        warn: impl Fn(String) + Send + 'static,
    ) -> Self {
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(
                    target
                        .interval
                        .clamp(Duration::from_secs(1), Duration::from_secs(10)),
                )
                .build();
            let mut tally = PushTally::default();
            let mut tick = tokio::time::interval_at(
                tokio::time::Instant::now() + target.interval,
                target.interval,
            );
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // A push at once (the receiver sees the series from the start), one every
            // interval, and a last one with the final figures.
            let mut last = false;
            loop {
                let outcome = match &client {
                    Ok(client) => push(client, &target, &metrics).await,
                    Err(error) => Err(format!("cannot build an HTTP client: {error}")),
                };
                tally.pushes += 1;
                if let Err(error) = outcome {
                    if tally.failures == 0 {
                        warn(format!(
                            "remote write to {} failed: {error}; the run goes on (failures are counted)",
                            target.url
                        ));
                    }
                    tally.failures += 1;
                    tally.last_error = Some(error);
                }
                if last {
                    return tally;
                }
                last = tokio::select! {
                    _ = tick.tick() => false,
                    _ = stopped.cancelled() => true,
                };
            }
        });
        Self { stop, task }
    }

    /// Pushes the final figures, stops, and says how the pushes went.
    pub async fn finish(self) -> PushTally {
        self.stop.cancel();
        self.task.await.unwrap_or_else(|error| PushTally {
            last_error: Some(format!("the pusher failed: {error}")),
            ..PushTally::default()
        })
    }
}

async fn push(
    client: &reqwest::Client,
    target: &RemoteWrite,
    metrics: &LiveMetrics,
) -> Result<(), String> {
    let timestamp_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let body = target.body(&metrics.samples(), timestamp_ms);
    let response = client
        .post(target.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
        .header(reqwest::header::CONTENT_ENCODING, "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .await
        .map_err(|error| {
            let mut cause: &dyn std::error::Error = &error;
            while let Some(source) = cause.source() {
                cause = source;
            }
            format!("{error}: {cause}")
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response.text().await.unwrap_or_default();
    Err(format!(
        "HTTP {status}: {}",
        text.trim().chars().take(200).collect::<String>()
    ))
}

/// This host's name, for the `instance` label.
fn hostname() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer we own.
    let ok = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } == 0;
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    match std::str::from_utf8(&buffer[..end]) {
        Ok(name) if ok && !name.is_empty() => name.to_string(),
        _ => "unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::LiveSink;

    #[test]
    fn urls_and_intervals_are_checked() {
        assert!(
            RemoteWrite::new("http://127.0.0.1:9090/api/v1/write", Duration::from_secs(5)).is_ok()
        );
        for bad in ["127.0.0.1:9090", "ftp://host/x", "not a url"] {
            let error = RemoteWrite::new(bad, Duration::from_secs(5)).unwrap_err();
            assert!(error.to_string().contains("--remote-write"), "{error}");
        }
        assert!(RemoteWrite::new("http://h/api/v1/write", Duration::from_millis(10)).is_err());
    }

    #[test]
    fn a_push_is_a_snappy_write_request_with_sorted_labels() {
        let metrics = LiveMetrics::new();
        metrics.request("browse", Duration::from_millis(3), None);
        let target = RemoteWrite::new("http://h/api/v1/write", Duration::from_secs(1)).unwrap();
        let body = target.body(&metrics.samples(), 1_700_000_000_000);
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let request = prompb::WriteRequest::decode(raw.as_slice()).unwrap();
        assert_eq!(request.timeseries.len(), metrics.samples().len());
        let requests = request
            .timeseries
            .iter()
            .find(|s| {
                s.labels
                    .iter()
                    .any(|l| l.value == "shakedown_requests_total")
            })
            .unwrap();
        let names: Vec<&str> = requests.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "instance", "job", "transaction"]);
        assert_eq!(
            requests.samples,
            [prompb::Sample {
                value: 1.0,
                timestamp: 1_700_000_000_000
            }]
        );
        for series in &request.timeseries {
            assert!(
                series.labels.is_sorted_by(|a, b| a.name < b.name),
                "{series:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_failing_receiver_is_counted_and_warned_about_once() {
        // A port that refuses connections.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/api/v1/write", closed.local_addr().unwrap());
        drop(closed);
        let warnings = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = warnings.clone();
        let writer = RemoteWriter::start(
            RemoteWrite::new(&url, Duration::from_millis(100)).unwrap(),
            Arc::new(LiveMetrics::new()),
            move |w| seen.lock().unwrap().push(w),
        );
        let tally = writer.finish().await;
        assert!(tally.pushes >= 2, "{tally:?}");
        assert_eq!(tally.failures, tally.pushes, "{tally:?}");
        let warnings = warnings.lock().unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains(&url), "{warnings:?}");
    }
}
