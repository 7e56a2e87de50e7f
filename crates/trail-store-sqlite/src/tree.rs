//! The Merkle tree's storage on SQLite (S4): `tree_rows`, a row per 16 leaves, written by the
//! writer in the events' transaction, read by stored index (`trail_core::tree::row_of`).

use crate::rows::event_from_row;
use crate::schema::EVENT_COLUMNS;
use crate::tx::backend;
use rusqlite::{Connection, OptionalExtension, params};
use std::cell::RefCell;
use trail_core::tree::{self, Growth, Hash, HashReader, LEAVES_PER_ROW, ReaderError};
use trail_store::StoreError;

/// The hashes at these stored indexes, in order.
pub fn hashes(conn: &Connection, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
    let mut statement = conn.prepare_cached("SELECT hashes FROM tree_rows WHERE number = ?1").map_err(backend)?;
    let mut cached: Option<(u64, Vec<u8>)> = None;
    let mut found = Vec::with_capacity(indexes.len());
    for &index in indexes {
        let (row, position) = tree::row_of(index);
        if cached.as_ref().is_none_or(|(number, _)| *number != row) {
            let bytes: Option<Vec<u8>> = statement.query_row([row as i64], |r| r.get(0)).optional().map_err(backend)?;
            cached = bytes.map(|bytes| (row, bytes));
        }
        let hash = cached.as_ref().and_then(|(_, bytes)| tree::hash_in_row(bytes, position));
        found.push(hash.ok_or_else(|| StoreError::NotFound(format!("the tree holds no hash {index}")))?);
    }
    Ok(found)
}

/// Writes rows whole, over what they held.
pub fn write(conn: &Connection, rows: Vec<(u64, Vec<Hash>)>) -> rusqlite::Result<()> {
    let mut statement = conn.prepare_cached("INSERT OR REPLACE INTO tree_rows (number, hashes) VALUES (?1, ?2)")?;
    for (number, hashes) in rows {
        statement.execute(params![number as i64, tree::row_bytes(&hashes)])?;
    }
    Ok(())
}

/// The rows holding the leaves before `size` (a purged prefix's), the last cut at `size`, for
/// `trail migrate`.
pub fn rows_before(conn: &Connection, size: u64) -> rusqlite::Result<Vec<(u64, Vec<u8>)>> {
    let mut statement = conn.prepare("SELECT number, hashes FROM tree_rows WHERE number * ?2 < ?1 ORDER BY number")?;
    let rows = statement.query_map([size as i64, LEAVES_PER_ROW as i64], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut rows: Vec<(u64, Vec<u8>)> = rows.collect::<rusqlite::Result<_>>()?;
    if let Some((number, bytes)) = rows.last_mut() {
        let kept = tree::stored_count(size) - tree::first_stored_index(*number * LEAVES_PER_ROW);
        bytes.truncate(kept as usize * 32);
    }
    Ok(rows)
}

/// The stored hashes as the core reads them; a database error is kept aside, since the reader's
/// error type cannot carry it.
struct Stored<'c> {
    conn: &'c Connection,
    failure: RefCell<Option<StoreError>>,
}

impl HashReader for Stored<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, ReaderError> {
        hashes(self.conn, indexes).map_err(|error| {
            self.failure.replace(Some(error));
            ReaderError::IndexesNotInTree
        })
    }
}

/// How many leaves the stored rows hold.
fn leaves_stored(conn: &Connection) -> Result<u64, StoreError> {
    let last: Option<(i64, i64)> = conn
        .query_row("SELECT number, length(hashes) FROM tree_rows ORDER BY number DESC LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(backend)?;
    let Some((row, bytes)) = last else { return Ok(0) };
    tree::leaves_stored(row as u64, bytes as u64 / 32)
        .ok_or_else(|| StoreError::Corrupt(format!("the Merkle tree's row {row} holds {bytes} bytes")))
}

/// The tree at `size` leaves, from what is stored; the leaves the tree lacks (a trail written
/// before the tree existed) are added from their events first.
pub fn growth(conn: &Connection, size: u64) -> Result<Growth, StoreError> {
    let stored = leaves_stored(conn)?;
    if stored > size {
        return Err(StoreError::Corrupt(format!(
            "the Merkle tree holds {stored} leaves but the events end at leaf {size}: \
             the newest events were removed outside Trail"
        )));
    }
    let reader = Stored { conn, failure: RefCell::new(None) };
    let mut growth = Growth::resume(stored, &reader).map_err(|error| {
        reader.failure.take().unwrap_or_else(|| StoreError::Corrupt(format!("the stored tree: {error}")))
    })?;
    if stored < size {
        add_missing_leaves(conn, &mut growth, size)?;
    }
    Ok(growth)
}

/// Builds the tree's missing leaves from their events, in one transaction.
fn add_missing_leaves(conn: &Connection, growth: &mut Growth, size: u64) -> Result<(), StoreError> {
    tracing::info!(from = growth.size(), to = size, "building the Merkle tree over events stored before it");
    conn.execute_batch("BEGIN IMMEDIATE").map_err(backend)?;
    let built = (|| -> Result<(), StoreError> {
        let mut statement =
            conn.prepare(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE id > ?1 ORDER BY id")).map_err(backend)?;
        let mut rows = statement.query([growth.size() as i64]).map_err(backend)?;
        while let Some(row) = rows.next().map_err(backend)? {
            let event = event_from_row(row).map_err(backend)?;
            if tree::leaf_index(event.id) != growth.size() {
                return Err(StoreError::Corrupt(format!(
                    "the events before id {} were purged before the Merkle tree existed, so it cannot be built",
                    event.id
                )));
            }
            growth.push(tree::leaf_hash(event.id, &event.body));
            if growth.size().is_multiple_of(64 * LEAVES_PER_ROW) {
                write(conn, growth.rows_to_write()).map_err(backend)?;
                growth.written();
            }
        }
        if growth.size() != size {
            return Err(StoreError::Corrupt(format!(
                "the Merkle tree holds {} leaves and the events end at leaf {size}",
                growth.size()
            )));
        }
        write(conn, growth.rows_to_write()).map_err(backend)
    })();
    match built {
        Ok(()) => {
            conn.execute_batch("COMMIT").map_err(backend)?;
            growth.written();
            Ok(())
        }
        Err(error) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(error)
        }
    }
}
