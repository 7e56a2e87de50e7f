//! Retention (S3): purging old events, and the chain's starting point for verification.

use crate::AppState;
use crate::auth::Viewer;
use crate::error::{ApiError, Code, ErrorBody};
use crate::routes::body::JsonBody;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use trail_core::EventId;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ChainStart {
    /// The newest committed id.
    head: EventId,
    /// Events through this id were purged; verification resumes after it.
    pruned_through: Option<EventId>,
    /// The hash of the last purged event, which the first kept one links to.
    pruned_hash: Option<String>,
}

/// Where the hash chain starts, for `trail verify` through a server.
#[utoipa::path(get, path = "/api/v1/chain", tag = "events",
    responses((status = 200, body = ChainStart)), security(("bearer" = [])))]
pub async fn chain(State(state): State<AppState>) -> Result<Json<ChainStart>, ApiError> {
    let head = state.store.stats().await?.head;
    let marker = state.store.prune_marker().await?;
    Ok(Json(ChainStart {
        head,
        pruned_through: marker.map(|m| m.through),
        pruned_hash: marker.map(|m| trail_core::chain::to_hex(&m.hash)),
    }))
}

/// A hundred years: any longer and the cutoff would be before any event.
pub const MAX_DAYS: u32 = 36_500;
/// The most events a purge deletes in one transaction.
const MAX_BATCH: usize = 1_000_000;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    /// Purge the events older than this many days.
    #[schema(minimum = 1, maximum = 36500)]
    #[serde(deserialize_with = "super::body::count")]
    older_than_days: u32,
    /// Events per transaction, 1-1,000,000 (default 10,000).
    #[schema(minimum = 1, maximum = 1000000)]
    #[serde(default, deserialize_with = "super::body::optional_count")]
    batch: Option<usize>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Purged {
    purged: u64,
    pruned_through: Option<EventId>,
    pruned_hash: Option<String>,
    /// The RETENTION_PURGED event, when anything was purged.
    event_id: Option<EventId>,
}

/// Purges the oldest events, a prefix of the chain, in batches; the purge is itself an event.
#[utoipa::path(post, path = "/api/v1/retention/purge", tag = "events", request_body = PurgeRequest,
    responses((status = 200, body = Purged), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn purge(
    State(state): State<AppState>,
    viewer: Viewer,
    JsonBody(request): JsonBody<PurgeRequest>,
) -> Result<Json<Purged>, ApiError> {
    if !(1..=MAX_DAYS).contains(&request.older_than_days) {
        return Err(ApiError::new(
            Code::InvalidBody,
            format!("older_than_days must be 1-{MAX_DAYS}; nothing was purged"),
        ));
    }
    let batch = request.batch.unwrap_or(10_000);
    if !(1..=MAX_BATCH).contains(&batch) {
        return Err(ApiError::new(Code::InvalidBody, format!("batch must be 1-{MAX_BATCH}; nothing was purged")));
    }
    let cutoff = (state.clock)() - jiff::SignedDuration::from_hours(24 * i64::from(request.older_than_days));
    let user = viewer.user.as_deref().unwrap_or("automation");
    let report = state.store.purge(cutoff, batch, user).await?;
    Ok(Json(Purged {
        purged: report.purged,
        pruned_through: report.marker.map(|m| m.through),
        pruned_hash: report.marker.map(|m| trail_core::chain::to_hex(&m.hash)),
        event_id: report.event_id,
    }))
}
