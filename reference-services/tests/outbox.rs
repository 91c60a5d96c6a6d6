//! The outbox relay against recording and failing publishers: each event is published once and
//! the events of one key in order, a failed publish leaves its row pending until a later round,
//! and the purge deletes only sent rows past the retention (on SQLite and on a real PostgreSQL).
//! On PostgreSQL, as with two replicas of a service: two relays on one database publish every
//! event exactly once in per-key order while events are being written, and a relay that dies
//! holding a claim loses nothing.

mod harness;

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use harness::postgres::Postgres;
use rand::Rng;
use serde_json::json;
use shop::{
    platform::{
        events::Envelope,
        metrics::Metrics,
        outbox::{Outbox, PublishError, Publisher, RelaySettings},
        shutdown::Shutdown,
        storage::Db,
    },
    testkit::{self, DEADLINE, RECOVERY_DEADLINE},
};
use tokio::sync::watch;

/// One acknowledged publish.
#[derive(Clone, Debug, PartialEq)]
struct Published {
    relay: usize,
    key: String,
    event_id: String,
    /// The event's place among its key's events (`data.n`).
    n: i64,
}

/// Records what it acknowledges; refuses the events `failing` names (`key/n`).
#[derive(Default)]
struct Recorder {
    relay: usize,
    log: Arc<Mutex<Vec<Published>>>,
    failing: Mutex<HashSet<String>>,
    /// Both relays' first publishes wait until the other relay has started publishing too.
    gate: Option<watch::Sender<u8>>,
    /// Up to this many milliseconds of pause before acknowledging, so relays interleave.
    jitter_ms: u64,
}

impl Recorder {
    fn new(relay: usize, log: Arc<Mutex<Vec<Published>>>) -> Self {
        Self {
            relay,
            log,
            ..Self::default()
        }
    }

    fn fail(&self, what: &str, fail: bool) {
        let mut failing = self.failing.lock().unwrap();
        if fail {
            failing.insert(what.to_string());
        } else {
            failing.remove(what);
        }
    }
}

impl Publisher for Recorder {
    async fn publish(
        &self,
        _topic: &str,
        key: &str,
        envelope: &Envelope,
    ) -> Result<(), PublishError> {
        if let Some(gate) = &self.gate {
            gate.send_modify(|started| *started |= 1 << self.relay);
            let mut both = gate.subscribe();
            both.wait_for(|started| *started == 0b11)
                .await
                .expect("the gate lives as long as the publisher");
        }
        if self.jitter_ms > 0 {
            let pause = rand::rng().random_range(0..=self.jitter_ms);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        let n = envelope.data["n"].as_i64().expect("n");
        let failing = self.failing.lock().unwrap();
        if failing.contains(&format!("{key}/{n}")) {
            return Err(format!("broker refused event {key}/{n}").into());
        }
        drop(failing);
        self.log.lock().unwrap().push(Published {
            relay: self.relay,
            key: key.to_string(),
            event_id: envelope.event_id.clone(),
            n,
        });
        Ok(())
    }
}

/// Claims and never acknowledges: a relay stuck in (or killed during) a publish.
struct Hanging {
    called: watch::Sender<Vec<String>>,
}

impl Publisher for Hanging {
    async fn publish(&self, _topic: &str, key: &str, _: &Envelope) -> Result<(), PublishError> {
        self.called.send_modify(|keys| keys.push(key.to_string()));
        std::future::pending().await
    }
}

async fn open(url: &str, settings: RelaySettings) -> (Db, Outbox) {
    let db = Db::connect_url(url).await.expect("database");
    let outbox = Outbox::open_with(db.clone(), settings)
        .await
        .expect("outbox");
    (db, outbox)
}

/// Commits event number `n` of `key`, as a service does (in a transaction).
async fn write(db: &Db, key: &str, n: i64) -> String {
    let envelope = Envelope::new("test.event", json!({"key": key, "n": n}));
    let mut tx = db.pool.begin().await.unwrap();
    Outbox::enqueue(&mut tx, "orders", key, &envelope)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    envelope.event_id
}

async fn rows(db: &Db) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    n
}

/// The `n` of each key's published events, in the order they were acknowledged.
fn by_key(log: &[Published]) -> BTreeMap<String, Vec<i64>> {
    let mut keys: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for p in log {
        keys.entry(p.key.clone()).or_default().push(p.n);
    }
    keys
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}/outbox.db?mode=rwc", dir.path().display())
}

/// One relay: an event whose publish fails holds back the later events of its key (they would
/// otherwise overtake it) but not the other keys; once Kafka takes it, its key's events follow
/// in order.
async fn failed_publishes_stay_pending_and_keep_key_order(url: &str) {
    let (db, outbox) = open(url, RelaySettings::default()).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let publisher = Recorder::new(0, log.clone());
    for n in 0..3 {
        for key in ["a", "b", "c"] {
            write(&db, key, n).await;
        }
    }
    publisher.fail("b/0", true);
    // Each round publishes the oldest pending event of each key: three rounds for a and c.
    for _ in 0..3 {
        let error = outbox.relay_once(&publisher).await.unwrap_err();
        assert!(
            error.to_string().contains("broker refused event b/0"),
            "{error}"
        );
    }
    assert_eq!(
        by_key(&log.lock().unwrap()),
        BTreeMap::from([("a".into(), vec![0, 1, 2]), ("c".into(), vec![0, 1, 2])])
    );
    assert_eq!(
        outbox.pending().await.unwrap(),
        3,
        "b's events wait behind b/0"
    );
    assert_eq!(
        outbox.pending_by_type().await.unwrap(),
        BTreeMap::from([("test.event".to_string(), 3)])
    );

    publisher.fail("b/0", false);
    testkit::eventually("b's events published", DEADLINE, || async {
        outbox.relay_once(&publisher).await.unwrap();
        (outbox.pending().await.unwrap() == 0).then_some(())
    })
    .await;
    let log = log.lock().unwrap().clone();
    assert_eq!(by_key(&log)["b"], [0, 1, 2]);
    let ids: HashSet<&str> = log.iter().map(|p| p.event_id.as_str()).collect();
    assert_eq!((ids.len(), log.len()), (9, 9), "each event once: {log:?}");
    db.pool.close().await;
}

/// Sent rows older than the retention go, in batches; younger sent rows and unsent rows stay.
async fn purge_deletes_only_sent_rows_past_retention(url: &str) {
    let settings = RelaySettings {
        retention: Duration::from_secs(3600),
        purge_batch: 2,
        ..RelaySettings::default()
    };
    let (db, outbox) = open(url, settings).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let publisher = Recorder::new(0, log.clone());
    for key in ["k0", "k1", "k2", "k3", "k4", "k5"] {
        write(&db, key, 0).await;
    }
    assert_eq!(outbox.relay_once(&publisher).await.unwrap(), 6);
    // Five of them were sent two hours ago (past the retention), k5 just now.
    let now = chrono::Utc::now().timestamp_millis();
    sqlx::query("UPDATE outbox SET sent_at = $1 WHERE msg_key <> 'k5'")
        .bind(now - 2 * 3600 * 1000)
        .execute(&db.pool)
        .await
        .unwrap();
    // Unsent, however old: Kafka has not taken them yet.
    write(&db, "u0", 0).await;
    write(&db, "u1", 0).await;
    sqlx::query("UPDATE outbox SET created_at = 0 WHERE sent_at IS NULL")
        .execute(&db.pool)
        .await
        .unwrap();

    assert_eq!(
        outbox.purge(now).await.unwrap(),
        5,
        "3 batches of at most 2"
    );
    assert_eq!(rows(&db).await, 3);
    assert_eq!(outbox.pending().await.unwrap(), 2);
    assert_eq!(outbox.purge(now).await.unwrap(), 0, "nothing more is due");
    // An hour later, k5 is due too; the unsent rows still are not.
    assert_eq!(outbox.purge(now + 3600 * 1000 + 1).await.unwrap(), 1);
    assert_eq!(rows(&db).await, 2);
    assert_eq!(outbox.pending().await.unwrap(), 2);
    db.pool.close().await;
}

/// Two replicas' relays on one database while events are written: every event is published
/// exactly once and each key's events in the order they were written, and both relays publish.
async fn two_relays_publish_each_event_once_in_key_order(url: &str) {
    const KEYS: usize = 16;
    const PER_KEY: i64 = 25;
    // Small claims, so a relay leaves keys to the other one.
    let settings = RelaySettings {
        claim_batch: 4,
        ..RelaySettings::default()
    };
    let (db_a, outbox_a) = open(url, settings).await;
    let (db_b, outbox_b) = open(url, settings).await;
    let keys: Vec<String> = (0..KEYS).map(|k| format!("order-{k}")).collect();
    let mut written = HashSet::new();
    for key in &keys {
        written.insert(write(&db_a, key, 0).await);
    }

    let log = Arc::new(Mutex::new(Vec::new()));
    // Each relay's first round waits for the other's first round: both hold claims at once, so
    // the test sees that they claim different rows (without claims both would take the oldest).
    let gate = watch::channel(0u8).0;
    let shutdown = Shutdown::default();
    for (relay, outbox) in [(0, &outbox_a), (1, &outbox_b)] {
        let publisher = Recorder {
            gate: Some(gate.clone()),
            jitter_ms: 2,
            ..Recorder::new(relay, log.clone())
        };
        outbox.spawn_relay_with(publisher, Metrics::global(), &shutdown);
    }

    // Writers: one per key, each writing its key's events in order, all at once.
    let writers: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let (db, key) = (if i % 2 == 0 { &db_a } else { &db_b }.clone(), key.clone());
            let (a, b) = (outbox_a.clone(), outbox_b.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 1..PER_KEY {
                    ids.push(write(&db, &key, n).await);
                    a.notify();
                    b.notify();
                }
                ids
            })
        })
        .collect();
    for writer in writers {
        written.extend(writer.await.unwrap());
    }
    assert_eq!(written.len(), KEYS * PER_KEY as usize);

    testkit::eventually("every event published", RECOVERY_DEADLINE, || {
        let published: HashSet<String> = log
            .lock()
            .unwrap()
            .iter()
            .map(|p| p.event_id.clone())
            .collect();
        let done = published == written;
        async move { done.then_some(()) }
    })
    .await;
    // Stopped, the relays publish nothing more: the log is final.
    shutdown.trigger();
    shutdown.drain().await;

    let log = log.lock().unwrap().clone();
    assert_eq!(
        log.len(),
        KEYS * PER_KEY as usize,
        "every event exactly once ({} publishes)",
        log.len()
    );
    let in_order: Vec<i64> = (0..PER_KEY).collect();
    for (key, ns) in by_key(&log) {
        assert_eq!(ns, in_order, "events of {key} in the order written");
    }
    let per_relay: Vec<usize> = (0..2)
        .map(|relay| log.iter().filter(|p| p.relay == relay).count())
        .collect();
    eprintln!("two relays published {per_relay:?} of {} events", log.len());
    for relay in 0..2 {
        assert!(
            log.iter().any(|p| p.relay == relay),
            "relay {relay} published nothing"
        );
    }
    assert_eq!(outbox_a.pending().await.unwrap(), 0);
    db_a.pool.close().await;
    db_b.pool.close().await;
}

/// A relay that claimed a row and then died (process killed, connection gone) loses nothing:
/// while it holds the claim the other relay leaves that key alone, afterwards it publishes it.
async fn a_relay_dying_with_a_claim_loses_nothing(url: &str) {
    let one_row = RelaySettings {
        claim_batch: 1,
        ..RelaySettings::default()
    };
    let (db_a, outbox_a) = open(url, one_row).await;
    let (db_b, outbox_b) = open(url, RelaySettings::default()).await;
    write(&db_a, "k", 0).await;
    write(&db_a, "k", 1).await;
    write(&db_a, "m", 0).await;

    let called = watch::channel(Vec::new()).0;
    let mut claimed = called.subscribe();
    let stuck = tokio::spawn(async move {
        let hanging = Hanging { called };
        outbox_a.relay_once(&hanging).await
    });
    let keys = tokio::time::timeout(DEADLINE, claimed.wait_for(|keys| !keys.is_empty()))
        .await
        .expect("relay A publishes its claim")
        .unwrap()
        .clone();
    assert_eq!(keys, ["k"], "A claimed the oldest row");

    let log = Arc::new(Mutex::new(Vec::new()));
    let publisher = Recorder::new(1, log.clone());
    assert_eq!(outbox_b.relay_once(&publisher).await.unwrap(), 1);
    assert_eq!(
        by_key(&log.lock().unwrap()),
        BTreeMap::from([("m".into(), vec![0])]),
        "B skips k: its oldest row is A's, its next one waits behind it"
    );
    assert_eq!(outbox_b.relay_once(&publisher).await.unwrap(), 0);

    // A dies: its task stops and its connections close, as with a killed process.
    stuck.abort();
    assert!(stuck.await.unwrap_err().is_cancelled());
    db_a.pool.close().await;

    testkit::eventually("k published by B", DEADLINE, || async {
        outbox_b.relay_once(&publisher).await.unwrap();
        (outbox_b.pending().await.unwrap() == 0).then_some(())
    })
    .await;
    assert_eq!(
        by_key(&log.lock().unwrap()),
        BTreeMap::from([("k".into(), vec![0, 1]), ("m".into(), vec![0])])
    );
    db_b.pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_publishes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    failed_publishes_stay_pending_and_keep_key_order(&sqlite_url(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    purge_deletes_only_sent_rows_past_retention(&sqlite_url(&dir)).await;
}

/// Every scenario on one PostgreSQL server (slow to set up), one database each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_on_postgres() {
    let Some(pg) = Postgres::start() else { return };
    failed_publishes_stay_pending_and_keep_key_order(&pg.database("failures").await).await;
    purge_deletes_only_sent_rows_past_retention(&pg.database("purge").await).await;
    two_relays_publish_each_event_once_in_key_order(&pg.database("replicas").await).await;
    a_relay_dying_with_a_claim_loses_nothing(&pg.database("crash").await).await;
}
