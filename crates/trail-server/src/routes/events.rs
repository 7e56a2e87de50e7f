//! Ingest and search: `/api/v1/events`, `/api/v1/events/{id}`, `/api/v1/changes`,
//! `/api/v1/users`.

use crate::AppState;
use crate::auth::Viewer;
use crate::error::{ApiError, Code, ErrorBody};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use trail_core::query::{DEFAULT_PAGE, MAX_PAGE};
use trail_core::time::{DateFilter, parse_time_zone};
use trail_core::{Cursor, Event, EventId, Filter, Pattern, SearchQuery, UserFilter, request};

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
    _viewer: Viewer,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Ids>), ApiError> {
    let events = request::events_from_json(&body?, (state.clock)())?;
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
    _viewer: Viewer,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Id>), ApiError> {
    let event = request::change_from_json(&body?, (state.clock)())?;
    let ids = state.store.append(vec![event]).await?;
    Ok((StatusCode::CREATED, Json(Id { id: ids[0] })))
}

/// Search parameters, exactly as the contract names them.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// One user's entries; without it (and without all_users) the viewer's own.
    pub user: Option<String>,
    /// Every user's entries.
    pub all_users: Option<bool>,
    /// Case-insensitive substring of the action; `%` any run, `_` one character, `\` escapes.
    pub action: Option<String>,
    /// Like `action`, on the object name.
    pub name: Option<String>,
    /// Like `action`, on the whole multi-line message.
    pub message: Option<String>,
    /// `YYYY-MM`, in `tz`.
    pub month: Option<String>,
    /// `YYYY-MM-DD`, in `tz`.
    pub day: Option<String>,
    /// IANA time zone for month and day (default UTC).
    pub tz: Option<String>,
    /// Page size, 1-1000 (default 100).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl SearchParams {
    /// Turns the parameters into a query, resolving "own entries" to the viewer (V2).
    pub fn into_query(self, viewer: &str) -> Result<SearchQuery, ApiError> {
        let invalid = |message: String| ApiError::new(Code::InvalidQuery, message);
        let user = match (self.all_users.unwrap_or(false), self.user) {
            (true, _) => UserFilter::All,
            (false, Some(user)) if !user.is_empty() => UserFilter::Only(user),
            (false, _) => UserFilter::Only(viewer.to_owned()),
        };
        let date = match (self.month, self.day) {
            (Some(_), Some(_)) => return Err(invalid("give month or day, not both".into())),
            (Some(month), None) => Some(DateFilter::parse_month(&month).map_err(invalid)?),
            (None, Some(day)) => Some(DateFilter::parse_day(&day).map_err(invalid)?),
            (None, None) => None,
        };
        let tz = parse_time_zone(self.tz.as_deref().unwrap_or("UTC")).map_err(invalid)?;
        let window = date.map(|d| d.window(&tz)).transpose().map_err(invalid)?;
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(invalid(format!("limit must be 1-{MAX_PAGE}, got {limit}")));
        }
        let cursor = self
            .cursor
            .map(|c| Cursor::decode(&c))
            .transpose()
            .map_err(|message| ApiError::new(Code::InvalidCursor, message))?;
        let pattern = |text: Option<String>| text.filter(|t| !t.is_empty()).map(|t| Pattern::new(&t));
        Ok(SearchQuery {
            filter: Filter {
                user,
                action: pattern(self.action),
                name: pattern(self.name),
                message: pattern(self.message),
                window,
            },
            limit,
            cursor,
        })
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventPage {
    events: Vec<Event>,
    /// Pass back as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
    /// Matching entries added since the first page was read (V5).
    newer: u64,
}

/// Searches the trail, newest first, 100 to a page, with a stable snapshot across pages.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(SearchParams),
    responses((status = 200, body = EventPage), (status = 400, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_events(
    State(state): State<AppState>,
    viewer: Viewer,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<EventPage>, ApiError> {
    let query = params?.0.into_query(&viewer.user)?;
    let page = state.store.search(query).await?;
    Ok(Json(EventPage { events: page.events, next_cursor: page.next_cursor.map(|c| c.encode()), newer: page.newer }))
}

/// One event with its full message, attributes and correlation ids (V6).
#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "events",
    params(("id" = i64, Path, description = "Event id")),
    responses((status = 200, body = Event), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_event(
    State(state): State<AppState>,
    _viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Json<Event>, ApiError> {
    let not_found = || ApiError::new(Code::NotFound, format!("no event with id {id}"));
    let numeric: EventId = id.parse().map_err(|_| not_found())?;
    state.store.get(numeric).await?.map(Json).ok_or_else(not_found)
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
    pub limit: Option<usize>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Feed {
    /// Events in id order.
    events: Vec<Event>,
}

/// Committed events in id order, oldest first: for `tail`, `export` and `verify`.
#[utoipa::path(get, path = "/api/v1/feed", tag = "events", params(FeedParams),
    responses((status = 200, body = Feed), (status = 400, body = ErrorBody)), security(("bearer" = [])))]
pub async fn feed(
    State(state): State<AppState>,
    _viewer: Viewer,
    params: Result<Query<FeedParams>, QueryRejection>,
) -> Result<Json<Feed>, ApiError> {
    let params = params?.0;
    let limit = params.limit.unwrap_or(MAX_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::new(Code::InvalidQuery, format!("limit must be 1-{MAX_PAGE}, got {limit}")));
    }
    let events = state.store.read_after(params.after.unwrap_or(0).max(0), limit).await?;
    Ok(Json(Feed { events }))
}
