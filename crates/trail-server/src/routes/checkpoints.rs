//! Signed checkpoints (S4): the newest, for anyone who reads the trail, and one made on demand.

use super::params::{Params, Path};
use crate::AppState;
use crate::auth::Viewer;
use crate::error::{ApiError, Code, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use trail_core::EventId;
use trail_core::checkpoint::RecordedCheckpoint;

/// A signed checkpoint: the trail's tree of `size` events has `root`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckpointView {
    /// The trail's name, the note's first line and its signing key's name.
    origin: String,
    /// How many events the tree covers: every id up to this one.
    size: u64,
    /// The tree's root at that size, in base64 as the note spells it.
    root: String,
    /// The C2SP signed note (a `tlog-checkpoint` body and its signatures), as verifiers read it.
    note: String,
    /// The CHECKPOINT event that records it.
    event_id: EventId,
    /// When it was signed (RFC 3339, UTC).
    signed_at: String,
    /// The configured witnesses whose cosignature the note carries.
    cosigned_by: Vec<String>,
    /// Cosignatures that make a checkpoint final (`[checkpoints] witnesses_required`).
    witnesses_required: usize,
    /// Whether the note carries that many.
    #[serde(rename = "final")]
    is_final: bool,
    /// What each configured witness has done for this node: its refusals and silence.
    witnesses: Vec<WitnessView>,
}

/// A witness as this node has found it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WitnessView {
    name: String,
    url: String,
    /// The size of the last checkpoint it cosigned for this node.
    cosigned_size: Option<u64>,
    cosigned: u64,
    refused: u64,
    /// Why the last request got no cosignature, until one succeeds.
    last_error: Option<String>,
}

fn view(recorded: RecordedCheckpoint, checkpointer: Option<&trail_checkpoints::Checkpointer>) -> CheckpointView {
    let witnesses = checkpointer.map(|c| c.witnesses());
    let cosigned_by = witnesses.map_or_else(Vec::new, |w| trail_core::witness::cosigned_by(&recorded.note, &w.keys()));
    let witnesses_required = witnesses.map_or(0, |w| w.required());
    let reports = witnesses.map_or_else(Vec::new, |w| w.reports());
    CheckpointView {
        root: trail_core::tree::to_base64(&recorded.root),
        origin: recorded.note.lines().next().unwrap_or_default().to_owned(),
        size: recorded.size,
        note: recorded.note,
        event_id: recorded.event_id,
        signed_at: trail_core::time::format_rfc3339(recorded.signed_at),
        is_final: cosigned_by.len() >= witnesses_required,
        cosigned_by,
        witnesses_required,
        witnesses: reports
            .into_iter()
            .map(|r| WitnessView {
                name: r.name,
                url: r.url,
                cosigned_size: r.cosigned_size,
                cosigned: r.cosigned,
                refused: r.refused,
                last_error: r.last_error,
            })
            .collect(),
    }
}

/// The newest signed checkpoint.
#[utoipa::path(get, path = "/api/v1/checkpoint", tag = "events",
    responses((status = 200, body = CheckpointView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn latest(State(state): State<AppState>) -> Result<Json<CheckpointView>, ApiError> {
    match state.store.latest_checkpoint().await? {
        Some(recorded) => Ok(Json(view(recorded, state.checkpointer.as_deref()))),
        None => Err(ApiError::new(
            Code::NotFound,
            "no checkpoint yet: one is signed within [checkpoints] every_seconds of the first event, or on demand \
             with POST /api/v1/checkpoints",
        )),
    }
}

/// Signs a checkpoint of the trail as it stands now, recorded as a CHECKPOINT event naming the
/// caller.
#[utoipa::path(post, path = "/api/v1/checkpoints", tag = "events",
    responses((status = 201, body = CheckpointView), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn make(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<(StatusCode, Json<CheckpointView>), ApiError> {
    let Some(checkpointer) = state.checkpointer.as_ref() else {
        return Err(ApiError::new(Code::Unavailable, "this server signs no checkpoints: it was started without a key"));
    };
    let user = viewer.user.as_deref().unwrap_or("automation");
    let recorded = checkpointer.make(user).await?;
    Ok((StatusCode::CREATED, Json(view(recorded, Some(checkpointer)))))
}

/// The proof that one event is in the trail, checkable offline with `trail verify-proof`: the
/// event, its inclusion proof and the newest checkpoint (C2SP `tlog-proof`). The same rights as
/// the event's details, and recorded as they are.
#[utoipa::path(get, path = "/api/v1/events/{id}/proof", tag = "events",
    params(("id" = i64, Path, description = "Event id")),
    responses((status = 200, body = trail_core::proof::ProofFile), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn event_proof(
    State(state): State<AppState>,
    viewer: Viewer,
    crate::client::ClientAddress(client): crate::client::ClientAddress,
    Path(id): Path<String>,
) -> Result<Json<trail_core::proof::ProofFile>, ApiError> {
    let id: EventId = id.parse().map_err(|_| ApiError::new(Code::NotFound, format!("no event with id {id}")))?;
    let event = crate::routes::events::details(&state, &viewer, client, id).await?;
    Ok(Json(trail_store::tree::event_proof(&*state.store, event).await?))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The smaller tree's size (at least 1).
    #[param(minimum = 1)]
    from: u64,
    /// The larger tree's size (at most the number of events).
    to: u64,
}

/// A consistency proof: the hashes that show the tree of `from` events is a prefix of the tree of
/// `to` (RFC 6962 section 2.1.2).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConsistencyView {
    from: u64,
    to: u64,
    /// Base64 hashes, as `tlog-witness` sends them.
    proof: Vec<String>,
}

/// That the tree of `from` events is a prefix of the tree of `to`: what a witness or an auditor
/// holding an older checkpoint checks a newer one with.
#[utoipa::path(get, path = "/api/v1/proofs/consistency", tag = "events", params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn consistency(
    State(state): State<AppState>,
    Params(query): Params<ConsistencyQuery>,
) -> Result<Json<ConsistencyView>, ApiError> {
    if query.from == 0 || query.from > query.to {
        return Err(ApiError::new(Code::InvalidQuery, "give 1 <= from <= to: the sizes of two trees, smaller first"));
    }
    let proof = trail_store::tree::consistency_proof(&*state.store, query.to, query.from).await?;
    let proof = proof.iter().map(trail_core::tree::to_base64).collect();
    Ok(Json(ConsistencyView { from: query.from, to: query.to, proof }))
}
