//! The Merkle tree's storage on PostgreSQL (S4): a row per leaf in `tree_nodes`, written by the
//! writer with the event under the sequencer, read by stored index (`trail_core::tree::row_of`).

use crate::pg;
use crate::rows::{COLUMNS, Rows, event_from_row};
use deadpool_postgres::GenericClient;
use std::collections::HashMap;
use trail_core::tree::{self, Fetched, Frontier, Hash};
use trail_store::StoreError;

/// The hashes at these stored indexes, in order.
pub async fn hashes(client: &impl GenericClient, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
    let places: Vec<(u64, usize)> = indexes.iter().map(|&index| tree::row_of(index)).collect();
    let leaves: Vec<i64> = places.iter().map(|&(leaf, _)| leaf as i64).collect();
    let rows =
        client.query("SELECT leaf, hashes FROM tree_nodes WHERE leaf = ANY($1)", &[&leaves]).await.map_err(pg)?;
    let by_leaf: HashMap<i64, Vec<u8>> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    indexes
        .iter()
        .zip(places)
        .map(|(index, (leaf, position))| {
            let bytes = by_leaf
                .get(&(leaf as i64))
                .and_then(|row| row.get(position * 32..(position + 1) * 32))
                .ok_or_else(|| StoreError::NotFound(format!("the tree holds no hash {index} (leaf {leaf})")))?;
            let mut hash = tree::EMPTY_ROOT;
            hash.0.copy_from_slice(bytes);
            Ok(hash)
        })
        .collect()
}

/// The tree's right edge at `size` leaves, from what is stored.
pub async fn frontier(client: &impl GenericClient, size: u64) -> Result<Frontier, StoreError> {
    let indexes = tree::indexes_read_by(|r| Frontier::resume(size, r));
    let stored = hashes(client, &indexes).await?;
    Frontier::resume(size, &Fetched(indexes.into_iter().zip(stored).collect()))
        .map_err(|error| StoreError::Corrupt(format!("the stored tree: {error}")))
}

/// Adds the leaf of each numbered event to `frontier`, and its row to `rows`.
pub fn grow(frontier: &mut Frontier, rows: &mut Rows, id: trail_core::EventId, body: &trail_core::EventBody) {
    let made = frontier.push(tree::leaf_hash(id, body));
    rows.tree_leaf.push(tree::leaf_index(id) as i64);
    rows.tree_hashes.push(made.iter().flat_map(|hash| hash.0).collect());
}

/// Inserts the tree rows of `rows`.
pub async fn insert(client: &impl GenericClient, rows: &Rows) -> Result<(), StoreError> {
    if rows.tree_leaf.is_empty() {
        return Ok(());
    }
    client
        .execute(
            "INSERT INTO tree_nodes (leaf, hashes) SELECT * FROM UNNEST($1::bigint[], $2::bytea[])",
            &[&rows.tree_leaf, &rows.tree_hashes],
        )
        .await
        .map_err(pg)?;
    Ok(())
}

/// Builds the tree's missing leaves from their events (a trail written before the tree
/// existed), under the sequencer, so that no writer appends meanwhile.
pub async fn build_missing(client: &mut deadpool_postgres::Object) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg)?;
    let head: i64 = tx.query_one("SELECT last_id FROM chain_head FOR UPDATE", &[]).await.map_err(pg)?.get(0);
    let stored: i64 = tx.query_one("SELECT coalesce(max(leaf) + 1, 0) FROM tree_nodes", &[]).await.map_err(pg)?.get(0);
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
    let mut frontier = frontier(&tx, stored as u64).await?;
    let events =
        tx.query(&format!("SELECT {COLUMNS} FROM events WHERE id > $1 ORDER BY id"), &[&stored]).await.map_err(pg)?;
    let mut rows = Rows::default();
    for row in &events {
        let event = event_from_row(row)?;
        if tree::leaf_index(event.id) != frontier.size() {
            return Err(StoreError::Corrupt(format!(
                "the events before id {} were purged before the Merkle tree existed, so it cannot be built",
                event.id
            )));
        }
        grow(&mut frontier, &mut rows, event.id, &event.body);
    }
    insert(&tx, &rows).await?;
    tx.commit().await.map_err(pg)
}
