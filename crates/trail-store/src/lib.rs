//! The storage trait every backend implements, and the conformance suite they all pass.
//!
//! The trait speaks only domain types (no SQL, no connection handles), so the SQLite and
//! PostgreSQL backends are interchangeable behind it; only the binary picks one.

pub mod block_index;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod group;
pub mod state;
pub mod tree;
pub mod write;

use async_trait::async_trait;
use trail_core::content::{ContentKind, ContentOutcome, ContentRecord, StoredContent};
use trail_core::identity::{Account, AccountWrite, ApiToken, LoginLimit, Session, Username};
use trail_core::operations::{
    Job, JobId, JobSummary, LogEntry, LogPage, LogQuery, NewJob, Status, StatusReport, Transition,
};
use trail_core::{Event, EventBody, EventId, SearchPage, SearchQuery};

/// A storage failure. Input problems never get this far: events are validated at the edge.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed; `source` is the error it gave, when there is one.
    #[error("the database failed: {message}")]
    Backend {
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Reading was asked of a trail that does not exist.
    #[error("there is no trail at {0}")]
    NoTrail(String),
    #[error("the store is shutting down; retry against a running server")]
    Closed,
    /// The database cannot be reached now (down, restarting, out of connections): nothing was
    /// done, and the same request may be sent again shortly.
    #[error("the database cannot be reached: {0}; retry shortly")]
    Unreachable(String),
    #[error("{0} is in use by another trail process (a running server?)")]
    Locked(String),
    /// The disk holding the database is full: nothing was written, and the same request goes
    /// through once space is freed (the server needs no restart).
    #[error(
        "the disk holding the trail is full ({0}): free space on it, or purge old events (`[retention]`), \
         and send again; Trail resumes by itself"
    )]
    Full(String),
    /// The request contradicts what is stored (a username taken, an account that is gone).
    #[error("{0}")]
    Conflict(String),
    /// The request names something that is not stored (a job, a target).
    #[error("{0}")]
    NotFound(String),
    #[error("the stored data is damaged: {0}; run `trail verify` to find the first bad event")]
    Corrupt(String),
    /// The database's own file is damaged (truncated, overwritten): the database engine cannot
    /// read it, whatever the events say.
    #[error(
        "the database file {file} is damaged ({problem}): stop Trail, keep a copy of the file, and restore it from a \
         backup; `trail verify` reports the events it can still read"
    )]
    Damaged { file: String, problem: String },
}

impl StoreError {
    /// A database failure described in words.
    pub fn backend(message: impl Into<String>) -> StoreError {
        StoreError::Backend { message: message.into(), source: None }
    }

    /// A write asked of a store opened only to read.
    pub fn read_only() -> StoreError {
        StoreError::backend("this trail was opened read-only; write through the running server")
    }

    /// A database failure, keeping the error it came from.
    pub fn caused(message: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Backend { message: message.into(), source: Some(Box::new(source)) }
    }
}

/// A job's refusal: an unknown job or target is not found, anything else contradicts what is
/// stored.
impl From<trail_core::operations::JobError> for StoreError {
    fn from(error: trail_core::operations::JobError) -> StoreError {
        use trail_core::operations::JobError;
        match error {
            JobError::UnknownJob(_) | JobError::UnknownTarget { .. } => StoreError::NotFound(error.to_string()),
            other => StoreError::Conflict(other.to_string()),
        }
    }
}

/// What a status report did: the job after it, the transition, and the events it recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafReport {
    pub job: Job,
    pub transition: Transition,
    pub event_ids: Vec<EventId>,
}

/// Figures about a store, for `/metrics`, `/readyz` and the benchmark.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// The newest committed event id (0 when empty).
    pub head: EventId,
    /// Events not yet in the search index; they are scanned directly until the indexer
    /// catches up.
    pub unindexed: u64,
}

/// The event log (E1, S2, V1-V5): events appended, read and searched; what every other part of
/// the store records its changes in.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Stores the events as one atomic batch and returns their ids, in order, only once the
    /// batch is durable (S2). Each event is chained to the one before it (S4).
    async fn append(&self, events: Vec<EventBody>) -> Result<Vec<EventId>, StoreError>;

    /// One event by id.
    async fn get(&self, id: EventId) -> Result<Option<Event>, StoreError>;

    /// One page of a search, newest first, with the exact V3 semantics of
    /// [`trail_core::Filter::matches`].
    async fn search(&self, query: SearchQuery) -> Result<SearchPage<Event>, StoreError>;

    /// Up to `limit` events with ids above `after`, in id order: for verify, export, tail and
    /// forwarding.
    async fn read_after(&self, after: EventId, limit: usize) -> Result<Vec<Event>, StoreError>;

    /// Every user that has an event, sorted.
    async fn known_users(&self) -> Result<Vec<String>, StoreError>;

    async fn stats(&self) -> Result<StoreStats, StoreError>;

    /// Waits until background indexes cover every committed event (tests, benchmarks).
    async fn catch_up_indexes(&self) -> Result<(), StoreError>;

    /// Events sharing a job id or a request id with the given ones, oldest first: the
    /// correlation from a user's request to its job, leaves and device results, and back.
    async fn correlated(
        &self,
        job_id: Option<String>,
        request_id: Option<String>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;

    /// The newest committed event id, changing after every commit: forwarders and live views
    /// wait on it instead of polling.
    fn watch_head(&self) -> tokio::sync::watch::Receiver<EventId>;
}

/// Device contents (E4): the latest content of each device, recorded with its event.
#[async_trait]
pub trait ContentStore: EventLog {
    /// E4: records a device's content. When it is the first of its kind for the device or
    /// differs from the latest, it becomes the latest and the event `record.on_change` builds
    /// from the previous content is appended, in one transaction: the baseline never moves
    /// without its event. When unchanged, only the time it was last seen moves, and no event is
    /// made. Contents are stored once per hash.
    async fn record_content(&self, record: ContentRecord) -> Result<ContentOutcome, StoreError>;

    /// A device's latest content of one kind.
    async fn content_state(&self, device: &str, kind: ContentKind) -> Result<Option<StoredContent>, StoreError>;
}

/// Accounts, API tokens and browser sessions (A1, A2), each change written with its events.
#[async_trait]
pub trait AccountStore: EventLog {
    /// Applies a change to the accounts and appends the events recording it, in one transaction:
    /// an account never changes without its events, and refused changes store nothing
    /// ([`StoreError::Conflict`] when the username is taken, or gone).
    async fn write_account(&self, write: AccountWrite, events: Vec<EventBody>) -> Result<Vec<EventId>, StoreError>;

    async fn account(&self, username: &Username) -> Result<Option<Account>, StoreError>;

    /// Every account, by username.
    async fn accounts(&self) -> Result<Vec<Account>, StoreError>;

    /// The API token with this digest, revoked or not.
    async fn token_by_digest(&self, digest: [u8; 32]) -> Result<Option<ApiToken>, StoreError>;

    /// Every API token, by id.
    async fn tokens(&self) -> Result<Vec<ApiToken>, StoreError>;

    /// The browser session with this id digest.
    async fn session(&self, digest: [u8; 32]) -> Result<Option<Session>, StoreError>;

    /// Every open session, oldest first (for the expiry sweep).
    async fn sessions(&self) -> Result<Vec<Session>, StoreError>;

    /// A count that moves after every committed change that can stop a credential
    /// ([`AccountWrite::changes_credentials`]), made through this store or, with several nodes
    /// on one database, through any of them: what a node caches about tokens is dropped when it
    /// moves.
    fn watch_credentials(&self) -> tokio::sync::watch::Receiver<u64>;

    /// Waits until no one else, through any node sharing the trail, is changing `username`'s
    /// state (a login attempt judging it, an administrator locking it), and holds that until
    /// the answer is dropped.
    async fn serialize_account(&self, username: &Username) -> Result<AccountSerial, StoreError>;

    /// Changes the login limit under `key` (what the policy remembers of a client address or
    /// of a name that is no account, see [`trail_core::identity::limits`]): `update` gets the
    /// saved text, if any, and answers what to save (`None`: forget the key). Through every node
    /// sharing the trail, one update of a key at a time.
    async fn update_login_limit(&self, key: &str, update: LimitUpdate<'_>) -> Result<(), StoreError>;

    /// The keys whose limits settle by `now`, for the sweep that ages them.
    async fn settled_login_limits(&self, now: jiff::Timestamp) -> Result<Vec<String>, StoreError>;
}

/// What [`AccountStore::update_login_limit`] does with a key's saved text; called once.
pub type LimitUpdate<'a> = Box<dyn FnOnce(Option<&str>) -> Option<LoginLimit> + Send + 'a>;

/// The count behind [`AccountStore::watch_credentials`], as a backend keeps it.
#[derive(Clone)]
pub struct CredentialsCount(tokio::sync::watch::Sender<u64>);

impl Default for CredentialsCount {
    fn default() -> Self {
        CredentialsCount(tokio::sync::watch::Sender::new(0))
    }
}

impl CredentialsCount {
    /// A credential may have changed (heard from another node, or possibly missed).
    pub fn moved(&self) {
        self.0.send_modify(|count| *count += 1);
    }

    /// Stores `write` through `submit`, and moves the count once it has committed if it can
    /// stop a credential.
    pub async fn counting<T, F>(
        &self,
        write: AccountWrite,
        submit: impl FnOnce(AccountWrite) -> F,
    ) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, StoreError>>,
    {
        let changes_credentials = write.changes_credentials();
        let answer = submit(write).await?;
        if changes_credentials {
            self.moved();
        }
        Ok(answer)
    }

    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.subscribe()
    }
}

/// Held while one change of an account's state is read, judged and written: see
/// [`AccountStore::serialize_account`]. Released when dropped.
pub struct AccountSerial {
    _holder: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl AccountSerial {
    /// Nothing to hold beyond the process: one process writes the trail, and it serialises its
    /// own changes.
    pub fn in_process() -> AccountSerial {
        AccountSerial { _holder: None }
    }

    /// Held by `holder` (a lock's connection, say) until it is dropped.
    pub fn held(holder: Box<dyn std::any::Any + Send + Sync>) -> AccountSerial {
        AccountSerial { _holder: Some(holder) }
    }
}

/// A job's change committed through another node sharing the trail: the job created, or one
/// of its leaves reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobChange {
    pub job: JobId,
    /// The leaf reported: its target and new status.
    pub leaf: Option<(String, Status)>,
}

/// Jobs, their leaves and their logs (V7, V8).
#[async_trait]
pub trait JobStore: EventLog {
    /// Job changes committed through other nodes sharing the trail, as they commit, so that
    /// live status views show every node's; this node's own go to them directly. Nothing ever
    /// comes on a trail one process writes.
    fn jobs_changed_elsewhere(&self) -> tokio::sync::broadcast::Receiver<JobChange>;

    /// Creates a job with a queued leaf per target and appends its JOB_SUBMITTED event, in one
    /// transaction.
    async fn create_job(&self, job: NewJob) -> Result<Job, StoreError>;

    /// Applies a status report to a leaf and appends the events the transition records (the
    /// job's start, a leaf's final status, the job's final status), in one transaction. A
    /// refused report stores nothing: [`StoreError::NotFound`] for an unknown job or target,
    /// [`StoreError::Conflict`] for a finished leaf or a step back.
    async fn report_leaf(&self, report: StatusReport) -> Result<LeafReport, StoreError>;

    async fn job(&self, id: JobId) -> Result<Option<Job>, StoreError>;

    /// Jobs newest first, below `before` when given.
    async fn jobs(&self, before: Option<JobId>, limit: usize) -> Result<Vec<JobSummary>, StoreError>;

    /// Appends entries to a job's log (V7), apart from the audit trail; answers their numbers.
    /// An unknown job or target stores nothing.
    async fn append_job_log(&self, job: JobId, entries: Vec<LogEntry>) -> Result<Vec<i64>, StoreError>;

    /// One page of a job's log, oldest first.
    async fn job_log(&self, query: LogQuery) -> Result<LogPage, StoreError>;
}

/// Retention (S3): purging a prefix of the chain, and where verification resumes.
#[async_trait]
pub trait RetentionStore: EventLog {
    /// Purges the events older than `cutoff` (S3): the longest prefix of the chain, by id, whose
    /// events are all older, and never past what a forwarding destination has yet to deliver.
    /// Rows go in transactions of at most `batch` events (PostgreSQL drops whole monthly
    /// partitions first, one transaction each); each moves the marker (the last purged id and
    /// hash, so the rest still verifies). Then it appends the RETENTION_PURGED event naming
    /// `user`. Contents no device holds any more go too.
    async fn purge(
        &self,
        cutoff: jiff::Timestamp,
        batch: usize,
        user: &str,
    ) -> Result<trail_core::retention::PurgeReport, StoreError>;

    /// The marker of the last purge, if any: verification resumes from it.
    async fn prune_marker(&self) -> Result<Option<trail_core::chain::PruneMarker>, StoreError>;
}

/// Forwarding (F4): each destination's durable cursor, and the lease to forward it.
#[async_trait]
pub trait ForwardingStore: EventLog {
    /// How far a forwarding destination has delivered (F4): the id of the last event it no
    /// longer needs to send, or `None` for a destination never seen before.
    async fn forward_cursor(&self, destination: &str) -> Result<Option<EventId>, StoreError>;

    /// Durably moves a destination's cursor; a restart resumes after it.
    async fn save_forward_cursor(&self, destination: &str, delivered_through: EventId) -> Result<(), StoreError>;

    /// Waits until this process may forward `destination`, and answers the lease (F4: exactly
    /// one node forwards each destination at a time). A store only one process can write needs
    /// no more than the default, a lease held at once and never lost.
    async fn forwarding_lease(&self, destination: &str) -> Result<Lease, StoreError> {
        let _ = destination;
        Ok(Lease::exclusive())
    }
}

/// The Merkle tree over the events (S4): the writers store its hashes in the events'
/// transaction (a row per 16 leaves, `trail_core::tree::row_of`), and a purge keeps them;
/// [`tree`] reads roots and proofs.
#[async_trait]
pub trait TreeStore: EventLog {
    /// The stored hashes at these stored indexes, in the same order; [`StoreError::NotFound`]
    /// when the tree holds no such hash.
    async fn tree_hashes(&self, indexes: Vec<u64>) -> Result<Vec<trail_core::tree::Hash>, StoreError>;
}

/// Signed checkpoints (S4): each kept beside the CHECKPOINT event that records it, and the lease
/// to sign them.
#[async_trait]
pub trait CheckpointStore: TreeStore {
    /// Appends the CHECKPOINT event and keeps the checkpoint beside it, in one transaction.
    async fn record_checkpoint(
        &self,
        signed: trail_core::checkpoint::SignedCheckpoint,
        event: EventBody,
    ) -> Result<trail_core::checkpoint::RecordedCheckpoint, StoreError>;

    /// The newest checkpoint.
    async fn latest_checkpoint(&self) -> Result<Option<trail_core::checkpoint::RecordedCheckpoint>, StoreError>;

    /// The oldest checkpoint of at least `size` leaves: the first to cover leaf `size - 1`.
    async fn checkpoint_covering(
        &self,
        size: u64,
    ) -> Result<Option<trail_core::checkpoint::RecordedCheckpoint>, StoreError>;

    /// The checkpoints that announce a new signing key (see `trail_core::rotation`), oldest
    /// first: whoever trusts the first key learns the others from them.
    async fn key_rotations(&self) -> Result<Vec<trail_core::checkpoint::RecordedCheckpoint>, StoreError>;

    /// Waits until this process may sign checkpoints, and answers the lease: one node signs at
    /// a time. As for forwarding, a store only one process can write needs no more.
    async fn signing_lease(&self) -> Result<Lease, StoreError> {
        Ok(Lease::exclusive())
    }
}

/// The whole store, every concern: what the binary opens and the server holds. The services take
/// only the part they use: `trail-accounts` an [`AccountStore`], `trail-operations` a
/// [`JobStore`] and a [`ContentStore`], `trail-forward` a [`ForwardingStore`]; each part keeps
/// the [`EventLog`], which every change is recorded in.
pub trait Store:
    EventLog + ContentStore + AccountStore + JobStore + RetentionStore + ForwardingStore + TreeStore + CheckpointStore
{
}

impl<T> Store for T where
    T: EventLog
        + ContentStore
        + AccountStore
        + JobStore
        + RetentionStore
        + ForwardingStore
        + TreeStore
        + CheckpointStore
        + ?Sized
{
}

/// Every part of the store, for code that uses a concrete store's methods (tests, tools).
pub mod prelude {
    pub use super::{
        AccountStore, CheckpointStore, ContentStore, EventLog, ForwardingStore, JobStore, RetentionStore, Store,
        TreeStore,
    };
}

/// The right to do one thing alone among the nodes sharing a trail (forward one destination, sign
/// checkpoints), held until dropped.
pub struct Lease {
    /// Turns true if the lease is lost (its database connection broke): stop sending at once,
    /// and ask again.
    pub lost: tokio::sync::watch::Receiver<bool>,
    /// Whatever holds the lease (a database session).
    _holder: Box<dyn std::any::Any + Send + Sync>,
}

impl Lease {
    pub fn new(lost: tokio::sync::watch::Receiver<bool>, holder: Box<dyn std::any::Any + Send + Sync>) -> Self {
        Lease { lost, _holder: holder }
    }

    /// A lease that is never lost.
    pub fn exclusive() -> Self {
        let (keep, lost) = tokio::sync::watch::channel(false);
        Lease { lost, _holder: Box::new(keep) }
    }
}

/// Finishes a purge (S3) once its batches are done: appends the RETENTION_PURGED event naming
/// `user` when anything went, and reports. Shared by the backends, which differ only in how
/// they remove events.
pub async fn record_purge(
    store: &dyn Store,
    user: &str,
    cutoff: jiff::Timestamp,
    purged: u64,
) -> Result<trail_core::retention::PurgeReport, StoreError> {
    let marker = store.prune_marker().await?;
    let event_id = match (purged, &marker) {
        (1.., Some(marker)) => {
            let event = trail_core::retention::purge_event(user, cutoff, purged, marker, jiff::Timestamp::now());
            store.append(vec![event]).await?.first().copied()
        }
        _ => None,
    };
    Ok(trail_core::retention::PurgeReport { purged, marker, event_id })
}
