//! For `trail bench`: the engine's ceiling, so every run shows how close ingest comes to it.
//! SQLite inserts the same rows the writer would (same table and indexes, same statement, same
//! pragmas) in one transaction, with nothing of Trail around it: no requests, no chain or tree
//! to compute (the rows are made before the clock starts), no savepoints, no indexer reading.

use crate::rows::{EventRow, insert_sql};
use crate::{backend, open_connection, schema};
use std::path::Path;
use std::time::{Duration, Instant};
use trail_core::{EventBody, EventId, chain};
use trail_store::StoreError;

/// How long SQLite took to insert `events` into a new database at `path`, in one transaction,
/// committed durably. The WAL is not checkpointed within the time (its copy into the database
/// file is work a writer can leave to another thread), so the ceiling is the engine's best.
pub fn insert_ceiling(path: &Path, events: &[EventBody]) -> Result<Duration, StoreError> {
    let mut conn = open_connection(path).map_err(backend)?;
    conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(backend)?;
    schema::migrate(&mut conn).map_err(backend)?;
    let mut hash = chain::GENESIS;
    let rows = events
        .iter()
        .zip(1..)
        .map(|(body, n)| {
            let id = EventId::new(n);
            hash = chain::link(&hash, id, body);
            EventRow::of(id, body, hash)
        })
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(backend)?;
    let started = Instant::now();
    let tx = conn.transaction().map_err(backend)?;
    {
        let mut insert = tx.prepare(&insert_sql()).map_err(backend)?;
        for row in &rows {
            row.insert(&mut insert).map_err(backend)?;
        }
    }
    tx.commit().map_err(backend)?;
    Ok(started.elapsed())
}
