//! What a trail keeps beside its events, in domain types: moved whole by `trail migrate` from
//! one backend to another. Job logs are not in it: they can be long, so they are copied job by
//! job, a page at a time, through the `Store` trait.

use trail_core::EventId;
use trail_core::content::{ContentKind, StoredContent};
use trail_core::identity::{Account, ApiToken, Session};
use trail_core::operations::Job;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrailState {
    pub accounts: Vec<Account>,
    /// Each token with the digest of its secret (the secret itself is never stored).
    pub tokens: Vec<(ApiToken, [u8; 32])>,
    pub sessions: Vec<Session>,
    pub contents: Vec<DeviceContent>,
    pub jobs: Vec<JobRecord>,
    /// Each forwarding destination's cursor.
    pub cursors: Vec<(String, EventId)>,
    /// Signed checkpoints, oldest first (their CHECKPOINT events travel with the events).
    pub checkpoints: Vec<trail_core::checkpoint::RecordedCheckpoint>,
}

/// A device's latest content of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceContent {
    pub device: String,
    pub kind: ContentKind,
    pub content: StoredContent,
}

/// A job with what its row holds beyond [`Job`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub job: Job,
    /// The submitter's address.
    pub client: Option<String>,
}
