//! What the coordinator's live merge costs, measured on synthetic workers (for
//! `cargo bench -p scenarios --bench fleet`): each worker's intervals are recorded and encoded as
//! a real worker would, then the coordinator's work per second is timed — decoding and adding
//! every worker's interval, and four ticks of the live view and of the merged totals that abort
//! thresholds are judged on.

use std::time::{Duration, Instant};

use rand::Rng as _;

use super::live::{Live, merged_totals};
use super::proto;
use super::state::Fleet;
use super::wire;
use crate::recorder::{Recorder, RequestRecord};

/// The figures of one measurement.
#[derive(Debug, Clone, Copy)]
pub struct MergeCost {
    /// Coordinator CPU time per second of run (one thread, so also the share of one core).
    pub per_second: Duration,
    /// Worker CPU time to cut and encode one interval.
    pub encode_per_interval: Duration,
    /// Bytes of one encoded interval, on average.
    pub interval_bytes: usize,
}

/// `workers` synthetic workers, each finishing `requests_per_second` requests a second over two
/// transactions with latencies of 1–200 ms, for `seconds` seconds.
pub fn measure(workers: u32, seconds: u32, requests_per_second: u32) -> MergeCost {
    let mut rng = rand::rng();
    let mut encode_time = Duration::ZERO;
    let mut bytes = 0usize;
    // intervals[second][worker]
    let mut intervals: Vec<Vec<proto::Interval>> = vec![Vec::new(); seconds as usize];
    for _ in 0..workers {
        let origin = Instant::now();
        let recorder = Recorder::starting_at(origin, false).with_intervals();
        for (second, per_second) in intervals.iter_mut().enumerate() {
            for i in 0..requests_per_second {
                let offset = Duration::from_micros(
                    second as u64 * 1_000_000
                        + u64::from(i) * 1_000_000 / u64::from(requests_per_second),
                );
                recorder.record_at(
                    origin + offset,
                    RequestRecord {
                        transaction: if i % 3 == 0 { "checkout" } else { "browse" },
                        latency: Duration::from_micros(rng.random_range(1_000..200_000)),
                        lateness: Duration::ZERO,
                        status: Some(200),
                        error: None,
                    },
                );
            }
            let started = Instant::now();
            let interval = recorder.take_interval().expect("keeps intervals");
            let encoded = wire::encode(&interval).expect("encodes");
            encode_time += started.elapsed();
            bytes += prost::Message::encoded_len(&encoded);
            per_second.push(encoded);
        }
    }

    let fleet = Fleet::new(workers, false);
    let started = Instant::now();
    for (second, per_second) in intervals.iter().enumerate() {
        for (index, interval) in per_second.iter().enumerate() {
            let mut slots = fleet.slots();
            let slot = &mut slots[index];
            wire::add(&mut slot.measurements, interval, false).expect("adds");
            let totals = interval.totals.as_ref().expect("totals");
            slot.last_interval = Some((
                totals.requests,
                totals.errors,
                reports::LatencyHistogram::from_v2_bytes(&totals.latency).expect("decodes"),
            ));
        }
        for _ in 0..4 {
            std::hint::black_box(Live::of(&fleet));
            std::hint::black_box(merged_totals(&fleet, second as f64 + 1.0));
        }
    }
    let total = started.elapsed();
    let count = (workers * seconds).max(1);
    MergeCost {
        per_second: total / seconds.max(1),
        encode_per_interval: encode_time / count,
        interval_bytes: bytes / count as usize,
    }
}
