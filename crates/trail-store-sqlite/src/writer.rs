//! The single writer: group commit, the hash chain, and the trigram indexer.
//!
//! Every append goes through one thread that owns the only write connection. It takes every
//! request waiting in its queue, writes them in one transaction (each request under its own
//! savepoint, so a batch is stored whole or not at all) and commits once, with
//! `synchronous=FULL`: concurrent requests share one fsync. Replies go out only after the
//! commit returns, so an acknowledged event is durable (S2).
//!
//! When the queue is empty, or the index lags by more than a chunk, the same thread feeds the
//! trigram index in large batches. That keeps index maintenance off the commit path (a trigger
//! would cut ingest roughly fiftyfold) and avoids a second writer competing for the lock.

use crate::rows::outcome_code;
use crate::schema::EVENT_COLUMNS;
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::sync::{mpsc, oneshot};
use trail_core::chain::{self, Hash};
use trail_core::pattern::fold;
use trail_core::{EventBody, EventId, time};
use trail_store::StoreError;

/// Most events written in one group commit; the rest wait for the next.
const MAX_GROUP_EVENTS: usize = 20_000;
/// Rows indexed per indexing transaction.
const INDEX_CHUNK: i64 = 20_000;

/// Where the writer answers an append: the ids once durable, or why nothing was stored.
pub type AppendReply = oneshot::Sender<Result<Vec<EventId>, StoreError>>;

pub enum Command {
    Append { events: Vec<EventBody>, reply: AppendReply },
    CatchUpIndexes { reply: oneshot::Sender<Result<(), StoreError>> },
}

/// Positions the writer publishes for readers and stats.
#[derive(Default)]
pub struct Progress {
    pub head: AtomicI64,
    pub indexed_through: AtomicI64,
}

pub struct Writer {
    conn: Connection,
    last_id: EventId,
    last_hash: Hash,
    progress: Arc<Progress>,
}

fn backend(error: rusqlite::Error) -> StoreError {
    StoreError::Backend(error.to_string())
}

impl Writer {
    pub fn new(conn: Connection, progress: Arc<Progress>) -> Result<Writer, StoreError> {
        let head: Option<(EventId, Vec<u8>)> = conn
            .query_row("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(backend)?;
        let (last_id, last_hash) = match head {
            Some((id, hash)) => {
                (id, hash.try_into().map_err(|_| StoreError::Corrupt(format!("event {id} has a malformed hash")))?)
            }
            None => (0, chain::GENESIS),
        };
        let indexed: i64 = conn
            .query_row("SELECT value FROM meta WHERE key = 'indexed_through'", [], |r| r.get(0))
            .map_err(backend)?;
        progress.head.store(last_id, Ordering::SeqCst);
        progress.indexed_through.store(indexed, Ordering::SeqCst);
        Ok(Writer { conn, last_id, last_hash, progress })
    }

    fn index_lag(&self) -> i64 {
        self.last_id - self.progress.indexed_through.load(Ordering::SeqCst)
    }

    /// Runs until every sender is gone.
    pub fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut waiting_for_index: Vec<oneshot::Sender<Result<(), StoreError>>> = Vec::new();
        loop {
            let first = if self.index_lag() > 0 {
                match commands.try_recv() {
                    Ok(command) => command,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        self.index_and_report(&mut waiting_for_index);
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                }
            } else {
                for reply in waiting_for_index.drain(..) {
                    let _ = reply.send(Ok(()));
                }
                match commands.blocking_recv() {
                    Some(command) => command,
                    None => break,
                }
            };
            let mut appends = Vec::new();
            let mut queued_events = 0;
            let mut next = Some(first);
            while let Some(command) = next.take() {
                match command {
                    Command::Append { events, reply } => {
                        queued_events += events.len();
                        appends.push((events, reply));
                    }
                    Command::CatchUpIndexes { reply } => waiting_for_index.push(reply),
                }
                if queued_events < MAX_GROUP_EVENTS {
                    next = commands.try_recv().ok();
                }
            }
            if !appends.is_empty() {
                self.group_commit(appends);
            }
            if self.index_lag() >= INDEX_CHUNK {
                self.index_and_report(&mut waiting_for_index);
            }
        }
    }

    fn index_and_report(&mut self, waiting: &mut Vec<oneshot::Sender<Result<(), StoreError>>>) {
        if let Err(error) = self.index_chunk() {
            tracing::error!(%error, "indexing failed; searches scan the unindexed events meanwhile");
            for reply in waiting.drain(..) {
                let _ = reply.send(Err(StoreError::Backend(error.to_string())));
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }

    /// Writes every waiting request in one transaction and answers each after the commit.
    fn group_commit(&mut self, appends: Vec<(Vec<EventBody>, AppendReply)>) {
        let start = (self.last_id, self.last_hash);
        let mut results = Vec::with_capacity(appends.len());
        let outcome = (|| -> rusqlite::Result<()> {
            self.conn.pragma_update(None, "synchronous", "FULL")?;
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            for (events, _) in &appends {
                results.push(self.append_one(events));
            }
            self.conn.execute_batch("COMMIT")
        })();
        match outcome {
            Ok(()) => {
                self.progress.head.store(self.last_id, Ordering::SeqCst);
                metrics::counter!("trail_events_stored_total")
                    .increment(results.iter().flatten().map(|ids| ids.len() as u64).sum());
                for ((_, reply), result) in appends.into_iter().zip(results) {
                    let _ = reply.send(result.map_err(backend));
                }
            }
            Err(error) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                (self.last_id, self.last_hash) = start;
                tracing::error!(%error, "group commit failed; nothing of it was stored");
                for (_, reply) in appends {
                    let _ = reply.send(Err(StoreError::Backend(error.to_string())));
                }
            }
        }
    }

    /// One request under a savepoint: stored whole, or rolled back whole with the chain
    /// position restored.
    fn append_one(&mut self, events: &[EventBody]) -> rusqlite::Result<Vec<EventId>> {
        let start = (self.last_id, self.last_hash);
        self.conn.execute_batch("SAVEPOINT request")?;
        match self.insert_events(events) {
            Ok(ids) => {
                self.conn.execute_batch("RELEASE request")?;
                Ok(ids)
            }
            Err(error) => {
                self.conn.execute_batch("ROLLBACK TO request; RELEASE request")?;
                (self.last_id, self.last_hash) = start;
                Err(error)
            }
        }
    }

    fn insert_events(&mut self, events: &[EventBody]) -> rusqlite::Result<Vec<EventId>> {
        let mut insert = self.conn.prepare_cached(&format!(
            "INSERT INTO events ({EVENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
        ))?;
        let mut remember_user = self.conn.prepare_cached("INSERT OR IGNORE INTO known_users(user) VALUES (?1)")?;
        let mut ids = Vec::with_capacity(events.len());
        let mut previous_user: Option<&str> = None;
        for body in events {
            let id = self.last_id + 1;
            let hash = chain::link(&self.last_hash, id, body);
            let attributes = serde_json::to_string(&body.attributes)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
            let change = body
                .change
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
            insert.execute(params![
                id,
                time::to_micros(body.time),
                body.user,
                body.client,
                body.process,
                body.kind,
                body.action,
                body.name,
                body.severity.code(),
                outcome_code(body.outcome),
                body.message,
                attributes,
                body.request_id,
                body.session_id,
                body.job_id,
                body.parent_id,
                change,
                &hash[..],
            ])?;
            if previous_user != Some(body.user.as_str()) {
                remember_user.execute([&body.user])?;
                previous_user = Some(&body.user);
            }
            self.last_id = id;
            self.last_hash = hash;
            ids.push(id);
        }
        Ok(ids)
    }

    /// Indexes the next chunk of unindexed events. The index can be rebuilt from the events, so
    /// its transactions skip the fsync (`synchronous=NORMAL`); WAL keeps them atomic.
    fn index_chunk(&mut self) -> rusqlite::Result<()> {
        let from = self.progress.indexed_through.load(Ordering::SeqCst);
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let tx = self.conn.transaction()?;
        let mut through = from;
        {
            let mut select = tx.prepare_cached("SELECT id, message FROM events WHERE id > ?1 ORDER BY id LIMIT ?2")?;
            let mut insert = tx.prepare_cached("INSERT INTO message_trigrams(rowid, text) VALUES (?1, ?2)")?;
            let mut rows = select.query(params![from, INDEX_CHUNK])?;
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(0)?;
                let message = row.get_ref(1)?.as_str()?;
                insert.execute(params![id, fold(message).as_ref()])?;
                through = id;
            }
        }
        tx.execute("UPDATE meta SET value = ?1 WHERE key = 'indexed_through'", [through])?;
        tx.commit()?;
        self.progress.indexed_through.store(through.max(from), Ordering::SeqCst);
        if through == from {
            // Nothing left below the head (ids are never reused, so gaps can only be rolled-back
            // requests): move the mark to the head.
            self.progress.indexed_through.store(self.last_id, Ordering::SeqCst);
            self.conn.execute("UPDATE meta SET value = ?1 WHERE key = 'indexed_through'", [self.last_id])?;
        }
        Ok(())
    }
}
