//! The search index against brute force across restarts: resuming from a persisted index, a
//! lost index, a restart at a big chunk's boundary, and an index of an older version (the
//! filters and events are the conformance suite's, see `the_index_agrees_with_the_matcher_across_chunks`).

//! The search index against brute force: many events across mini and big chunk boundaries, times
//! out of order, and a restart in the middle. Every search must equal the exact filter applied
//! to every event.

use trail_store::conformance::{append_varied, check_varied_filters, varied_event};
use trail_store::prelude::*;
use trail_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_resumes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trail.db");
    let store = SqliteStore::open(&path).unwrap();
    let first = 70_000u64;
    append_varied(&store, 0..first).await;
    store.catch_up_indexes().await.unwrap();
    drop(store);

    let store = SqliteStore::open(&path).unwrap();
    append_varied(&store, first..first + 3000).await;
    store.catch_up_indexes().await.unwrap();
    check_varied_filters(&store, "after a restart").await;
    assert!(dir.path().join("trail.search.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trail.db");
    let store = SqliteStore::open(&path).unwrap();
    append_varied(&store, 0..9000).await;
    store.catch_up_indexes().await.unwrap();
    drop(store);
    for suffix in ["search.db", "search.db-wal", "search.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(format!("trail.{suffix}")));
    }
    let store = SqliteStore::open(&path).unwrap();
    store.catch_up_indexes().await.unwrap();
    check_varied_filters(&store, "rebuilt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_exactly_at_a_big_chunk_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trail.db");
    let store = SqliteStore::open(&path).unwrap();
    for start in (0..65_536u64).step_by(4096) {
        store.append((start..start + 4096).map(varied_event).collect()).await.unwrap();
    }
    store.catch_up_indexes().await.unwrap();
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    append_varied(&store, 65_536..65_536 + 70_000).await;
    store.catch_up_indexes().await.unwrap();
    check_varied_filters(&store, "restarted at 65,536").await;
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    store.catch_up_indexes().await.unwrap();
    check_varied_filters(&store, "restarted again").await;
}

/// An index from before names and actions were keyed lacks their keys, and a missing key hides
/// events: a reader treats it as empty, and the server rebuilds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_of_another_version_is_not_trusted_and_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trail.db");
    let store = SqliteStore::open(&path).unwrap();
    append_varied(&store, 0..9000).await;
    store.catch_up_indexes().await.unwrap();
    drop(store);
    // What version 1 held: message keys only (untagged, below 2^24 or hashed), no version row.
    let index = rusqlite::Connection::open(dir.path().join("trail.search.db")).unwrap();
    index.execute("DELETE FROM postings WHERE key >= 16777216 AND key < 2147483648", []).unwrap();
    index.execute("DELETE FROM meta WHERE name = 'version'", []).unwrap();
    drop(index);

    let reader = SqliteStore::open_read_only(&path).unwrap();
    assert_eq!(reader.stats().await.unwrap().unindexed, 9000, "the old index counts for nothing");
    check_varied_filters(&reader, "beside an old index").await;
    drop(reader);
    let store = SqliteStore::open(&path).unwrap();
    store.catch_up_indexes().await.unwrap();
    assert_eq!(store.stats().await.unwrap().unindexed, 0);
    check_varied_filters(&store, "rebuilt from an old index").await;
    drop(store);
    let index = rusqlite::Connection::open(dir.path().join("trail.search.db")).unwrap();
    let (version, name_keys): (i64, i64) = index
        .query_row(
            "SELECT (SELECT value FROM meta WHERE name = 'version'), \
             (SELECT count(*) FROM postings WHERE key >= 16777216 AND key < 2147483648)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(version, 2, "the rebuilt index says what it keys, so searches use it again");
    assert!(name_keys > 0, "the rebuilt index keys names and actions");
}
