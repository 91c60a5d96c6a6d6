//! HDR latency histograms that travel inside the report.
//!
//! Percentiles cannot be averaged, so a report keeps the histograms themselves: runs from
//! several workers (or several runs) can be merged later and their percentiles recomputed
//! exactly. In JSON each histogram is the standard HdrHistogram V2 encoding, deflated, in
//! base64 — the same bytes `HdrHistogram` tools in other languages read.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{
    Deserializer, Serializer as _, V2DeflateSerializer, V2Serializer,
};
use serde::{Deserialize, Deserializer as SerdeDeserializer, Serialize, Serializer};

use crate::error::HistogramError;
use crate::model::LatencyStats;

/// Significant digits of the run-wide histograms (per transaction, per status class, totals):
/// every recorded value is kept within 0.1 %.
const FINE_SIGNIFICANT_DIGITS: u8 = 3;
/// Significant digits of the per-second histograms: 1 % is plenty for a time series, and it
/// keeps a long run's hundreds of slices small.
const COARSE_SIGNIFICANT_DIGITS: u8 = 2;

/// A latency histogram in microseconds that grows to fit whatever it records.
#[derive(Clone, PartialEq)]
pub struct LatencyHistogram(Histogram<u64>);

impl LatencyHistogram {
    /// A histogram precise to 0.1 % of each value (run-wide statistics).
    pub fn fine() -> Self {
        Self::with_digits(FINE_SIGNIFICANT_DIGITS)
    }

    /// A histogram precise to 1 % of each value (one-second time slices).
    pub fn coarse() -> Self {
        Self::with_digits(COARSE_SIGNIFICANT_DIGITS)
    }

    fn with_digits(digits: u8) -> Self {
        // `new` only fails for more than 5 significant digits; ours are constants below that.
        let histogram = Histogram::new(digits).expect("valid significant digits");
        Self(histogram)
    }

    /// Records one latency in microseconds.
    pub fn record_micros(&mut self, micros: u64) {
        // `record` grows the histogram to fit. It only refuses values beyond what any
        // histogram can track (~146 years in µs); clamp those rather than drop them.
        if self.0.record(micros).is_err() {
            self.0.saturating_record(micros);
        }
    }

    /// Adds every value of `other` to this histogram (merging workers or slices).
    pub fn merge(&mut self, other: &LatencyHistogram) -> Result<(), HistogramError> {
        self.0
            .add(&other.0)
            .map_err(|e| HistogramError::Merge(format!("{e:?}")))
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The latency at `quantile` (0.0..=1.0) in milliseconds, `None` when empty.
    pub fn quantile_ms(&self, quantile: f64) -> Option<f64> {
        (!self.0.is_empty()).then(|| micros_to_ms(self.0.value_at_quantile(quantile)))
    }

    /// Percentiles, maximum and mean in milliseconds, `None` when nothing was recorded.
    pub fn stats(&self) -> Option<LatencyStats> {
        if self.0.is_empty() {
            return None;
        }
        let at = |q: f64| micros_to_ms(self.0.value_at_quantile(q));
        Some(LatencyStats {
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: micros_to_ms(self.0.max()),
            mean_ms: round_ms(self.0.mean() / 1000.0),
        })
    }

    /// Read access to the underlying `hdrhistogram` for anything this type does not wrap.
    pub fn inner(&self) -> &Histogram<u64> {
        &self.0
    }

    /// The V2 + deflate encoding, base64 text.
    pub fn encode(&self) -> Result<String, HistogramError> {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.0, &mut bytes)
            .map_err(|e| HistogramError::Encode(format!("{e:?}")))?;
        Ok(BASE64.encode(bytes))
    }

    /// The plain HdrHistogram V2 encoding (no deflate): what a fleet worker streams each
    /// second, where speed matters more than size.
    pub fn to_v2_bytes(&self) -> Result<Vec<u8>, HistogramError> {
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(&self.0, &mut bytes)
            .map_err(|e| HistogramError::Encode(format!("{e:?}")))?;
        Ok(bytes)
    }

    /// Parses V2 (or V2 + deflate) bytes, as [`LatencyHistogram::to_v2_bytes`] writes them.
    pub fn from_v2_bytes(mut bytes: &[u8]) -> Result<Self, HistogramError> {
        let mut histogram: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes)
            .map_err(|e| HistogramError::Format(format!("{e:?}")))?;
        histogram.auto(true);
        Ok(Self(histogram))
    }

    /// Parses what [`LatencyHistogram::encode`] produced (or any V2/V2-deflate base64 histogram).
    pub fn decode(text: &str) -> Result<Self, HistogramError> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|e| HistogramError::Base64(e.to_string()))?;
        let mut histogram: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| HistogramError::Format(format!("{e:?}")))?;
        // Decoded histograms have fixed bounds; let them grow again so merges never fail.
        histogram.auto(true);
        Ok(Self(histogram))
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::fine()
    }
}

impl fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("count", &self.0.len())
            .field("max_us", &self.0.max())
            .finish()
    }
}

impl Serialize for LatencyHistogram {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.encode().map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for LatencyHistogram {
    fn deserialize<D: SerdeDeserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::decode(&text).map_err(serde::de::Error::custom)
    }
}

/// Microseconds to milliseconds, rounded to the microsecond so JSON stays readable.
fn micros_to_ms(micros: u64) -> f64 {
    round_ms(micros as f64 / 1000.0)
}

fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_keeps_percentiles() {
        let mut histogram = LatencyHistogram::fine();
        for micros in 1..=10_000u64 {
            histogram.record_micros(micros * 10);
        }
        let decoded = LatencyHistogram::decode(&histogram.encode().unwrap()).unwrap();
        assert_eq!(decoded.count(), 10_000);
        assert_eq!(decoded.stats(), histogram.stats());
        let p50 = decoded.quantile_ms(0.5).unwrap();
        assert!((49.9..=50.1).contains(&p50), "p50 {p50}");
    }

    #[test]
    fn merge_adds_counts_of_both() {
        let mut a = LatencyHistogram::coarse();
        let mut b = LatencyHistogram::decode(&LatencyHistogram::fine().encode().unwrap()).unwrap();
        a.record_micros(1_000);
        b.record_micros(5_000_000);
        a.merge(&b).unwrap();
        assert_eq!(a.count(), 2);
        assert!(a.stats().unwrap().max_ms >= 4_950.0);
    }

    #[test]
    fn empty_histogram_has_no_stats() {
        assert_eq!(LatencyHistogram::fine().stats(), None);
        assert_eq!(LatencyHistogram::fine().quantile_ms(0.99), None);
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(LatencyHistogram::decode("not base64!").is_err());
        assert!(LatencyHistogram::decode("aGVsbG8=").is_err());
    }
}
