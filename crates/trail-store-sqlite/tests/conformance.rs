//! The storage conformance suite, run against the SQLite backend.

use trail_core::EventId;
use trail_store::prelude::*;
use trail_store_sqlite::SqliteStore;

async fn new_store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("trail.db")).unwrap();
    (store, dir)
}

trail_store::conformance_suite!(new_store);

#[tokio::test]
async fn one_writer_per_database_and_readers_beside_it() {
    use trail_store::StoreError;
    let (store, dir) = new_store().await;
    let path = dir.path().join("trail.db");
    let second = SqliteStore::open(&path).err().expect("a second writer is refused");
    assert!(matches!(second, StoreError::Locked(_)), "{second}");
    let event =
        trail_store::conformance::event(serde_json::json!({"user": "a", "kind": "DEVICE_EDITED", "message": "m"}));
    let ids = store.append(vec![event]).await.unwrap();
    let reader = SqliteStore::open_read_only(&path).unwrap();
    assert_eq!(reader.get(ids[0]).await.unwrap().unwrap().body.message, "m");
    assert!(reader.append(vec![]).await.unwrap().is_empty());
    drop(store);
    SqliteStore::open(&path).expect("the lock goes with the writer");
}

/// Requests that arrive while a commit is under way share the next one. Another connection
/// holds SQLite's write lock, so the writer's first group waits in `BEGIN IMMEDIATE` while every
/// other request queues behind it; how many commits they take then depends on grouping alone,
/// not on how the threads happen to be scheduled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_commits() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (store, dir) = new_store().await;
    let store = Arc::new(store);
    let blocker = rusqlite::Connection::open(dir.path().join("trail.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let requests = 200;
    let submitted = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..requests)
        .map(|i| {
            let (store, submitted) = (store.clone(), submitted.clone());
            tokio::spawn(async move {
                let event = serde_json::json!({"user": "a", "kind": "DEVICE_EDITED", "message": format!("m{i}")});
                submitted.fetch_add(1, Ordering::SeqCst);
                store.append(vec![trail_store::conformance::event(event)]).await.unwrap()
            })
        })
        .collect();
    while submitted.load(Ordering::SeqCst) < requests {
        tokio::task::yield_now().await;
    }
    assert_eq!(store.commits(), 0, "nothing commits while another connection holds the write lock");
    blocker.execute_batch("COMMIT").unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    let commits = store.commits() as usize;
    assert!(
        commits <= 4,
        "{requests} requests queued behind one commit took {commits} commits: group commit is not grouping"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contents_are_stored_once_per_hash() {
    use trail_core::content::{ContentKind, ContentRecord};
    let (store, dir) = new_store().await;
    for (device, body) in [("edge1", "A"), ("edge1", "B"), ("edge1", "A"), ("edge2", "A"), ("edge2", "A")] {
        let record = ContentRecord {
            device: device.into(),
            kind: ContentKind::Archive,
            content: body.into(),
            time: jiff::Timestamp::now(),
            on_change: Box::new(|_| {
                trail_store::conformance::event(
                    serde_json::json!({"user": "a", "kind": "ARCHIVE_COMPLETED", "message": "m"}),
                )
            }),
        };
        store.record_content(record).await.unwrap();
    }
    let db = rusqlite::Connection::open(dir.path().join("trail.db")).unwrap();
    let stored: i64 = db.query_row("SELECT count(*) FROM contents", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, 2, "A and B, each once");
    assert_eq!(store.read_after(EventId::ZERO, 10).await.unwrap().len(), 4, "edge1: A, B, A; edge2: A");
}

/// A purge that removed every event, and a crash before its RETENTION_PURGED event was written:
/// after the restart the chain continues from the purge's marker, never from id 0 again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trail_purged_empty_continues_its_chain_after_a_restart() {
    let (store, dir) = new_store().await;
    let path = dir.path().join("trail.db");
    let old = trail_store::conformance::event(
        serde_json::json!({"user": "a", "kind": "DEVICE_EDITED", "message": "m", "time": "2020-01-01T00:00:00Z"}),
    );
    store.append(vec![old.clone(), old.clone()]).await.unwrap();
    let report = store.purge(jiff::Timestamp::now(), 10, "retention").await.unwrap();
    drop(store);
    // The state a crash between the last batch and the purge's event leaves: no event at all,
    // and no tree leaf for it (they commit together).
    let conn = rusqlite::Connection::open(&path).unwrap();
    let purge_event = report.event_id.unwrap();
    conn.execute("DELETE FROM events WHERE id = ?1", [purge_event.get()]).unwrap();
    let kept = trail_core::tree::stored_count(purge_event.get() as u64 - 1) * 32;
    conn.execute("UPDATE tree_rows SET hashes = substr(hashes, 1, ?1) WHERE number = 0", [kept as i64]).unwrap();
    drop(conn);
    let reopened = SqliteStore::open(&path).unwrap();
    let ids = reopened.append(vec![old]).await.unwrap();
    assert_eq!(ids, vec![EventId::new(3)], "after the purged 1 and 2");
    let mut verifier = trail_core::chain::Verifier::after(&report.marker.unwrap());
    for event in reopened.read_after(EventId::ZERO, 100).await.unwrap() {
        verifier.check(event.id, &event.body, &trail_core::chain::from_hex(&event.hash).unwrap()).unwrap();
    }
    assert_eq!(verifier.checked(), 1);
}

/// A trail written before the tree existed (no tree rows) gets its tree from its events when
/// opened, with the roots an auditor computes from them; one whose newest events were removed
/// outside Trail, leaving their tree rows, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tree_is_built_over_events_stored_before_it() {
    let (store, dir) = new_store().await;
    let path = dir.path().join("trail.db");
    let event = |i: i32| {
        trail_store::conformance::event(
            serde_json::json!({"user": "a", "kind": "DEVICE_EDITED", "message": format!("m{i}")}),
        )
    };
    store.append((0..11).map(event).collect()).await.unwrap();
    let expected = trail_store::tree::root(&store, 11).await.unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("DELETE FROM tree_rows", []).unwrap();
    drop(conn);
    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(trail_store::tree::root(&reopened, 11).await.unwrap(), expected, "rebuilt from the events");
    reopened.append(vec![event(11)]).await.unwrap();
    drop(reopened);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("DELETE FROM events WHERE id = 12", []).unwrap();
    drop(conn);
    let refused = SqliteStore::open(&path).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(refused.contains("removed outside Trail"), "{refused}");
}

/// Events the index does not have are found exactly as the matcher finds them: the index file
/// is lost, and a reader (which never indexes) shows every event unindexed while it searches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unindexed_events_are_found_as_the_matcher_finds_them() {
    use trail_core::{Filter, Pattern, SearchQuery, UserFilter};
    let (store, dir) = new_store().await;
    let words = ["uplink", "ntp server", "Zürich", "50% off", "a_b"];
    let events: Vec<_> = (0..3000)
        .map(|n| {
            let message = format!("change {n} {} on edge{}", words[n % words.len()], n % 37);
            trail_store::conformance::event(serde_json::json!({
                "user": format!("u{}", n % 3), "kind": "DEVICE_EDITED", "name": format!("edge{}", n % 11), "message": message,
            }))
        })
        .collect();
    for chunk in events.chunks(1000) {
        store.append(chunk.to_vec()).await.unwrap();
    }
    drop(store);
    for file in ["trail.search.db", "trail.search.db-wal", "trail.search.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(file));
    }
    let reader = SqliteStore::open_read_only(dir.path().join("trail.db")).unwrap();
    assert_eq!(reader.stats().await.unwrap().unindexed, 3000, "every event is unindexed while it is searched");
    let stored = reader.read_after(EventId::ZERO, 5000).await.unwrap();
    let pattern = |p: &str| Some(Pattern::new(p));
    let filters = [
        Filter { message: pattern("uplink"), ..Filter::all() },
        Filter { message: pattern("zÜrich"), user: UserFilter::Only("u1".into()), ..Filter::all() },
        Filter { message: pattern("50\\% off"), name: pattern("edge1"), ..Filter::all() },
        Filter { message: pattern("a\\_b"), ..Filter::all() },
        Filter { name: pattern("EDGE1_"), ..Filter::all() },
        Filter { message: pattern("nothing like this"), ..Filter::all() },
    ];
    for filter in filters {
        let expected: Vec<EventId> = stored.iter().rev().filter(|e| filter.matches(&e.body)).map(|e| e.id).collect();
        let mut found = Vec::new();
        let mut cursor = None;
        loop {
            let page = reader.search(SearchQuery::new(filter.clone(), 200, cursor)).await.unwrap();
            found.extend(page.events.iter().map(|e| e.id));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(found, expected, "{filter:?}");
    }
}
