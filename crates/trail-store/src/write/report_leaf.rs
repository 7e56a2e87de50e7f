//! A status report on one leaf of a job (V8), applied by the core's rules, with the events the
//! transition records; a refused report writes nothing.

use super::request::{Apply, WriteRequest, built};
use super::storage::JobsTx;
use crate::{LeafReport, StoreError};
use async_trait::async_trait;
use trail_core::operations::{JobError, StatusReport, results};

pub struct ReportLeaf(pub StatusReport);

impl WriteRequest for ReportLeaf {
    type Answer = LeafReport;

    /// The job's start, the leaf's final status and the job's final status, at most.
    fn weight(&self) -> usize {
        3
    }

    fn events_stored(report: &LeafReport) -> u64 {
        report.event_ids.len() as u64
    }
}

#[async_trait]
impl<Tx: JobsTx + ?Sized> Apply<Tx> for ReportLeaf {
    async fn apply(self, tx: &mut Tx) -> Result<LeafReport, StoreError> {
        let report = self.0;
        let Some(mut job) = tx.job(report.job).await? else {
            return Err(JobError::UnknownJob(report.job).into());
        };
        let transition = job.apply(&report.target, report.status, &report.message, report.time)?;
        let events = built(|| results::report_events(&job, &transition, &report))?;
        let event_ids = tx.append(&events).await?;
        results::settle_report(&mut job, &transition, &event_ids);
        let leaf = job.leaf(&report.target).expect("apply found it");
        tx.save_leaf(job.id, leaf).await?;
        if transition.job_finished.is_some()
            && let Some(completed) = job.completed_event_id
        {
            tx.set_completed_event(job.id, completed).await?;
        }
        Ok(LeafReport { job, transition, event_ids })
    }
}
