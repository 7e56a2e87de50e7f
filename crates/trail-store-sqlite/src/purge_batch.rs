//! One batch of a purge (S3), a write request only SQLite has: PostgreSQL drops whole monthly
//! partitions instead, outside its writer (`trail-store-postgres/src/retention.rs`).

use crate::tx::{WriteTx, backend};
use async_trait::async_trait;
use rusqlite::params;
use trail_core::{EventId, time};
use trail_store::StoreError;
use trail_store::write::{Apply, WriteRequest};

/// Removes the oldest events while they are older than `cutoff` (at most `batch`), and moves the
/// marker to the last one removed, in the same transaction; answers how many went.
pub struct PurgeBatch {
    pub cutoff: jiff::Timestamp,
    pub batch: usize,
}

impl WriteRequest for PurgeBatch {
    type Answer = u64;

    /// The events it may remove.
    fn weight(&self) -> usize {
        self.batch
    }

    fn appends_events(&self) -> bool {
        false
    }

    fn events_stored(_: &u64) -> u64 {
        0
    }
}

#[async_trait]
impl Apply<WriteTx> for PurgeBatch {
    async fn apply(self, tx: &mut WriteTx) -> Result<u64, StoreError> {
        purge_batch(&tx.conn, self.cutoff, self.batch).map_err(backend)
    }
}

fn purge_batch(conn: &rusqlite::Connection, cutoff: jiff::Timestamp, batch: usize) -> rusqlite::Result<u64> {
    let cutoff = time::to_micros(cutoff);
    // Never what a forwarding destination has yet to deliver (F4).
    let undelivered: Option<EventId> = conn
        .query_row("SELECT min(delivered_through) FROM forward_cursors", [], |r| r.get::<_, Option<i64>>(0))?
        .map(EventId::new);
    let limit = undelivered.unwrap_or(EventId::MAX);
    let mut prefix = conn.prepare_cached("SELECT id, time, hash FROM events WHERE id <= ?2 ORDER BY id LIMIT ?1")?;
    let mut rows = prefix.query(params![batch as i64, limit.get()])?;
    let mut last: Option<(EventId, Vec<u8>)> = None;
    let mut count = 0u64;
    while let Some(row) = rows.next()? {
        if row.get::<_, i64>(1)? >= cutoff {
            break;
        }
        last = Some((row.get(0).map(EventId::new)?, row.get(2)?));
        count += 1;
    }
    drop(rows);
    drop(prefix);
    let Some((through, hash)) = last else { return Ok(0) };
    conn.prepare_cached("DELETE FROM events WHERE id <= ?1")?.execute([through.get()])?;
    conn.prepare_cached(
        "INSERT INTO prune_marker (only, through, hash, purged_at) VALUES (1, ?1, ?2, ?3)
         ON CONFLICT (only) DO UPDATE SET through = ?1, hash = ?2, purged_at = ?3",
    )?
    .execute(params![through.get(), hash, time::to_micros(jiff::Timestamp::now())])?;
    // Contents no device holds any more (E4 keeps only the latest of each).
    conn.execute("DELETE FROM contents WHERE hash NOT IN (SELECT hash FROM device_contents)", [])?;
    Ok(count)
}
