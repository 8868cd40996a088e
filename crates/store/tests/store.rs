//! Store behaviour against SQLite (a temporary file) and, when `SWITCHYARD_TEST_POSTGRES_URL`
//! is set, against PostgreSQL (each test in a schema of its own, dropped afterwards).
//!
//! Every scenario is written once and instantiated per backend by `backend_tests!`.

use std::collections::HashMap;
use std::time::Duration;

use switchyard_store::{
    Backend, NewOutboxEntry, ParticipantSession, RoomRecord, Store, StoreError, TrackRecord,
};

const TIMEOUT: Duration = Duration::from_secs(10);
const PG_ENV: &str = "SWITCHYARD_TEST_POSTGRES_URL";

/// A database a test can open (and reopen, to simulate a restart) as often as it likes.
struct TestDb {
    url: String,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<(sqlx::PgPool, String)>,
}

impl TestDb {
    fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
        TestDb {
            url,
            _dir: Some(dir),
            pg_schema: None,
        }
    }

    /// `None` (and a note on stderr) when no PostgreSQL server was given.
    async fn postgres(test: &str) -> Option<TestDb> {
        let Ok(base) = std::env::var(PG_ENV) else {
            eprintln!("skipped postgres::{test}: {PG_ENV} is not set");
            return None;
        };
        let admin = sqlx::PgPool::connect(&base).await.unwrap();
        let schema = format!("switchyard_test_{}_{}", test, std::process::id());
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE"
        )))
        .execute(&admin)
        .await
        .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        Some(TestDb {
            url: format!("{base}{sep}options[search_path]={schema}"),
            _dir: None,
            pg_schema: Some((admin, schema)),
        })
    }

    async fn open(&self) -> Store {
        Store::connect(&self.url, 4, TIMEOUT).await.unwrap()
    }

    async fn cleanup(self) {
        if let Some((admin, schema)) = self.pg_schema {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(&admin)
            .await
            .unwrap();
        }
    }
}

macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = super::TestDb::sqlite();
                    super::$name(&db, switchyard_store::Backend::Sqlite).await;
                    db.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(db) = super::TestDb::postgres(stringify!($name)).await else {
                        return;
                    };
                    super::$name(&db, switchyard_store::Backend::Postgres).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}

backend_tests!(
    migrations_apply_and_reapply,
    history_round_trip,
    outbox_survives_restart,
    outbox_due_in_seq_order,
    outbox_head_of_line_per_queue_and_url,
    outbox_retry_and_duplicates,
    outbox_concurrent_enqueue_keeps_order,
);

fn entry(id: &str, queue: &str, url: &str, at: i64) -> NewOutboxEntry {
    NewOutboxEntry {
        id: id.to_owned(),
        queue_key: queue.to_owned(),
        url: url.to_owned(),
        body: format!(r#"{{"id":"{id}"}}"#),
        next_attempt_at_ms: at,
        created_at_ms: at,
    }
}

fn ids(entries: &[switchyard_store::OutboxEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.id.as_str()).collect()
}

async fn migrations_apply_and_reapply(db: &TestDb, backend: Backend) {
    let store = db.open().await;
    assert_eq!(store.backend(), backend);
    assert_eq!(store.outbox_pending_count().await.unwrap(), 0);
    assert!(store.list_rooms_history(10).await.unwrap().is_empty());
    assert!(store.list_sessions("r").await.unwrap().is_empty());
    assert!(store.list_tracks("RM_x").await.unwrap().is_empty());
    store.close().await;
    // A second open finds the schema current and changes nothing.
    let store = db.open().await;
    assert_eq!(store.outbox_pending_count().await.unwrap(), 0);
    store.close().await;
}

async fn history_round_trip(db: &TestDb, _: Backend) {
    let store = db.open().await;
    let room = |sid: &str, at: i64| RoomRecord {
        sid: sid.into(),
        name: "standup".into(),
        created_at_ms: at,
        closed_at_ms: None,
        metadata: "m".into(),
    };
    store
        .record_room_started(&room("RM_1", 1_000))
        .await
        .unwrap();
    store
        .record_room_started(&room("RM_2", 5_000))
        .await
        .unwrap();
    // Repeated start: no error, no second row.
    store
        .record_room_started(&room("RM_1", 1_000))
        .await
        .unwrap();
    assert!(store.record_room_closed("RM_1", 4_000).await.unwrap());
    assert!(!store.record_room_closed("RM_1", 4_500).await.unwrap());
    assert!(!store.record_room_closed("RM_missing", 4_500).await.unwrap());

    let rooms = store.list_rooms_history(10).await.unwrap();
    assert_eq!(
        rooms,
        vec![
            room("RM_2", 5_000),
            RoomRecord {
                closed_at_ms: Some(4_000),
                ..room("RM_1", 1_000)
            },
        ]
    );
    assert_eq!(store.list_rooms_history(1).await.unwrap().len(), 1);

    let session = |sid: &str, room_sid: &str, identity: &str, at: i64| ParticipantSession {
        sid: sid.into(),
        room_sid: room_sid.into(),
        room_name: "standup".into(),
        identity: identity.into(),
        name: identity.to_uppercase(),
        joined_at_ms: at,
        left_at_ms: None,
        disconnect_reason: None,
    };
    store
        .record_participant_joined(&session("PA_a", "RM_1", "alice", 1_100))
        .await
        .unwrap();
    store
        .record_participant_joined(&session("PA_b", "RM_1", "bob", 1_200))
        .await
        .unwrap();
    store
        .record_participant_joined(&session("PA_c", "RM_2", "alice", 5_100))
        .await
        .unwrap();
    assert!(
        store
            .record_participant_left("PA_a", 3_000, Some("CLIENT_INITIATED"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_participant_left("PA_a", 3_500, None)
            .await
            .unwrap()
    );
    assert!(
        store
            .record_participant_left("PA_b", 3_900, None)
            .await
            .unwrap()
    );

    let sessions = store.list_sessions("standup").await.unwrap();
    assert_eq!(
        sessions,
        vec![
            ParticipantSession {
                left_at_ms: Some(3_000),
                disconnect_reason: Some("CLIENT_INITIATED".into()),
                ..session("PA_a", "RM_1", "alice", 1_100)
            },
            ParticipantSession {
                left_at_ms: Some(3_900),
                ..session("PA_b", "RM_1", "bob", 1_200)
            },
            session("PA_c", "RM_2", "alice", 5_100),
        ]
    );
    assert!(store.list_sessions("other").await.unwrap().is_empty());

    let track = |sid: &str, kind: &str, at: i64| TrackRecord {
        sid: sid.into(),
        room_sid: "RM_1".into(),
        participant_sid: "PA_a".into(),
        kind: kind.into(),
        source: if kind == "audio" {
            "microphone"
        } else {
            "camera"
        }
        .into(),
        mime_type: if kind == "audio" {
            "audio/opus"
        } else {
            "video/VP8"
        }
        .into(),
        published_at_ms: at,
        unpublished_at_ms: None,
    };
    store
        .record_track_published(&track("TR_v", "video", 1_500))
        .await
        .unwrap();
    store
        .record_track_published(&track("TR_a", "audio", 1_400))
        .await
        .unwrap();
    store
        .record_track_published(&track("TR_a", "audio", 1_400))
        .await
        .unwrap();
    assert!(store.record_track_unpublished("TR_v", 2_000).await.unwrap());
    assert!(!store.record_track_unpublished("TR_v", 2_100).await.unwrap());
    assert_eq!(
        store.list_tracks("RM_1").await.unwrap(),
        vec![
            track("TR_a", "audio", 1_400),
            TrackRecord {
                unpublished_at_ms: Some(2_000),
                ..track("TR_v", "video", 1_500)
            },
        ]
    );
    store.close().await;
}

async fn outbox_survives_restart(db: &TestDb, _: Backend) {
    let store = db.open().await;
    store
        .outbox_enqueue(&[
            entry("EV_1", "r1", "http://a", 10),
            entry("EV_2", "r2", "http://a", 10),
        ])
        .await
        .unwrap();
    store
        .record_room_started(&RoomRecord {
            sid: "RM_1".into(),
            name: "r1".into(),
            created_at_ms: 1,
            closed_at_ms: None,
            metadata: String::new(),
        })
        .await
        .unwrap();
    let before = store.outbox_due(10, 100).await.unwrap();
    assert!(
        store
            .outbox_retry(before[0].seq, 20, "HTTP 503")
            .await
            .unwrap()
    );
    store.close().await;
    drop(store);

    let store = db.open().await;
    assert_eq!(store.outbox_pending_count().await.unwrap(), 2);
    assert_eq!(store.list_rooms_history(10).await.unwrap().len(), 1);
    let after = store.outbox_due(100, 100).await.unwrap();
    assert_eq!(ids(&after), ["EV_1", "EV_2"]);
    assert_eq!(after[0].attempts, 1);
    assert_eq!(after[0].last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(after[0].next_attempt_at_ms, 20);
    assert_eq!(after[1].body, r#"{"id":"EV_2"}"#);

    // seq keeps increasing after a restart, even once the outbox was empty.
    let max_seq = after.iter().map(|e| e.seq).max().unwrap();
    for e in &after {
        assert!(store.outbox_delivered(e.seq).await.unwrap());
    }
    assert!(!store.outbox_delivered(after[0].seq).await.unwrap());
    assert_eq!(store.outbox_pending_count().await.unwrap(), 0);
    store.close().await;
    let store = db.open().await;
    store
        .outbox_enqueue(&[entry("EV_3", "r1", "http://a", 10)])
        .await
        .unwrap();
    let next = store.outbox_due(100, 100).await.unwrap();
    assert_eq!(ids(&next), ["EV_3"]);
    assert!(next[0].seq > max_seq, "{} > {max_seq}", next[0].seq);
    store.close().await;
}

async fn outbox_due_in_seq_order(db: &TestDb, _: Backend) {
    let store = db.open().await;
    // Three rooms, interleaved over two batches.
    store
        .outbox_enqueue(&[
            entry("EV_a1", "a", "http://u", 0),
            entry("EV_b1", "b", "http://u", 0),
            entry("EV_a2", "a", "http://u", 0),
        ])
        .await
        .unwrap();
    store
        .outbox_enqueue(&[
            entry("EV_c1", "c", "http://u", 0),
            entry("EV_b2", "b", "http://u", 0),
        ])
        .await
        .unwrap();
    assert_eq!(store.outbox_pending_count().await.unwrap(), 5);

    // Only the head of each room, lowest seq first; limit cuts the list.
    let due = store.outbox_due(0, 10).await.unwrap();
    assert_eq!(ids(&due), ["EV_a1", "EV_b1", "EV_c1"]);
    assert!(due.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        ids(&store.outbox_due(0, 2).await.unwrap()),
        ["EV_a1", "EV_b1"]
    );

    // Draining heads yields each room's events in insertion order.
    let mut delivered: Vec<String> = Vec::new();
    loop {
        let due = store.outbox_due(0, 10).await.unwrap();
        if due.is_empty() {
            break;
        }
        for e in due {
            store.outbox_delivered(e.seq).await.unwrap();
            delivered.push(e.id);
        }
    }
    assert_eq!(delivered, ["EV_a1", "EV_b1", "EV_c1", "EV_a2", "EV_b2"]);
    store.close().await;
}

async fn outbox_head_of_line_per_queue_and_url(db: &TestDb, _: Backend) {
    let store = db.open().await;
    store
        .outbox_enqueue(&[
            entry("EV_1", "a", "http://u1", 0),
            entry("EV_1", "a", "http://u2", 0),
            entry("EV_2", "a", "http://u1", 0),
            entry("EV_2", "a", "http://u2", 0),
            entry("EV_3", "b", "http://u1", 0),
        ])
        .await
        .unwrap();
    let due = store.outbox_due(0, 10).await.unwrap();
    let heads: Vec<(&str, &str)> = due
        .iter()
        .map(|e| (e.id.as_str(), e.url.as_str()))
        .collect();
    assert_eq!(
        heads,
        [
            ("EV_1", "http://u1"),
            ("EV_1", "http://u2"),
            ("EV_3", "http://u1")
        ]
    );

    // URL u1 of room a fails and backs off: its EV_2 stays blocked behind it (even though
    // EV_2 itself is due), while u2 of room a and room b go on.
    store
        .outbox_retry(due[0].seq, 1_000, "HTTP 500")
        .await
        .unwrap();
    store.outbox_delivered(due[1].seq).await.unwrap();
    store.outbox_delivered(due[2].seq).await.unwrap();
    let due = store.outbox_due(500, 10).await.unwrap();
    let heads: Vec<(&str, &str)> = due
        .iter()
        .map(|e| (e.id.as_str(), e.url.as_str()))
        .collect();
    assert_eq!(heads, [("EV_2", "http://u2")]);
    assert_eq!(
        store.outbox_next_attempt_after(500).await.unwrap(),
        Some(1_000)
    );
    store.outbox_delivered(due[0].seq).await.unwrap();

    // Once the retry time is reached, the failed head comes back first.
    assert!(store.outbox_due(999, 10).await.unwrap().is_empty());
    let due = store.outbox_due(1_000, 10).await.unwrap();
    assert_eq!(ids(&due), ["EV_1"]);
    assert_eq!(due[0].attempts, 1);
    assert_eq!(store.outbox_next_attempt_after(1_000).await.unwrap(), None);
    store.outbox_delivered(due[0].seq).await.unwrap();
    let due = store.outbox_due(1_000, 10).await.unwrap();
    assert_eq!(ids(&due), ["EV_2"]);
    assert_eq!(due[0].url, "http://u1");
    store.close().await;
}

async fn outbox_retry_and_duplicates(db: &TestDb, _: Backend) {
    let store = db.open().await;
    assert_eq!(store.outbox_enqueue(&[]).await.unwrap(), 0);
    assert_eq!(
        store
            .outbox_enqueue(&[entry("EV_1", "a", "http://u", 0)])
            .await
            .unwrap(),
        1
    );
    // Same event for the same URL again: skipped, not an error.
    let n = store
        .outbox_enqueue(&[
            entry("EV_1", "a", "http://u", 0),
            entry("EV_2", "a", "http://u", 0),
        ])
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(store.outbox_pending_count().await.unwrap(), 2);

    let head = &store.outbox_due(0, 10).await.unwrap()[0];
    assert_eq!(
        (head.id.as_str(), head.attempts, head.last_error.as_deref()),
        ("EV_1", 0, None)
    );
    store
        .outbox_retry(head.seq, 5, "connection refused")
        .await
        .unwrap();
    store.outbox_retry(head.seq, 7, "HTTP 503").await.unwrap();
    assert!(!store.outbox_retry(-1, 7, "x").await.unwrap());
    let head = &store.outbox_due(7, 10).await.unwrap()[0];
    assert_eq!(
        (head.attempts, head.last_error.as_deref()),
        (2, Some("HTTP 503"))
    );
    assert!(store.outbox_discard(head.seq).await.unwrap());
    assert_eq!(ids(&store.outbox_due(7, 10).await.unwrap()), ["EV_2"]);
    store.close().await;
}

async fn outbox_concurrent_enqueue_keeps_order(db: &TestDb, _: Backend) {
    // Two independent handles (separate pools, separate in-process locks, as two server
    // processes would have) write while a third drains at the same time. If a seq could
    // become visible after a higher seq of the same queue, the drainer would see a queue's
    // seqs go backwards.
    let writers_stores = [db.open().await, db.open().await];
    let drain_store = db.open().await;
    const WRITERS: usize = 8;
    const PER_WRITER: usize = 25;
    const TOTAL: usize = WRITERS * PER_WRITER * 2;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = writers_stores[w % 2].clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_WRITER {
                // Every writer appends to the shared room "r" and to its own room.
                let batch = [
                    entry(&format!("EV_{w}_{i}_shared"), "r", "http://u", 0),
                    entry(
                        &format!("EV_{w}_{i}_own"),
                        &format!("own{w}"),
                        "http://u",
                        0,
                    ),
                ];
                store.outbox_enqueue(&batch).await.unwrap();
            }
        }));
    }
    let drainer = tokio::spawn(async move {
        let store = drain_store;
        // Head by head: one entry per queue per round, seqs strictly increasing per queue,
        // and each writer's events come out in the order it wrote them.
        let mut last_seq: HashMap<String, i64> = HashMap::new();
        let mut next_index: HashMap<(String, usize), usize> = HashMap::new();
        let mut total = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while total < TOTAL {
            assert!(
                tokio::time::Instant::now() < deadline,
                "drained only {total}"
            );
            let due = store.outbox_due(0, 1_000).await.unwrap();
            let mut queues: Vec<&str> = due.iter().map(|e| e.queue_key.as_str()).collect();
            queues.sort();
            queues.dedup();
            assert_eq!(queues.len(), due.len(), "one head per queue");
            for e in &due {
                let prev = last_seq.insert(e.queue_key.clone(), e.seq);
                assert!(prev.is_none_or(|p| p < e.seq), "{} after {prev:?}", e.seq);
                let mut parts = e.id.split('_');
                let w: usize = parts.nth(1).unwrap().parse().unwrap();
                let i: usize = parts.next().unwrap().parse().unwrap();
                let want = next_index.entry((e.queue_key.clone(), w)).or_default();
                assert_eq!(i, *want, "writer {w} in queue {}", e.queue_key);
                *want += 1;
                store.outbox_delivered(e.seq).await.unwrap();
                total += 1;
            }
            if due.is_empty() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        store.close().await;
    });
    for t in tasks {
        t.await.unwrap();
    }
    drainer.await.unwrap();
    let store = &writers_stores[0];
    assert_eq!(store.outbox_pending_count().await.unwrap(), 0);
    for s in &writers_stores {
        s.close().await;
    }
}

#[tokio::test]
async fn unopenable_sqlite_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("missing/dir/x.db").display()
    );
    let err = Store::connect(&url, 2, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("unable to open database file"), "{msg}");
    assert!(
        msg.starts_with(&format!("cannot open database {url}: ")),
        "{msg}"
    );
}

#[tokio::test]
async fn unsupported_url_is_refused() {
    let err = Store::connect("mysql://u:pw@localhost/db", 1, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl { .. }));
    assert_eq!(
        err.to_string(),
        "unsupported database url mysql://u:***@localhost/db: expected sqlite://... or postgres://..."
    );
}

#[tokio::test]
async fn unreachable_postgres_error_hides_the_password() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let err = Store::connect(
        "postgres://sw:hunter2@127.0.0.1:1/sw",
        1,
        Duration::from_secs(2),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("cannot open database postgres://sw:***@127.0.0.1:1/sw: "),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "{msg}");
    // The cause, not just "pool timed out".
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
}

#[tokio::test]
async fn in_memory_sqlite_keeps_one_database() {
    let store = Store::connect("sqlite::memory:", 8, TIMEOUT).await.unwrap();
    store
        .outbox_enqueue(&[entry("EV_1", "a", "http://u", 0)])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.outbox_pending_count().await.unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 1);
    }
}
