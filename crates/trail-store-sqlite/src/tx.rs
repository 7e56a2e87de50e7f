//! The writer's connection inside a group's transaction, with the chain's position: the storage
//! every write request goes through (`trail_store::write::storage`), said in SQLite's terms.
//!
//! SQLite's calls block and never wait on anything else, so each `async` method here is ready
//! the first time it is polled; the writer thread polls requests once (see `writer.rs`).

use crate::rows::{self, EventRow};
use crate::{accounts, checkpoints, contents, jobs, tree};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashSet;
use trail_core::chain::{self, Hash};
use trail_core::checkpoint::RecordedCheckpoint;
use trail_core::content::{ContentKind, StoredContent};
use trail_core::identity::AccountWrite;
use trail_core::operations::{Job, JobId, Leaf, LogEntry, NewJob};
use trail_core::tree::{Growth, GrowthMark};
use trail_core::{EventBody, EventId, time};
use trail_store::StoreError;
use trail_store::write::storage::{AccountsTx, CheckpointsTx, ContentsTx, EventsTx, ForwardingTx, JobsTx};

pub(crate) fn backend(error: rusqlite::Error) -> StoreError {
    if error.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
        return StoreError::Full(error.to_string());
    }
    StoreError::caused(error.to_string(), error)
}

/// Where the chain and the tree stand: the last event's id and hash, and the tree's right edge.
#[derive(Clone)]
pub struct Position {
    pub last_id: EventId,
    last_hash: Hash,
    tree: GrowthMark,
}

pub struct WriteTx {
    pub(crate) conn: Connection,
    last_id: EventId,
    last_hash: Hash,
    /// The Merkle tree, its rows written before each commit.
    tree: Growth,
    /// Users already in `known_users`, so most events skip that insert.
    known_users: HashSet<String>,
}

impl WriteTx {
    /// The writer's connection, continuing the chain from its last event (or from the last
    /// purge's marker when every event was purged).
    pub fn open(conn: Connection) -> Result<WriteTx, StoreError> {
        let head: Option<(EventId, Vec<u8>)> = conn
            .query_row("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1", [], |r| {
                Ok((r.get(0).map(EventId::new)?, r.get(1)?))
            })
            .optional()
            .map_err(backend)?;
        let head = match head {
            Some(head) => Some(head),
            None => conn
                .query_row("SELECT through, hash FROM prune_marker WHERE only = 1", [], |r| {
                    Ok((r.get(0).map(EventId::new)?, r.get(1)?))
                })
                .optional()
                .map_err(backend)?,
        };
        let (last_id, last_hash) = match head {
            Some((id, hash)) => {
                (id, hash.try_into().map_err(|_| StoreError::Corrupt(format!("event {id} has a malformed hash")))?)
            }
            None => (EventId::ZERO, chain::GENESIS),
        };
        let tree = tree::growth(&conn, trail_core::tree::size_through(last_id))?;
        Ok(WriteTx { conn, last_id, last_hash, tree, known_users: HashSet::new() })
    }

    pub fn position(&self) -> Position {
        Position { last_id: self.last_id, last_hash: self.last_hash, tree: self.tree.mark() }
    }

    /// Puts the chain and the tree back where they stood before what was rolled back. The users
    /// remembered since may have gone with it, so they are forgotten too.
    pub fn roll_back_to(&mut self, position: Position) {
        (self.last_id, self.last_hash) = (position.last_id, position.last_hash);
        self.tree.roll_back_to(position.tree);
        self.known_users.clear();
    }

    pub fn execute(&self, sql: &str) -> Result<(), StoreError> {
        self.conn.execute_batch(sql).map_err(backend)
    }

    /// Writes the tree's rows grown since the last commit: the writer's last step before it.
    pub fn write_tree(&self) -> Result<(), StoreError> {
        tree::write(&self.conn, self.tree.rows_to_write()).map_err(backend)
    }

    /// The group committed, with the tree's rows.
    pub fn committed(&mut self) {
        self.tree.written();
    }

    /// Whether SQLite has dropped the transaction itself (disk full, an I/O error).
    pub fn transaction_lost(&self) -> bool {
        self.conn.is_autocommit()
    }

    fn insert_events(&mut self, events: &[EventBody]) -> rusqlite::Result<Vec<EventId>> {
        let mut insert = self.conn.prepare_cached(&rows::insert_sql())?;
        let mut remember_user = self.conn.prepare_cached("INSERT OR IGNORE INTO known_users(user) VALUES (?1)")?;
        let mut ids = Vec::with_capacity(events.len());
        for body in events {
            let id = self.last_id + 1;
            let (hash, leaf) = trail_core::tree::link_and_leaf(&self.last_hash, id, body);
            EventRow::of(id, body, hash)?.insert(&mut insert)?;
            if !self.known_users.contains(&body.user) {
                remember_user.execute([&body.user])?;
                // Remembered before the commit; every rollback clears the cache, so a user is
                // never remembered without its row.
                self.known_users.insert(body.user.clone());
            }
            self.tree.push(leaf);
            self.last_id = id;
            self.last_hash = hash;
            ids.push(id);
        }
        Ok(ids)
    }
}

#[async_trait]
impl EventsTx for WriteTx {
    async fn append(&mut self, events: &[EventBody]) -> Result<Vec<EventId>, StoreError> {
        self.insert_events(events).map_err(backend)
    }
}

#[async_trait]
impl ContentsTx for WriteTx {
    async fn latest_content(&mut self, device: &str, kind: ContentKind) -> Result<Option<StoredContent>, StoreError> {
        contents::latest(&self.conn, device, kind).map_err(backend)
    }

    async fn touch_content(&mut self, device: &str, kind: ContentKind, seen_at: i64) -> Result<(), StoreError> {
        contents::touch(&self.conn, device, kind, seen_at).map_err(backend)
    }

    async fn replace_content(
        &mut self,
        device: &str,
        kind: ContentKind,
        hash: &str,
        content: &str,
        changed_at: i64,
    ) -> Result<(), StoreError> {
        contents::replace(&self.conn, device, kind, hash, content, changed_at).map_err(backend)
    }
}

#[async_trait]
impl AccountsTx for WriteTx {
    async fn apply_account(&mut self, write: &AccountWrite) -> Result<bool, StoreError> {
        accounts::apply(&self.conn, write).map_err(backend)
    }
}

#[async_trait]
impl JobsTx for WriteTx {
    async fn insert_job(&mut self, job: &NewJob) -> Result<JobId, StoreError> {
        jobs::insert(&self.conn, job).map_err(backend)
    }

    async fn set_submit_event(&mut self, job: JobId, event: EventId) -> Result<(), StoreError> {
        jobs::set_submit_event(&self.conn, job, event).map_err(backend)
    }

    async fn set_completed_event(&mut self, job: JobId, event: EventId) -> Result<(), StoreError> {
        jobs::set_completed_event(&self.conn, job, event).map_err(backend)
    }

    async fn job(&mut self, id: JobId) -> Result<Option<Job>, StoreError> {
        jobs::get(&self.conn, id).map_err(backend)
    }

    async fn save_leaf(&mut self, job: JobId, leaf: &Leaf) -> Result<(), StoreError> {
        jobs::save_leaf(&self.conn, job, leaf).map_err(backend)
    }

    /// The single writer already orders every append to a job's log.
    async fn job_targets(&mut self, job: JobId) -> Result<Option<Vec<String>>, StoreError> {
        jobs::targets(&self.conn, job).map_err(backend)
    }

    async fn append_log(&mut self, job: JobId, entries: &[LogEntry]) -> Result<Vec<i64>, StoreError> {
        jobs::append_log(&self.conn, job, entries).map_err(backend)
    }
}

#[async_trait]
impl CheckpointsTx for WriteTx {
    async fn insert_checkpoint(&mut self, checkpoint: &RecordedCheckpoint) -> Result<(), StoreError> {
        checkpoints::insert(&self.conn, checkpoint).map_err(backend)
    }
}

#[async_trait]
impl ForwardingTx for WriteTx {
    async fn save_cursor(&mut self, destination: &str, delivered_through: EventId) -> Result<(), StoreError> {
        let now = time::to_micros(jiff::Timestamp::now());
        self.conn
            .prepare_cached(
                "INSERT INTO forward_cursors (destination, delivered_through, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (destination) DO UPDATE SET delivered_through = ?2, updated_at = ?3",
            )
            .and_then(|mut statement| statement.execute(params![destination, delivered_through.get(), now]))
            .map(drop)
            .map_err(backend)
    }
}
