//! Events appended as one atomic batch (E1, S2).

use super::request::{Apply, WriteRequest};
use super::storage::EventsTx;
use crate::StoreError;
use async_trait::async_trait;
use trail_core::{EventBody, EventId};

pub struct AppendEvents(pub Vec<EventBody>);

impl WriteRequest for AppendEvents {
    type Answer = Vec<EventId>;

    fn weight(&self) -> usize {
        self.0.len()
    }

    /// Its events were validated before it was queued: only the database can fail it.
    fn can_refuse(&self) -> bool {
        false
    }

    fn events_stored(ids: &Vec<EventId>) -> u64 {
        ids.len() as u64
    }
}

#[async_trait]
impl<Tx: EventsTx + ?Sized> Apply<Tx> for AppendEvents {
    async fn apply(self, tx: &mut Tx) -> Result<Vec<EventId>, StoreError> {
        tx.append(&self.0).await
    }
}
