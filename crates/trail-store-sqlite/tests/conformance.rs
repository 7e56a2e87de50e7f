//! The storage conformance suite, run against the SQLite backend.

use trail_store_sqlite::SqliteStore;

async fn new_store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("trail.db")).unwrap();
    (store, dir)
}

trail_store::conformance_suite!(new_store);
