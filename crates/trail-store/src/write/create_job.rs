//! A job created (V8): a queued leaf per target, and its JOB_SUBMITTED event.

use super::request::{Apply, WriteRequest, built};
use super::storage::JobsTx;
use crate::StoreError;
use async_trait::async_trait;
use trail_core::operations::{Job, NewJob, results};

pub struct CreateJob(pub NewJob);

impl WriteRequest for CreateJob {
    type Answer = Job;

    fn weight(&self) -> usize {
        1
    }

    fn events_stored(_: &Job) -> u64 {
        1
    }
}

#[async_trait]
impl<Tx: JobsTx + ?Sized> Apply<Tx> for CreateJob {
    async fn apply(self, tx: &mut Tx) -> Result<Job, StoreError> {
        let new = self.0;
        let id = tx.insert_job(&new).await?;
        let event = built(|| results::submission(id, &new))?;
        let ids = tx.append(&[event]).await?;
        tx.set_submit_event(id, ids[0]).await?;
        tx.job(id).await?.ok_or_else(|| StoreError::backend(format!("job {id} vanished while it was created")))
    }
}
