//! `/api/v1/export`: the events a search would find, oldest first, as NDJSON or CSV, streamed
//! page by page so memory stays bounded whatever the size. Every export is recorded first (A3).

use super::params::Params;
use crate::AppState;
use crate::auth::Viewer;
use crate::client::ClientAddress;
use crate::error::{ApiError, Code, ErrorBody};
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::Response;
use serde::Deserialize;
use trail_core::identity::Right;
use trail_core::query::SearchParams;
use trail_core::{EventId, Filter, UserFilter};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportFormat {
    /// `ndjson` (default) or `csv`.
    #[param(pattern = "^(ndjson|csv)$")]
    pub format: Option<String>,
}

/// One page of the export, encoded.
fn encode(events: &[trail_core::Event], csv: bool) -> Result<Vec<u8>, std::io::Error> {
    if !csv {
        let mut out = Vec::new();
        for event in events {
            serde_json::to_writer(&mut out, event)?;
            out.push(b'\n');
        }
        return Ok(out);
    }
    let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    for event in events {
        writer.write_record(trail_core::export::csv_fields(event)).map_err(std::io::Error::other)?;
    }
    writer.into_inner().map_err(|e| std::io::Error::other(e.to_string()))
}

/// Exports the events matching the search parameters (`limit` and `cursor` aside), oldest
/// first. Entries whose details the caller may not see are exported with line 1 only.
#[utoipa::path(get, path = "/api/v1/export", tag = "events", params(SearchParams, ExportFormat),
    responses((status = 200, description = "NDJSON or CSV"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn export(
    State(state): State<AppState>,
    viewer: Viewer,
    ClientAddress(client): ClientAddress,
    RawQuery(raw): RawQuery,
    Params(params): Params<SearchParams>,
    Params(format): Params<ExportFormat>,
) -> Result<Response, ApiError> {
    let csv = match format.format.as_deref() {
        None | Some("ndjson") => false,
        Some("csv") => true,
        Some(other) => return Err(ApiError::new(Code::InvalidQuery, format!("format {other:?}: use ndjson or csv"))),
    };
    let filter: Filter = params.into_query(viewer.user.as_deref(), viewer.details_reach())?.filter;
    let own = matches!(&filter.user, UserFilter::Only(user) if Some(user) == viewer.user.as_ref());
    if !own && !viewer.may(Right::ReadAll) {
        return Err(ApiError::new(Code::Forbidden, "exporting other users' entries needs the right `read_all`"));
    }
    // The export is a snapshot: the events up to now, not the audit event below or later ones.
    let head = state.store.stats().await?.head;
    let actor = crate::auth::actor(&viewer, client);
    let what = format!("events as {}", if csv { "CSV" } else { "NDJSON" });
    let details = [("filter", raw.unwrap_or_default())];
    let audit = trail_accounts::events::audit("AUDIT_EXPORT", &actor, &what, None, &details, (state.clock)());
    state.store.append(vec![audit]).await?;

    let header_line = csv.then(|| format!("{}\n", trail_core::export::CSV_HEADER.join(",")));
    let start = (state, viewer, filter, EventId::ZERO, header_line, false);
    let pages =
        futures_util::stream::unfold(start, move |(state, viewer, filter, after, header_line, done)| async move {
            if done || after >= head {
                return None;
            }
            if let Some(line) = header_line {
                return Some((Ok(Bytes::from(line)), (state, viewer, filter, after, None, false)));
            }
            let events = match state.store.read_after(after, 1000).await {
                Ok(events) => events,
                Err(error) => {
                    return Some((
                        Err(std::io::Error::other(error.to_string())),
                        (state, viewer, filter, after, None, true),
                    ));
                }
            };
            let last = events.last().map(|e| e.id)?;
            let visible: Vec<_> = events
                .into_iter()
                .filter(|e| e.id <= head && filter.matches(&e.body))
                .map(|e| crate::routes::events::redact_for(&viewer, e))
                .collect();
            let chunk = encode(&visible, csv).map(Bytes::from);
            Some((chunk, (state, viewer, filter, last, None, false)))
        });
    let content_type = if csv { "text/csv; charset=utf-8" } else { "application/x-ndjson" };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"trail-export.{}\"", if csv { "csv" } else { "ndjson" }),
        )
        .body(Body::from_stream(pages))
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))
}
