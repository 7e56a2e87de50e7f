//! E4's storage: each device's latest content per kind, contents stored once per hash.

use rusqlite::{Connection, OptionalExtension, params};
use trail_core::content::{ContentKind, StoredContent};
use trail_core::time;

pub fn latest(conn: &Connection, device: &str, kind: ContentKind) -> rusqlite::Result<Option<StoredContent>> {
    conn.prepare_cached(
        "SELECT d.hash, c.body, d.changed_at, d.seen_at FROM device_contents d JOIN contents c ON c.hash = d.hash \
         WHERE d.device = ?1 AND d.kind = ?2",
    )?
    .query_row(params![device, kind.as_str()], |r| {
        Ok(StoredContent {
            hash: r.get(0)?,
            content: r.get(1)?,
            changed_at: time::from_micros(r.get(2)?),
            seen_at: time::from_micros(r.get(3)?),
        })
    })
    .optional()
}

/// The same content was recorded again: only the time it was last seen moves.
pub fn touch(conn: &Connection, device: &str, kind: ContentKind, at: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE device_contents SET seen_at = max(seen_at, ?3) WHERE device = ?1 AND kind = ?2")?
        .execute(params![device, kind.as_str(), at])?;
    Ok(())
}

/// New content becomes the latest; its body is stored unless that hash is already there.
pub fn replace(
    conn: &Connection,
    device: &str,
    kind: ContentKind,
    hash: &str,
    body: &str,
    at: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO contents(hash, body) VALUES (?1, ?2)")?.execute(params![hash, body])?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO device_contents(device, kind, hash, changed_at, seen_at) VALUES (?1, ?2, ?3, ?4, ?4)",
    )?
    .execute(params![device, kind.as_str(), hash, at])?;
    Ok(())
}
