//! Signed checkpoints (S4), kept beside their CHECKPOINT events.

use crate::{corrupt, pg};
use deadpool_postgres::GenericClient;
use trail_core::checkpoint::RecordedCheckpoint;
use trail_core::tree;
use trail_core::{EventId, time};
use trail_store::StoreError;

const COLUMNS: &str = "size, root, note, event_id, signed_at";

fn from_row(row: &tokio_postgres::Row) -> Result<RecordedCheckpoint, StoreError> {
    let root: Vec<u8> = row.get(1);
    let root = root.try_into().map_err(|_| corrupt("a checkpoint's root is not 32 bytes"))?;
    Ok(RecordedCheckpoint {
        size: row.get::<_, i64>(0) as u64,
        root: tree::hash_from(root),
        note: row.get(2),
        event_id: EventId::new(row.get(3)),
        signed_at: time::from_micros(row.get(4)),
    })
}

pub async fn insert(client: &impl GenericClient, checkpoint: &RecordedCheckpoint) -> Result<(), StoreError> {
    client
        .execute(
            &format!("INSERT INTO checkpoints ({COLUMNS}) VALUES ($1, $2, $3, $4, $5)"),
            &[
                &(checkpoint.size as i64),
                &&checkpoint.root.0[..],
                &checkpoint.note,
                &checkpoint.event_id.get(),
                &time::to_micros(checkpoint.signed_at),
            ],
        )
        .await
        .map_err(pg)?;
    Ok(())
}

pub async fn latest(client: &impl GenericClient) -> Result<Option<RecordedCheckpoint>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM checkpoints ORDER BY size DESC LIMIT 1");
    client.query_opt(&sql, &[]).await.map_err(pg)?.as_ref().map(from_row).transpose()
}

pub async fn covering(client: &impl GenericClient, size: u64) -> Result<Option<RecordedCheckpoint>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM checkpoints WHERE size >= $1 ORDER BY size LIMIT 1");
    client.query_opt(&sql, &[&(size as i64)]).await.map_err(pg)?.as_ref().map(from_row).transpose()
}

/// The checkpoints whose body announces the next key (its extension line `next-key`).
pub async fn key_rotations(client: &impl GenericClient) -> Result<Vec<RecordedCheckpoint>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM checkpoints WHERE strpos(note, E'\\nnext-key ') > 0 ORDER BY size");
    client.query(&sql, &[]).await.map_err(pg)?.iter().map(from_row).collect()
}
