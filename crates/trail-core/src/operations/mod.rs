//! Operations (V7, V8): jobs over groups of targets, one leaf per target, their status rules,
//! job log lines, and the device results they produce (E4). No I/O here.
//!
//! A job's leaves move `queued → running → succeeded | failed | cancelled` (a leaf may also
//! finish straight from `queued`). A finished leaf never changes again. The job is finished when
//! every leaf is: failed if any failed, else cancelled if any was cancelled, else succeeded.

pub mod inventory;
pub mod results;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use crate::ids::JobId;

pub mod limits {
    pub const NAME_CHARS: usize = 256;
    pub const TARGET_CHARS: usize = 255;
    pub const TARGETS: usize = 10_000;
    pub const STATUS_MESSAGE_BYTES: usize = 64 * 1024;
    /// One job log entry (it may hold several lines).
    pub const LOG_ENTRY_BYTES: usize = 64 * 1024;
    pub const LOG_ENTRIES_PER_REQUEST: usize = 10_000;
    /// An archived configuration, or an inventory document as JSON.
    pub const CONTENT_BYTES: usize = 8 * 1024 * 1024;
    /// A committed diff, a restore's comment or source.
    pub const COMMIT_DIFF_BYTES: usize = 512 * 1024;
    pub const COMMENT_BYTES: usize = 16 * 1024;
    /// A restore's source: it becomes an attribute.
    pub const SOURCE_BYTES: usize = 1024;
}

/// `text` with its control characters shown as escapes (`\u{6}`, `\n`), but those `keep`
/// names: what a device sends (a configuration, an inventory) goes into an event's message as it
/// is stored, so it must neither fail the event's checks nor start a line of its own.
pub fn printable(text: &str, keep: &[char]) -> String {
    text.chars()
        .map(|c| if c.is_control() && !keep.contains(&c) { c.escape_debug().to_string() } else { c.to_string() })
        .collect()
}

/// Text a platform sends (a status message, a diff, a comment): CRLF line ends become LF, and any
/// other control character but tab is refused, as in an event's message. Sizes are the callers'
/// to check (they answer 413).
pub fn clean_text(what: &str, text: &str) -> Result<String, JobError> {
    let text = text.replace("\r\n", "\n");
    if let Some(bad) = text.chars().find(|c| c.is_control() && !matches!(c, '\n' | '\t')) {
        return Err(JobError::Invalid(format!("the {what} holds the control character {bad:?}")));
    }
    Ok(text)
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 5] =
        [Status::Queued, Status::Running, Status::Succeeded, Status::Failed, Status::Cancelled];

    /// Where this status stands in [`Status::ALL`]: its slot in a job's counts.
    pub fn index(self) -> usize {
        Status::ALL.iter().position(|s| *s == self).expect("every status is listed")
    }

    pub fn name(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.name() == text)
    }

    pub fn is_final(self) -> bool {
        matches!(self, Status::Succeeded | Status::Failed | Status::Cancelled)
    }

    /// E3: a failure is an error; a cancellation says nothing of success.
    pub fn outcome(self) -> Option<crate::Outcome> {
        match self {
            Status::Succeeded => Some(crate::Outcome::Success),
            Status::Failed => Some(crate::Outcome::Failure),
            _ => None,
        }
    }
}

/// One target's leaf operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    pub target: String,
    pub status: Status,
    pub message: String,
    pub updated_at: Timestamp,
    /// The event recording its final status.
    pub event_id: Option<crate::EventId>,
}

/// A job: a named operation over its targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: JobId,
    pub name: String,
    pub submitter: String,
    pub submitted_at: Timestamp,
    /// The request that submitted it, and the session it came from.
    pub request_id: Option<String>,
    pub session_id: Option<String>,
    /// The JOB_SUBMITTED event, parent of everything the job records.
    pub submit_event_id: crate::EventId,
    pub leaves: Vec<Leaf>,
    /// The OPERATION_COMPLETED event, once every leaf has finished.
    pub completed_event_id: Option<crate::EventId>,
}

/// A job as submitted, before it has an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub name: String,
    pub targets: Vec<String>,
    pub submitter: String,
    pub submitted_at: Timestamp,
    pub request_id: Option<String>,
    pub session_id: Option<String>,
    pub client: Option<String>,
    /// The credential that submitted it (see [`crate::event::submitted_by`]).
    pub submitted_by: String,
}

/// A status report for one leaf of a job, as a store applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub job: JobId,
    pub target: String,
    pub status: Status,
    pub message: String,
    pub time: Timestamp,
    /// The credential that sent the report (see [`crate::event::submitted_by`]).
    pub submitted_by: String,
}

impl StatusReport {
    pub fn new(job: JobId, target: &str, status: Status, message: &str, time: Timestamp, by: &str) -> StatusReport {
        let (target, message, submitted_by) = (target.to_owned(), message.to_owned(), by.to_owned());
        StatusReport { job, target, status, message, time, submitted_by }
    }
}

/// A job in a list: its leaves counted, not listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSummary {
    pub id: JobId,
    pub name: String,
    pub submitter: String,
    pub submitted_at: Timestamp,
    /// Leaves per status, in [`Status::ALL`] order.
    pub counts: [usize; 5],
}

impl JobSummary {
    pub fn status(&self) -> Status {
        status_of(&self.counts)
    }
}

/// A job's status from its leaves' counts (see the module's rule).
pub fn status_of(counts: &[usize; 5]) -> Status {
    let [queued, running, succeeded, failed, cancelled] = *counts;
    let total = queued + running + succeeded + failed + cancelled;
    if queued == total {
        Status::Queued
    } else if queued + running > 0 {
        Status::Running
    } else if failed > 0 {
        Status::Failed
    } else if cancelled > 0 {
        Status::Cancelled
    } else {
        Status::Succeeded
    }
}

/// Why a job or a status report is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Invalid(String),
    #[error("there is no job {0}")]
    UnknownJob(JobId),
    #[error("job {job} has no target {target:?}; its targets are fixed when it is submitted")]
    UnknownTarget { job: JobId, target: String },
    #[error("{target} of job {job} already finished ({status}); a finished leaf cannot change")]
    Finished { job: JobId, target: String, status: &'static str },
}

fn check_text(what: &str, text: &str, max: usize) -> Result<(), JobError> {
    let length = text.chars().count();
    if text.trim().is_empty() || length > max {
        return Err(JobError::Invalid(format!("{what} must be 1-{max} characters, got {length}")));
    }
    if let Some(bad) = text.chars().find(|c| c.is_control()) {
        return Err(JobError::Invalid(format!("{what} {text:?} holds the control character {bad:?}")));
    }
    Ok(())
}

impl NewJob {
    /// Refuses an empty or oversized name, no targets, too many, and duplicates.
    pub fn check(&self) -> Result<(), JobError> {
        check_text("the job name", &self.name, limits::NAME_CHARS)?;
        if self.targets.is_empty() || self.targets.len() > limits::TARGETS {
            return Err(JobError::Invalid(format!(
                "a job needs 1-{} targets, got {}",
                limits::TARGETS,
                self.targets.len()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for target in &self.targets {
            check_text("a target", target, limits::TARGET_CHARS)?;
            if !seen.insert(target.as_str()) {
                return Err(JobError::Invalid(format!("target {target:?} is listed twice; list each target once")));
            }
        }
        Ok(())
    }
}

/// What a status report did to a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub target: String,
    pub from: Status,
    pub to: Status,
    /// The leaf just finished: its final status is recorded.
    pub leaf_finished: bool,
    /// The job's first leaf started running.
    pub job_started: bool,
    /// The job just finished, with this status.
    pub job_finished: Option<Status>,
}

impl Job {
    /// The job's status, from its leaves.
    pub fn status(&self) -> Status {
        status_of(&self.counts())
    }

    pub fn summary(&self) -> JobSummary {
        JobSummary {
            id: self.id,
            name: self.name.clone(),
            submitter: self.submitter.clone(),
            submitted_at: self.submitted_at,
            counts: self.counts(),
        }
    }

    /// Counts of leaves per status, in [`Status::ALL`] order.
    pub fn counts(&self) -> [usize; 5] {
        let mut counts = [0; 5];
        for leaf in &self.leaves {
            counts[leaf.status.index()] += 1;
        }
        counts
    }

    pub fn leaf(&self, target: &str) -> Option<&Leaf> {
        self.leaves.iter().find(|l| l.target == target)
    }

    /// Applies a status report to a leaf, or says why it cannot be.
    pub fn apply(&mut self, target: &str, to: Status, message: &str, at: Timestamp) -> Result<Transition, JobError> {
        if message.len() > limits::STATUS_MESSAGE_BYTES {
            return Err(JobError::Invalid(format!(
                "a status message is at most {} bytes, got {}",
                limits::STATUS_MESSAGE_BYTES,
                message.len()
            )));
        }
        let was_queued = self.status() == Status::Queued;
        let job = self.id;
        let leaf = self
            .leaves
            .iter_mut()
            .find(|l| l.target == target)
            .ok_or_else(|| JobError::UnknownTarget { job, target: target.to_owned() })?;
        let from = leaf.status;
        if from.is_final() {
            return Err(JobError::Finished { job, target: target.to_owned(), status: from.name() });
        }
        if to == Status::Queued && from != Status::Queued {
            return Err(JobError::Invalid(format!(
                "{target} of job {job} is {}; it cannot go back to queued",
                from.name()
            )));
        }
        leaf.status = to;
        leaf.message = message.to_owned();
        leaf.updated_at = at;
        let job_status = self.status();
        Ok(Transition {
            target: target.to_owned(),
            from,
            to,
            leaf_finished: to.is_final(),
            job_started: was_queued && job_status != Status::Queued,
            job_finished: Some(job_status).filter(|s| s.is_final()),
        })
    }
}

/// One entry of a job's log: a time and text, which may span several lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub time: Timestamp,
    pub target: Option<String>,
    pub text: String,
}

/// A stored log entry, numbered in its job from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLogEntry {
    pub seq: i64,
    pub entry: LogEntry,
}

/// One page of a job's log: oldest first after `after`, optionally one target's, optionally
/// only entries matching a pattern (the V3 semantics of the event filters).
#[derive(Debug, Clone)]
pub struct LogQuery {
    pub job: JobId,
    pub target: Option<String>,
    pub contains: Option<crate::Pattern>,
    pub after: i64,
    pub limit: usize,
    /// When the store stops looking and answers with what it has (see
    /// [`crate::query::SEARCH_BUDGET`]).
    pub deadline: Option<std::time::Instant>,
}

/// One page of a job's log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogPage {
    pub entries: Vec<StoredLogEntry>,
    /// The time budget ran out before the page was full: the number of the first entry left
    /// unexamined (a next page goes on after the one before it).
    pub stopped_at: Option<i64>,
}

impl LogPage {
    /// Where the next page of a query for `limit` entries starts (its `after`): after the
    /// last entry examined, or `None` when the log has no more.
    pub fn next_after(&self, limit: usize) -> Option<i64> {
        match self.stopped_at {
            Some(stopped) => Some(stopped - 1),
            None if self.entries.len() == limit => self.entries.last().map(|e| e.seq),
            None => None,
        }
    }
}

pub fn check_log_entry(entry: &LogEntry) -> Result<(), JobError> {
    if entry.text.len() > limits::LOG_ENTRY_BYTES {
        return Err(JobError::Invalid(format!(
            "a log entry is at most {} bytes, got {}",
            limits::LOG_ENTRY_BYTES,
            entry.text.len()
        )));
    }
    if let Some(bad) = entry.text.chars().find(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')) {
        return Err(JobError::Invalid(format!("a log entry holds the control character {bad:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventId;

    fn job(targets: &[&str]) -> Job {
        Job {
            id: JobId::new(7),
            name: "archive edge routers".into(),
            submitter: "alice".into(),
            submitted_at: Timestamp::UNIX_EPOCH,
            request_id: None,
            session_id: None,
            submit_event_id: EventId::new(1),
            leaves: targets
                .iter()
                .map(|t| Leaf {
                    target: (*t).into(),
                    status: Status::Queued,
                    message: String::new(),
                    updated_at: Timestamp::UNIX_EPOCH,
                    event_id: None,
                })
                .collect(),
            completed_event_id: None,
        }
    }

    #[test]
    fn leaves_move_forward_and_the_job_follows() {
        let mut job = job(&["edge1", "edge2", "edge3"]);
        let now = Timestamp::UNIX_EPOCH;
        let started = job.apply("edge1", Status::Running, "", now).unwrap();
        assert!(started.job_started && !started.leaf_finished && started.job_finished.is_none());
        assert_eq!(job.status(), Status::Running);
        assert!(job.apply("edge1", Status::Succeeded, "ok", now).unwrap().leaf_finished);
        job.apply("edge2", Status::Failed, "timeout", now).unwrap();
        let last = job.apply("edge3", Status::Cancelled, "", now).unwrap();
        assert_eq!(last.job_finished, Some(Status::Failed), "any failure fails the job");
        assert_eq!(job.counts(), [0, 0, 1, 1, 1]);
    }

    #[test]
    fn finished_leaves_never_change_and_unknown_targets_are_refused() {
        let mut job = job(&["edge1", "edge2"]);
        let now = Timestamp::UNIX_EPOCH;
        job.apply("edge1", Status::Succeeded, "", now).unwrap();
        let refused = job.apply("edge1", Status::Running, "", now).unwrap_err();
        assert_eq!(refused.to_string(), "edge1 of job 7 already finished (succeeded); a finished leaf cannot change");
        assert!(matches!(job.apply("edge9", Status::Running, "", now), Err(JobError::UnknownTarget { .. })));
        job.apply("edge2", Status::Running, "", now).unwrap();
        assert!(job.apply("edge2", Status::Queued, "", now).is_err());
        assert_eq!(job.apply("edge2", Status::Succeeded, "", now).unwrap().job_finished, Some(Status::Succeeded));
    }

    #[test]
    fn cancelled_without_failures_is_cancelled() {
        let mut job = job(&["a", "b"]);
        job.apply("a", Status::Succeeded, "", Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(
            job.apply("b", Status::Cancelled, "", Timestamp::UNIX_EPOCH).unwrap().job_finished,
            Some(Status::Cancelled)
        );
    }

    #[test]
    fn new_jobs_need_a_name_and_distinct_targets() {
        let new = |name: &str, targets: &[&str]| NewJob {
            name: name.into(),
            targets: targets.iter().map(|t| (*t).to_string()).collect(),
            submitter: "a".into(),
            submitted_at: Timestamp::UNIX_EPOCH,
            request_id: None,
            session_id: None,
            client: None,
            submitted_by: "trail".into(),
        };
        assert!(new("archive", &["edge1", "edge2"]).check().is_ok());
        assert!(new("archive", &["edge1", "edge1"]).check().unwrap_err().to_string().contains("listed twice"));
        assert!(new("archive", &[]).check().unwrap_err().to_string().contains("1-10000 targets"));
        assert!(new(" ", &["edge1"]).check().is_err());
        assert!(new("archive", &["edge\n1"]).check().is_err());
    }
}
