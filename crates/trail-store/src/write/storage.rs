//! What the writer's transaction offers write requests, by concern: each backend implements
//! these for its transaction, saying only how each thing is stored. A request's impl names the
//! ones it needs.

use crate::StoreError;
use async_trait::async_trait;
use trail_core::checkpoint::RecordedCheckpoint;
use trail_core::content::{ContentKind, StoredContent};
use trail_core::identity::AccountWrite;
use trail_core::operations::{Job, JobId, Leaf, LogEntry, NewJob};
use trail_core::{EventBody, EventId};

/// The chain: events numbered, hashed and inserted after the last one.
#[async_trait]
pub trait EventsTx: Send {
    /// Appends the events in order and answers their ids; on an error the request is rolled
    /// back, and the chain's position with it.
    async fn append(&mut self, events: &[EventBody]) -> Result<Vec<EventId>, StoreError>;
}

/// Device contents (E4).
#[async_trait]
pub trait ContentsTx: EventsTx {
    async fn latest_content(&mut self, device: &str, kind: ContentKind) -> Result<Option<StoredContent>, StoreError>;

    /// The content is unchanged: only the time it was last seen moves.
    async fn touch_content(&mut self, device: &str, kind: ContentKind, seen_at: i64) -> Result<(), StoreError>;

    /// The content becomes the device's latest (stored once per hash).
    async fn replace_content(
        &mut self,
        device: &str,
        kind: ContentKind,
        hash: &str,
        content: &str,
        changed_at: i64,
    ) -> Result<(), StoreError>;
}

/// Accounts, tokens and sessions (A1, A2).
#[async_trait]
pub trait AccountsTx: EventsTx {
    /// Applies the change; `false` when it contradicts what is stored (the username taken, the
    /// account gone), having written nothing.
    async fn apply_account(&mut self, write: &AccountWrite) -> Result<bool, StoreError>;
}

/// Jobs, their leaves and logs (V7, V8).
#[async_trait]
pub trait JobsTx: EventsTx {
    /// Inserts the job with a queued leaf per target; its submit event is set after.
    async fn insert_job(&mut self, job: &NewJob) -> Result<JobId, StoreError>;

    async fn set_submit_event(&mut self, job: JobId, event: EventId) -> Result<(), StoreError>;

    async fn set_completed_event(&mut self, job: JobId, event: EventId) -> Result<(), StoreError>;

    async fn job(&mut self, id: JobId) -> Result<Option<Job>, StoreError>;

    async fn save_leaf(&mut self, job: JobId, leaf: &Leaf) -> Result<(), StoreError>;

    /// The job's targets when it exists, held until the commit so that the log appended to it
    /// is numbered in one order.
    async fn job_targets(&mut self, job: JobId) -> Result<Option<Vec<String>>, StoreError>;

    /// Appends entries numbered after the job's last; answers their numbers.
    async fn append_log(&mut self, job: JobId, entries: &[LogEntry]) -> Result<Vec<i64>, StoreError>;
}

/// Signed checkpoints (S4).
#[async_trait]
pub trait CheckpointsTx: EventsTx {
    async fn insert_checkpoint(&mut self, checkpoint: &RecordedCheckpoint) -> Result<(), StoreError>;
}

/// Forwarding (F4).
#[async_trait]
pub trait ForwardingTx: Send {
    async fn save_cursor(&mut self, destination: &str, delivered_through: EventId) -> Result<(), StoreError>;
}
