//! Write requests: each kind of write is one type, in a file of its own beside this one, that
//! knows its weight in a group commit, what it does inside the writer's transaction, and what it
//! answers.
//!
//! A backend's writer only gathers requests into groups, opens the transaction, runs each
//! request (under a savepoint of its own if it [can refuse](WriteRequest::can_refuse)), and
//! commits; it never names a kind of write. What a
//! request does is written once, here, against the storage traits of [`storage`], which each
//! backend implements for its transaction: the backend only says how to store things. Adding a
//! kind of write is a new type here (or, for one only a backend needs, in that backend) and the
//! storage it uses.
//!
//! How a write travels: a store method builds the request and [`WriteQueue::submit`]s it; the
//! writer takes it with whatever else waits ([`crate::group::gather`], bounded by the
//! [`WriteRequest::weight`]s), runs it ([`Pending::apply`]), keeps its [`Outcome`] until the group
//! commits, then answers it, or tells it that nothing was stored.

mod append_events;
mod append_job_log;
mod create_job;
mod queue;
mod record_checkpoint;
mod record_content;
mod report_leaf;
mod request;
mod save_cursor;
pub mod storage;
mod write_account;

pub use append_events::AppendEvents;
pub use append_job_log::AppendJobLog;
pub use create_job::CreateJob;
pub use queue::{Queue, WriteQueue};
pub use record_checkpoint::RecordCheckpoint;
pub use record_content::RecordContent;
pub use report_leaf::ReportLeaf;
pub use request::{Apply, Outcome, Pending, Queued, WriteRequest};
pub use save_cursor::SaveCursor;
pub use write_account::WriteAccount;
