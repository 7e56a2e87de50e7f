//! Retention (S3): purging events older than a cutoff, a prefix of the chain at a time, with a
//! marker so the rest still verifies, and an event recording each purge.

use crate::chain::{PruneMarker, to_hex};
use crate::{EventBody, EventInput};
use jiff::Timestamp;

/// What a purge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeReport {
    /// Events removed by this purge.
    pub purged: u64,
    /// The marker after it (none when nothing has ever been purged).
    pub marker: Option<PruneMarker>,
    /// The RETENTION_PURGED event, when anything was purged.
    pub event_id: Option<crate::EventId>,
}

/// The RETENTION_PURGED event: who purged, the cutoff, and the marker left.
pub fn purge_event(user: &str, cutoff: Timestamp, purged: u64, marker: &PruneMarker, now: Timestamp) -> EventBody {
    let cutoff_text = crate::time::format_rfc3339(cutoff);
    let message = format!(
        "Events through {} purged: older than {cutoff_text}\npurged: {purged}\npruned through id {} with hash {}",
        marker.through,
        marker.through,
        to_hex(&marker.hash)
    );
    let attributes =
        [("through", marker.through.to_string()), ("hash", to_hex(&marker.hash)), ("purged", purged.to_string())];
    let input = EventInput {
        user: Some(user.to_owned()),
        kind: Some("RETENTION_PURGED".into()),
        name: Some(cutoff_text),
        message: Some(message),
        ..EventInput::default()
    };
    // Trail's retention carries the purge out, whoever asked for it (`user`).
    crate::event::sent_by_trail(input, &attributes, now)
}
