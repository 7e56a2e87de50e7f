//! The embedded SQLite backend (S1): the events in one WAL-mode file with one writer thread
//! (group commit, the hash chain; see [`writer`]), a search index in a second, derived file kept
//! by its own thread (see [`index`]), and a small pool of read connections for searches.

mod accounts;
mod checkpointer;
mod checkpoints;
mod contents;
mod export;
mod index;
mod jobs;
pub mod measure;
mod progress;
mod purge_batch;
mod rows;
mod schema;
mod search;
mod tree;
mod tx;
mod writer;

use async_trait::async_trait;
use checkpointer::Checkpointer;
use index::{IndexMessage, Indexer};
use progress::Progress;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use trail_core::checkpoint::{RecordedCheckpoint, SignedCheckpoint};
use trail_core::content::{ContentKind, ContentOutcome, ContentRecord, StoredContent};
use trail_core::identity::{Account, AccountWrite, ApiToken, LoginLimit, Session, Username};
use trail_core::operations::{Job, JobId, JobSummary, LogEntry, LogPage, LogQuery, NewJob, StatusReport};
use trail_core::{Event, EventBody, EventId, SearchPage, SearchQuery};
use trail_store::LeafReport;
use trail_store::write::{
    AppendEvents, AppendJobLog, CreateJob, RecordCheckpoint, RecordContent, ReportLeaf, SaveCursor, WriteAccount,
    WriteQueue,
};
use trail_store::{
    AccountStore, CheckpointStore, ContentStore, EventLog, ForwardingStore, JobStore, RetentionStore, StoreError,
    StoreStats, TreeStore,
};
use tx::WriteTx;
use writer::Writer;

/// Requests waiting for the writer beyond this make senders wait: the back-pressure bound.
const WRITE_QUEUE: usize = 4096;
/// Idle read connections kept open.
const IDLE_READERS: usize = 8;

pub struct SqliteStore {
    path: PathBuf,
    index_path: PathBuf,
    /// `None` for a read-only store.
    writes: Option<WriteQueue<WriteTx>>,
    indexer: Option<std::sync::mpsc::SyncSender<IndexMessage>>,
    /// The writer and indexer threads, joined on drop so that nothing writes once the lock is
    /// released.
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Held while the store can write: one writer process per database, because the writer
    /// keeps the chain's head in memory. Declared after the channels and threads, so it is
    /// released last.
    _lock: Option<std::fs::File>,
    readers: Arc<Mutex<Vec<Connection>>>,
    progress: Arc<Progress>,
    /// Moved after account changes that can stop a credential (one process writes a SQLite
    /// trail, so its own changes are all there are).
    credentials: trail_store::CredentialsCount,
    /// The login limits, in memory: one process serves a SQLite trail, and what it remembers of
    /// addresses and unknown names ages out within the policy's windows anyway.
    login_limits: Mutex<std::collections::HashMap<String, LoginLimit>>,
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::backend(error.to_string())
}

/// Names the file when SQLite found it damaged (malformed, or not a database at all), so that
/// whoever starts Trail on it learns which file it is and what to do; other failures pass as
/// they are.
fn naming_damage(path: &Path) -> impl Fn(StoreError) -> StoreError + '_ {
    move |error| {
        let sqlite = match &error {
            StoreError::Backend { source: Some(source), .. } => source.downcast_ref::<rusqlite::Error>(),
            _ => None,
        };
        match sqlite.and_then(rusqlite::Error::sqlite_error_code) {
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => StoreError::Damaged {
                file: path.display().to_string(),
                problem: sqlite.map(ToString::to_string).unwrap_or_default(),
            },
            _ => error,
        }
    }
}

/// Opening `path` failed: the error keeps SQLite's, so that [`naming_damage`] can tell damage.
fn cannot_open(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |error| StoreError::caused(format!("cannot open {}: {error}", path.display()), error)
}

/// How long a connection waits for a lock another holds before it gives up.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

/// The search index beside the events: `trail.db` has `trail.search.db`.
fn index_path(path: &Path) -> PathBuf {
    path.with_extension("search.db")
}

/// A connection for searches: the events, with the index attached as `idx`.
fn open_reader(path: &Path, index_path: &Path) -> rusqlite::Result<Connection> {
    let conn = open_connection(path)?;
    conn.execute("ATTACH DATABASE ?1 AS idx", [index_path.to_string_lossy()])?;
    conn.pragma_update(None, "query_only", true)?;
    // 8 MiB of pages per reader (at most 8 idle readers): searches revisit the newest pages.
    conn.pragma_update(None, "cache_size", -8192)?;
    Ok(conn)
}

/// How much lower the indexer and the checkpointer run than the writer (a nice value).
const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority by [`BACKGROUND_NICE`]: the indexer's and
/// the checkpointer's work can wait (searches read what the index has not reached), and on a
/// machine of few cores they took CPU from the writer and the HTTP workers. Batch ingest of
/// 1,000,000 events on 2 cores, alternating: 109,343 / 120,864 events/s as equals, 135,096 /
/// 139,597 reniced. On Linux a thread's nice value is its own.
fn yield_to_the_writer() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let thread = Some(rustix::thread::gettid());
        let lowered =
            getpriority_process(thread).and_then(|nice| setpriority_process(thread, (nice + BACKGROUND_NICE).min(19)));
        if let Err(error) = lowered {
            tracing::debug!(%error, "a background thread keeps the writer's priority");
        }
    }
}

/// Starts a thread whose work can wait, below the writer (see [`yield_to_the_writer`]).
fn spawn_in_background(
    name: &str,
    run: impl FnOnce() + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, StoreError> {
    let thread = std::thread::Builder::new().name(name.into());
    thread
        .spawn(move || {
            yield_to_the_writer();
            run()
        })
        .map_err(backend)
}

/// Takes the exclusive lock beside the database file, or says who holds it.
fn take_writer_lock(path: &Path) -> Result<std::fs::File, StoreError> {
    let lock_path = path.with_extension("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| backend(format!("cannot open {}: {e}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked(path.display().to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(backend(format!("cannot lock {}: {e}", lock_path.display()))),
    }
}

impl SqliteStore {
    /// Opens (or creates) the trail database at `path` and starts its writer and indexer
    /// threads. Fails when another process has it open for writing.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| backend(format!("cannot create {}: {e}", dir.display())))?;
        }
        let lock = take_writer_lock(&path)?;
        SqliteStore::open_locked(path.clone(), lock).map_err(naming_damage(&path))
    }

    fn open_locked(path: PathBuf, lock: std::fs::File) -> Result<SqliteStore, StoreError> {
        let mut conn = open_connection(&path).map_err(cannot_open(&path))?;
        schema::migrate(&mut conn).map_err(tx::backend)?;
        // The checkpointer copies the WAL into the database, off the writer's commits.
        let (checkpointer, wal_size) =
            Checkpointer::new(&conn, open_connection(&path).map_err(cannot_open(&path))?).map_err(tx::backend)?;
        let index_path = index_path(&path);
        let progress = Arc::new(Progress::starting_at(EventId::ZERO));
        let (wake, messages) = std::sync::mpsc::sync_channel(64);
        let writer = Writer::new(WriteTx::open(conn)?, progress.clone(), wake.clone(), wal_size);
        let indexer = Indexer::new(
            open_connection(&path).map_err(cannot_open(&path))?,
            open_connection(&index_path).map_err(backend)?,
            progress.clone(),
        )
        .map_err(|e| backend(format!("cannot open the search index {}: {e}", index_path.display())))?;
        let (writes, queue) = WriteQueue::new(WRITE_QUEUE);
        let spawn = |name: &str| std::thread::Builder::new().name(name.into());
        let threads = vec![
            spawn("trail-sqlite-writer").spawn(move || writer.run(queue)).map_err(backend)?,
            spawn_in_background("trail-sqlite-indexer", move || indexer.run(messages))?,
            spawn_in_background("trail-sqlite-checkpointer", move || checkpointer.run())?,
        ];
        Ok(SqliteStore {
            path,
            index_path,
            writes: Some(writes),
            indexer: Some(wake),
            threads,
            _lock: Some(lock),
            readers: Arc::default(),
            progress,
            credentials: Default::default(),
            login_limits: Mutex::default(),
        })
    }

    /// Opens an existing trail for reading only, beside a server that may be writing to it.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        if !path.exists() {
            return Err(StoreError::NoTrail(path.display().to_string()));
        }
        SqliteStore::open_reading(path.clone()).map_err(naming_damage(&path))
    }

    fn open_reading(path: PathBuf) -> Result<SqliteStore, StoreError> {
        let index_path = index_path(&path);
        let conn = open_reader(&path, &index_path).map_err(cannot_open(&path))?;
        // A trail whose index was never made reads as wholly unindexed.
        index::prepare(&open_connection(&index_path).map_err(backend)?).map_err(backend)?;
        let head = search::head(&conn).map_err(tx::backend)?;
        let indexed = index::indexed_through_attached(&conn).map_err(backend)?;
        let progress = Arc::new(Progress::starting_at(head));
        progress.indexed_through.store(indexed, Ordering::SeqCst);
        Ok(SqliteStore {
            path,
            index_path,
            writes: None,
            indexer: None,
            threads: Vec::new(),
            _lock: None,
            readers: Arc::new(Mutex::new(vec![conn])),
            progress,
            credentials: Default::default(),
            login_limits: Mutex::default(),
        })
    }

    /// The Merkle tree's rows holding the leaves before `leaf` (a purged prefix's), the last cut
    /// there, for `trail migrate`.
    pub async fn tree_rows_before(&self, leaf: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.read(move |conn| tree::rows_before(conn, leaf)).await
    }

    /// Everything beside the events, for `trail migrate`.
    pub async fn export_state(&self) -> Result<trail_store::state::TrailState, StoreError> {
        self.read(|conn| export::state(conn)).await
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Group commits made by this process's writer (each one fsync).
    pub fn commits(&self) -> i64 {
        self.progress.commits.load(Ordering::SeqCst)
    }

    /// Runs `work` on a pooled read connection on the blocking thread pool.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = self.readers.clone();
        let (path, index_path) = (self.path.clone(), self.index_path.clone());
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().map_err(backend)?.pop();
            let mut conn = match pooled {
                Some(conn) => conn,
                None => open_reader(&path, &index_path).map_err(backend)?,
            };
            let result = work(&mut conn).map_err(backend);
            let mut idle = readers.lock().map_err(backend)?;
            if idle.len() < IDLE_READERS {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(backend)?
    }

    /// The writer's queue, unless this store only reads.
    fn writes(&self) -> Result<&WriteQueue<WriteTx>, StoreError> {
        self.writes.as_ref().ok_or_else(StoreError::read_only)
    }
}

impl Drop for SqliteStore {
    /// Closes the channels, lets the writer finish its queue and the indexer its batch, and
    /// waits for both before the lock goes.
    fn drop(&mut self) {
        self.writes.take();
        self.indexer.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn append(&self, events: Vec<EventBody>) -> Result<Vec<EventId>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.writes()?.submit(AppendEvents(events)).await
    }

    async fn correlated(
        &self,
        job_id: Option<String>,
        request_id: Option<String>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {} FROM events WHERE id IN (SELECT id FROM events WHERE job_id = ?1                  UNION SELECT id FROM events WHERE request_id = ?2) ORDER BY id LIMIT ?3",
                schema::EVENT_COLUMNS
            ))?;
            let rows = statement.query_map(rusqlite::params![job_id, request_id, limit as i64], rows::event_from_row)?;
            rows.collect()
        })
        .await
    }

    fn watch_head(&self) -> tokio::sync::watch::Receiver<EventId> {
        self.progress.head_changes.subscribe()
    }

    async fn get(&self, id: EventId) -> Result<Option<Event>, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {} FROM events WHERE id = ?1", schema::EVENT_COLUMNS))?
                .query_row([id.get()], rows::event_from_row)
                .optional()
        })
        .await
    }

    async fn search(&self, query: SearchQuery) -> Result<SearchPage<Event>, StoreError> {
        self.read(move |conn| search::search(conn, &query)).await
    }

    async fn read_after(&self, after: EventId, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {} FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
                schema::EVENT_COLUMNS
            ))?;
            let rows = statement.query_map(rusqlite::params![after.get(), limit as i64], rows::event_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn known_users(&self) -> Result<Vec<String>, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached("SELECT user FROM known_users ORDER BY user")?;
            let users = statement.query_map([], |row| row.get(0))?;
            users.collect()
        })
        .await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let head = self.progress.head.load(Ordering::SeqCst);
        let indexed = self.progress.indexed_through.load(Ordering::SeqCst);
        Ok(StoreStats { head: EventId::new(head), unindexed: (head - indexed).max(0) as u64 })
    }

    async fn catch_up_indexes(&self) -> Result<(), StoreError> {
        let indexer = self.indexer.as_ref().ok_or_else(StoreError::read_only)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        indexer.send(IndexMessage::CatchUp(reply)).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

#[async_trait]
impl ContentStore for SqliteStore {
    async fn record_content(&self, record: ContentRecord) -> Result<ContentOutcome, StoreError> {
        self.writes()?.submit(RecordContent(record)).await
    }

    async fn content_state(&self, device: &str, kind: ContentKind) -> Result<Option<StoredContent>, StoreError> {
        let device = device.to_owned();
        self.read(move |conn| contents::latest(conn, &device, kind)).await
    }
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn write_account(&self, write: AccountWrite, events: Vec<EventBody>) -> Result<Vec<EventId>, StoreError> {
        let writes = self.writes()?;
        self.credentials.counting(write, |write| writes.submit(WriteAccount { write, events })).await
    }

    async fn account(&self, username: &Username) -> Result<Option<Account>, StoreError> {
        let username = username.clone();
        self.read(move |conn| accounts::get(conn, &username)).await
    }

    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.read(|conn| accounts::all(conn)).await
    }

    async fn token_by_digest(&self, digest: [u8; 32]) -> Result<Option<ApiToken>, StoreError> {
        self.read(move |conn| accounts::token_by_digest(conn, &digest)).await
    }

    async fn tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.read(|conn| accounts::tokens(conn)).await
    }

    async fn session(&self, digest: [u8; 32]) -> Result<Option<Session>, StoreError> {
        self.read(move |conn| accounts::session(conn, &digest)).await
    }

    async fn sessions(&self) -> Result<Vec<Session>, StoreError> {
        self.read(|conn| accounts::sessions(conn)).await
    }

    fn watch_credentials(&self) -> tokio::sync::watch::Receiver<u64> {
        self.credentials.watch()
    }

    async fn serialize_account(&self, _: &Username) -> Result<trail_store::AccountSerial, StoreError> {
        Ok(trail_store::AccountSerial::in_process())
    }

    async fn update_login_limit(&self, key: &str, update: trail_store::LimitUpdate<'_>) -> Result<(), StoreError> {
        let mut limits = self.login_limits.lock().expect("login limits lock");
        match update(limits.get(key).map(|limit| limit.text.as_str())) {
            Some(limit) => limits.insert(key.to_owned(), limit),
            None => limits.remove(key),
        };
        Ok(())
    }

    async fn settled_login_limits(&self, now: jiff::Timestamp) -> Result<Vec<String>, StoreError> {
        let limits = self.login_limits.lock().expect("login limits lock");
        Ok(limits.iter().filter(|(_, limit)| limit.settles_at <= now).map(|(key, _)| key.clone()).collect())
    }
}

#[async_trait]
impl JobStore for SqliteStore {
    /// One process writes a SQLite trail: no change is made elsewhere, and the channel is
    /// closed from the start.
    fn jobs_changed_elsewhere(&self) -> tokio::sync::broadcast::Receiver<trail_store::JobChange> {
        tokio::sync::broadcast::channel(1).1
    }

    async fn create_job(&self, job: NewJob) -> Result<Job, StoreError> {
        self.writes()?.submit(CreateJob(job)).await
    }

    async fn report_leaf(&self, report: StatusReport) -> Result<LeafReport, StoreError> {
        self.writes()?.submit(ReportLeaf(report)).await
    }

    async fn job(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        self.read(move |conn| jobs::get(conn, id)).await
    }

    async fn jobs(&self, before: Option<JobId>, limit: usize) -> Result<Vec<JobSummary>, StoreError> {
        self.read(move |conn| jobs::list(conn, before, limit)).await
    }

    async fn append_job_log(&self, job: JobId, entries: Vec<LogEntry>) -> Result<Vec<i64>, StoreError> {
        self.writes()?.submit(AppendJobLog { job, entries }).await
    }

    async fn job_log(&self, query: LogQuery) -> Result<LogPage, StoreError> {
        self.read(move |conn| jobs::log(conn, &query)).await
    }
}

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn purge(
        &self,
        cutoff: jiff::Timestamp,
        batch: usize,
        user: &str,
    ) -> Result<trail_core::retention::PurgeReport, StoreError> {
        let batch = batch.max(1);
        let mut purged = 0;
        loop {
            let removed = self.writes()?.submit(purge_batch::PurgeBatch { cutoff, batch }).await?;
            purged += removed;
            if removed < batch as u64 {
                break;
            }
        }
        trail_store::record_purge(self, user, cutoff, purged).await
    }

    async fn prune_marker(&self) -> Result<Option<trail_core::chain::PruneMarker>, StoreError> {
        let stored: Option<(EventId, Vec<u8>)> = self
            .read(|conn| {
                conn.prepare_cached("SELECT through, hash FROM prune_marker WHERE only = 1")?
                    .query_row([], |r| Ok((r.get(0).map(EventId::new)?, r.get(1)?)))
                    .optional()
            })
            .await?;
        stored
            .map(|(through, hash)| {
                let hash =
                    hash.try_into().map_err(|_| StoreError::Corrupt("the prune marker's hash is malformed".into()))?;
                Ok(trail_core::chain::PruneMarker { through, hash })
            })
            .transpose()
    }
}

#[async_trait]
impl ForwardingStore for SqliteStore {
    async fn forward_cursor(&self, destination: &str) -> Result<Option<EventId>, StoreError> {
        let destination = destination.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT delivered_through FROM forward_cursors WHERE destination = ?1")?
                .query_row([destination], |row| row.get(0).map(EventId::new))
                .optional()
        })
        .await
    }

    async fn save_forward_cursor(&self, destination: &str, delivered_through: EventId) -> Result<(), StoreError> {
        let destination = destination.to_owned();
        self.writes()?.submit(SaveCursor { destination, delivered_through }).await
    }
}

#[async_trait]
impl TreeStore for SqliteStore {
    async fn tree_hashes(&self, indexes: Vec<u64>) -> Result<Vec<trail_core::tree::Hash>, StoreError> {
        self.read(move |conn| Ok(tree::hashes(conn, &indexes))).await?
    }
}

#[async_trait]
impl CheckpointStore for SqliteStore {
    async fn record_checkpoint(
        &self,
        signed: SignedCheckpoint,
        event: EventBody,
    ) -> Result<RecordedCheckpoint, StoreError> {
        self.writes()?.submit(RecordCheckpoint { signed, event }).await
    }

    async fn latest_checkpoint(&self) -> Result<Option<RecordedCheckpoint>, StoreError> {
        self.read(|conn| checkpoints::latest(conn)).await
    }

    async fn checkpoint_covering(&self, size: u64) -> Result<Option<RecordedCheckpoint>, StoreError> {
        self.read(move |conn| checkpoints::covering(conn, size)).await
    }

    async fn key_rotations(&self) -> Result<Vec<RecordedCheckpoint>, StoreError> {
        self.read(|conn| checkpoints::key_rotations(conn)).await
    }
}
