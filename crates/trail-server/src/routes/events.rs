//! Ingest and search: `/api/v1/events`, `/api/v1/events/{id}`, `/api/v1/changes`,
//! `/api/v1/users`.

use super::params::{Params, Path};
use crate::AppState;
use crate::auth::Viewer;
use crate::error::{ApiError, Code, ErrorBody};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use trail_core::JobId;
use trail_core::identity::Right;
use trail_core::query::{MAX_PAGE, SearchParams};
use trail_core::{Event, EventId, UserFilter, request};

#[derive(Serialize, utoipa::ToSchema)]
pub struct Ids {
    ids: Vec<EventId>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Id {
    id: EventId,
}

/// Stores one event or an array of events atomically.
#[utoipa::path(post, path = "/api/v1/events", tag = "events",
    request_body(content = Vec<trail_core::EventInput>, description = "One event object, or an array stored atomically"),
    responses((status = 201, body = Ids, description = "Stored and durable, ids in input order"),
              (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn post_events(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Ids>), ApiError> {
    let mut events = request::events_from_json(&body?, (state.clock)())?;
    let submitted_by = viewer.submitted_by();
    for event in &mut events {
        event.submitted_by = Some(submitted_by.clone());
    }
    let count = events.len() as u64;
    let ids = state.store.append(events).await?;
    metrics::counter!("trail_events_ingested_total").increment(count);
    Ok((StatusCode::CREATED, Json(Ids { ids })))
}

/// Records a structured change (C1), rendering its message.
#[utoipa::path(post, path = "/api/v1/changes", tag = "events",
    request_body(content = trail_core::Change, description = "op, object, table, keys, changes, plus any event field (user is required)"),
    responses((status = 201, body = Id), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn post_changes(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Id>), ApiError> {
    let mut event = request::change_from_json(&body?, (state.clock)())?;
    event.submitted_by = Some(viewer.submitted_by());
    let ids = state.store.append(vec![event]).await?;
    Ok((StatusCode::CREATED, Json(Id { id: ids[0] })))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventPage {
    events: Vec<Event>,
    /// Pass back as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
    /// Matching entries added since the first page was read (V5).
    newer: u64,
    /// The search ran out of its time budget (2 s) before the page was full: `events` is what
    /// it found, and `next_cursor` goes on from where it stopped. A narrower filter answers
    /// sooner.
    incomplete: bool,
}

/// Searches the trail, newest first, 100 to a page, with a stable snapshot across pages.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(SearchParams),
    responses((status = 200, body = EventPage), (status = 400, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_events(
    State(state): State<AppState>,
    viewer: Viewer,
    Params(params): Params<SearchParams>,
) -> Result<Json<EventPage>, ApiError> {
    let query = params.into_query(viewer.user.as_deref(), viewer.details_reach())?;
    let own = matches!(&query.filter.user, UserFilter::Only(user) if Some(user) == viewer.user.as_ref());
    if !own && !viewer.may(Right::ReadAll) {
        return Err(ApiError::new(
            Code::Forbidden,
            "reading other users' entries needs the right `read_all`; leave `user` out to read your own",
        ));
    }
    let page = state.store.search(query).await?;
    let events = page.events.into_iter().map(|event| redact_for(&viewer, event)).collect();
    Ok(Json(EventPage {
        events,
        next_cursor: page.next_cursor.map(|c| c.encode()),
        newer: page.newer,
        incomplete: page.incomplete,
    }))
}

/// V6: an entry whose details the viewer may not see is listed with line 1 only.
pub fn redact_for(viewer: &Viewer, mut event: Event) -> Event {
    if !may_details(viewer, &event) {
        event.body.message = event.body.summary().to_owned();
        event.body.attributes.clear();
        event.body.change = None;
    }
    event
}

fn may_details(viewer: &Viewer, event: &Event) -> bool {
    viewer.details_reach().covers(&event.body.user)
}

/// One event with its full message, attributes and correlation ids (V6). Viewing another
/// user's details is itself recorded (A3).
#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "events",
    params(("id" = i64, Path, description = "Event id")),
    responses((status = 200, body = Event), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_event(
    State(state): State<AppState>,
    viewer: Viewer,
    crate::client::ClientAddress(client): crate::client::ClientAddress,
    Path(id): Path<String>,
) -> Result<Json<Event>, ApiError> {
    let not_found = || ApiError::new(Code::NotFound, format!("no event with id {id}"));
    let numeric: EventId = id.parse().map_err(|_| not_found())?;
    Ok(Json(details(&state, &viewer, client, numeric).await?))
}

/// One event's details for a viewer (V6): `not_found` when they may not see it in the lists,
/// `forbidden` when they may see only its first line. Viewing another user's details is
/// recorded (A3).
pub async fn details(
    state: &AppState,
    viewer: &Viewer,
    client: std::net::IpAddr,
    id: EventId,
) -> Result<Event, ApiError> {
    let not_found = || ApiError::new(Code::NotFound, format!("no event with id {id}"));
    let event = state.store.get(id).await?.ok_or_else(not_found)?;
    let own = viewer.user.as_deref() == Some(event.body.user.as_str());
    if !own && !viewer.may(Right::ReadAll) {
        return Err(not_found());
    }
    if !may_details(viewer, &event) {
        return Err(ApiError::new(
            Code::Forbidden,
            "you may see this entry's first line in the lists, but its details need the right `details_all` \
             (or `details_own` for your own entries)",
        ));
    }
    if !own {
        let actor = crate::auth::actor(viewer, client);
        let details = [("event_user", event.body.user.clone())];
        let audit = trail_accounts::events::audit(
            "AUDIT_DETAILS_VIEWED",
            &actor,
            &id.to_string(),
            None,
            &details,
            (state.clock)(),
        );
        state.store.append(vec![audit]).await?;
    }
    Ok(event)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Related {
    /// The job the event belongs to, with every leaf.
    job: Option<crate::routes::jobs::JobView>,
    /// Events sharing the event's job, or its (or its job's) request, oldest first: from the
    /// user's request to the job, its leaves and the device results, and back. Others' entries
    /// need `read_all`; their details, `details_all`.
    events: Vec<Event>,
}

/// The most related events, and the most jobs of one request, a walk gathers.
const RELATED: usize = 10_000;
const RELATED_JOBS: usize = 20;

/// Walks the correlation of one event (V6): its request, its job, the job's leaves and the
/// device events that resulted.
#[utoipa::path(get, path = "/api/v1/events/{id}/related", tag = "events",
    params(("id" = i64, Path, description = "Event id")),
    responses((status = 200, body = Related), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn related(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<EventId>,
) -> Result<Json<Related>, ApiError> {
    let not_found = || ApiError::new(Code::NotFound, format!("no event with id {id}"));
    let event = state.store.get(id).await?.ok_or_else(not_found)?;
    if !visible_to(&viewer, &event) {
        return Err(not_found());
    }
    let (job, events) = related_to(&state, &viewer, &event).await?;
    Ok(Json(Related { job: job.as_ref().map(|job| crate::routes::jobs::JobView::of(job, &viewer)), events }))
}

fn visible_to(viewer: &Viewer, event: &Event) -> bool {
    viewer.user.as_deref() == Some(event.body.user.as_str()) || viewer.may(Right::ReadAll)
}

/// The job of an event and the events correlated with it, as the viewer may see them.
pub async fn related_to(
    state: &AppState,
    viewer: &Viewer,
    event: &Event,
) -> Result<(Option<trail_core::operations::Job>, Vec<Event>), ApiError> {
    let job_of = |e: &Event| e.body.job_id.as_deref().and_then(|j| j.parse::<JobId>().ok());
    let mut job = match job_of(event) {
        Some(job) => state.store.job(job).await?,
        None => None,
    };
    let request = event.body.request_id.clone().or_else(|| job.as_ref().and_then(|j| j.request_id.clone()));
    let mut events = state.store.correlated(event.body.job_id.clone(), request, RELATED).await?;
    events.retain(|e| visible_to(viewer, e));
    // A request's jobs bring their results, which carry the job but not the request.
    let mut jobs: Vec<JobId> = events.iter().filter_map(job_of).collect();
    jobs.sort_unstable();
    jobs.dedup();
    for other in jobs.iter().copied().filter(|j| Some(*j) != job_of(event)).take(RELATED_JOBS) {
        events.extend(state.store.correlated(Some(other.to_string()), None, RELATED).await?);
    }
    events.sort_by_key(|e| e.id);
    events.dedup_by_key(|e| e.id);
    if job.is_none() && jobs.len() == 1 {
        job = state.store.job(jobs[0]).await?;
    }
    // The job itself (its leaves, its submitter) is for those who follow jobs.
    if !viewer.may(Right::Jobs) {
        job = None;
    }
    let events = events.into_iter().filter(|e| visible_to(viewer, e)).map(|e| redact_for(viewer, e)).collect();
    Ok((job, events))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Users {
    users: Vec<String>,
}

/// Every user with at least one entry, for the user selector (V2).
#[utoipa::path(get, path = "/api/v1/users", tag = "events",
    responses((status = 200, body = Users)), security(("bearer" = [])))]
pub async fn list_users(State(state): State<AppState>, _viewer: Viewer) -> Result<Json<Users>, ApiError> {
    Ok(Json(Users { users: state.store.known_users().await? }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedParams {
    /// Return events with ids above this one (0 for the start).
    pub after: Option<EventId>,
    /// At most this many, 1-1000 (default 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Feed {
    /// The events the caller may see, in id order, redacted as the lists are.
    events: Vec<Event>,
    /// Pass back as `after` for the next events: the last id this answer accounts for, shown
    /// or not (events the caller may not see leave gaps). Equal to `after` when nothing newer
    /// has been committed.
    next_after: EventId,
    /// Every event up to `next_after` is in `events`, whole: none was hidden or redacted for
    /// this caller (what verifying the chain needs).
    whole: bool,
}

/// Rows one feed request reads at most, so that a reader who may see few of them is answered
/// in bounded time (and pages on with `next_after`).
const FEED_SCAN: usize = 10 * MAX_PAGE;

/// Committed events in id order, oldest first: for `tail`, `export` and `verify`. The same
/// visibility and redaction as the lists and exports; reading is recorded as an export is
/// (`AUDIT_EXPORT`, once per reader and [`FEED_AUDIT_EVERY`], so a tail that polls does not
/// feed on its own records).
#[utoipa::path(get, path = "/api/v1/feed", tag = "events", params(FeedParams),
    responses((status = 200, body = Feed), (status = 400, body = ErrorBody)), security(("bearer" = [])))]
pub async fn feed(
    State(state): State<AppState>,
    viewer: Viewer,
    crate::client::ClientAddress(client): crate::client::ClientAddress,
    Params(params): Params<FeedParams>,
) -> Result<Json<Feed>, ApiError> {
    let limit = super::params::page_size(params.limit, MAX_PAGE)?;
    let mut next_after = params.after.unwrap_or(EventId::ZERO).max(EventId::ZERO);
    record_feed_reading(&state, &viewer, client, next_after).await?;
    let (mut events, mut scanned, mut whole) = (Vec::new(), 0, true);
    while events.len() < limit && scanned < FEED_SCAN {
        let read = state.store.read_after(next_after, MAX_PAGE).await?;
        if read.is_empty() {
            break;
        }
        scanned += read.len();
        for event in read {
            if events.len() == limit {
                break;
            }
            next_after = event.id;
            if !visible_to(&viewer, &event) {
                whole = false;
                continue;
            }
            whole &= may_details(&viewer, &event);
            events.push(redact_for(&viewer, event));
        }
    }
    Ok(Json(Feed { events, next_after, whole }))
}

/// How often one reader's feed reading is recorded.
pub const FEED_AUDIT_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Records a reader's feed reading (A3) unless the same reader's was recorded within
/// [`FEED_AUDIT_EVERY`] on this node.
async fn record_feed_reading(
    state: &AppState,
    viewer: &Viewer,
    client: std::net::IpAddr,
    after: EventId,
) -> Result<(), ApiError> {
    let reader = viewer.submitted_by();
    {
        let mut readers = state.feed_readers.lock().expect("feed readers");
        let now = std::time::Instant::now();
        readers.retain(|_, at| now.duration_since(*at) < FEED_AUDIT_EVERY);
        if readers.contains_key(&reader) {
            return Ok(());
        }
        readers.insert(reader, now);
    }
    let actor = crate::auth::actor(viewer, client);
    let details = [("after", after.to_string())];
    let audit =
        trail_accounts::events::audit("AUDIT_EXPORT", &actor, "events as feed", None, &details, (state.clock)());
    state.store.append(vec![audit]).await?;
    Ok(())
}
