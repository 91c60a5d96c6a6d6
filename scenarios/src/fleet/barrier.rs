//! The start barrier: workers join one by one (each gets a share index), and once all N have
//! joined the coordinator picks one wall-clock instant for everybody to start at.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

/// Between the last join and the common start: long enough for every answer to reach its worker
/// and for each to compile its scenario, short enough not to be noticed.
pub const START_DELAY: Duration = Duration::from_millis(1500);

/// Why a join was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("all {0} worker shares are taken")]
    Full(u32),
    #[error("worker share {index} does not exist (0..{workers})")]
    NoSuchShare { index: u32, workers: u32 },
    #[error("worker share {0} is taken")]
    Taken(u32),
}

pub struct Barrier {
    workers: u32,
    names: Mutex<Vec<Option<String>>>,
    start: watch::Sender<Option<i64>>,
}

impl Barrier {
    pub fn new(workers: u32) -> Self {
        Self {
            workers,
            names: Mutex::new(vec![None; workers as usize]),
            start: watch::Sender::new(None),
        }
    }

    /// Takes share `requested` (or the first free one) for the worker called `name`; the last
    /// join fixes the start instant `now_us + START_DELAY`.
    pub fn join(&self, name: &str, requested: Option<u32>, now_us: i64) -> Result<u32, Refused> {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let index = match requested {
            Some(index) if index >= self.workers => {
                return Err(Refused::NoSuchShare {
                    index,
                    workers: self.workers,
                });
            }
            Some(index) if names[index as usize].is_some() => return Err(Refused::Taken(index)),
            Some(index) => index,
            None => names
                .iter()
                .position(Option::is_none)
                .ok_or(Refused::Full(self.workers))? as u32,
        };
        names[index as usize] = Some(name.to_string());
        if names.iter().all(Option::is_some) {
            let start = now_us + START_DELAY.as_micros() as i64;
            self.start.send_replace(Some(start));
        }
        Ok(index)
    }

    /// The common start instant (µs since the epoch, coordinator clock), once everyone joined.
    pub async fn started(&self) -> i64 {
        let mut start = self.start.subscribe();
        loop {
            if let Some(at) = *start.borrow_and_update() {
                return at;
            }
            if start.changed().await.is_err() {
                // The sender lives as long as `self`: unreachable while borrowed.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Names of the workers that joined, by share index.
    pub fn names(&self) -> Vec<Option<String>> {
        self.names.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_last_join_fixes_one_start_for_all() {
        let barrier = Barrier::new(3);
        assert_eq!(barrier.join("a", None, 0), Ok(0));
        assert_eq!(barrier.join("c", Some(2), 10), Ok(2));
        assert_eq!(barrier.join("x", Some(2), 20), Err(Refused::Taken(2)));
        assert_eq!(
            barrier.join("x", Some(3), 20),
            Err(Refused::NoSuchShare {
                index: 3,
                workers: 3
            })
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(20), barrier.started())
                .await
                .is_err(),
            "nobody starts before everybody joined"
        );
        assert_eq!(barrier.join("b", None, 1_000), Ok(1));
        assert_eq!(barrier.started().await, 1_000 + 1_500_000);
        assert_eq!(barrier.join("d", None, 2_000), Err(Refused::Full(3)));
    }
}
