//! What the coordinator knows about each worker while the run goes on: who joined, what it has
//! sent so far (its measurements, added up interval by interval), and how it ended.

use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Utc};
use reports::LatencyHistogram;
use tokio::sync::{Notify, mpsc, watch};

use super::barrier::Barrier;
use super::proto;
use super::wire;
use crate::live::Figures;
use crate::recorder::Measurements;

/// How a worker's stream ended.
#[derive(Clone, Debug)]
pub enum End {
    /// Still sending (or not started yet).
    Running,
    /// It sent its final message.
    Finished(proto::Finished),
    /// Its stream broke or went silent; the reason, for the report.
    Disconnected(String),
}

/// One worker, by share index.
pub struct Slot {
    pub name: String,
    pub joined: bool,
    pub clock_offset_us: i64,
    pub start_lateness_us: i64,
    pub run_id: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub measurements: Measurements,
    /// When its last interval was cut, on its clock.
    pub last_cut_at: Option<DateTime<Utc>>,
    pub last_heard: Option<Instant>,
    /// Its latest interval's requests, errors and latency, for the live view.
    pub last_interval: Option<(u64, u64, LatencyHistogram)>,
    pub arrivals: Option<proto::Arrivals>,
    /// Its live metrics so far (cumulative), when the coordinator serves them.
    pub live: Option<Figures>,
    pub end: End,
    /// Where commands to it go while its stream is open.
    pub commands: Option<mpsc::UnboundedSender<proto::Command>>,
}

impl Slot {
    fn new(corrected: bool) -> Self {
        Self {
            name: String::new(),
            joined: false,
            clock_offset_us: 0,
            start_lateness_us: 0,
            run_id: None,
            started_at: None,
            measurements: wire::empty(corrected),
            last_cut_at: None,
            last_heard: None,
            last_interval: None,
            arrivals: None,
            live: None,
            end: End::Running,
            commands: None,
        }
    }

    /// True once the worker is done, one way or the other.
    pub fn ended(&self) -> bool {
        !matches!(self.end, End::Running)
    }
}

/// The coordinator's shared state.
pub struct Fleet {
    pub workers: u32,
    /// Open model: the workers record corrected latency too.
    pub corrected: bool,
    pub barrier: Barrier,
    pub slots: Mutex<Vec<Slot>>,
    /// Set once: why every worker must stop now.
    pub stop: watch::Sender<Option<String>>,
    /// Pinged whenever a worker's state changes.
    pub changed: Notify,
}

impl Fleet {
    pub fn new(workers: u32, corrected: bool) -> Self {
        Self {
            workers,
            corrected,
            barrier: Barrier::new(workers),
            slots: Mutex::new((0..workers).map(|_| Slot::new(corrected)).collect()),
            stop: watch::Sender::new(None),
            changed: Notify::new(),
        }
    }

    pub fn slots(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells every worker to stop (once; later reasons are ignored).
    pub fn stop_all(&self, reason: &str) {
        let first = self.stop.send_if_modified(|stop| {
            if stop.is_none() {
                *stop = Some(reason.to_string());
                true
            } else {
                false
            }
        });
        if !first {
            return;
        }
        for slot in self.slots().iter() {
            if let Some(commands) = &slot.commands {
                let _ = commands.send(stop_command(reason));
            }
        }
        self.changed.notify_waiters();
    }

    /// Why the run was stopped, if it was.
    pub fn stop_reason(&self) -> Option<String> {
        self.stop.borrow().clone()
    }
}

pub fn stop_command(reason: &str) -> proto::Command {
    proto::Command {
        body: Some(proto::command::Body::Stop(reason.to_string())),
    }
}
