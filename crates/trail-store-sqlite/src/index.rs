//! The trigram block index: a derived database (`trail.search.db`) kept by its own thread.
//!
//! Why not FTS5: measured on this machine, an FTS5 trigram table (contentless, detail=none)
//! indexes ~300-byte messages at 55-68k rows/s on one core, so it cannot keep up with 100k
//! events/s, and inside the event database it would hold the one write lock. This index costs a
//! few microseconds an event (keys folded from bytes, set bits in a hash map, rows appended in key
//! order), lives in its own file with its own lock, and runs beside the writer on the other core.
//!
//! It keys the trigrams of each event's message, name and action, each tagged with its field
//! (see [`trail_core::trigram::tagged`]), so every text filter finds its candidates the same way.
//! The index's shape and bookkeeping are [`trail_store::block_index`]'s, shared by the backends;
//! this module keeps its rows in SQLite.
//!
//! It trades precision for cost: it proposes blocks of 16 events, and the exact matcher scans
//! them. Each chunk also records its id and time range, so month and day filters skip chunks.
//! Events the index has not reached yet are scanned directly (see `search.rs`).

use crate::progress::Progress;
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::Duration;
use tokio::sync::oneshot;
use trail_store::StoreError;
use trail_store::block_index::{self, Builder, Candidates, ChunkRows, VERSION, Write, Zone, geometry::MINI_EVENTS};

/// Events read per batch.
const BATCH: i64 = 8192;
/// How long the index waits, caught up, before persisting a half-filled chunk.
const IDLE_FLUSH: Duration = Duration::from_millis(500);

pub enum IndexMessage {
    /// New events were committed.
    Wake,
    /// Answer once every committed event is in the index.
    CatchUp(oneshot::Sender<Result<(), StoreError>>),
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS chunks (
    level INTEGER NOT NULL, number INTEGER NOT NULL,
    first_id INTEGER NOT NULL, last_id INTEGER NOT NULL,
    min_time INTEGER NOT NULL, max_time INTEGER NOT NULL,
    PRIMARY KEY (level, number)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS postings (
    level INTEGER NOT NULL, number INTEGER NOT NULL, key INTEGER NOT NULL, bits BLOB NOT NULL,
    PRIMARY KEY (level, number, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta(name, value) VALUES ('indexed_through', 0);
"#;

pub fn prepare(index: &Connection) -> rusqlite::Result<()> {
    index.execute_batch(SCHEMA)
}

/// Empties an index of another [`VERSION`](block_index::VERSION) (an index from before versions counts as 1), so the
/// indexer rebuilds it; searches meanwhile scan the events directly.
fn rebuild_if_outdated(index: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 =
        index.query_row("SELECT coalesce((SELECT value FROM meta WHERE name = 'version'), 1)", [], |r| r.get(0))?;
    if version == VERSION {
        return Ok(());
    }
    tracing::info!(from = version, to = VERSION, "the search index is outdated; rebuilding it from the events");
    let tx = index.transaction()?;
    tx.execute_batch(
        "DELETE FROM postings; DELETE FROM chunks; UPDATE meta SET value = 0 WHERE name = 'indexed_through';",
    )?;
    tx.execute("INSERT OR REPLACE INTO meta(name, value) VALUES ('version', ?1)", [VERSION])?;
    tx.commit()
}

pub fn indexed_through(index: &Connection) -> rusqlite::Result<i64> {
    index.query_row("SELECT value FROM meta WHERE name = 'indexed_through'", [], |r| r.get(0))
}

pub struct Indexer {
    events: Connection,
    index: Connection,
    progress: Arc<Progress>,
    builder: Builder,
    /// The last id persisted.
    persisted: i64,
}

impl Indexer {
    /// Resumes from what the index holds (see [`Indexer::resume`]).
    pub fn new(events: Connection, mut index: Connection, progress: Arc<Progress>) -> rusqlite::Result<Indexer> {
        prepare(&index)?;
        rebuild_if_outdated(&mut index)?;
        let mut indexer = Indexer { events, index, progress, builder: Builder::starting_after(0), persisted: 0 };
        indexer.resume()?;
        Ok(indexer)
    }

    /// Rebuilds the in-memory state from what the index file holds: at start, and after any
    /// failure, so memory never runs ahead of the file. Complete minis of the open big chunk are
    /// reloaded; a half-filled mini is dropped and redone; minis left from a big chunk that was
    /// never written are dropped and that chunk is redone; an index ahead of the events (a
    /// restored event database) is discarded.
    fn resume(&mut self) -> rusqlite::Result<()> {
        let head: i64 = self.events.query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))?;
        let mut through = indexed_through(&self.index)?;
        let tx = self.index.transaction()?;
        if through > head {
            tx.execute_batch("DELETE FROM postings; DELETE FROM chunks;")?;
            through = 0;
        }
        let stale: Option<i64> = tx.query_row(
            "SELECT min(number) FROM chunks WHERE level = 0 AND number < ?1",
            [block_index::open_big_first_mini(through)],
            |r| r.get(0),
        )?;
        let redo_from = block_index::redo_from(through, stale);
        if redo_from < through {
            let first_mini = redo_from / MINI_EVENTS;
            tx.execute("DELETE FROM postings WHERE level = 0 AND number >= ?1", [first_mini])?;
            tx.execute("DELETE FROM chunks WHERE level = 0 AND number >= ?1", [first_mini])?;
            through = redo_from;
        }
        tx.execute("UPDATE meta SET value = ?1 WHERE name = 'indexed_through'", [through])?;
        tx.commit()?;
        self.builder = Builder::starting_after(through);
        self.reload_open_big()?;
        self.mark_persisted(through);
        Ok(())
    }

    fn reload_open_big(&mut self) -> rusqlite::Result<()> {
        let mut postings = self.index.prepare("SELECT number, key, bits FROM postings WHERE level = 0")?;
        let mut rows = postings.query([])?;
        while let Some(row) = rows.next()? {
            self.builder.reload_mini(row.get(0)?, row.get(1)?, row.get_ref(2)?.as_blob()?);
        }
        let mut zones =
            self.index.prepare("SELECT first_id, last_id, min_time, max_time FROM chunks WHERE level = 0")?;
        let mut rows = zones.query([])?;
        while let Some(row) = rows.next()? {
            let zone =
                Zone { first_id: row.get(0)?, last_id: row.get(1)?, min_time: row.get(2)?, max_time: row.get(3)? };
            self.builder.reload_zone(zone);
        }
        Ok(())
    }

    pub fn run(mut self, messages: Receiver<IndexMessage>) {
        let mut waiting: Vec<oneshot::Sender<Result<(), StoreError>>> = Vec::new();
        loop {
            let head = self.progress.head.load(Ordering::SeqCst);
            if self.builder.through() < head {
                if let Err(error) = self.index_batch() {
                    self.fail(&error, &mut waiting);
                }
                // Keep the catch-up requests coming in while working, and stop at shutdown (a
                // restart resumes from what was persisted).
                loop {
                    match messages.try_recv() {
                        Ok(IndexMessage::CatchUp(reply)) => waiting.push(reply),
                        Ok(IndexMessage::Wake) => {}
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => return,
                    }
                }
                continue;
            }
            if !waiting.is_empty() {
                let outcome = self.flush_partial().map_err(|e| e.to_string());
                for reply in waiting.drain(..) {
                    let _ = reply.send(outcome.clone().map_err(StoreError::backend));
                }
            }
            match messages.recv_timeout(IDLE_FLUSH) {
                Ok(IndexMessage::Wake) => {}
                Ok(IndexMessage::CatchUp(reply)) => waiting.push(reply),
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(error) = self.flush_partial() {
                        self.fail(&error, &mut waiting);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    fn fail(&mut self, error: &rusqlite::Error, waiting: &mut Vec<oneshot::Sender<Result<(), StoreError>>>) {
        tracing::error!(%error, "indexing failed; searches scan the unindexed events meanwhile");
        for reply in waiting.drain(..) {
            let _ = reply.send(Err(StoreError::backend(error.to_string())));
        }
        std::thread::sleep(Duration::from_secs(1));
        if let Err(error) = self.resume() {
            tracing::error!(%error, "the search index cannot resume; retrying");
        }
    }

    /// Takes the next batch of committed events in, persisting each mini that closes.
    ///
    /// The batch is read whole before it is keyed, so the read ends first: this thread runs
    /// below the writer, and while a busy machine left it waiting inside a read, that read kept
    /// the writer from having its WAL begin again (see `checkpointer.rs`).
    fn index_batch(&mut self) -> rusqlite::Result<()> {
        let mut statement = self
            .events
            .prepare_cached("SELECT id, time, message, name, action FROM events WHERE id > ?1 ORDER BY id LIMIT ?2")?;
        let batch: Vec<(i64, i64, String, String, String)> = statement
            .query_map(params![self.builder.through(), BATCH], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        drop(statement);
        let mut writes = Vec::new();
        for (id, time, message, name, action) in &batch {
            writes.extend(self.builder.add(*id, *time, message, name, action));
        }
        for write in writes {
            self.persist(write)?;
        }
        Ok(())
    }

    /// Persists the open, half-filled mini so that everything taken in is searchable through the
    /// index; it is rewritten when it fills.
    fn flush_partial(&mut self) -> rusqlite::Result<()> {
        match self.builder.flush(self.persisted) {
            Some(write) => self.persist(write),
            None => Ok(()),
        }
    }

    /// Writes a [`Write`] in one transaction with how far the index now reaches.
    fn persist(&mut self, write: Write) -> rusqlite::Result<()> {
        let tx = self.index.transaction()?;
        for chunk in &write.chunks {
            write_chunk(&tx, chunk)?;
        }
        if let Some(minis) = &write.merged_minis {
            let (first, last) = (*minis.start(), *minis.end());
            tx.execute("DELETE FROM postings WHERE level = 0 AND number BETWEEN ?1 AND ?2", params![first, last])?;
            tx.execute("DELETE FROM chunks WHERE level = 0 AND number BETWEEN ?1 AND ?2", params![first, last])?;
        }
        tx.execute("UPDATE meta SET value = ?1 WHERE name = 'indexed_through'", [write.through])?;
        tx.commit()?;
        self.mark_persisted(write.through);
        Ok(())
    }

    fn mark_persisted(&mut self, through: i64) {
        self.persisted = through;
        self.progress.indexed_through.store(through, Ordering::SeqCst);
    }
}

/// Replaces a chunk's rows: its zone, and its postings, appended in key order.
fn write_chunk(tx: &rusqlite::Transaction<'_>, chunk: &ChunkRows) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM postings WHERE level = ?1 AND number = ?2", params![chunk.level, chunk.number])?;
    let mut insert = tx.prepare_cached("INSERT INTO postings(level, number, key, bits) VALUES (?1, ?2, ?3, ?4)")?;
    for (key, bits) in &chunk.postings {
        insert.execute(params![chunk.level, chunk.number, key, bits])?;
    }
    let zone = chunk.zone;
    tx.execute(
        "INSERT OR REPLACE INTO chunks(level, number, first_id, last_id, min_time, max_time) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![chunk.level, chunk.number, zone.first_id, zone.last_id, zone.min_time, zone.max_time],
    )?;
    Ok(())
}

/// A chunk as searches see it.
pub struct Chunk {
    pub level: i64,
    pub number: i64,
    pub first_id: i64,
    pub last_id: i64,
    pub min_time: i64,
    pub max_time: i64,
}

/// The index's chunks overlapping `[low, high]`, newest first. Reads the `idx` schema of a
/// reader connection.
pub fn chunks(conn: &Connection, low: i64, high: i64) -> rusqlite::Result<Vec<Chunk>> {
    let mut statement = conn.prepare_cached(
        "SELECT level, number, first_id, last_id, min_time, max_time FROM idx.chunks \
         WHERE last_id >= ?1 AND first_id <= ?2 ORDER BY first_id DESC",
    )?;
    let rows = statement.query_map(params![low, high], |r| {
        Ok(Chunk {
            level: r.get(0)?,
            number: r.get(1)?,
            first_id: r.get(2)?,
            last_id: r.get(3)?,
            min_time: r.get(4)?,
            max_time: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// One key's stored posting in a chunk; `None` when the chunk lacks the key.
fn posting(conn: &Connection, chunk: &Chunk, key: u32) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT bits FROM idx.postings WHERE level = ?1 AND number = ?2 AND key = ?3")?
        .query_row(params![chunk.level, chunk.number, key], |r| r.get(0))
        .optional()
}

/// The bitmap of a chunk's blocks holding every key, or `None` when no block can: the keys are
/// looked up one by one until one rules the chunk out.
pub fn candidate_blocks(conn: &Connection, chunk: &Chunk, keys: &[u32]) -> rusqlite::Result<Option<Vec<u64>>> {
    let mut candidates = Candidates::of(chunk.level);
    for key in keys {
        if !candidates.narrow(posting(conn, chunk, *key)?.as_deref()) {
            return Ok(None);
        }
    }
    Ok(Some(candidates.into_words()))
}

/// How far the index reaches, read through a reader's `idx` schema: nowhere when the index is of
/// another [`VERSION`] (a reader may open a trail before its indexer has rebuilt the index).
pub fn indexed_through_attached(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT CASE WHEN (SELECT value FROM idx.meta WHERE name = 'version') = ?1 \
         THEN (SELECT value FROM idx.meta WHERE name = 'indexed_through') ELSE 0 END",
        [VERSION],
        |r| r.get(0),
    )
}

/// The keys ordered rarest first, judged by how many blocks of a sample chunk (the newest big
/// chunk, else the newest) hold each; at most `max` are kept. Looking rare keys up first lets a
/// chunk without the pattern be skipped on its first lookup, and the keys dropped are the ones
/// that narrow the candidates least.
pub fn rarest_keys(conn: &Connection, chunks: &[Chunk], mut keys: Vec<u32>, max: usize) -> rusqlite::Result<Vec<u32>> {
    let Some(sample) = chunks.iter().find(|c| c.level == 1).or(chunks.first()) else {
        keys.truncate(max);
        return Ok(keys);
    };
    let mut weighed = Vec::with_capacity(keys.len());
    for key in keys {
        weighed.push((block_index::weight(sample.level, posting(conn, sample, key)?.as_deref()), key));
    }
    weighed.sort_unstable();
    Ok(weighed.into_iter().take(max).map(|(_, key)| key).collect())
}
