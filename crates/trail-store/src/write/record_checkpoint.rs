//! A signed checkpoint recorded (S4): its CHECKPOINT event appended and the checkpoint kept
//! beside it, so that neither is ever stored without the other.

use super::request::{Apply, WriteRequest};
use super::storage::CheckpointsTx;
use crate::StoreError;
use async_trait::async_trait;
use trail_core::EventBody;
use trail_core::checkpoint::{RecordedCheckpoint, SignedCheckpoint};

pub struct RecordCheckpoint {
    pub signed: SignedCheckpoint,
    pub event: EventBody,
}

impl WriteRequest for RecordCheckpoint {
    type Answer = RecordedCheckpoint;

    fn weight(&self) -> usize {
        1
    }

    fn events_stored(_: &RecordedCheckpoint) -> u64 {
        1
    }
}

#[async_trait]
impl<Tx: CheckpointsTx + ?Sized> Apply<Tx> for RecordCheckpoint {
    async fn apply(self, tx: &mut Tx) -> Result<RecordedCheckpoint, StoreError> {
        let signed_at = self.event.time;
        let event_id = tx.append(std::slice::from_ref(&self.event)).await?[0];
        let recorded = RecordedCheckpoint {
            size: self.signed.checkpoint.size,
            root: self.signed.checkpoint.root,
            note: self.signed.note,
            event_id,
            signed_at,
        };
        tx.insert_checkpoint(&recorded).await?;
        Ok(recorded)
    }
}
