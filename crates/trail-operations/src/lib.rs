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
        Operations { jobs, contents, updates, clock: jiff::Timestamp::now }
    }

    /// Every job's changes as they happen (V8), for live status views.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<JobUpdate> {
        self.updates.subscribe()
    }
}
