//! This node's writer inside a group's transaction: the chain's position under the sequencer,
//! and the storage every write request goes through (`trail_store::write::storage`), said in
//! PostgreSQL's terms.
//!
//! **The sequencer.** Ids are assigned in one order and must commit in the same order, or a
//! reader paging by id (a snapshot, a forwarding cursor, the chain's verifier) could pass an id
//! whose transaction commits later and never see it. So every transaction that appends, on every
//! node, first locks the one-row chain head (`FOR UPDATE`), then reads and moves it: ids and
//! hashes continue from the last commit, and the lock is released only by the commit.
//!
//! The transaction owns its pooled connection and says `BEGIN`, `SAVEPOINT` and `COMMIT` itself
//! (a borrowed `Transaction` could not travel through the write requests' trait); a connection
//! dropped before its transaction ended is closed, never handed back to the pool mid-way.

use crate::rows::{CopyIn, Numbered, Rows, hash_from};
use crate::schema::{self, month_of};
use crate::{accounts, checkpoints, contents, jobs, pg, tree};
use async_trait::async_trait;
use deadpool_postgres::Object;
use std::collections::{BTreeSet, HashSet};
use trail_core::chain::Hash;
use trail_core::checkpoint::RecordedCheckpoint;
use trail_core::content::{ContentKind, StoredContent};
use trail_core::identity::AccountWrite;
use trail_core::operations::{Job, JobId, Leaf, LogEntry, NewJob};
use trail_core::tree::Growth;
use trail_core::{EventBody, EventId, time};
use trail_store::StoreError;
use trail_store::write::storage::{AccountsTx, CheckpointsTx, ContentsTx, EventsTx, ForwardingTx, JobsTx};

/// The chain's position inside a transaction: moved by each request, put back when one rolls
/// back.
#[derive(Clone)]
pub struct Position {
    pub id: EventId,
    pub hash: Hash,
    month: i32,
    /// Users of the events written so far, for `known_users`.
    users: BTreeSet<String>,
    /// Partitions created in this transaction (kept only if it commits).
    created: BTreeSet<i32>,
    /// The Merkle tree.
    tree: Growth,
}

/// A pooled connection inside a transaction.
struct InTransaction {
    client: Option<Object>,
}

impl std::ops::Deref for InTransaction {
    type Target = Object;

    fn deref(&self) -> &Object {
        self.client.as_ref().expect("held until the transaction ends")
    }
}

impl Drop for InTransaction {
    /// Still here: the transaction did not end (an error on the way, a panic). The connection
    /// is closed rather than pooled with a transaction open.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

/// What a writer carries from one transaction to the next: the partitions known to exist, and
/// the tree as it committed, used again while no other node has appended since.
#[derive(Default)]
pub struct Carried {
    pub partitions: HashSet<i32>,
    pub tree: Option<Growth>,
}

pub struct WriteTx {
    conn: InTransaction,
    /// Where the chain stands, once the sequencer is held.
    position: Option<Position>,
    /// The head when the sequencer was taken.
    start: EventId,
    now_month: i32,
    /// Partitions known to exist before this transaction.
    partitions: HashSet<i32>,
    /// The tree as the previous transaction committed it.
    carried_tree: Option<Growth>,
    /// The node whose writer this is, named in its job announcements (none: announce nothing).
    node: Option<std::sync::Arc<str>>,
}

impl WriteTx {
    /// Opens a transaction on `client`; with `sequenced`, holding the sequencer, so that it may
    /// append events.
    pub async fn begin(
        client: Object,
        carried: Carried,
        sequenced: bool,
        node: Option<std::sync::Arc<str>>,
    ) -> Result<WriteTx, StoreError> {
        let conn = InTransaction { client: Some(client) };
        conn.batch_execute("BEGIN").await.map_err(pg)?;
        let mut tx = WriteTx {
            conn,
            position: None,
            start: EventId::ZERO,
            now_month: month_of(jiff::Timestamp::now()),
            partitions: carried.partitions,
            carried_tree: carried.tree,
            node,
        };
        if sequenced {
            tx.take_sequencer().await?;
        }
        Ok(tx)
    }

    /// Takes the sequencer (the chain head's row lock, held to the commit) and reads where the
    /// chain stands: a writer that waited reads the head its predecessor committed.
    async fn take_sequencer(&mut self) -> Result<(), StoreError> {
        let statement = self
            .conn
            .prepare_cached("SELECT last_id, last_hash, last_month FROM chain_head FOR UPDATE")
            .await
            .map_err(pg)?;
        let head = self.conn.query_one(&statement, &[]).await.map_err(pg)?;
        let id = EventId::new(head.get(0));
        let position = Position {
            id,
            hash: hash_from(head.get(1), "the chain head")?,
            month: head.get(2),
            users: BTreeSet::new(),
            created: BTreeSet::new(),
            tree: self.tree_at(trail_core::tree::size_through(id)).await?,
        };
        self.start = position.id;
        self.position = Some(position);
        Ok(())
    }

    /// Rolls back everything and begins again, holding the sequencer anew: for a failure that
    /// aborted the transaction before anything else was done in it.
    pub async fn start_over(&mut self) -> Result<(), StoreError> {
        self.conn.batch_execute("ROLLBACK").await.map_err(pg)?;
        self.conn.batch_execute("BEGIN").await.map_err(pg)?;
        // What the aborted transaction grew (the tree, partitions) is read again from the
        // database.
        self.position = None;
        self.carried_tree = None;
        self.take_sequencer().await
    }

    /// Where the chain stands; `None` without the sequencer.
    pub fn position(&self) -> Option<Position> {
        self.position.clone()
    }

    /// Puts the chain back where it stood before what was rolled back.
    pub fn roll_back_to(&mut self, position: Option<Position>) {
        self.position = position;
    }

    pub async fn savepoint(&self, name: &str) -> Result<(), StoreError> {
        self.conn.batch_execute(&format!("SAVEPOINT {name}")).await.map_err(pg)
    }

    pub async fn release(&self, name: &str) -> Result<(), StoreError> {
        self.conn.batch_execute(&format!("RELEASE SAVEPOINT {name}")).await.map_err(pg)
    }

    pub async fn roll_back_savepoint(&self, name: &str) -> Result<(), StoreError> {
        self.conn.batch_execute(&format!("ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}")).await.map_err(pg)
    }

    /// The tree at `size` leaves: the one carried over when no other node has appended since,
    /// else read back.
    async fn tree_at(&mut self, size: u64) -> Result<Growth, StoreError> {
        match self.carried_tree.take() {
            Some(carried) if carried.size() == size => Ok(carried),
            _ => tree::growth(&*self.conn, size).await,
        }
    }

    /// Commits, moving the head, the known users and announcing the head on `channel` when
    /// events were appended. Answers how many were, and what the next transaction may carry on
    /// with.
    pub async fn commit(mut self, channel: &str) -> Result<(u64, Carried), StoreError> {
        let mut partitions = std::mem::take(&mut self.partitions);
        let mut tree = self.carried_tree.take();
        let mut stored = 0;
        if let Some(position) = self.position.take() {
            // A transaction that stored no event (an unchanged content, a session touched)
            // leaves the head, the users and the other nodes alone.
            if position.id != self.start {
                self.finish(&position, channel).await?;
                stored = (position.id - self.start) as u64;
            }
            partitions.extend(position.created);
            tree = Some(position.tree);
        }
        self.conn.batch_execute("COMMIT").await.map_err(pg)?;
        self.end();
        Ok((stored, Carried { partitions, tree }))
    }

    /// Has the other nodes' live views hear of a job's change when this commits (never if the
    /// change is rolled back, with its savepoint or the whole transaction).
    async fn announce_job(&self, job: JobId, leaf: Option<&Leaf>) -> Result<(), StoreError> {
        let Some(node) = &self.node else { return Ok(()) };
        let announcement = crate::notify::JobAnnouncement {
            node: node.to_string(),
            job: job.get(),
            target: leaf.map(|leaf| leaf.target.clone()),
            status: leaf.map(|leaf| leaf.status),
        };
        let payload = serde_json::to_string(&announcement).map_err(crate::backend)?;
        self.conn.execute(crate::notify::ANNOUNCE_JOB, &[&payload]).await.map_err(pg)?;
        Ok(())
    }

    /// Rolls back; a connection that cannot is closed.
    pub async fn roll_back(mut self) {
        if self.conn.batch_execute("ROLLBACK").await.is_ok() {
            self.end();
        }
    }

    /// The transaction is over: the connection goes back to the pool.
    fn end(&mut self) {
        drop(self.conn.client.take());
    }

    /// Moves the head and the known users, and announces the head at the commit (delivered then
    /// to every node listening: their forwarders and live views wake). One prepared statement,
    /// so one round trip while the sequencer is held.
    async fn finish(&self, position: &Position, channel: &str) -> Result<(), StoreError> {
        const FINISH: &str = "WITH users AS (INSERT INTO known_users SELECT * FROM UNNEST($1::text[]) \
                                            ON CONFLICT DO NOTHING), \
                                   head AS (UPDATE chain_head SET last_id = $2, last_hash = $3, last_month = $4) \
                              SELECT pg_notify($5, $6)";
        let users: Vec<&str> = position.users.iter().map(String::as_str).collect();
        let statement = self.conn.prepare_cached(FINISH).await.map_err(pg)?;
        let (id, hash, announced) = (position.id.get(), &position.hash[..], position.id.to_string());
        let values: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
            [&users, &id, &hash, &position.month, &channel, &announced];
        self.conn.execute(&statement, &values).await.map_err(pg)?;
        Ok(())
    }

    /// Numbers, chains and places `events` after the current position, into `rows`.
    pub fn number<'a>(&mut self, events: &'a [EventBody], rows: &mut Rows<'a>) -> Result<Vec<EventId>, StoreError> {
        let mut ids = Vec::with_capacity(events.len());
        for body in events {
            let numbered = self.advance(body)?;
            ids.push(numbered.id);
            rows.rows.push(numbered);
        }
        Ok(ids)
    }

    /// Moves the position past `body`: its id, chain link, month and leaf.
    fn advance<'a>(&mut self, body: &'a EventBody) -> Result<Numbered<'a>, StoreError> {
        let now_month = self.now_month;
        let position = self.position.as_mut().ok_or_else(|| {
            StoreError::backend("events were appended in a transaction without the sequencer; nothing was stored")
        })?;
        position.id += 1;
        let (hash, leaf) = trail_core::tree::link_and_leaf(&position.hash, position.id, body);
        position.hash = hash;
        position.month = next_month(position.month, body, now_month);
        position.tree.push(leaf);
        if !position.users.contains(&body.user) {
            position.users.insert(body.user.clone());
        }
        Ok(Numbered { id: position.id, month: position.month, body, hash })
    }

    /// Numbers `batches` after the current position and copies them in as they are numbered,
    /// so that PostgreSQL inserts the first rows while the writer hashes the rest (under the
    /// sequencer, the two would otherwise wait for each other); answers each batch's ids.
    pub async fn append_streamed(&mut self, batches: &[&[EventBody]]) -> Result<Vec<Vec<EventId>>, StoreError> {
        let (start, now_month) = (self.position.as_ref().map_or(self.now_month, |p| p.month), self.now_month);
        let months: BTreeSet<i32> = batches
            .iter()
            .flat_map(|events| events.iter())
            .scan(start, |month, body| {
                *month = next_month(*month, body, now_month);
                Some(*month)
            })
            .collect();
        self.create_partitions(months).await?;
        let copy = self.conn.prepare_cached(&crate::rows::copy_sql()).await.map_err(pg)?;
        let mut stream = CopyIn::start(&self.conn, &copy).await?;
        let mut answered = Vec::with_capacity(batches.len());
        for events in batches {
            let mut ids = Vec::with_capacity(events.len());
            for body in *events {
                let numbered = self.advance(body)?;
                stream.write(&numbered).await?;
                ids.push(numbered.id);
            }
            answered.push(ids);
        }
        stream.finish().await?;
        self.write_tree().await?;
        Ok(answered)
    }

    /// Inserts numbered `rows`, creating the partitions of months not seen before.
    pub async fn insert(&mut self, rows: &Rows<'_>) -> Result<(), StoreError> {
        self.create_partitions(rows.months()).await?;
        let copy = self.conn.prepare_cached(&crate::rows::copy_sql()).await.map_err(pg)?;
        rows.copy_in(&self.conn, &copy).await?;
        self.write_tree().await
    }

    /// Creates the partitions of `months` that neither existed before this transaction nor were
    /// created in it.
    async fn create_partitions(&mut self, months: BTreeSet<i32>) -> Result<(), StoreError> {
        for month in months {
            let created = self.position.as_ref().is_some_and(|p| p.created.contains(&month));
            if !self.partitions.contains(&month) && !created {
                self.conn.batch_execute(&schema::create_partition(month)).await.map_err(pg)?;
                if let Some(position) = self.position.as_mut() {
                    position.created.insert(month);
                }
            }
        }
        Ok(())
    }

    /// Writes the tree's rows grown since they were last written.
    async fn write_tree(&mut self) -> Result<(), StoreError> {
        match self.position.as_mut() {
            Some(position) => tree::write_grown(&*self.conn, &mut position.tree).await,
            None => Ok(()),
        }
    }
}

/// An event's partition: the later of the previous event's month and its own, never past this
/// month, so that each partition holds one range of ids.
fn next_month(previous: i32, body: &EventBody, now_month: i32) -> i32 {
    previous.max(month_of(body.time).min(now_month))
}

#[async_trait]
impl EventsTx for WriteTx {
    async fn append(&mut self, events: &[EventBody]) -> Result<Vec<EventId>, StoreError> {
        let mut answered = self.append_streamed(&[events]).await?;
        Ok(answered.pop().unwrap_or_default())
    }
}

#[async_trait]
impl ContentsTx for WriteTx {
    async fn latest_content(&mut self, device: &str, kind: ContentKind) -> Result<Option<StoredContent>, StoreError> {
        contents::latest(&*self.conn, device, kind).await
    }

    async fn touch_content(&mut self, device: &str, kind: ContentKind, seen_at: i64) -> Result<(), StoreError> {
        contents::touch(&*self.conn, device, kind, seen_at).await
    }

    async fn replace_content(
        &mut self,
        device: &str,
        kind: ContentKind,
        hash: &str,
        content: &str,
        changed_at: i64,
    ) -> Result<(), StoreError> {
        contents::replace(&*self.conn, device, kind, hash, content, changed_at).await
    }
}

#[async_trait]
impl AccountsTx for WriteTx {
    async fn apply_account(&mut self, write: &AccountWrite) -> Result<bool, StoreError> {
        let applied = accounts::apply(&*self.conn, write).await?;
        if applied && write.changes_credentials() {
            self.conn.execute(crate::notify::ANNOUNCE_CREDENTIALS, &[]).await.map_err(pg)?;
        }
        Ok(applied)
    }
}

#[async_trait]
impl JobsTx for WriteTx {
    async fn insert_job(&mut self, job: &NewJob) -> Result<JobId, StoreError> {
        let id = jobs::insert(&*self.conn, job).await?;
        self.announce_job(id, None).await?;
        Ok(id)
    }

    async fn set_submit_event(&mut self, job: JobId, event: EventId) -> Result<(), StoreError> {
        jobs::set_submit_event(&*self.conn, job, event).await
    }

    async fn set_completed_event(&mut self, job: JobId, event: EventId) -> Result<(), StoreError> {
        jobs::set_completed_event(&*self.conn, job, event).await
    }

    async fn job(&mut self, id: JobId) -> Result<Option<Job>, StoreError> {
        jobs::get(&*self.conn, id).await
    }

    async fn save_leaf(&mut self, job: JobId, leaf: &Leaf) -> Result<(), StoreError> {
        jobs::save_leaf(&*self.conn, job, leaf).await?;
        self.announce_job(job, Some(leaf)).await
    }

    /// Locks the job's row: nodes appending to one job's log at once number apart.
    async fn job_targets(&mut self, job: JobId) -> Result<Option<Vec<String>>, StoreError> {
        jobs::targets_locked(&*self.conn, job).await
    }

    async fn append_log(&mut self, job: JobId, entries: &[LogEntry]) -> Result<Vec<i64>, StoreError> {
        jobs::append_log(&*self.conn, job, entries).await
    }
}

#[async_trait]
impl CheckpointsTx for WriteTx {
    async fn insert_checkpoint(&mut self, checkpoint: &RecordedCheckpoint) -> Result<(), StoreError> {
        checkpoints::insert(&*self.conn, checkpoint).await
    }
}

#[async_trait]
impl ForwardingTx for WriteTx {
    async fn save_cursor(&mut self, destination: &str, delivered_through: EventId) -> Result<(), StoreError> {
        let now = time::to_micros(jiff::Timestamp::now());
        self.conn
            .execute(
                "INSERT INTO forward_cursors VALUES ($1, $2, $3) \
                 ON CONFLICT (destination) DO UPDATE SET delivered_through = $2, updated_at = $3",
                &[&destination, &delivered_through.get(), &now],
            )
            .await
            .map_err(pg)?;
        Ok(())
    }
}
