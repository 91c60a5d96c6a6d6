//! How hard the load generator worked during a run: the CPU this process used and how busy the
//! machine was, sampled at the start and end of the load. A generator that used (nearly) every
//! core it had measured its own queueing as latency; `reports::GeneratorHealth::judge` turns
//! these figures into the report's `degraded` mark.

use reports::provenance::CpuUsage;

/// CPU counters at the start of a run.
pub struct CpuProbe {
    process_s: Option<f64>,
    host: Option<HostTicks>,
}

impl CpuProbe {
    pub fn start() -> CpuProbe {
        CpuProbe {
            process_s: process_cpu_seconds(),
            host: HostTicks::read(),
        }
    }

    /// What was used since [`CpuProbe::start`], over `wall_s` seconds of load; `None` when the OS
    /// would not say.
    pub fn finish(&self, wall_s: f64) -> Option<CpuUsage> {
        let used = process_cpu_seconds()? - self.process_s?;
        let host_busy = match (&self.host, HostTicks::read()) {
            (Some(before), Some(after)) => after.busy_since(before),
            _ => None,
        };
        Some(CpuUsage {
            process_cpu_s: used.max(0.0),
            wall_s,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            host_busy,
        })
    }
}

/// User plus system CPU seconds of this whole process (every thread).
fn process_cpu_seconds() -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes only into the struct it is given, which is valid and large
    // enough; it is read only after the call succeeded.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return None;
        }
        usage.assume_init()
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

/// The machine's CPU time counters (Linux `/proc/stat`, first line), in clock ticks.
struct HostTicks {
    idle: u64,
    total: u64,
}

impl HostTicks {
    fn read() -> Option<HostTicks> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        HostTicks::parse(stat.lines().next()?)
    }

    /// `cpu  user nice system idle iowait irq softirq steal guest guest_nice`; guest time is
    /// already counted in user, so only the first eight columns add up to the total.
    fn parse(line: &str) -> Option<HostTicks> {
        let mut fields = line.split_whitespace();
        if fields.next()? != "cpu" {
            return None;
        }
        let ticks: Vec<u64> = fields
            .take(8)
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        if ticks.len() < 5 {
            return None;
        }
        Some(HostTicks {
            idle: ticks[3] + ticks[4],
            total: ticks.iter().sum(),
        })
    }

    fn busy_since(&self, before: &HostTicks) -> Option<f64> {
        let total = self.total.checked_sub(before.total)?;
        let idle = self.idle.checked_sub(before.idle)?;
        (total > 0).then(|| 1.0 - idle as f64 / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_share_comes_from_the_idle_and_total_ticks() {
        let before = HostTicks::parse("cpu  100 0 50 800 50 0 0 0 0 0").unwrap();
        let after = HostTicks::parse("cpu  400 0 150 1100 50 0 0 0 20 0").unwrap();
        // 700 ticks went by, 300 of them idle.
        let busy = after.busy_since(&before).unwrap();
        assert!((busy - 400.0 / 700.0).abs() < 1e-9, "{busy}");
        assert!(
            HostTicks::parse("cpu0 1 2 3 4 5").is_none(),
            "only the all-CPU line"
        );
        assert!(HostTicks::parse("cpu  1 2 x 4 5").is_none());
    }

    /// This thread's own CPU time, to spin for a known amount of work whatever the machine's load.
    fn thread_cpu_seconds() -> f64 {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes only the timespec it is given.
        assert_eq!(
            unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) },
            0
        );
        now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
    }

    #[test]
    fn the_process_cpu_used_during_the_load_is_measured() {
        let probe = CpuProbe::start();
        let from = thread_cpu_seconds();
        let mut spin = 0u64;
        while thread_cpu_seconds() - from < 0.1 {
            spin = std::hint::black_box(spin.wrapping_add(1));
        }
        let usage = probe.finish(0.2).expect("getrusage works on this OS");
        // getrusage counts in microseconds, the thread clock in nanoseconds.
        assert!(usage.process_cpu_s >= 0.099, "{usage:?}");
        assert!(usage.cores >= 1);
        assert_eq!(usage.wall_s, 0.2);
    }
}
