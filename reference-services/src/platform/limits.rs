//! Admission limits for work a client can ask for cheaply and the server pays for dearly:
//! per-key rate limits ([`KeyedLimit`], governor's GCRA with one state per key) and a bound on
//! concurrent CPU- and memory-heavy jobs with a bounded wait ([`WorkBound`]).
//!
//! Both refuse with "retry after N seconds" instead of queueing without bound: a refused request
//! costs almost nothing, while a queued one holds memory and delays every request behind it. The
//! auth service uses them so that password hashing (Argon2id, 7 MiB and tens of milliseconds
//! each) cannot be turned into an out-of-memory kill or a brute-force oracle.

use std::{
    hash::Hash,
    num::NonZeroU32,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use governor::{Quota, RateLimiter, clock::DefaultClock, state::keyed::DefaultKeyedStateStore};
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::Semaphore;

/// A budget: `burst` units at once, then one more every `per`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub burst: NonZeroU32,
    pub per: Duration,
}

impl Rate {
    /// `burst` at once, one more every `per` (a zero `per` is taken as one nanosecond).
    pub fn new(burst: u32, per: Duration) -> Self {
        Self {
            burst: NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN),
            per: per.max(Duration::from_nanos(1)),
        }
    }
}

/// Why a request was refused, and when trying again can succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub reason: &'static str,
    pub retry_after: Duration,
}

impl Refused {
    /// Whole seconds for a `Retry-After` header: rounded up, at least 1 (0 would invite an
    /// immediate retry that is refused again).
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        secs.max(1)
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}; retry after {} s",
            self.reason,
            self.retry_after_secs()
        )
    }
}

impl std::error::Error for Refused {}

/// How often (in checks) stale keys are swept even when the table is not full.
const SWEEP_EVERY_CHECKS: u64 = 4096;
/// Least time between two sweeps forced by a full table (a sweep walks every key).
const MIN_FULL_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// A rate limit per key (an account, a client address) whose memory is bounded: keys whose
/// budget is whole again are swept (governor's `retain_recent`), and at most `max_keys` keys are
/// tracked. When more keys than that are all active at once, every check is refused until the
/// sweep frees room: under such a spread-out attack, failing closed keeps the process alive.
pub struct KeyedLimit<K: Hash + Eq + Clone> {
    limiter: RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>,
    rate: Rate,
    max_keys: usize,
    checks: AtomicU64,
    last_full_sweep: Mutex<Option<Instant>>,
    reason: &'static str,
}

impl<K: Hash + Eq + Clone> KeyedLimit<K> {
    /// A limit of `rate` per key, tracking at most `max_keys` keys; `reason` names it in refusals.
    pub fn new(rate: Rate, max_keys: usize, reason: &'static str) -> Self {
        let quota = Quota::with_period(rate.per)
            .expect("Rate::new keeps the period above zero")
            .allow_burst(rate.burst);
        Self {
            limiter: RateLimiter::dashmap(quota),
            rate,
            max_keys: max_keys.max(1),
            checks: AtomicU64::new(0),
            last_full_sweep: Mutex::new(None),
            reason,
        }
    }

    /// Takes one unit of `key`'s budget, or says how long until one is free.
    pub fn check(&self, key: &K) -> Result<(), Refused> {
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY_CHECKS)
        {
            self.sweep();
        }
        if self.limiter.len() >= self.max_keys && !self.sweep_when_full() {
            // Keys become stale at the latest one full budget after their last use.
            return Err(Refused {
                reason: "too many clients are signing in at once",
                retry_after: self.rate.per * self.rate.burst.get(),
            });
        }
        self.limiter.check_key(key).map_err(|not_until| Refused {
            reason: self.reason,
            retry_after: not_until
                .wait_time_from(governor::clock::Clock::now(&DefaultClock::default())),
        })
    }

    /// The number of keys tracked now.
    pub fn tracked_keys(&self) -> usize {
        self.limiter.len()
    }

    fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Sweeps if the last forced sweep is old enough; whether there is room afterwards.
    fn sweep_when_full(&self) -> bool {
        {
            let mut last = self.last_full_sweep.lock().expect("sweep clock lock");
            if last.is_some_and(|at| at.elapsed() < MIN_FULL_SWEEP_INTERVAL) {
                return false;
            }
            *last = Some(Instant::now());
        }
        self.sweep();
        self.limiter.len() < self.max_keys
    }
}

/// At most `permits` jobs run at once on the blocking pool, and at most `max_waiting` more wait
/// for a permit; further jobs are refused at once. Counts the jobs running and the most ever
/// running at once, so tests and `/metrics` can see the bound hold.
pub struct WorkBound {
    permits: Arc<Semaphore>,
    size: usize,
    max_admitted: usize,
    admitted: AtomicUsize,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    gauge: Option<Gauge>,
}

impl WorkBound {
    /// `permits` concurrent jobs (at least 1) and `max_waiting` queued ones; `gauge`, when given,
    /// follows the number running.
    pub fn new(permits: usize, max_waiting: usize, gauge: Option<Gauge>) -> Self {
        let size = permits.max(1);
        Self {
            permits: Arc::new(Semaphore::new(size)),
            size,
            max_admitted: size + max_waiting,
            admitted: AtomicUsize::new(0),
            running: Arc::new(AtomicUsize::new(0)),
            peak: Arc::new(AtomicUsize::new(0)),
            gauge,
        }
    }

    /// The number of jobs allowed to run at once.
    pub fn permits(&self) -> usize {
        self.size
    }

    /// The most jobs that ever ran at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Runs `job` on the blocking pool when a permit is free; refused when the queue is full.
    /// The permit moves into the blocking task, so a job whose caller went away still counts
    /// against the bound until it really ends.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, WorkError> {
        let admitted = self.admitted.fetch_add(1, Ordering::SeqCst);
        let _admission = Admission(&self.admitted);
        if admitted >= self.max_admitted {
            return Err(WorkError::Busy(Refused {
                reason: "too many sign-ins are waiting for a password check",
                retry_after: Duration::from_secs(1),
            }));
        }
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| WorkError::Stopped)?;
        let (running, peak, gauge) = (self.running.clone(), self.peak.clone(), self.gauge.clone());
        tokio::task::spawn_blocking(move || {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            if let Some(g) = &gauge {
                g.inc();
            }
            let out = job();
            running.fetch_sub(1, Ordering::SeqCst);
            if let Some(g) = &gauge {
                g.dec();
            }
            drop(permit);
            out
        })
        .await
        .map_err(|e| WorkError::Failed(e.to_string()))
    }
}

/// Gives an admission back when the caller is done (or went away).
struct Admission<'a>(&'a AtomicUsize);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why [`WorkBound::run`] did not return the job's result.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    #[error(transparent)]
    Busy(Refused),
    #[error("the work queue is closed")]
    Stopped,
    #[error("the job failed: {0}")]
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_a_retry_time() {
        let limit = KeyedLimit::new(Rate::new(3, Duration::from_secs(3600)), 100, "slow down");
        for _ in 0..3 {
            limit.check(&"a").unwrap();
        }
        let refused = limit.check(&"a").unwrap_err();
        assert_eq!(refused.reason, "slow down");
        assert!(refused.retry_after_secs() > 3000, "{refused:?}");
        assert!(
            limit.check(&"b").is_ok(),
            "other keys keep their own budget"
        );
    }

    #[test]
    fn the_number_of_tracked_keys_is_capped() {
        let limit = KeyedLimit::new(Rate::new(2, Duration::from_secs(3600)), 10, "slow down");
        let mut refused = 0;
        for key in 0..1000u32 {
            if limit.check(&key).is_err() {
                refused += 1;
            }
        }
        assert!(limit.tracked_keys() <= 10, "{}", limit.tracked_keys());
        assert_eq!(
            refused, 990,
            "keys beyond the cap are refused while all are active"
        );
    }

    #[test]
    fn a_full_table_sweeps_stale_keys_to_make_room() {
        // One unit per nanosecond: every key is whole again at once, so a sweep drops them all.
        let limit = KeyedLimit::new(Rate::new(1, Duration::from_nanos(1)), 5, "slow down");
        for key in 0..5u32 {
            limit.check(&key).unwrap();
        }
        assert!(
            limit.check(&5).is_ok(),
            "the sixth key finds room after a sweep"
        );
        assert!(limit.tracked_keys() <= 5, "{}", limit.tracked_keys());
    }

    #[test]
    fn retry_after_is_whole_seconds_and_never_zero() {
        let refused = |ms| Refused {
            reason: "x",
            retry_after: Duration::from_millis(ms),
        };
        assert_eq!(refused(0).retry_after_secs(), 1);
        assert_eq!(refused(1).retry_after_secs(), 1);
        assert_eq!(refused(1000).retry_after_secs(), 1);
        assert_eq!(refused(1001).retry_after_secs(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_is_bounded_and_the_queue_too() {
        let bound = Arc::new(WorkBound::new(2, 3, None));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let jobs: Vec<_> = (0..20)
            .map(|_| {
                let (bound, gate) = (bound.clone(), gate.clone());
                tokio::spawn(async move {
                    bound
                        .run(move || {
                            let _ = gate.lock().unwrap().recv();
                        })
                        .await
                })
            })
            .collect();
        // 2 running + 3 waiting are admitted while the jobs block; the 15 others are refused at
        // once. Wait (boundedly) for those answers before letting any job finish.
        for _ in 0..1000 {
            if jobs.iter().filter(|job| job.is_finished()).count() >= 15 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for _ in 0..20 {
            let _ = release.send(());
        }
        let mut busy = 0;
        for job in jobs {
            match job.await.unwrap() {
                Ok(()) => {}
                Err(WorkError::Busy(_)) => busy += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(busy, 15);
        assert_eq!(bound.peak(), 2);
    }
}
