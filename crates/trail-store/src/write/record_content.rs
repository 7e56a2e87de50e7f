//! A device's content recorded (E4): new or changed content becomes the device's latest, with
//! its event; unchanged content only moves the time it was last seen.

use super::request::{Apply, WriteRequest, built};
use super::storage::ContentsTx;
use crate::StoreError;
use async_trait::async_trait;
use trail_core::content::{ContentOutcome, ContentRecord, content_hash};
use trail_core::time;

pub struct RecordContent(pub ContentRecord);

impl WriteRequest for RecordContent {
    type Answer = ContentOutcome;

    fn weight(&self) -> usize {
        1
    }

    fn events_stored(outcome: &ContentOutcome) -> u64 {
        u64::from(outcome.event_id.is_some())
    }
}

#[async_trait]
impl<Tx: ContentsTx + ?Sized> Apply<Tx> for RecordContent {
    async fn apply(self, tx: &mut Tx) -> Result<ContentOutcome, StoreError> {
        let record = self.0;
        let hash = content_hash(&record.content);
        let at = time::to_micros(record.time);
        let previous = tx.latest_content(&record.device, record.kind).await?;
        if previous.as_ref().is_some_and(|p| p.hash == hash) {
            tx.touch_content(&record.device, record.kind, at).await?;
            return Ok(ContentOutcome { hash, event_id: None });
        }
        tx.replace_content(&record.device, record.kind, &hash, &record.content, at).await?;
        let on_change = record.on_change;
        let event = built(|| on_change(previous.as_ref()))?;
        let ids = tx.append(std::slice::from_ref(&event)).await?;
        Ok(ContentOutcome { hash, event_id: ids.first().copied() })
    }
}
