//! Jobs (V7, V8): submitting, leaf status reports, job logs, and live status over server-sent
//! events.

use super::params::{Params, Path};
use crate::AppState;
use crate::auth::Viewer;
use crate::client::ClientAddress;
use crate::error::{ApiError, Code, ErrorBody};
use crate::routes::body::JsonBody;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use trail_core::identity::Right;
use trail_core::operations::results::Origin;
use trail_core::operations::{Job, JobId, JobSummary, LogQuery, Status};
use trail_core::{EventId, Pattern};
use trail_operations::{JobUpdate, LogLine};

/// Who is acting, from where, in which session and for which request (`X-Request-Id`, or the
/// body's `request_id`).
pub fn origin(viewer: &Viewer, client: IpAddr, headers: &HeaderMap, request_id: Option<String>) -> Origin {
    let header = headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let actor = crate::auth::actor(viewer, client);
    Origin {
        user: actor.user,
        client: actor.client.map(|c| c.to_string()),
        request_id: request_id.or(header).filter(|r| !r.is_empty()),
        session_id: actor.session,
        job: None,
        submitted_by: actor.submitted_by,
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewJobRequest {
    /// The operation, such as `archive edge routers`.
    #[schema(min_length = 1, max_length = 256)]
    name: String,
    /// One leaf operation per target; each listed once.
    targets: Vec<String>,
    /// The user's request that led to the job (or send `X-Request-Id`).
    request_id: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Created {
    id: JobId,
}

/// Submits a job: recorded as JOB_SUBMITTED, naming the submitter.
#[utoipa::path(post, path = "/api/v1/jobs", tag = "operations", request_body = NewJobRequest,
    responses((status = 201, body = Created), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn submit_job(
    State(state): State<AppState>,
    viewer: Viewer,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    JsonBody(request): JsonBody<NewJobRequest>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let origin = origin(&viewer, client, &headers, request.request_id);
    let job = state.operations.submit(request.name, request.targets, &origin).await?;
    Ok((StatusCode::CREATED, Json(Created { id: job.id })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusReport {
    /// queued, running, succeeded, failed or cancelled.
    #[schema(value_type = Status)]
    status: String,
    #[serde(default)]
    message: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Reported {
    /// The job's status after the report.
    job_status: String,
    /// Events the report recorded (the job's start, the leaf's and the job's final status).
    event_ids: Vec<EventId>,
}

/// Whether `viewer` may report on job `id` or write its log: the platform running jobs (the
/// `ingest` right), or the job's own submitter. Anyone else who merely follows jobs may not
/// write into another user's job.
async fn may_write_to(state: &AppState, viewer: &Viewer, id: JobId) -> Result<(), ApiError> {
    if viewer.may(Right::Ingest) {
        return Ok(());
    }
    let job = state.operations.job(id).await?;
    if viewer.user.as_deref() == Some(job.submitter.as_str()) {
        return Ok(());
    }
    Err(ApiError::new(
        Code::Forbidden,
        format!("job {id} is {}'s: reporting on another user's job needs the right `ingest`", job.submitter),
    ))
}

/// A leaf's status, as the platform running it reports. A finished leaf cannot change.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/targets/{target}/status", tag = "operations",
    params(("id" = i64, Path, description = "Job id"), ("target" = String, Path, description = "Target")),
    request_body = StatusReport,
    responses((status = 200, body = Reported), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn report_status(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, target)): Path<(JobId, String)>,
    JsonBody(report): JsonBody<StatusReport>,
) -> Result<Json<Reported>, ApiError> {
    may_write_to(&state, &viewer, id).await?;
    let status = Status::parse(&report.status).ok_or_else(|| {
        ApiError::new(
            Code::InvalidOperation,
            format!("status {:?} is not one of queued, running, succeeded, failed, cancelled", report.status),
        )
    })?;
    let done = state.operations.report(id, &target, status, &report.message, &viewer.submitted_by()).await?;
    Ok(Json(Reported { job_status: done.job.status().name().to_owned(), event_ids: done.event_ids }))
}

/// A log line: text, or text with its own time.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum LineInput {
    Text(String),
    Timed { time: String, text: String },
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogRequest {
    /// The leaf the lines belong to; none for the job's own lines.
    target: Option<String>,
    /// Each entry may span several lines.
    #[schema(min_items = 1, max_items = 10000)]
    lines: Vec<LineInput>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Appended {
    first: i64,
    last: i64,
}

/// Appends output to a job's log (V7): kept apart from the audit trail.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/log", tag = "operations",
    params(("id" = i64, Path, description = "Job id")), request_body = LogRequest,
    responses((status = 201, body = Appended), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn append_log(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<JobId>,
    JsonBody(request): JsonBody<LogRequest>,
) -> Result<(StatusCode, Json<Appended>), ApiError> {
    may_write_to(&state, &viewer, id).await?;
    let mut lines = Vec::with_capacity(request.lines.len());
    for (i, line) in request.lines.into_iter().enumerate() {
        lines.push(match line {
            LineInput::Text(text) => LogLine { time: None, text },
            LineInput::Timed { time, text } => {
                let time = trail_core::time::parse_rfc3339(&time).map_err(|e| {
                    ApiError::new(
                        Code::InvalidOperation,
                        format!("line {}: time {time:?}: {e}; nothing was stored", i + 1),
                    )
                })?;
                LogLine { time: Some(time), text }
            }
        });
    }
    let numbers = state.operations.append_log(id, request.target, lines).await?;
    let (first, last) = (numbers[0], numbers[numbers.len() - 1]);
    Ok((StatusCode::CREATED, Json(Appended { first, last })))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JobCounts {
    queued: usize,
    running: usize,
    succeeded: usize,
    failed: usize,
    cancelled: usize,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JobListItem {
    id: JobId,
    name: String,
    submitter: String,
    submitted_at: String,
    status: String,
    counts: JobCounts,
}

impl JobListItem {
    fn of(job: &JobSummary) -> JobListItem {
        let [queued, running, succeeded, failed, cancelled] = job.counts;
        JobListItem {
            id: job.id,
            name: job.name.clone(),
            submitter: job.submitter.clone(),
            submitted_at: trail_core::time::format_rfc3339(job.submitted_at),
            status: job.status().name().to_owned(),
            counts: JobCounts { queued, running, succeeded, failed, cancelled },
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JobList {
    jobs: Vec<JobListItem>,
    /// Pass back as `before` for older jobs; null on the last page.
    next_before: Option<JobId>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobListParams {
    /// Jobs older than this id.
    before: Option<JobId>,
    /// At most this many, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// Jobs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "operations", params(JobListParams),
    responses((status = 200, body = JobList)), security(("bearer" = [])))]
pub async fn list_jobs(
    State(state): State<AppState>,
    Params(params): Params<JobListParams>,
) -> Result<Json<JobList>, ApiError> {
    let limit = super::params::page_size(params.limit, 100)?;
    let jobs = state.operations.jobs(params.before, limit).await?;
    let next_before = if jobs.len() == limit { jobs.last().map(|j| j.id) } else { None };
    Ok(Json(JobList { jobs: jobs.iter().map(JobListItem::of).collect(), next_before }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LeafView {
    target: String,
    status: String,
    message: String,
    updated_at: String,
    /// The event recording its final status.
    event_id: Option<EventId>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JobView {
    #[serde(flatten)]
    summary: JobListItem,
    request_id: Option<String>,
    /// JOB_SUBMITTED, the parent of every event the job records.
    submit_event_id: EventId,
    /// OPERATION_COMPLETED, once every leaf has finished.
    completed_event_id: Option<EventId>,
    leaves: Vec<LeafView>,
}

impl JobView {
    /// The job as `viewer` may see it: leaf messages are details of the submitter's entries
    /// (V6), so without the right to those, line 1 only.
    pub fn of(job: &Job, viewer: &Viewer) -> JobView {
        let reach = viewer.details_reach();
        JobView {
            summary: JobListItem::of(&job.summary()),
            request_id: job.request_id.clone(),
            submit_event_id: job.submit_event_id,
            completed_event_id: job.completed_event_id,
            leaves: job
                .leaves
                .iter()
                .map(|leaf| LeafView {
                    target: leaf.target.clone(),
                    status: leaf.status.name().to_owned(),
                    message: reach.visible(&job.submitter, &leaf.message).to_owned(),
                    updated_at: trail_core::time::format_rfc3339(leaf.updated_at),
                    event_id: leaf.event_id,
                })
                .collect(),
        }
    }
}

/// One job with every leaf's status.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "operations",
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get_job(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<JobId>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(JobView::of(&state.operations.job(id).await?, &viewer)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogParams {
    /// Only this target's lines.
    target: Option<String>,
    /// Only entries matching, with the message filter's semantics (case-insensitive, `%` and
    /// `_` wildcards, backslash escapes).
    q: Option<String>,
    /// Entries after this number (from `next_after`).
    after: Option<i64>,
    /// At most this many, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LogEntryView {
    seq: i64,
    time: String,
    target: Option<String>,
    text: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LogPage {
    entries: Vec<LogEntryView>,
    /// Pass back as `after` for the next page; null when there is no more.
    next_after: Option<i64>,
    /// The search ran out of its time budget (2 s) before the page was full: `entries` is what
    /// it found, and `next_after` goes on from where it stopped.
    incomplete: bool,
}

/// A job's log, oldest first, paged and searchable.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/log", tag = "operations",
    params(("id" = i64, Path, description = "Job id"), LogParams),
    responses((status = 200, body = LogPage), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get_log(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<JobId>,
    Params(params): Params<LogParams>,
) -> Result<Json<LogPage>, ApiError> {
    let job = state.operations.job(id).await?;
    if !viewer.details_reach().covers(&job.submitter) {
        return Err(ApiError::new(Code::Forbidden, log_needs_details(&job.submitter)));
    }
    let limit = super::params::page_size(params.limit, 100)?;
    let query = LogQuery {
        job: id,
        target: params.target,
        contains: params
            .q
            .as_deref()
            .filter(|q| !q.is_empty())
            .map(Pattern::parse)
            .transpose()
            .map_err(|e| ApiError::new(Code::InvalidQuery, format!("q: {e}")))?,
        after: params.after.unwrap_or(0),
        limit,
        deadline: trail_core::query::search_deadline(),
    };
    let page = state.operations.log(query).await?;
    let incomplete = page.stopped_at.is_some();
    let next_after = page.next_after(limit);
    let entries = page
        .entries
        .into_iter()
        .map(|e| LogEntryView {
            seq: e.seq,
            time: trail_core::time::format_rfc3339(e.entry.time),
            target: e.entry.target,
            text: e.entry.text,
        })
        .collect();
    Ok(Json(LogPage { entries, next_after, incomplete }))
}

/// Why a job log is refused: it is among the details of the submitter's entries (V6).
pub fn log_needs_details(submitter: &str) -> String {
    format!(
        "a job log is among the details of its submitter's entries ({submitter}'s): it needs the right \
         `details_all` (or `details_own` for your own jobs)"
    )
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StatusView {
    /// Operations not yet finished, newest first.
    #[schema(value_type = Vec<Object>)]
    operations: Vec<JobUpdate>,
}

/// Operations in progress (V8).
#[utoipa::path(get, path = "/api/v1/status", tag = "operations",
    responses((status = 200, body = StatusView)), security(("bearer" = [])))]
pub async fn status(State(state): State<AppState>) -> Result<Json<StatusView>, ApiError> {
    Ok(Json(StatusView { operations: state.operations.in_progress(1000).await? }))
}

/// Live updates of operations (V8) as server-sent events: `job` events with the job's counts
/// and the leaf that changed; `lagged` when this listener fell behind (reload the status).
#[utoipa::path(get, path = "/api/v1/status/stream", tag = "operations",
    responses((status = 200, description = "text/event-stream of `job` events")), security(("bearer" = [])))]
pub async fn status_stream(
    State(state): State<AppState>,
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, std::convert::Infallible>>> {
    let updates = state.operations.subscribe();
    let stream = futures_util::stream::unfold(updates, |mut updates| async move {
        let event = match updates.recv().await {
            Ok(update) => SseEvent::default().event("job").json_data(&update).unwrap_or_default(),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                SseEvent::default().event("lagged").data(missed.to_string())
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(event), updates))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
