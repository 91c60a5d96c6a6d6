//! What an experiment has broken and not yet repaired, process-wide.
//!
//! Signals are process-wide too: when a second Ctrl-C (or SIGTERM) arrives while rollbacks run,
//! the signal handler has no access to the runner's state, yet it must tell the operator what
//! is still in force and how to undo it by hand, rather than abandon a fault silently. Actions
//! that leave something broken while they run (injected faults, brokers down) enter it here for
//! exactly as long as it lasts.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};

/// One thing in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InForce {
    /// What is broken, e.g. `faults {"latency_ms":800,...} on order`.
    pub what: String,
    /// How a person undoes it, e.g. `curl -X DELETE http://127.0.0.1:4321/admin/faults`.
    pub undo: String,
    pub since: DateTime<Utc>,
}

static ENTRIES: Mutex<BTreeMap<u64, InForce>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Keeps an entry listed until dropped: drop it once the thing is repaired.
#[must_use = "the entry is removed when the guard is dropped"]
pub struct Guard(u64);

impl Drop for Guard {
    fn drop(&mut self) {
        entries().remove(&self.0);
    }
}

/// Lists `what` (undone by `undo`) as in force until the guard is dropped.
pub fn enter(what: impl Into<String>, undo: impl Into<String>) -> Guard {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    entries().insert(
        id,
        InForce {
            what: what.into(),
            undo: undo.into(),
            since: Utc::now(),
        },
    );
    Guard(id)
}

/// Everything in force now, oldest first.
pub fn snapshot() -> Vec<InForce> {
    entries().values().cloned().collect()
}

fn entries() -> std::sync::MutexGuard<'static, BTreeMap<u64, InForce>> {
    // A panic while holding the lock cannot leave the map half-written (one insert or remove),
    // so a poisoned lock is still good to read.
    ENTRIES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_lasts_as_long_as_its_guard() {
        let guard = enter("faults on order", "curl -X DELETE http://x/admin/faults");
        let listed = snapshot();
        assert!(
            listed
                .iter()
                .any(|e| e.what == "faults on order" && e.undo.contains("DELETE")),
            "{listed:?}"
        );
        drop(guard);
        assert!(!snapshot().iter().any(|e| e.what == "faults on order"));
    }
}
