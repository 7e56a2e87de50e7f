//! The Merkle tree's storage on SQLite (S4): a row per leaf in `tree_nodes`, written by the
//! writer with the event, read by stored index (`trail_core::tree::row_of`).

use crate::rows::event_from_row;
use crate::schema::EVENT_COLUMNS;
use crate::tx::backend;
use rusqlite::{Connection, OptionalExtension, params};
use std::cell::RefCell;
use trail_core::tree::{self, Frontier, Hash, HashReader, ReaderError};
use trail_store::StoreError;

/// The hashes at these stored indexes, in order.
pub fn hashes(conn: &Connection, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
    let mut statement = conn.prepare_cached("SELECT hashes FROM tree_nodes WHERE leaf = ?1").map_err(backend)?;
    indexes
        .iter()
        .map(|&index| {
            let (leaf, position) = tree::row_of(index);
            let row: Option<Vec<u8>> = statement.query_row([leaf as i64], |r| r.get(0)).optional().map_err(backend)?;
            let bytes = row
                .as_deref()
                .and_then(|row| row.get(position * 32..(position + 1) * 32))
                .ok_or_else(|| StoreError::NotFound(format!("the tree holds no hash {index} (leaf {leaf})")))?;
            let mut hash = tree::EMPTY_ROOT;
            hash.0.copy_from_slice(bytes);
            Ok(hash)
        })
        .collect()
}

/// Stores the hashes written with leaf `leaf`.
pub fn store(conn: &Connection, leaf: u64, made: &[Hash]) -> rusqlite::Result<()> {
    let bytes: Vec<u8> = made.iter().flat_map(|hash| hash.0).collect();
    conn.prepare_cached("INSERT INTO tree_nodes (leaf, hashes) VALUES (?1, ?2)")?
        .execute(params![leaf as i64, bytes])?;
    Ok(())
}

/// The stored hashes as the core's proofs read them; a database error is kept aside, since the
/// reader's error type cannot carry it.
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

/// The tree's right edge at `size` leaves, from what is stored; the leaves the tree lacks
/// (a trail written before the tree existed) are added from their events first.
pub fn frontier(conn: &Connection, size: u64) -> Result<Frontier, StoreError> {
    let stored_leaves: u64 = conn
        .query_row("SELECT coalesce(max(leaf) + 1, 0) FROM tree_nodes", [], |r| r.get::<_, i64>(0))
        .map_err(backend)? as u64;
    if stored_leaves > size {
        return Err(StoreError::Corrupt(format!(
            "the Merkle tree holds {stored_leaves} leaves but the events end at leaf {size}: \
             the newest events were removed outside Trail"
        )));
    }
    let reader = Stored { conn, failure: RefCell::new(None) };
    let mut frontier = Frontier::resume(stored_leaves, &reader).map_err(|error| {
        reader.failure.take().unwrap_or_else(|| StoreError::Corrupt(format!("the stored tree: {error}")))
    })?;
    if stored_leaves < size {
        add_missing_leaves(conn, &mut frontier, size)?;
    }
    Ok(frontier)
}

/// Builds the tree's missing leaves from their events, in one transaction.
fn add_missing_leaves(conn: &Connection, frontier: &mut Frontier, size: u64) -> Result<(), StoreError> {
    tracing::info!(from = frontier.size(), to = size, "building the Merkle tree over events stored before it");
    conn.execute_batch("BEGIN IMMEDIATE").map_err(backend)?;
    let built = (|| -> Result<(), StoreError> {
        let mut statement =
            conn.prepare(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE id > ?1 ORDER BY id")).map_err(backend)?;
        let mut rows = statement.query([frontier.size() as i64]).map_err(backend)?;
        while let Some(row) = rows.next().map_err(backend)? {
            let event = event_from_row(row).map_err(backend)?;
            let leaf = tree::leaf_index(event.id);
            if leaf != frontier.size() {
                return Err(StoreError::Corrupt(format!(
                    "the events before id {} were purged before the Merkle tree existed, so it cannot be built",
                    event.id
                )));
            }
            let made = frontier.push(tree::leaf_hash(event.id, &event.body));
            store(conn, leaf, &made).map_err(backend)?;
        }
        if frontier.size() != size {
            return Err(StoreError::Corrupt(format!(
                "the Merkle tree holds {} leaves and the events end at leaf {size}",
                frontier.size()
            )));
        }
        Ok(())
    })();
    match built {
        Ok(()) => conn.execute_batch("COMMIT").map_err(backend),
        Err(error) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(error)
        }
    }
}
