//! The trigram block index: a derived database (`trail.search.db`) kept by its own thread.
//!
//! Why not FTS5: measured on this machine, an FTS5 trigram table (contentless, detail=none)
//! indexes ~300-byte messages at 55-68k rows/s on one core, so it cannot keep up with 100k
//! events/s, and inside the event database it would hold the one write lock. This index costs a
//! few microseconds an event (keys folded from bytes, set bits in a hash map, rows appended in key
//! order), lives in its own file with its own lock, and runs beside the writer on the other core.
//!
//! It trades precision for cost: it proposes blocks of 16 events, and the exact matcher scans
//! them. Each chunk also records its id and time range, so month and day filters skip chunks.
//! Events the index has not reached yet are scanned directly (see `search.rs`).

use crate::blocks::{self, BIG_WORDS, BLOCKS_PER_MINI, MINI_EVENTS, MINI_WORDS, MINIS_PER_BIG};
use crate::progress::Progress;
use rusqlite::{Connection, OptionalExtension, params};
use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::Duration;
use tokio::sync::oneshot;
use trail_store::StoreError;

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

/// The ids and times a chunk covers.
#[derive(Clone, Copy, Debug)]
struct Zone {
    first_id: i64,
    last_id: i64,
    min_time: i64,
    max_time: i64,
}

impl Zone {
    fn of(id: i64, time: i64) -> Zone {
        Zone { first_id: id, last_id: id, min_time: time, max_time: time }
    }

    fn extend(zone: &mut Option<Zone>, other: Zone) {
        *zone = Some(match *zone {
            None => other,
            Some(z) => Zone {
                first_id: z.first_id.min(other.first_id),
                last_id: z.last_id.max(other.last_id),
                min_time: z.min_time.min(other.min_time),
                max_time: z.max_time.max(other.max_time),
            },
        });
    }
}

pub fn prepare(index: &Connection) -> rusqlite::Result<()> {
    index.execute_batch(SCHEMA)
}

pub fn indexed_through(index: &Connection) -> rusqlite::Result<i64> {
    index.query_row("SELECT value FROM meta WHERE name = 'indexed_through'", [], |r| r.get(0))
}

pub struct Indexer {
    events: Connection,
    index: Connection,
    progress: Arc<Progress>,
    /// The open mini: each key's bitmap of the mini's blocks.
    mini: FxHashMap<u32, [u64; MINI_WORDS]>,
    mini_number: i64,
    mini_zone: Option<Zone>,
    /// The open big chunk: its complete minis' bitmaps, side by side.
    big: FxHashMap<u32, [u64; BIG_WORDS]>,
    big_zone: Option<Zone>,
    /// The last id taken into memory, and the last one persisted.
    through: i64,
    persisted: i64,
}

impl Indexer {
    /// Resumes from what the index holds (see [`Indexer::resume`]).
    pub fn new(events: Connection, index: Connection, progress: Arc<Progress>) -> rusqlite::Result<Indexer> {
        prepare(&index)?;
        let mut indexer = Indexer {
            events,
            index,
            progress,
            mini: FxHashMap::default(),
            mini_number: 0,
            mini_zone: None,
            big: FxHashMap::default(),
            big_zone: None,
            through: 0,
            persisted: 0,
        };
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
        let open_big = blocks::mini_of(through + 1) / MINIS_PER_BIG;
        let stale: Option<i64> = tx.query_row(
            "SELECT min(number) FROM chunks WHERE level = 0 AND number < ?1",
            [open_big * MINIS_PER_BIG],
            |r| r.get(0),
        )?;
        // Redo from the start of the oldest unmerged big chunk, or of a half-filled mini.
        let redo_from = match stale {
            Some(mini) => (mini / MINIS_PER_BIG) * MINIS_PER_BIG * MINI_EVENTS,
            None => (through / MINI_EVENTS) * MINI_EVENTS,
        };
        if redo_from < through {
            let first_mini = redo_from / MINI_EVENTS;
            tx.execute("DELETE FROM postings WHERE level = 0 AND number >= ?1", [first_mini])?;
            tx.execute("DELETE FROM chunks WHERE level = 0 AND number >= ?1", [first_mini])?;
            through = redo_from;
        }
        tx.execute("UPDATE meta SET value = ?1 WHERE name = 'indexed_through'", [through])?;
        tx.commit()?;
        self.mini.clear();
        self.mini_number = through / MINI_EVENTS;
        self.mini_zone = None;
        self.big.clear();
        self.big_zone = None;
        self.through = through;
        self.reload_open_big()?;
        self.mark_persisted(through);
        Ok(())
    }

    fn reload_open_big(&mut self) -> rusqlite::Result<()> {
        let mut postings = self.index.prepare("SELECT number, key, bits FROM postings WHERE level = 0")?;
        let mut rows = postings.query([])?;
        let mut words = Vec::new();
        while let Some(row) = rows.next()? {
            let number: i64 = row.get(0)?;
            let key: u32 = row.get(1)?;
            if blocks::decode(row.get_ref(2)?.as_blob()?, MINI_WORDS, &mut words).is_some() {
                let slot = (number % MINIS_PER_BIG) as usize * MINI_WORDS;
                let big = self.big.entry(key).or_insert([0; BIG_WORDS]);
                for (target, word) in big[slot..slot + MINI_WORDS].iter_mut().zip(&words) {
                    *target |= word;
                }
            }
        }
        let mut zones =
            self.index.prepare("SELECT first_id, last_id, min_time, max_time FROM chunks WHERE level = 0")?;
        let mut rows = zones.query([])?;
        while let Some(row) = rows.next()? {
            let zone =
                Zone { first_id: row.get(0)?, last_id: row.get(1)?, min_time: row.get(2)?, max_time: row.get(3)? };
            Zone::extend(&mut self.big_zone, zone);
        }
        Ok(())
    }

    pub fn run(mut self, messages: Receiver<IndexMessage>) {
        let mut waiting: Vec<oneshot::Sender<Result<(), StoreError>>> = Vec::new();
        loop {
            let head = self.progress.head.load(Ordering::SeqCst);
            if self.through < head {
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
                    if self.through > self.persisted
                        && let Err(error) = self.flush_partial()
                    {
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

    /// Takes the next batch of committed events into the open mini, closing minis as they fill.
    fn index_batch(&mut self) -> rusqlite::Result<()> {
        let mut statement =
            self.events.prepare_cached("SELECT id, time, message FROM events WHERE id > ?1 ORDER BY id LIMIT ?2")?;
        let mut rows = statement.query(params![self.through, BATCH])?;
        let mut closed = Vec::new();
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let time: i64 = row.get(1)?;
            let mini = blocks::mini_of(id);
            if mini != self.mini_number {
                let number = std::mem::replace(&mut self.mini_number, mini);
                closed.push((number, std::mem::take(&mut self.mini), self.mini_zone.take()));
            }
            let block = (blocks::block_of(id) % BLOCKS_PER_MINI) as usize;
            let (word, bit) = (block / 64, 1u64 << (block % 64));
            trail_core::trigram::for_each_key(row.get_ref(2)?.as_str()?, |key| {
                self.mini.entry(key).or_insert([0; MINI_WORDS])[word] |= bit;
            });
            Zone::extend(&mut self.mini_zone, Zone::of(id, time));
            self.through = id;
        }
        drop(rows);
        drop(statement);
        for (number, keys, zone) in closed {
            self.close_mini(number, keys, zone)?;
        }
        Ok(())
    }

    /// Persists a complete mini, folds it into the open big chunk, and writes the big chunk when
    /// its sixteenth mini closes.
    fn close_mini(
        &mut self,
        number: i64,
        keys: FxHashMap<u32, [u64; MINI_WORDS]>,
        zone: Option<Zone>,
    ) -> rusqlite::Result<()> {
        let Some(zone) = zone else { return Ok(()) };
        let tx = self.index.transaction()?;
        write_chunk(&tx, 0, number, keys.iter().map(|(k, w)| (*k, w.to_vec())), zone)?;
        let slot = (number % MINIS_PER_BIG) as usize * MINI_WORDS;
        for (key, words) in &keys {
            let big = self.big.entry(*key).or_insert([0; BIG_WORDS]);
            for (target, word) in big[slot..slot + MINI_WORDS].iter_mut().zip(words) {
                *target |= word;
            }
        }
        Zone::extend(&mut self.big_zone, zone);
        if number % MINIS_PER_BIG == MINIS_PER_BIG - 1 {
            let big = number / MINIS_PER_BIG;
            let big_zone = self.big_zone.take().unwrap_or(zone);
            write_chunk(&tx, 1, big, self.big.drain().map(|(k, w)| (k, w.to_vec())), big_zone)?;
            let minis = (big * MINIS_PER_BIG, big * MINIS_PER_BIG + MINIS_PER_BIG - 1);
            tx.execute("DELETE FROM postings WHERE level = 0 AND number BETWEEN ?1 AND ?2", params![minis.0, minis.1])?;
            tx.execute("DELETE FROM chunks WHERE level = 0 AND number BETWEEN ?1 AND ?2", params![minis.0, minis.1])?;
        }
        tx.execute("UPDATE meta SET value = ?1 WHERE name = 'indexed_through'", [zone.last_id])?;
        tx.commit()?;
        self.mark_persisted(zone.last_id);
        Ok(())
    }

    /// Persists the open, half-filled mini so that everything taken in is searchable through the
    /// index; it is rewritten when it fills.
    fn flush_partial(&mut self) -> rusqlite::Result<()> {
        let Some(zone) = self.mini_zone else { return Ok(()) };
        if self.through == self.persisted {
            return Ok(());
        }
        if blocks::mini_of(self.through + 1) != self.mini_number {
            // The mini is full: close it, so a sixteenth mini also writes its big chunk.
            let number = self.mini_number;
            self.mini_number += 1;
            let keys = std::mem::take(&mut self.mini);
            let zone = self.mini_zone.take();
            return self.close_mini(number, keys, zone);
        }
        let tx = self.index.transaction()?;
        write_chunk(&tx, 0, self.mini_number, self.mini.iter().map(|(k, w)| (*k, w.to_vec())), zone)?;
        tx.execute("UPDATE meta SET value = ?1 WHERE name = 'indexed_through'", [self.through])?;
        tx.commit()?;
        self.mark_persisted(self.through);
        Ok(())
    }

    fn mark_persisted(&mut self, through: i64) {
        self.persisted = through;
        self.progress.indexed_through.store(through, Ordering::SeqCst);
    }
}

/// Replaces a chunk's rows: its zone, and one posting per key, appended in key order.
fn write_chunk(
    tx: &rusqlite::Transaction<'_>,
    level: i64,
    number: i64,
    keys: impl Iterator<Item = (u32, Vec<u64>)>,
    zone: Zone,
) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM postings WHERE level = ?1 AND number = ?2", params![level, number])?;
    let mut sorted: Vec<(u32, Vec<u64>)> = keys.collect();
    sorted.sort_unstable_by_key(|(key, _)| *key);
    let mut insert = tx.prepare_cached("INSERT INTO postings(level, number, key, bits) VALUES (?1, ?2, ?3, ?4)")?;
    for (key, words) in sorted {
        insert.execute(params![level, number, key, blocks::encode(&words)])?;
    }
    tx.execute(
        "INSERT OR REPLACE INTO chunks(level, number, first_id, last_id, min_time, max_time) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![level, number, zone.first_id, zone.last_id, zone.min_time, zone.max_time],
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

/// One key's posting in a chunk, decoded into `words`: `None` when the chunk lacks the key,
/// `Some(false)` when the stored bitmap is damaged.
fn posting(conn: &Connection, chunk: &Chunk, key: u32, words: &mut Vec<u64>) -> rusqlite::Result<Option<bool>> {
    let blob: Option<Vec<u8>> = conn
        .prepare_cached("SELECT bits FROM idx.postings WHERE level = ?1 AND number = ?2 AND key = ?3")?
        .query_row(params![chunk.level, chunk.number, key], |r| r.get(0))
        .optional()?;
    Ok(blob.map(|blob| blocks::decode(&blob, blocks::word_count(chunk.level), words).is_some()))
}

/// The bitmap of a chunk's blocks holding every key, or `None` when some key is absent.
pub fn candidate_blocks(conn: &Connection, chunk: &Chunk, keys: &[u32]) -> rusqlite::Result<Option<Vec<u64>>> {
    let count = blocks::word_count(chunk.level);
    let mut all = vec![u64::MAX; count];
    let mut words = Vec::with_capacity(count);
    for key in keys {
        match posting(conn, chunk, *key, &mut words)? {
            None => return Ok(None),
            // A damaged posting must not hide events: treat every block as a candidate.
            Some(false) => continue,
            Some(true) => {}
        }
        for (a, w) in all.iter_mut().zip(&words) {
            *a &= w;
        }
        if all.iter().all(|w| *w == 0) {
            return Ok(None);
        }
    }
    Ok(Some(all))
}

/// How far the index reaches, read through a reader's `idx` schema.
pub fn indexed_through_attached(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT value FROM idx.meta WHERE name = 'indexed_through'", [], |r| r.get(0))
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
    let mut words = Vec::new();
    let mut weighed = Vec::with_capacity(keys.len());
    for key in keys {
        let blocks = match posting(conn, sample, key, &mut words)? {
            Some(true) => words.iter().map(|w| w.count_ones()).sum(),
            Some(false) => u32::MAX,
            None => 0,
        };
        weighed.push((blocks, key));
    }
    weighed.sort_unstable();
    Ok(weighed.into_iter().take(max).map(|(_, key)| key).collect())
}
