//! A forwarding destination's cursor moved (F4): a restart resumes after it.

use super::request::{Apply, WriteRequest};
use super::storage::ForwardingTx;
use crate::StoreError;
use async_trait::async_trait;
use trail_core::EventId;

pub struct SaveCursor {
    pub destination: String,
    pub delivered_through: EventId,
}

impl WriteRequest for SaveCursor {
    type Answer = ();

    fn weight(&self) -> usize {
        0
    }

    fn appends_events(&self) -> bool {
        false
    }

    fn events_stored(_: &()) -> u64 {
        0
    }
}

#[async_trait]
impl<Tx: ForwardingTx + ?Sized> Apply<Tx> for SaveCursor {
    async fn apply(self, tx: &mut Tx) -> Result<(), StoreError> {
        tx.save_cursor(&self.destination, self.delivered_through).await
    }
}
