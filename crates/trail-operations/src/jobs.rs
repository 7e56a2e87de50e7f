//! Jobs: submitting, status reports, and logs.

use crate::{OperationError, Operations};
use serde::Serialize;
use trail_core::operations::results::Origin;
use trail_core::operations::{
    Job, JobId, JobSummary, LogEntry, LogPage, LogQuery, NewJob, Status, StatusReport, check_log_entry, limits,
};
use trail_store::LeafReport;

/// A change to a job, as live views receive it.
#[derive(Debug, Clone, Serialize)]
pub struct JobUpdate {
    pub job: JobId,
    pub name: String,
    pub status: Status,
    /// The leaf that changed, when one did.
    pub target: Option<String>,
    pub target_status: Option<Status>,
    pub queued: usize,
    pub running: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub cancelled: usize,
}

impl JobUpdate {
    pub(crate) fn of(job: &JobSummary, leaf: Option<(&str, Status)>) -> JobUpdate {
        let [queued, running, succeeded, failed, cancelled] = job.counts;
        JobUpdate {
            job: job.id,
            name: job.name.clone(),
            status: job.status(),
            target: leaf.map(|(t, _)| t.to_owned()),
            target_status: leaf.map(|(_, s)| s),
            queued,
            running,
            succeeded,
            failed,
            cancelled,
        }
    }
}

/// A log line as sent: its time (default: when it arrived) and text.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub time: Option<jiff::Timestamp>,
    pub text: String,
}

impl Operations {
    /// Submits a job (an audit event naming the submitter); refuses bad names and targets.
    pub async fn submit(&self, name: String, targets: Vec<String>, origin: &Origin) -> Result<Job, OperationError> {
        let job = NewJob {
            name,
            targets,
            submitter: origin.user.clone(),
            submitted_at: (self.clock)(),
            request_id: origin.request_id.clone(),
            session_id: origin.session_id.clone(),
            client: origin.client.clone(),
            submitted_by: origin.submitted_by.clone(),
        };
        job.check()?;
        origin.check()?;
        let job = self.jobs.create_job(job).await?;
        let _ = self.updates.send(JobUpdate::of(&job.summary(), None));
        Ok(job)
    }

    /// A leaf's status, as the integrating platform reports it, through the credential
    /// `submitted_by` (which its events name).
    pub async fn report(
        &self,
        job: JobId,
        target: &str,
        status: Status,
        message: &str,
        submitted_by: &str,
    ) -> Result<LeafReport, OperationError> {
        if message.len() > limits::STATUS_MESSAGE_BYTES {
            return Err(OperationError::TooLarge(format!(
                "a status message is at most {} bytes, got {}",
                limits::STATUS_MESSAGE_BYTES,
                message.len()
            )));
        }
        let message = trail_core::operations::clean_text("status message", message)?;
        let time = (self.clock)();
        let report =
            self.jobs.report_leaf(StatusReport::new(job, target, status, &message, time, submitted_by)).await?;
        let _ = self.updates.send(JobUpdate::of(&report.job.summary(), Some((target, status))));
        Ok(report)
    }

    pub async fn job(&self, id: JobId) -> Result<Job, OperationError> {
        let job = self.jobs.job(id).await?;
        job.ok_or_else(|| trail_core::operations::JobError::UnknownJob(id).into())
    }

    pub async fn jobs(&self, before: Option<JobId>, limit: usize) -> Result<Vec<JobSummary>, OperationError> {
        Ok(self.jobs.jobs(before, limit.clamp(1, 1000)).await?)
    }

    /// Jobs not yet finished, newest first (V8), among the newest `scan` jobs.
    pub async fn in_progress(&self, scan: usize) -> Result<Vec<JobUpdate>, OperationError> {
        let jobs = self.jobs.jobs(None, scan).await?;
        Ok(jobs.iter().filter(|j| !j.status().is_final()).map(|j| JobUpdate::of(j, None)).collect())
    }

    /// Appends lines to a job's log, all of a target's or the job's own; refuses the whole
    /// request when one line is bad.
    pub async fn append_log(
        &self,
        job: JobId,
        target: Option<String>,
        lines: Vec<LogLine>,
    ) -> Result<Vec<i64>, OperationError> {
        if lines.is_empty() || lines.len() > limits::LOG_ENTRIES_PER_REQUEST {
            return Err(OperationError::Invalid(format!(
                "send 1-{} lines at a time, got {}",
                limits::LOG_ENTRIES_PER_REQUEST,
                lines.len()
            )));
        }
        let now = (self.clock)();
        let entries: Vec<LogEntry> = lines
            .into_iter()
            .map(|line| LogEntry { time: line.time.unwrap_or(now), target: target.clone(), text: line.text })
            .collect();
        for (i, entry) in entries.iter().enumerate() {
            check_log_entry(entry).map_err(|e| OperationError::Invalid(format!("line {}: {e}", i + 1)))?;
        }
        Ok(self.jobs.append_job_log(job, entries).await?)
    }

    pub async fn log(&self, query: LogQuery) -> Result<LogPage, OperationError> {
        self.job(query.job).await?;
        Ok(self.jobs.job_log(LogQuery { limit: query.limit.clamp(1, 1000), ..query }).await?)
    }
}
