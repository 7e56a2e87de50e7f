//! Trail's PostgreSQL backend (S1), for several Trail nodes on one database.
//!
//! - Writes that append events go through this node's writer and the database-wide sequencer
//!   (`writer.rs`): ids commit in id order on every node, so no reader ever passes an id that
//!   commits later.
//! - Reads use a pool; searches run in one repeatable-read transaction each (`search.rs`).
//! - Every commit notifies every node (`notify.rs`), which moves their heads: forwarders and
//!   live views wake on any node's writes.
//! - Each forwarding destination is leased to one node at a time (`lease.rs`), and so is keeping
//!   the search index (`index.rs`), off the commit path.
//! - Events live in monthly partitions, so a purge drops whole months (`retention.rs`).

mod accounts;
mod checkpoints;
mod contents;
mod index;
mod jobs;
mod lease;
pub mod measure;
mod notify;
mod replicas;
mod retention;
mod rows;
mod schema;
mod search;
mod state;
#[cfg(feature = "testing")]
pub mod testing;
mod tree;
mod tx;
mod writer;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::{broadcast, oneshot, watch};
use tokio_postgres::NoTls;
use trail_core::checkpoint::{RecordedCheckpoint, SignedCheckpoint};
use trail_core::content::{ContentKind, ContentOutcome, ContentRecord, StoredContent};
use trail_core::identity::{Account, AccountWrite, ApiToken, Session, Username};
use trail_core::operations::{Job, JobId, JobSummary, LogEntry, LogPage, LogQuery, NewJob, StatusReport};
use trail_core::{Event, EventBody, EventId, SearchPage, SearchQuery};
use trail_store::write::{
    AppendEvents, AppendJobLog, CreateJob, RecordCheckpoint, RecordContent, ReportLeaf, SaveCursor, WriteAccount,
    WriteQueue,
};
use trail_store::{
    AccountStore, CheckpointStore, ContentStore, EventLog, ForwardingStore, JobStore, LeafReport, Lease,
    RetentionStore, StoreError, StoreStats, TreeStore,
};
use tx::WriteTx;
use writer::Writer;

const POOL_SIZE: usize = 16;
/// Requests waiting for this node's writer beyond this make senders wait.
const WRITE_QUEUE: usize = 4096;

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::backend(error.to_string())
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// PostgreSQL's own words: tokio-postgres shows only "db error" for a server's refusal. A lost
/// connection, or a server shutting down, starting or out of connections, is
/// [`StoreError::Unreachable`]: the request may be sent again once the node has reconnected.
fn pg(error: tokio_postgres::Error) -> StoreError {
    match error.as_db_error() {
        Some(db) => {
            let message = format!("PostgreSQL: {} ({})", db.message(), db.code().code());
            if is_unreachable(db.code().code()) {
                return StoreError::Unreachable(message);
            }
            if db.code() == &tokio_postgres::error::SqlState::DISK_FULL {
                return StoreError::Full(message);
            }
            StoreError::caused(message, error)
        }
        None if error.is_closed() || std::error::Error::source(&error).is_some_and(|s| s.is::<std::io::Error>()) => {
            StoreError::Unreachable(format!("PostgreSQL: {error}"))
        }
        None => StoreError::caused(error.to_string(), error),
    }
}

/// SQLSTATEs that say the server cannot serve now, whatever was asked: connection exceptions
/// (class 08), shutdowns and start-up (57P01-57P03), too many connections (53300).
fn is_unreachable(sqlstate: &str) -> bool {
    sqlstate.starts_with("08") || matches!(sqlstate, "57P01" | "57P02" | "57P03" | "53300")
}

/// A connection could not be had from the pool: unreachable, in PostgreSQL's own words when
/// it gave some.
fn unreachable(error: deadpool_postgres::PoolError) -> StoreError {
    let why = match error {
        deadpool_postgres::PoolError::Backend(error) => match pg(error) {
            StoreError::Unreachable(why) => why,
            other => other.to_string(),
        },
        other => format!("PostgreSQL: {other}"),
    };
    StoreError::Unreachable(why)
}

/// The newest committed id.
async fn read_head(client: &impl deadpool_postgres::GenericClient) -> Result<EventId, StoreError> {
    let statement = client.prepare_cached("SELECT last_id FROM chain_head").await.map_err(pg)?;
    Ok(EventId::new(client.query_one(&statement, &[]).await.map_err(pg)?.get(0)))
}

/// Other nodes' job changes kept for slow live views before they miss some.
const JOB_CHANGES: usize = 1024;

/// A name for this node, unique among the nodes that share a database: it tells this node's own
/// job announcements from the others'.
fn node_name() -> String {
    static STORES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let store = STORES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{}-{store}", std::process::id(), started.as_nanos())
}

/// The pool of connections for `config`.
fn pool(config: &tokio_postgres::Config) -> Result<Pool, StoreError> {
    let manager =
        Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager).max_size(POOL_SIZE).build().map_err(backend)
}

/// The first connection, which says whether PostgreSQL can be reached at all.
async fn first_client(pool: &Pool, url: &str) -> Result<deadpool_postgres::Object, StoreError> {
    pool.get().await.map_err(|e| backend(format!("cannot connect to PostgreSQL at {}: {e}", redact(url))))
}

/// The connection settings: the URL, and the schema when one is given.
fn pg_config(url: &str, search_path: Option<&str>) -> Result<tokio_postgres::Config, StoreError> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
        backend(format!("{:?} is not a PostgreSQL URL ({e}); write postgres://USER@HOST:PORT/DATABASE", redact(url)))
    })?;
    // Trail's statements are short by design (bounded slices, batches and index probes), yet
    // the planner's estimates for a bounded lateral scan reach JIT's thresholds: compiling took
    // 15-350 ms per search for statements that ran in under 1 ms (auto_explain, PostgreSQL 15).
    // Statements are prepared once per connection, but planned for their values each time: a
    // generic plan for a user's candidate blocks took 100-140 ms where the user's own took 40.
    let mut options = vec!["-c jit=off -c plan_cache_mode=force_custom_plan".to_owned()];
    options.extend(config.get_options().map(str::to_owned));
    if let Some(path) = search_path {
        options.push(format!("-c search_path={path},public"));
    }
    config.options(options.join(" "));
    config.application_name("trail");
    Ok(config)
}

/// `url` with `schema` first on the search path (and `public` after it, where `pg_trgm` is).
pub fn with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}%2Cpublic")
}

/// A URL as it may be shown: without its password.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

pub struct PgStore {
    pool: Pool,
    head: watch::Sender<EventId>,
    /// Moved by this node's account changes that can stop a credential, and by every other
    /// node's, heard through the listener.
    credentials: trail_store::CredentialsCount,
    /// Other nodes' job changes, heard through the listener.
    jobs_elsewhere: broadcast::Sender<trail_store::JobChange>,
    config: tokio_postgres::Config,
    /// What a node that writes runs beside its pool; a reader has none of it.
    writing: Option<Writing>,
    /// Streaming replicas that take reads off the primary (see `replicas.rs`).
    replicas: Option<replicas::Replicas>,
}

/// A writing node's writer, head listener and indexer.
struct Writing {
    writes: WriteQueue<WriteTx>,
    channel: String,
    /// Stops the head listener when the store goes.
    _listening: oneshot::Sender<()>,
    /// Stops this node's indexer when the store goes (freeing its lease for another node).
    _indexing: AbortOnDrop,
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl PgStore {
    /// Connects to `url` (a `postgres://` URL), in `search_path` when given (tests use a schema
    /// each), migrates, and starts this node's writer and head listener.
    pub async fn connect(url: &str, search_path: Option<&str>) -> Result<PgStore, StoreError> {
        let config = pg_config(url, search_path)?;
        let pool = pool(&config)?;
        let mut client = first_client(&pool, url).await?;
        schema::migrate(&mut client).await?;
        tree::build_missing(&mut client).await?;
        let channel = notify::head_channel(&client).await?;
        drop(client);
        // The listener reads the head once it hears commits, so none falls between the two.
        let head = watch::Sender::new(EventId::ZERO);
        let credentials = trail_store::CredentialsCount::default();
        let jobs_elsewhere = broadcast::Sender::new(JOB_CHANGES);
        let node = node_name();
        let heard = notify::Heard {
            head: head.clone(),
            credentials: credentials.clone(),
            jobs: jobs_elsewhere.clone(),
            node: node.clone(),
        };
        let listening = notify::listen(&config, &channel, heard).await?;
        let (writes, queue) = WriteQueue::new(WRITE_QUEUE);
        tokio::spawn(Writer::new(pool.clone(), channel.clone(), node.into()).run(queue));
        let indexing = tokio::spawn(index::keep_indexing(pool.clone(), config.clone(), head.subscribe()));
        let _indexing = AbortOnDrop(indexing.abort_handle());
        let writing = Writing { writes, channel, _listening: listening, _indexing };
        Ok(PgStore { pool, head, credentials, jobs_elsewhere, config, writing: Some(writing), replicas: None })
    }

    /// Connects to `url` as a reader, for the commands that only read (`trail search`, `show`,
    /// `tail`, `export`, `verify`): no migration, no writer, no head listener (its head is
    /// read once; `tail -f` polls), no indexer. Refused when the database holds no trail, or
    /// one at another schema version than this Trail's: a reader never changes the schema.
    pub async fn connect_read_only(url: &str, search_path: Option<&str>) -> Result<PgStore, StoreError> {
        let config = pg_config(url, search_path)?;
        let pool = pool(&config)?;
        let client = first_client(&pool, url).await?;
        schema::check_current(&client, &redact(url)).await?;
        let head = watch::Sender::new(read_head(&client).await?);
        drop(client);
        let (credentials, jobs_elsewhere) = (Default::default(), broadcast::Sender::new(1));
        Ok(PgStore { pool, head, credentials, jobs_elsewhere, config, writing: None, replicas: None })
    }

    /// Sends searches, exports and the UI's reads to the streaming replicas at `urls` (in
    /// `search_path` when given), each read to a replica that holds what it needs; the rest,
    /// and every write, to the primary.
    pub async fn with_replicas(mut self, urls: &[String], search_path: Option<&str>) -> Result<PgStore, StoreError> {
        if !urls.is_empty() {
            self.replicas = Some(replicas::Replicas::connect(urls, search_path, self.head.subscribe()).await?);
        }
        Ok(self)
    }

    /// Runs `read` on a replica holding every event through what `needed` asks of the
    /// replicas, or on the primary when none does, or the replica's read fails.
    async fn read_on_replica<T, F>(
        &self,
        needed: impl FnOnce(&replicas::Replicas) -> EventId,
        read: impl Fn(deadpool_postgres::Object) -> F,
    ) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, StoreError>>,
    {
        if let Some(replicas) = &self.replicas
            && let Some(client) = replicas.holding(needed(replicas)).await
        {
            match read(client).await {
                Ok(answer) => return Ok(answer),
                Err(error) => replicas.failed_read(&error),
            }
        }
        read(self.client().await?).await
    }

    /// The writer's side, unless this store only reads.
    fn writing(&self) -> Result<&Writing, StoreError> {
        self.writing.as_ref().ok_or_else(StoreError::read_only)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(unreachable)
    }

    /// Stores events with the ids, hashes and times they already have, for `trail migrate`:
    /// each must continue the chain from the head, or none is stored.
    pub async fn import(&self, events: &[Event]) -> Result<(), StoreError> {
        writer::import(&self.pool, events, &self.writing()?.channel).await
    }

    /// Replaces what this database keeps beside its events, for `trail migrate`.
    pub async fn replace_state(&self, state: &trail_store::state::TrailState) -> Result<(), StoreError> {
        self.writing()?;
        state::replace(&mut self.client().await?, state).await
    }

    /// Starts an empty database's chain after a purged trail's marker, for `trail migrate`.
    pub async fn start_after(
        &self,
        marker: &trail_core::chain::PruneMarker,
        tree_rows: &[(u64, Vec<u8>)],
    ) -> Result<(), StoreError> {
        self.writing()?;
        writer::start_after(&mut self.client().await?, marker, tree_rows).await
    }
}

#[async_trait]
impl EventLog for PgStore {
    async fn append(&self, events: Vec<EventBody>) -> Result<Vec<EventId>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.writing()?.writes.submit(AppendEvents(events)).await
    }

    async fn get(&self, id: EventId) -> Result<Option<Event>, StoreError> {
        let sql = format!("SELECT {} FROM events WHERE id = $1", rows::COLUMNS);
        let read = |client: deadpool_postgres::Object| {
            let sql = &sql;
            async move {
                let row = client.query_opt(sql, &[&id.get()]).await.map_err(pg)?;
                row.as_ref().map(rows::event_from_row).transpose()
            }
        };
        self.read_on_replica(|_| id, read).await
    }

    async fn search(&self, query: SearchQuery) -> Result<SearchPage<Event>, StoreError> {
        let needed = |replicas: &replicas::Replicas| query.cursor.map_or_else(|| replicas.fresh(), |c| c.snapshot);
        let query = &query;
        self.read_on_replica(needed, |mut client| async move { search::search(&mut client, query).await }).await
    }

    async fn read_after(&self, after: EventId, limit: usize) -> Result<Vec<Event>, StoreError> {
        let sql = format!("SELECT {} FROM events WHERE id > $1 ORDER BY id LIMIT $2", rows::COLUMNS);
        let heard = *self.head.borrow();
        let read = |client: deadpool_postgres::Object| {
            let sql = &sql;
            async move {
                let rows = client.query(sql, &[&after.get(), &(limit as i64)]).await.map_err(pg)?;
                rows.iter().map(rows::event_from_row).collect()
            }
        };
        self.read_on_replica(|replicas| replicas.after(after, limit, heard), read).await
    }

    async fn known_users(&self) -> Result<Vec<String>, StoreError> {
        let read = |client: deadpool_postgres::Object| async move {
            let rows = client.query("SELECT username FROM known_users ORDER BY username", &[]).await.map_err(pg)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        };
        self.read_on_replica(|replicas| replicas.fresh(), read).await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let client = self.client().await?;
        let head = read_head(&client).await?;
        let indexed = index::indexed_through(&client).await?;
        Ok(StoreStats { head, unindexed: (head.get() - indexed).max(0) as u64 })
    }

    async fn catch_up_indexes(&self) -> Result<(), StoreError> {
        index::catch_up(&self.pool).await
    }

    async fn correlated(
        &self,
        job_id: Option<String>,
        request_id: Option<String>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let sql = format!(
            "SELECT {} FROM events WHERE id IN (SELECT id FROM events WHERE job_id = $1 \
             UNION SELECT id FROM events WHERE request_id = $2) ORDER BY id LIMIT $3",
            rows::COLUMNS
        );
        let rows = self.client().await?.query(&sql, &[&job_id, &request_id, &(limit as i64)]).await.map_err(pg)?;
        rows.iter().map(rows::event_from_row).collect()
    }

    fn watch_head(&self) -> watch::Receiver<EventId> {
        self.head.subscribe()
    }
}

#[async_trait]
impl ContentStore for PgStore {
    async fn record_content(&self, record: ContentRecord) -> Result<ContentOutcome, StoreError> {
        self.writing()?.writes.submit(RecordContent(record)).await
    }

    async fn content_state(&self, device: &str, kind: ContentKind) -> Result<Option<StoredContent>, StoreError> {
        contents::latest(&self.client().await?, device, kind).await
    }
}

#[async_trait]
impl AccountStore for PgStore {
    async fn write_account(&self, write: AccountWrite, events: Vec<EventBody>) -> Result<Vec<EventId>, StoreError> {
        // At once here; the other nodes when they hear the commit's announcement.
        let writes = &self.writing()?.writes;
        self.credentials.counting(write, |write| writes.submit(WriteAccount { write, events })).await
    }

    async fn account(&self, username: &Username) -> Result<Option<Account>, StoreError> {
        accounts::get(&self.client().await?, username).await
    }

    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        accounts::all(&self.client().await?).await
    }

    async fn token_by_digest(&self, digest: [u8; 32]) -> Result<Option<ApiToken>, StoreError> {
        accounts::token_by_digest(&self.client().await?, &digest).await
    }

    async fn tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        accounts::tokens(&self.client().await?).await
    }

    async fn session(&self, digest: [u8; 32]) -> Result<Option<Session>, StoreError> {
        accounts::session(&self.client().await?, &digest).await
    }

    async fn sessions(&self) -> Result<Vec<Session>, StoreError> {
        accounts::sessions(&self.client().await?).await
    }

    fn watch_credentials(&self) -> watch::Receiver<u64> {
        self.credentials.watch()
    }

    async fn serialize_account(&self, username: &Username) -> Result<trail_store::AccountSerial, StoreError> {
        let holder = lease::hold(&self.config, &format!("trail-account/{username}")).await?;
        Ok(trail_store::AccountSerial::held(Box::new(holder)))
    }

    async fn update_login_limit(&self, key: &str, update: trail_store::LimitUpdate<'_>) -> Result<(), StoreError> {
        accounts::update_login_limit(&mut self.client().await?, key, update).await
    }

    async fn settled_login_limits(&self, now: jiff::Timestamp) -> Result<Vec<String>, StoreError> {
        accounts::settled_login_limits(&self.client().await?, now).await
    }
}

#[async_trait]
impl JobStore for PgStore {
    fn jobs_changed_elsewhere(&self) -> broadcast::Receiver<trail_store::JobChange> {
        self.jobs_elsewhere.subscribe()
    }

    async fn create_job(&self, job: NewJob) -> Result<Job, StoreError> {
        self.writing()?.writes.submit(CreateJob(job)).await
    }

    async fn report_leaf(&self, report: StatusReport) -> Result<LeafReport, StoreError> {
        self.writing()?.writes.submit(ReportLeaf(report)).await
    }

    async fn job(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        jobs::get(&self.client().await?, id).await
    }

    async fn jobs(&self, before: Option<JobId>, limit: usize) -> Result<Vec<JobSummary>, StoreError> {
        jobs::list(&self.client().await?, before, limit).await
    }

    async fn append_job_log(&self, job: JobId, entries: Vec<LogEntry>) -> Result<Vec<i64>, StoreError> {
        self.writing()?.writes.submit(AppendJobLog { job, entries }).await
    }

    async fn job_log(&self, query: LogQuery) -> Result<LogPage, StoreError> {
        jobs::log(&self.client().await?, &query).await
    }
}

#[async_trait]
impl RetentionStore for PgStore {
    async fn purge(
        &self,
        cutoff: jiff::Timestamp,
        batch: usize,
        user: &str,
    ) -> Result<trail_core::retention::PurgeReport, StoreError> {
        self.writing()?;
        let purged = retention::purge(&mut self.client().await?, cutoff, batch.max(1)).await?;
        trail_store::record_purge(self, user, cutoff, purged).await
    }

    async fn prune_marker(&self) -> Result<Option<trail_core::chain::PruneMarker>, StoreError> {
        retention::marker(&self.client().await?).await
    }
}

#[async_trait]
impl ForwardingStore for PgStore {
    async fn forward_cursor(&self, destination: &str) -> Result<Option<EventId>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt("SELECT delivered_through FROM forward_cursors WHERE destination = $1", &[&destination])
            .await
            .map_err(pg)?;
        Ok(row.map(|r| EventId::new(r.get(0))))
    }

    async fn save_forward_cursor(&self, destination: &str, delivered_through: EventId) -> Result<(), StoreError> {
        self.writing()?.writes.submit(SaveCursor { destination: destination.to_owned(), delivered_through }).await
    }

    async fn forwarding_lease(&self, destination: &str) -> Result<Lease, StoreError> {
        lease::acquire(&self.config, &format!("trail-forward/{destination}")).await
    }
}

#[async_trait]
impl TreeStore for PgStore {
    async fn tree_hashes(&self, indexes: Vec<u64>) -> Result<Vec<trail_core::tree::Hash>, StoreError> {
        tree::hashes(&self.client().await?, &indexes).await
    }
}

#[async_trait]
impl CheckpointStore for PgStore {
    async fn record_checkpoint(
        &self,
        signed: SignedCheckpoint,
        event: EventBody,
    ) -> Result<RecordedCheckpoint, StoreError> {
        self.writing()?.writes.submit(RecordCheckpoint { signed, event }).await
    }

    async fn latest_checkpoint(&self) -> Result<Option<RecordedCheckpoint>, StoreError> {
        checkpoints::latest(&self.client().await?).await
    }

    async fn checkpoint_covering(&self, size: u64) -> Result<Option<RecordedCheckpoint>, StoreError> {
        checkpoints::covering(&self.client().await?, size).await
    }

    async fn key_rotations(&self) -> Result<Vec<RecordedCheckpoint>, StoreError> {
        checkpoints::key_rotations(&self.client().await?).await
    }

    async fn signing_lease(&self) -> Result<Lease, StoreError> {
        lease::acquire(&self.config, "trail-sign").await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn connections_run_without_jit_and_keep_the_urls_own_options() {
        let url = "postgres://trail@localhost/trail?options=-c%20statement_timeout%3D5s";
        let config = super::pg_config(url, Some("audit")).unwrap();
        assert_eq!(
            config.get_options(),
            Some("-c jit=off -c plan_cache_mode=force_custom_plan -c statement_timeout=5s -c search_path=audit,public")
        );
    }
}
