//! S3 on PostgreSQL: a purge drops the oldest monthly partitions whole, then deletes what is
//! left of the purged prefix in batches, moving the marker with each step in the same
//! transaction, so that a purge cut short still leaves a trail that verifies.

use crate::rows::hash_from;
use crate::schema::{self, partition_name};
use crate::{pg, read_head};
use deadpool_postgres::GenericClient;
use trail_core::chain::PruneMarker;
use trail_core::{EventId, time};
use trail_store::StoreError;

pub async fn marker(client: &impl GenericClient) -> Result<Option<PruneMarker>, StoreError> {
    let row = client.query_opt("SELECT through, hash FROM prune_marker", &[]).await.map_err(pg)?;
    row.map(|r| Ok(PruneMarker { through: EventId::new(r.get(0)), hash: hash_from(r.get(1), "the prune marker")? }))
        .transpose()
}

/// The last id to purge: the end of the longest prefix after the marker whose events are all
/// older than `cutoff`, and never what a forwarding destination has yet to deliver (F4). Ids up
/// to the head are all committed (the sequencer), so this stays true while others append.
async fn purge_through(client: &impl GenericClient, cutoff: i64, after: EventId) -> Result<EventId, StoreError> {
    let head = read_head(client).await?;
    let undelivered = client
        .query_one("SELECT min(delivered_through) FROM forward_cursors", &[])
        .await
        .map_err(pg)?
        .get::<_, Option<i64>>(0)
        .map(EventId::new);
    let first_young = client
        .query_one(
            "SELECT min(id) FROM events WHERE id > $1 AND id <= $2 AND time >= $3",
            &[&after.get(), &head.get(), &cutoff],
        )
        .await
        .map_err(pg)?
        .get::<_, Option<i64>>(0)
        .map(EventId::new);
    Ok(first_young.map_or(head, |id| id - 1).min(undelivered.unwrap_or(EventId::MAX)))
}

/// The partitions, oldest month first.
async fn partitions(client: &impl GenericClient) -> Result<Vec<i32>, StoreError> {
    let rows = client
        .query(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'events'::regclass",
            &[],
        )
        .await
        .map_err(pg)?;
    let mut months: Vec<i32> = rows.iter().filter_map(|r| schema::partition_month(r.get(0))).collect();
    months.sort_unstable();
    Ok(months)
}

async fn move_marker(client: &impl GenericClient, through: EventId) -> Result<(), StoreError> {
    let hash: Vec<u8> =
        client.query_one("SELECT hash FROM events WHERE id = $1", &[&through.get()]).await.map_err(pg)?.get(0);
    client
        .execute(
            "INSERT INTO prune_marker VALUES (1, $1, $2, $3) \
             ON CONFLICT (singleton) DO UPDATE SET through = $1, hash = $2, purged_at = $3",
            &[&through.get(), &hash, &time::to_micros(jiff::Timestamp::now())],
        )
        .await
        .map_err(pg)?;
    Ok(())
}

/// Purges the events older than `cutoff`; answers how many went. Ids after the marker have no
/// gaps (the sequencer numbers them in order), so that is how far the marker moved.
pub async fn purge(
    client: &mut deadpool_postgres::Object,
    cutoff: jiff::Timestamp,
    batch: usize,
) -> Result<u64, StoreError> {
    let start = marker(client).await?.map_or(EventId::ZERO, |m| m.through);
    let through = purge_through(client, time::to_micros(cutoff), start).await?;
    let mut from = start;
    // The newest month's partition is where this month's events go: never dropped.
    let open: i32 = client.query_one("SELECT last_month FROM chain_head", &[]).await.map_err(pg)?.get(0);
    for month in partitions(client).await?.into_iter().filter(|m| *m < open) {
        let table = partition_name(month);
        let tx = client.transaction().await.map_err(pg)?;
        let last = tx
            .query_one(&format!("SELECT max(id) FROM {table}"), &[])
            .await
            .map_err(pg)?
            .get::<_, Option<i64>>(0)
            .map(EventId::new);
        match last {
            Some(last) if last <= through => {
                move_marker(&tx, last).await?;
                from = last;
            }
            // An empty partition (its events purged by rows before) goes too.
            None => {}
            Some(_) => break,
        }
        tx.batch_execute(&format!("DROP TABLE {table}")).await.map_err(pg)?;
        tx.commit().await.map_err(pg)?;
    }
    // What is left of the prefix lies in the oldest remaining partition: deleted in batches.
    while from < through {
        let upto = through.min(from + batch as i64);
        let tx = client.transaction().await.map_err(pg)?;
        move_marker(&tx, upto).await?;
        tx.execute("DELETE FROM events WHERE id > $1 AND id <= $2", &[&from.get(), &upto.get()]).await.map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        from = upto;
    }
    let purged = (from - start).max(0) as u64;
    if purged > 0 {
        forget_unheld_contents(client).await?;
    }
    Ok(purged)
}

/// Contents no device holds any more (E4 keeps only the latest of each). Under the sequencer,
/// so that no content being recorded at this moment is taken away from under it.
async fn forget_unheld_contents(client: &mut deadpool_postgres::Object) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg)?;
    tx.execute("SELECT 1 FROM chain_head FOR UPDATE", &[]).await.map_err(pg)?;
    tx.execute("DELETE FROM contents WHERE hash NOT IN (SELECT hash FROM device_contents)", &[]).await.map_err(pg)?;
    tx.commit().await.map_err(pg)
}
