//! Signed checkpoints (S4), kept beside their CHECKPOINT events.

use rusqlite::{Connection, OptionalExtension, params};
use trail_core::checkpoint::RecordedCheckpoint;
use trail_core::tree;
use trail_core::{EventId, time};

const COLUMNS: &str = "size, root, note, event_id, signed_at";

fn from_row(row: &rusqlite::Row) -> rusqlite::Result<RecordedCheckpoint> {
    let root: Vec<u8> = row.get(1)?;
    let root = root.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Blob, "a root is not 32 bytes".into())
    })?;
    Ok(RecordedCheckpoint {
        size: row.get::<_, i64>(0)? as u64,
        root: tree::hash_from(root),
        note: row.get(2)?,
        event_id: EventId::new(row.get(3)?),
        signed_at: time::from_micros(row.get(4)?),
    })
}

pub fn insert(conn: &Connection, checkpoint: &RecordedCheckpoint) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!("INSERT INTO checkpoints ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"))?.execute(
        params![
            checkpoint.size as i64,
            &checkpoint.root.0[..],
            checkpoint.note,
            checkpoint.event_id.get(),
            time::to_micros(checkpoint.signed_at)
        ],
    )?;
    Ok(())
}

pub fn latest(conn: &Connection) -> rusqlite::Result<Option<RecordedCheckpoint>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM checkpoints ORDER BY size DESC LIMIT 1"))?
        .query_row([], from_row)
        .optional()
}

pub fn covering(conn: &Connection, size: u64) -> rusqlite::Result<Option<RecordedCheckpoint>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM checkpoints WHERE size >= ?1 ORDER BY size LIMIT 1"))?
        .query_row([size as i64], from_row)
        .optional()
}

/// The checkpoints whose body announces the next key (its extension line `next-key`).
pub fn key_rotations(conn: &Connection) -> rusqlite::Result<Vec<RecordedCheckpoint>> {
    let sql = format!("SELECT {COLUMNS} FROM checkpoints WHERE instr(note, char(10) || 'next-key ') > 0 ORDER BY size");
    conn.prepare_cached(&sql)?.query_map([], from_row)?.collect()
}

/// Every checkpoint, oldest first, for `trail migrate`.
pub fn all(conn: &Connection) -> rusqlite::Result<Vec<RecordedCheckpoint>> {
    conn.prepare(&format!("SELECT {COLUMNS} FROM checkpoints ORDER BY size"))?.query_map([], from_row)?.collect()
}
