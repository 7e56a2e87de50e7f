//! The change logs (V1-V5): filters in the URL, newest first, 100 to a page over a stable
//! snapshot, with a notice of newer entries and exports of the current filter.

use super::{Ui, problem, severity_badge};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use trail_core::identity::Right;
use trail_core::query::SearchParams;

/// The page's filters, as its URL carries them.
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    /// Empty: the viewer's own entries; `*`: everyone's; else one user's.
    #[serde(default)]
    who: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    month: String,
    #[serde(default)]
    day: String,
    cursor: Option<String>,
}

fn some(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

impl Filters {
    fn search(&self, ui: &Ui) -> SearchParams {
        let everyone = self.who == "*" || (self.who.is_empty() && ui.viewer.user.is_none());
        SearchParams {
            user: if everyone { None } else { some(&self.who) },
            all_users: everyone.then_some(true),
            action: some(&self.action),
            name: some(&self.name),
            message: some(&self.message),
            month: some(&self.month),
            day: some(&self.day),
            tz: ui.zone.iana_name().map(str::to_owned),
            limit: Some(100),
            cursor: self.cursor.clone(),
        }
    }

    /// This view's URL with another cursor (or none: the newest page).
    fn url(&self, cursor: Option<&str>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (key, value) in self.pairs() {
            query.append_pair(key, value);
        }
        if let Some(cursor) = cursor {
            query.append_pair("cursor", cursor);
        }
        format!("/?{}", query.finish())
    }

    fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("who", &self.who),
            ("action", &self.action),
            ("name", &self.name),
            ("message", &self.message),
            ("month", &self.month),
            ("day", &self.day),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k, v.as_str()))
        .collect()
    }
}

/// The export of the current filter, in a format.
fn export_url(search: &SearchParams, format: &str) -> String {
    let params = SearchParams { cursor: None, limit: None, ..search.clone() };
    let query = serde_urlencoded::to_string(&params).unwrap_or_default();
    format!("/api/v1/export?format={format}&{query}")
}

pub async fn page(State(state): State<AppState>, ui: Ui, Query(filters): Query<Filters>) -> Response {
    let search = filters.search(&ui);
    let users = state.store.known_users().await.unwrap_or_default();
    let everyone = ui.may(Right::ReadAll);
    let query = match search.clone().into_query(ui.viewer.user.as_deref(), ui.viewer.details_reach()) {
        Ok(query) => query,
        Err(error) => return problem(&ui, StatusCode::BAD_REQUEST, "Change logs", &error.to_string()),
    };
    let own = matches!(&query.filter.user, trail_core::UserFilter::Only(u) if Some(u) == ui.viewer.user.as_ref());
    if !own && !everyone {
        return problem(
            &ui,
            StatusCode::FORBIDDEN,
            "Change logs",
            "Reading other users' entries needs the right read_all.",
        );
    }
    let row_by_row = query.filter.reads_row_by_row();
    let page = match state.store.search(query).await {
        Ok(page) => page,
        Err(error) => return problem(&ui, StatusCode::SERVICE_UNAVAILABLE, "Change logs", &error.to_string()),
    };
    let next = page.next_cursor.map(|c| c.encode());
    let me = ui.viewer.user.clone().unwrap_or_default();
    let content = html! {
        h1 { "Change logs" }
        form.filters method="get" action="/" role="search" aria-label="Filter the change logs" {
            label { "User"
                select name="who" {
                    @if !me.is_empty() { option value="" selected[filters.who.is_empty()] { "Me (" (me) ")" } }
                    @if everyone {
                        option value="*" selected[filters.who == "*" || (me.is_empty() && filters.who.is_empty())] { "All users" }
                        @for user in &users {
                            @if *user != me { option value=(user) selected[filters.who == *user] { (user) } }
                        }
                    }
                }
            }
            label { "Action" input name="action" value=(filters.action) size="10"; }
            label { "Name" input name="name" value=(filters.name) size="14"; }
            label { "Message" input name="message" value=(filters.message) size="22"; }
            label { "Month" input name="month" type="month" value=(filters.month); }
            label { "Day" input name="day" type="date" value=(filters.day); }
            button.primary type="submit" { "Apply" }
            a href="/" { "Clear" }
        }
        @if page.incomplete {
            p.notice role="status" #incomplete {
                @if row_by_row {
                    "No filter has three characters in a row to look up, so the trail is read entry by "
                    "entry: these are the matches among the newest entries"
                    @if let Some(cursor) = &page.next_cursor { " (read back to #" (cursor.before) ")" }
                    ". Go on with the next page, or give three characters in a row."
                } @else {
                    "The search stopped at its time budget: these are the matches found so far. "
                    "Go on with the next page, or narrow the filters."
                }
            }
        }
        @if page.newer > 0 {
            p.notice role="status" #newer {
                (page.newer) " newer " (if page.newer == 1 { "entry" } else { "entries" }) ". "
                a href=(filters.url(None)) { "Refresh" }
            }
        }
        div.actions {
            @if ui.may(Right::Export) {
                span.muted { "Export this view:" }
                a href=(export_url(&search, "csv")) download { "CSV" }
                a href=(export_url(&search, "ndjson")) download { "NDJSON" }
            }
            span.muted { "Double-click a row, or press Enter on it, to open its details." }
        }
        div.table-wrap {
            table #events .cards {
                caption.muted { "Newest first, " (page.events.len()) " shown" }
                thead { tr {
                    th scope="col" { "Time (" (ui.zone.iana_name().unwrap_or("UTC")) ")" }
                    th scope="col" { "User" }
                    th scope="col" { "Action" }
                    th scope="col" { "Name" }
                    th scope="col" { "Message" }
                    th scope="col" { "Severity" }
                } }
                tbody {
                    @for event in &page.events {
                        tr tabindex="0" data-href={ "/events/" (event.id) } data-id=(event.id)
                            aria-label={ "Entry " (event.id) ": " (event.body.summary()) } {
                            td.time data-label="Time" { (ui.time(event.body.time)) }
                            td data-label="User" { (event.body.user) }
                            td data-label="Action" { (event.body.action) }
                            td data-label="Name" { (event.body.name) }
                            td.summary data-label="Message" { (event.body.summary()) }
                            td data-label="Severity" { (severity_badge(event.body.severity)) }
                        }
                    }
                    @if page.events.is_empty() { tr { td colspan="6" { "No entries match." } } }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if filters.cursor.is_some() { a href=(filters.url(None)) { "« Newest" } }
            @if let Some(next) = &next { a #older href=(filters.url(Some(next))) rel="next" { "Older »" } }
        }
    };
    ui.page("Change logs", content)
}
