//! Open-model pacing: a shared dispenser of intended start times.
//!
//! Goose runs users in loops (a closed model). To drive an arrival rate instead, every user
//! begins each iteration by taking the next ticket from one shared [`ArrivalPacer`]; a ticket
//! is the moment that iteration was due according to the rate stages. A user sleeps until its
//! ticket if it is early, and starts at once if it is late — and then every request of the
//! iteration is also recorded with that lateness added, so a stalled system cannot hide its
//! stall by slowing the generator down (coordinated omission).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::profile::ArrivalSchedule;

/// How long a waiting user sleeps at a time, so it notices a stop (Ctrl-C, target down)
/// quickly even when its ticket is far in the future.
pub const WAIT_SLICE: Duration = Duration::from_millis(100);

/// The shared ticket dispenser of one open-model run.
pub struct ArrivalPacer {
    schedule: ArrivalSchedule,
    next_ticket: AtomicU64,
    /// Time zero of the schedule: when the first user asked for a ticket, so the time Goose
    /// takes to start users is not counted against the system under test.
    origin: OnceLock<Instant>,
}

/// An iteration's slot in the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub number: u64,
    pub due: Instant,
}

impl ArrivalPacer {
    pub fn new(schedule: ArrivalSchedule) -> Self {
        Self {
            schedule,
            next_ticket: AtomicU64::new(0),
            origin: OnceLock::new(),
        }
    }

    /// Takes the next iteration's ticket; `None` once the schedule is used up.
    pub fn take(&self) -> Option<Ticket> {
        let origin = *self.origin.get_or_init(Instant::now);
        let number = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let offset = self.schedule.due_at(number)?;
        Some(Ticket {
            number,
            due: origin + offset,
        })
    }

    /// Iterations due by now according to the schedule.
    pub fn scheduled_so_far(&self) -> u64 {
        self.origin
            .get()
            .map_or(0, |origin| self.schedule.due_by(origin.elapsed()))
    }

    /// Iterations that were handed out (started), at most the schedule's length.
    pub fn started(&self) -> u64 {
        self.next_ticket
            .load(Ordering::Relaxed)
            .min(self.schedule.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::RateStage;

    #[test]
    fn tickets_follow_the_schedule_and_run_out() {
        let schedule = ArrivalSchedule::new(
            10.0,
            &[RateStage {
                duration: Duration::from_secs(1),
                rate: 10.0,
            }],
        );
        let pacer = ArrivalPacer::new(schedule);
        let tickets: Vec<Ticket> = std::iter::from_fn(|| pacer.take()).collect();
        assert_eq!(tickets.len(), 10);
        let first = tickets[0].due;
        for (n, ticket) in tickets.iter().enumerate() {
            assert_eq!(ticket.number, n as u64);
            let offset = ticket.due - first;
            assert!((offset.as_secs_f64() - n as f64 * 0.1).abs() < 1e-6);
        }
        assert_eq!(pacer.started(), 10);
        assert!(pacer.take().is_none());
        assert_eq!(pacer.started(), 10, "taking past the end does not count");
    }
}
