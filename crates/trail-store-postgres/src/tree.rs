//! The Merkle tree's storage on PostgreSQL (S4): `tree_rows`, a row per 16 leaves, written by
//! the writer with the events under the sequencer, read by stored index
//! (`trail_core::tree::row_of`).

use crate::pg;
use crate::rows::{COLUMNS, event_from_row};
use deadpool_postgres::GenericClient;
use std::collections::HashMap;
use trail_core::tree::{self, Fetched, Growth, Hash};
use trail_store::StoreError;

/// The hashes at these stored indexes, in order.
pub async fn hashes(client: &impl GenericClient, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
    let places: Vec<(u64, usize)> = indexes.iter().map(|&index| tree::row_of(index)).collect();
    let numbers: Vec<i64> = places.iter().map(|&(row, _)| row as i64).collect();
    let rows =
        client.query("SELECT number, hashes FROM tree_rows WHERE number = ANY($1)", &[&numbers]).await.map_err(pg)?;
    let by_number: HashMap<i64, Vec<u8>> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    indexes
        .iter()
        .zip(places)
        .map(|(index, (row, position))| {
            by_number
                .get(&(row as i64))
                .and_then(|row| tree::hash_in_row(row, position))
                .ok_or_else(|| StoreError::NotFound(format!("the tree holds no hash {index}")))
        })
        .collect()
}

/// The tree at `size` leaves, from what is stored.
pub async fn growth(client: &impl GenericClient, size: u64) -> Result<Growth, StoreError> {
    let indexes = tree::indexes_read_by(|r| Growth::resume(size, r));
    let stored = hashes(client, &indexes).await?;
    Growth::resume(size, &Fetched(indexes.into_iter().zip(stored).collect()))
        .map_err(|error| StoreError::Corrupt(format!("the stored tree: {error}")))
}

/// Writes rows whole, over what they held.
pub async fn write(client: &impl GenericClient, rows: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let numbers: Vec<i64> = rows.iter().map(|(number, _)| *number as i64).collect();
    let hashes: Vec<&[u8]> = rows.iter().map(|(_, bytes)| bytes.as_slice()).collect();
    // Prepared once per connection: the writer runs it under the sequencer at every commit.
    let statement = client
        .prepare_cached(
            "INSERT INTO tree_rows (number, hashes) SELECT * FROM UNNEST($1::bigint[], $2::bytea[]) \
             ON CONFLICT (number) DO UPDATE SET hashes = EXCLUDED.hashes",
        )
        .await
        .map_err(pg)?;
    client.execute(&statement, &[&numbers, &hashes]).await.map_err(pg)?;
    Ok(())
}

/// Writes the rows `growth` grew since they were last written.
pub async fn write_grown(client: &impl GenericClient, growth: &mut Growth) -> Result<(), StoreError> {
    let rows: Vec<(u64, Vec<u8>)> =
        growth.rows_to_write().into_iter().map(|(number, hashes)| (number, tree::row_bytes(&hashes))).collect();
    write(client, &rows).await?;
    growth.written();
    Ok(())
}

/// How many leaves the stored rows hold.
async fn leaves_stored(client: &impl GenericClient) -> Result<u64, StoreError> {
    let last = client
        .query_opt("SELECT number, length(hashes) FROM tree_rows ORDER BY number DESC LIMIT 1", &[])
        .await
        .map_err(pg)?;
    let Some(last) = last else { return Ok(0) };
    let (row, bytes): (i64, i32) = (last.get(0), last.get(1));
    tree::leaves_stored(row as u64, bytes as u64 / 32)
        .ok_or_else(|| StoreError::Corrupt(format!("the Merkle tree's row {row} holds {bytes} bytes")))
}

/// Builds the tree's missing leaves from their events (a trail written before the tree
/// existed), under the sequencer, so that no writer appends meanwhile.
pub async fn build_missing(client: &mut deadpool_postgres::Object) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg)?;
    let head: i64 = tx.query_one("SELECT last_id FROM chain_head FOR UPDATE", &[]).await.map_err(pg)?.get(0);
    let (head, stored) = (head as u64, leaves_stored(&tx).await?);
    if stored > head {
        return Err(StoreError::Corrupt(format!(
            "the Merkle tree holds {stored} leaves but the events end at leaf {head}: \
             the newest events were removed outside Trail"
        )));
    }
    if stored == head {
        return Ok(());
    }
    tracing::info!(from = stored, to = head, "building the Merkle tree over events stored before it");
    let mut growth = growth(&tx, stored).await?;
    let events = tx
        .query(&format!("SELECT {COLUMNS} FROM events WHERE id > $1 ORDER BY id"), &[&(stored as i64)])
        .await
        .map_err(pg)?;
    for row in &events {
        let event = event_from_row(row)?;
        if tree::leaf_index(event.id) != growth.size() {
            return Err(StoreError::Corrupt(format!(
                "the events before id {} were purged before the Merkle tree existed, so it cannot be built",
                event.id
            )));
        }
        growth.push(tree::leaf_hash(event.id, &event.body));
    }
    write_grown(&tx, &mut growth).await?;
    tx.commit().await.map_err(pg)
}
