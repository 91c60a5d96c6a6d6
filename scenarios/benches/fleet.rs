//! What the coordinator's live merge costs: 10 synthetic workers sending one interval a second
//! (each with 2,000 requests over two transactions), timed as the coordinator handles them —
//! decode and add each interval, refresh the live view and the merged totals for abort
//! thresholds four times a second. Prints the share of one core it takes (the goal is < 5 %)
//! and what a worker spends to cut and encode an interval.
//!
//! Run with `cargo bench -p scenarios --bench fleet`. `SHAKEDOWN_BENCH_WORKERS`,
//! `SHAKEDOWN_BENCH_SECONDS` and `SHAKEDOWN_BENCH_RPS` (per worker) change the defaults (10, 60,
//! 2000).

fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let workers = env_or("SHAKEDOWN_BENCH_WORKERS", 10).clamp(1, 1000);
    let seconds = env_or("SHAKEDOWN_BENCH_SECONDS", 60).clamp(1, 3600);
    let rps = env_or("SHAKEDOWN_BENCH_RPS", 2000).clamp(1, 1_000_000);
    let cost = scenarios::fleet::cost::measure(workers, seconds, rps);
    let share = cost.per_second.as_secs_f64() * 100.0;
    println!(
        "fleet live merge: {workers} workers × {rps} req/s, {seconds} intervals each: \
         {:.2} ms of coordinator CPU per second = {share:.2} % of one core (goal < 5 %)",
        cost.per_second.as_secs_f64() * 1000.0
    );
    println!(
        "worker side: {:.3} ms to cut and encode one interval, {} bytes on the wire",
        cost.encode_per_interval.as_secs_f64() * 1000.0,
        cost.interval_bytes
    );
}
