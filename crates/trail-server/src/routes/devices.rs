//! Device results (E4): archives and inventories recorded when new or changed, restores and
//! commits always; each may name the job it belongs to.

use super::params::Path;
use crate::AppState;
use crate::auth::Viewer;
use crate::client::ClientAddress;
use crate::error::{ApiError, Code, ErrorBody};
use crate::routes::body::JsonBody;
use crate::routes::jobs::origin;
use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use trail_core::EventId;
use trail_core::Outcome;
use trail_core::content::ContentKind;
use trail_core::operations::JobId;
use trail_operations::{DeviceResult, DeviceState, Recorded};

/// What every result may say besides its content.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct Context {
    /// The job this result belongs to; the device must be one of its targets.
    job: Option<JobId>,
    /// The user's request behind it (or send `X-Request-Id`).
    request_id: Option<String>,
    /// `failure` records a failed archive or scan (and leaves the stored content alone).
    outcome: Option<Outcome>,
    /// Why it failed.
    message: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveRequest {
    /// The configuration text (needed unless `outcome` is `failure`).
    config: Option<String>,
    #[serde(flatten)]
    context: Context,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryRequest {
    /// The inventory document, a JSON object (needed unless `outcome` is `failure`).
    #[schema(value_type = Option<Object>)]
    inventory: Option<serde_json::Value>,
    #[serde(flatten)]
    context: Context,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// What was restored (an archive's hash or date, a label).
    source: Option<String>,
    comment: Option<String>,
    #[serde(flatten)]
    context: Context,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitRequest {
    /// The committed change, as a diff.
    diff: String,
    comment: Option<String>,
    #[serde(flatten)]
    context: Context,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventCreated {
    event_id: EventId,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Unchanged {
    /// Always true: the content equals the latest, so no event was recorded.
    unchanged: bool,
    /// The device's last-archived (or last-scanned) time, now.
    last_seen: String,
}

fn answer(recorded: Recorded) -> Response {
    match recorded {
        Recorded::Event(event_id) => (StatusCode::CREATED, Json(EventCreated { event_id })).into_response(),
        Recorded::Unchanged { last_seen } => {
            let last_seen = trail_core::time::format_rfc3339(last_seen);
            (StatusCode::OK, Json(Unchanged { unchanged: true, last_seen })).into_response()
        }
    }
}

/// Who reports a result: the viewer, their address, and the headers (for `X-Request-Id`).
pub struct Caller {
    viewer: Viewer,
    client: std::net::IpAddr,
    headers: HeaderMap,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Caller, ApiError> {
        let viewer = Viewer::from_request_parts(parts, state).await?;
        let ClientAddress(client) = match ClientAddress::from_request_parts(parts, state).await {
            Ok(address) => address,
            Err(never) => match never {},
        };
        Ok(Caller { viewer, client, headers: parts.headers.clone() })
    }
}

async fn record(
    state: &AppState,
    caller: Caller,
    device: &str,
    context: Context,
    result: impl FnOnce(Option<String>) -> Result<DeviceResult, ApiError>,
) -> Result<Response, ApiError> {
    let origin = origin(&caller.viewer, caller.client, &caller.headers, context.request_id);
    let origin = state.operations.in_job(origin, context.job, device).await?;
    let failed = context.outcome == Some(Outcome::Failure);
    let result = result(failed.then(|| context.message.unwrap_or_else(|| "(no reason given)".to_owned())))?;
    Ok(answer(state.operations.record(device, result, origin).await?))
}

fn required<T>(value: Option<T>, what: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::new(Code::InvalidOperation, format!("`{what}` is required; nothing was stored")))
}

/// An archive completed: an event only when it is the first or differs from the last (with
/// the unified diff); otherwise `200 {"unchanged": true}` and the last-archived time moves.
#[utoipa::path(post, path = "/api/v1/devices/{name}/archive", tag = "operations",
    params(("name" = String, Path, description = "Device")), request_body = ArchiveRequest,
    responses((status = 201, body = EventCreated), (status = 200, body = Unchanged), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn archive(
    State(state): State<AppState>,
    caller: Caller,
    Path(device): Path<String>,
    JsonBody(request): JsonBody<ArchiveRequest>,
) -> Result<Response, ApiError> {
    record(&state, caller, &device, request.context, |failure| match failure {
        Some(reason) => Ok(DeviceResult::Failed { kind: ContentKind::Archive, reason }),
        None => Ok(DeviceResult::Archive { config: required(request.config, "config")? }),
    })
    .await
}

/// An inventory scan completed: like an archive, with a structured diff of the document.
#[utoipa::path(post, path = "/api/v1/devices/{name}/inventory", tag = "operations",
    params(("name" = String, Path, description = "Device")), request_body = InventoryRequest,
    responses((status = 201, body = EventCreated), (status = 200, body = Unchanged), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn inventory(
    State(state): State<AppState>,
    caller: Caller,
    Path(device): Path<String>,
    JsonBody(request): JsonBody<InventoryRequest>,
) -> Result<Response, ApiError> {
    record(&state, caller, &device, request.context, |failure| match failure {
        Some(reason) => Ok(DeviceResult::Failed { kind: ContentKind::Inventory, reason }),
        None => Ok(DeviceResult::Inventory { document: required(request.inventory, "inventory")? }),
    })
    .await
}

/// A restore completed: always an event.
#[utoipa::path(post, path = "/api/v1/devices/{name}/restore", tag = "operations",
    params(("name" = String, Path, description = "Device")), request_body = RestoreRequest,
    responses((status = 201, body = EventCreated), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn restore(
    State(state): State<AppState>,
    caller: Caller,
    Path(device): Path<String>,
    JsonBody(request): JsonBody<RestoreRequest>,
) -> Result<Response, ApiError> {
    let outcome = request.context.outcome.unwrap_or(Outcome::Success);
    record(&state, caller, &device, request.context, |_| {
        Ok(DeviceResult::Restore { source: request.source, comment: request.comment, outcome })
    })
    .await
}

/// A configuration committed: always an event, with its diff and comment.
#[utoipa::path(post, path = "/api/v1/devices/{name}/commit", tag = "operations",
    params(("name" = String, Path, description = "Device")), request_body = CommitRequest,
    responses((status = 201, body = EventCreated), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn commit(
    State(state): State<AppState>,
    caller: Caller,
    Path(device): Path<String>,
    JsonBody(request): JsonBody<CommitRequest>,
) -> Result<Response, ApiError> {
    let outcome = request.context.outcome.unwrap_or(Outcome::Success);
    record(&state, caller, &device, request.context, |_| {
        Ok(DeviceResult::Commit { diff: request.diff, comment: request.comment, outcome })
    })
    .await
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeviceView {
    name: String,
    #[schema(value_type = Option<Object>)]
    archive: Option<DeviceState>,
    #[schema(value_type = Option<Object>)]
    inventory: Option<DeviceState>,
}

/// A device's latest archive and inventory: their hashes, when they last changed, and when
/// they were last recorded.
#[utoipa::path(get, path = "/api/v1/devices/{name}", tag = "operations",
    params(("name" = String, Path, description = "Device")),
    responses((status = 200, body = DeviceView)), security(("bearer" = [])))]
pub async fn get_device(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<DeviceView>, ApiError> {
    let [archive, inventory] = state.operations.device(&name).await?;
    Ok(Json(DeviceView { name, archive, inventory }))
}
