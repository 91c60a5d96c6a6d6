//! The process's own CPU time as Prometheus's standard `process_cpu_seconds_total`, read at each
//! scrape. Capacity runs rate it per service to say which one ran out of CPU first; it is the
//! series every official Prometheus client exports, so the same query works on real platforms.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;

/// Encodes the user plus system CPU seconds this process has used so far.
#[derive(Debug, Default)]
pub struct ProcessCpu;

impl Collector for ProcessCpu {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(seconds) = cpu_seconds() else {
            return Ok(());
        };
        let counter = ConstCounter::new(seconds);
        let metric = encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            counter.metric_type(),
        )?;
        counter.encode(metric)
    }
}

/// User plus system CPU time of the whole process (every thread), in seconds.
pub fn cpu_seconds() -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes the struct it is given, which is valid and large enough.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return None;
        }
        usage.assume_init()
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;

    #[test]
    fn counts_the_cpu_this_process_spends() {
        let before = cpu_seconds().unwrap();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(200) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let spent = cpu_seconds().unwrap() - before;
        assert!(spent >= 0.1, "a 200 ms busy loop counted {spent} s of CPU");
    }

    #[test]
    fn is_exposed_under_the_standard_name_with_the_registry_labels() {
        let mut registry =
            Registry::with_labels([("service".into(), "product".into())].into_iter());
        registry.register_collector(Box::new(ProcessCpu));
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("process_cpu_seconds_total{"))
            .unwrap_or_else(|| panic!("no sample in:\n{text}"));
        assert!(line.contains("service=\"product\""), "{line}");
        assert!(
            text.contains("# TYPE process_cpu_seconds counter"),
            "{text}"
        );
    }
}
