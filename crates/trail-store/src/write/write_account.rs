//! An account change with the events recording it (A1, A2), or a refusal that writes nothing.

use super::request::{Apply, WriteRequest};
use super::storage::AccountsTx;
use crate::StoreError;
use async_trait::async_trait;
use trail_core::identity::AccountWrite;
use trail_core::{EventBody, EventId};

pub struct WriteAccount {
    pub write: AccountWrite,
    pub events: Vec<EventBody>,
}

impl WriteRequest for WriteAccount {
    type Answer = Vec<EventId>;

    fn weight(&self) -> usize {
        self.events.len()
    }

    fn events_stored(ids: &Vec<EventId>) -> u64 {
        ids.len() as u64
    }
}

#[async_trait]
impl<Tx: AccountsTx + ?Sized> Apply<Tx> for WriteAccount {
    async fn apply(self, tx: &mut Tx) -> Result<Vec<EventId>, StoreError> {
        if !tx.apply_account(&self.write).await? {
            return Err(StoreError::Conflict(self.write.refusal()));
        }
        tx.append(&self.events).await
    }
}
