//! Entries appended to a job's log (V7), apart from the audit trail; an unknown job or target
//! writes nothing.

use super::request::{Apply, WriteRequest};
use super::storage::JobsTx;
use crate::StoreError;
use async_trait::async_trait;
use trail_core::operations::{JobError, JobId, LogEntry};

pub struct AppendJobLog {
    pub job: JobId,
    pub entries: Vec<LogEntry>,
}

impl WriteRequest for AppendJobLog {
    /// The entries' numbers in the job's log.
    type Answer = Vec<i64>;

    fn weight(&self) -> usize {
        0
    }

    fn appends_events(&self) -> bool {
        false
    }

    fn events_stored(_: &Vec<i64>) -> u64 {
        0
    }
}

#[async_trait]
impl<Tx: JobsTx + ?Sized> Apply<Tx> for AppendJobLog {
    async fn apply(self, tx: &mut Tx) -> Result<Vec<i64>, StoreError> {
        let job = self.job;
        let Some(targets) = tx.job_targets(job).await? else {
            return Err(JobError::UnknownJob(job).into());
        };
        if let Some(target) = self.entries.iter().filter_map(|e| e.target.as_ref()).find(|t| !targets.contains(t)) {
            return Err(JobError::UnknownTarget { job, target: target.clone() }.into());
        }
        tx.append_log(job, &self.entries).await
    }
}
