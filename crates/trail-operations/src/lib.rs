//! Operations over any store (V7, V8, E4): submitting jobs, their leaves' status reports and
//! logs, the device results that jobs produce, and the live updates of operations in progress.
//! Used by the server; nothing here knows HTTP.

mod devices;
mod jobs;

pub use devices::{DeviceResult, DeviceState, Recorded};
pub use jobs::{JobUpdate, LogLine};

use std::sync::Arc;
use trail_core::operations::JobError;
use trail_store::{ContentStore, JobStore, StoreError};

/// Why an operation was refused, or failed.
#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    /// Bad input: nothing was stored.
    #[error("{0}")]
    Invalid(String),
    /// Input too large: nothing was stored.
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<JobError> for OperationError {
    fn from(error: JobError) -> OperationError {
        match error {
            JobError::Invalid(message) => OperationError::Invalid(message),
            JobError::UnknownJob(_) | JobError::UnknownTarget { .. } => {
                OperationError::Store(StoreError::NotFound(error.to_string()))
            }
            JobError::Finished { .. } => OperationError::Store(StoreError::Conflict(error.to_string())),
        }
    }
}

/// Sends live views the job changes other nodes sharing the trail commit (this node's own are
/// sent as they are made), each with the job as it now stands. The task ends with the store
/// (its channel closes), and does not keep it: it holds it weakly.
fn forward_changes_made_elsewhere(jobs: &Arc<dyn JobStore>, updates: tokio::sync::broadcast::Sender<JobUpdate>) {
    use tokio::sync::broadcast::error::RecvError;
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    let mut changes = jobs.jobs_changed_elsewhere();
    let jobs = Arc::downgrade(jobs);
    runtime.spawn(async move {
        loop {
            let change = match changes.recv().await {
                Ok(change) => change,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            };
            let Some(jobs) = jobs.upgrade() else { return };
            if let Ok(Some(job)) = jobs.job(change.job).await {
                let leaf = change.leaf.as_ref().map(|(target, status)| (target.as_str(), *status));
                let _ = updates.send(JobUpdate::of(&job.summary(), leaf));
            }
        }
    });
}

/// Updates of operations in progress kept for slow listeners before they miss some.
const UPDATES: usize = 1024;

pub struct Operations {
    jobs: Arc<dyn JobStore>,
    contents: Arc<dyn ContentStore>,
    updates: tokio::sync::broadcast::Sender<JobUpdate>,
    clock: fn() -> jiff::Timestamp,
}

impl Operations {
    /// The service over the jobs and the device contents of a store (usually one store, given
    /// twice).
    pub fn new(jobs: Arc<dyn JobStore>, contents: Arc<dyn ContentStore>) -> Operations {
        let updates = tokio::sync::broadcast::Sender::new(UPDATES);
        forward_changes_made_elsewhere(&jobs, updates.clone());
        Operations { jobs, contents, updates, clock: jiff::Timestamp::now }
    }

    /// Every job's changes as they happen (V8), for live status views.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<JobUpdate> {
        self.updates.subscribe()
    }
}
