//! The trigram block index on PostgreSQL: [`trail_store::block_index`]'s chunks and postings in
//! `search_chunks` and `search_postings`, fed off the commit path by one node at a time (the
//! `trail-index` lease), as SQLite's indexer thread feeds `trail.search.db`. The sequencer's
//! transaction holds only the insert; searches scan the events the index has not reached yet
//! directly (`search.rs`), so nothing is ever missing while the index lags.
//!
//! Each write moves `search_state.indexed_through` from the value this node last wrote, or
//! changes nothing: a node that lost the lease without noticing cannot interleave its writes
//! with its successor's, and goes back to resuming from what is stored.

use crate::{lease, pg, read_head};
use deadpool_postgres::{GenericClient, Object, Pool};
use std::time::Duration;
use tokio::sync::watch;
use tokio_postgres::error::SqlState;
use trail_core::EventId;
use trail_store::StoreError;
use trail_store::block_index::{self, Builder, VERSION, Write, Zone, geometry::MINI_EVENTS};

/// Ids read per batch (ids are dense, so at most as many events).
const BATCH: i64 = 8192;
/// How long the indexer waits, caught up, before persisting a half-filled chunk.
const IDLE_FLUSH: Duration = Duration::from_millis(500);
/// The lease's name: one node indexes at a time.
const LEASE: &str = "trail-index";

/// How far the index reaches, as searches may trust it: nowhere when it keys something else
/// than this build looks up (an older version, or one being rebuilt).
pub async fn indexed_through(client: &impl GenericClient) -> Result<i64, StoreError> {
    let statement = client.prepare_cached("SELECT indexed_through, version FROM search_state").await.map_err(pg)?;
    let row = client.query_one(&statement, &[]).await.map_err(pg)?;
    let (through, version): (i64, i64) = (row.get(0), row.get(1));
    Ok(if version == VERSION { through } else { 0 })
}

/// Keeps the index while this store lives: waits for the lease, indexes while holding it, and
/// asks again when it is lost or indexing fails.
pub async fn keep_indexing(pool: Pool, config: tokio_postgres::Config, mut head: watch::Receiver<EventId>) {
    loop {
        let lease = match lease::acquire(&config, LEASE).await {
            Ok(lease) => lease,
            Err(error) => {
                tracing::warn!(%error, "cannot ask for the search index's lease; asking again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut lost = lease.lost.clone();
        match index_while_held(&pool, &mut lost, &mut head).await {
            Ok(()) => {}
            Err(StoreError::Closed) => return,
            Err(error) => {
                tracing::error!(%error, "indexing failed; searches scan the unindexed events meanwhile");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        drop(lease);
    }
}

/// A write found `search_state` moved by someone else: resume from what is stored.
struct Overtaken;

async fn index_while_held(
    pool: &Pool,
    lost: &mut watch::Receiver<bool>,
    head: &mut watch::Receiver<EventId>,
) -> Result<(), StoreError> {
    let mut client = pool.get().await.map_err(crate::unreachable)?;
    'resume: loop {
        let mut indexer = Indexer::resume(&mut client).await?;
        loop {
            if *lost.borrow() {
                return Ok(());
            }
            let newest = read_head(&client).await?.get();
            if indexer.scanned < newest {
                let writes = indexer.take_batch(&client, newest).await?;
                summarize_times(&mut client).await;
                for write in writes {
                    if indexer.persist(&mut client, write).await?.is_err() {
                        continue 'resume;
                    }
                }
                continue;
            }
            let heard = tokio::select! {
                changed = head.changed() => changed.map(|()| true).map_err(|_| StoreError::Closed)?,
                _ = lost.changed() => true,
                () = tokio::time::sleep(IDLE_FLUSH) => false,
            };
            if !heard && let Some(write) = indexer.builder.flush(indexer.persisted) {
                summarize_times(&mut client).await;
                if indexer.persist(&mut client, write).await?.is_err() {
                    continue 'resume;
                }
            }
        }
    }
}

/// Summarizes the new page ranges of the time index (`events_by_time`, BRIN), which inserts
/// leave unsummarized until a vacuum: an unsummarized range matches every time. Searches find
/// their window by the chunks' zone maps instead (`search/`); what reads the index is a purge
/// finding its cutoff (`retention.rs`) and any query by time an operator runs. A lock held by a
/// vacuum is not waited for (the next batch tries again), and a failure only costs speed, so it
/// is logged, not raised.
async fn summarize_times(client: &mut Object) {
    let summarize = async {
        let tx = client.transaction().await?;
        tx.batch_execute("SET LOCAL lock_timeout = '100ms'").await?;
        tx.execute(
            "SELECT brin_summarize_new_values(inhrelid) FROM pg_inherits \
             WHERE inhparent = 'events_by_time'::regclass",
            &[],
        )
        .await?;
        tx.commit().await
    };
    match summarize.await {
        Ok(()) => {}
        Err(error) if error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
            tracing::debug!(%error, "the time index is busy; summarizing it with the next batch");
        }
        Err(error) => tracing::warn!(%error, "cannot summarize the time index; queries by time read more"),
    }
}

struct Indexer {
    builder: Builder,
    /// The last id written to `search_state`.
    persisted: i64,
    /// The last id read, whether or not an event has it (the ids of a purged trail, or of one
    /// imported after a marker, start past 1).
    scanned: i64,
}

impl Indexer {
    /// Resumes from what the index holds, as SQLite's indexer does: an index of another version
    /// is emptied and rebuilt; an index ahead of the events is discarded; a half-filled mini,
    /// and minis of a big chunk never written, are dropped and redone; the open big chunk's
    /// complete minis are reloaded.
    async fn resume(client: &mut Object) -> Result<Indexer, StoreError> {
        let tx = client.transaction().await.map_err(pg)?;
        let row =
            tx.query_one("SELECT indexed_through, version FROM search_state FOR UPDATE", &[]).await.map_err(pg)?;
        let (mut through, version): (i64, i64) = (row.get(0), row.get(1));
        let head = read_head(&tx).await?.get();
        if version != VERSION || through > head {
            if version != VERSION {
                tracing::info!(from = version, to = VERSION, "the search index is outdated; rebuilding it");
            }
            tx.batch_execute("DELETE FROM search_postings; DELETE FROM search_chunks;").await.map_err(pg)?;
            through = 0;
        }
        let stale: Option<i64> = tx
            .query_one(
                "SELECT min(number) FROM search_chunks WHERE level = 0 AND number < $1",
                &[&block_index::open_big_first_mini(through)],
            )
            .await
            .map_err(pg)?
            .get(0);
        let redo_from = block_index::redo_from(through, stale);
        if redo_from < through {
            let first_mini = redo_from / MINI_EVENTS;
            for table in ["search_postings", "search_chunks"] {
                let sql = format!("DELETE FROM {table} WHERE level = 0 AND number >= $1");
                tx.execute(&sql, &[&first_mini]).await.map_err(pg)?;
            }
            through = redo_from;
        }
        tx.execute("UPDATE search_state SET indexed_through = $1, version = $2", &[&through, &VERSION])
            .await
            .map_err(pg)?;
        let mut builder = Builder::starting_after(through);
        for row in tx.query("SELECT number, key, bits FROM search_postings WHERE level = 0", &[]).await.map_err(pg)? {
            let key: i64 = row.get(1);
            builder.reload_mini(row.get(0), key as u32, row.get(2));
        }
        for row in tx
            .query("SELECT first_id, last_id, min_time, max_time FROM search_chunks WHERE level = 0", &[])
            .await
            .map_err(pg)?
        {
            builder.reload_zone(Zone {
                first_id: row.get(0),
                last_id: row.get(1),
                min_time: row.get(2),
                max_time: row.get(3),
            });
        }
        tx.commit().await.map_err(pg)?;
        Ok(Indexer { builder, persisted: through, scanned: through })
    }

    /// Takes the next committed events (up to `newest`) in; answers the writes of the minis
    /// they closed.
    ///
    /// It reads a window of ids, not the first rows of everything unindexed (`LIMIT`): on a
    /// fast-growing table whose statistics lag, PostgreSQL fetched and sorted, on disk, every
    /// unindexed event for each batch (a node catching up on 1,000,000 events took 72 s; by
    /// windows, 9.4 s). The window's rows are few; they are put in order here.
    async fn take_batch(&mut self, client: &Object, newest: i64) -> Result<Vec<Write>, StoreError> {
        let until = newest.min(self.scanned + BATCH);
        let mut rows = client
            .query(
                "SELECT id, time, message, name, action FROM events WHERE id > $1 AND id <= $2",
                &[&self.scanned, &until],
            )
            .await
            .map_err(pg)?;
        self.scanned = if rows.is_empty() { self.next_after_gap(client, until, newest).await? } else { until };
        rows.sort_unstable_by_key(|row| row.get::<_, i64>(0));
        let mut writes = Vec::new();
        for row in &rows {
            writes.extend(self.builder.add(row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)));
        }
        Ok(writes)
    }

    /// Where reading goes on after an empty window: just before the next event, or `newest`
    /// when none is committed past the window (ids commit in order: none will be).
    async fn next_after_gap(&self, client: &Object, until: i64, newest: i64) -> Result<i64, StoreError> {
        let next: Option<i64> = client
            .query_one("SELECT min(id) FROM events WHERE id > $1 AND id <= $2", &[&until, &newest])
            .await
            .map_err(pg)?
            .get(0);
        Ok(next.map_or(newest, |id| id - 1))
    }

    /// Writes a [`Write`] in one transaction with how far the index now reaches, provided
    /// `search_state` still holds what this node last wrote.
    async fn persist(&mut self, client: &mut Object, write: Write) -> Result<Result<(), Overtaken>, StoreError> {
        let tx = client.transaction().await.map_err(pg)?;
        let moved = tx
            .execute(
                "UPDATE search_state SET indexed_through = $1 WHERE indexed_through = $2 AND version = $3",
                &[&write.through, &self.persisted, &VERSION],
            )
            .await
            .map_err(pg)?;
        if moved == 0 {
            tracing::warn!("another node moved the search index; resuming from what it wrote");
            return Ok(Err(Overtaken));
        }
        for chunk in &write.chunks {
            let level = chunk.level as i16;
            tx.execute("DELETE FROM search_postings WHERE level = $1 AND number = $2", &[&level, &chunk.number])
                .await
                .map_err(pg)?;
            let keys: Vec<i64> = chunk.postings.iter().map(|(key, _)| i64::from(*key)).collect();
            let bits: Vec<&[u8]> = chunk.postings.iter().map(|(_, bits)| bits.as_slice()).collect();
            tx.execute(
                "INSERT INTO search_postings (level, number, key, bits) \
                 SELECT $1, $2, key, bits FROM unnest($3::bigint[], $4::bytea[]) AS p(key, bits)",
                &[&level, &chunk.number, &keys, &bits],
            )
            .await
            .map_err(pg)?;
            let zone = chunk.zone;
            tx.execute(
                "INSERT INTO search_chunks (level, number, first_id, last_id, min_time, max_time) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (level, number) DO UPDATE SET \
                 first_id = excluded.first_id, last_id = excluded.last_id, \
                 min_time = excluded.min_time, max_time = excluded.max_time",
                &[&level, &chunk.number, &zone.first_id, &zone.last_id, &zone.min_time, &zone.max_time],
            )
            .await
            .map_err(pg)?;
        }
        if let Some(minis) = &write.merged_minis {
            for table in ["search_postings", "search_chunks"] {
                let sql = format!("DELETE FROM {table} WHERE level = 0 AND number BETWEEN $1 AND $2");
                tx.execute(&sql, &[minis.start(), minis.end()]).await.map_err(pg)?;
            }
        }
        tx.commit().await.map_err(pg)?;
        self.persisted = write.through;
        Ok(Ok(()))
    }
}

/// Waits until the index reaches the head as it is now (`catch_up_indexes`), whichever node
/// indexes.
pub async fn catch_up(pool: &Pool) -> Result<(), StoreError> {
    let client = pool.get().await.map_err(crate::unreachable)?;
    let head = read_head(&client).await?.get();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while indexed_through(&client).await? < head {
        if tokio::time::Instant::now() > deadline {
            return Err(StoreError::backend("the search index did not catch up within 120 s; is a node indexing?"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
