//! An entry's details (V6): the whole message with its diff rendered, the attributes, and the
//! links to its job, its request and the events related to it.

use super::{Ui, problem, severity_badge, status_badge};
use crate::AppState;
use crate::client::ClientAddress;
use crate::error::Code;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use trail_core::Event;
use trail_core::EventId;

/// The message, a line at a time: added and removed lines marked (and still readable without
/// colour, by their + and -), hunk headers muted.
pub fn message(text: &str) -> Markup {
    html! {
        pre.message {
            @for line in text.split('\n') {
                @let trimmed = line.trim_start();
                // The marked lines are blocks: they end their own line.
                @if trimmed.starts_with("@@") {
                    span.hunk { (line) }
                } @else if trimmed.starts_with('+') && !trimmed.starts_with("+++") {
                    ins.add { (line) }
                } @else if trimmed.starts_with('-') && !trimmed.starts_with("---") {
                    del.del { (line) }
                } @else {
                    (line) "\n"
                }
            }
        }
    }
}

fn field(name: &str, value: Option<&str>) -> Markup {
    html! { @if let Some(value) = value.filter(|v| !v.is_empty()) { dt { (name) } dd { (value) } } }
}

pub async fn page(
    State(state): State<AppState>,
    ui: Ui,
    ClientAddress(client): ClientAddress,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse() else {
        return problem(&ui, StatusCode::NOT_FOUND, "No such entry", "There is no entry with this id.");
    };
    let event = match crate::routes::events::details(&state, &ui.viewer, client, id).await {
        Ok(event) => event,
        Err(error) if error.code == Code::NotFound => {
            return problem(
                &ui,
                StatusCode::NOT_FOUND,
                "No such entry",
                "There is no entry with this id that you may see.",
            );
        }
        Err(error) if error.code == Code::Forbidden => {
            return problem(
                &ui,
                StatusCode::FORBIDDEN,
                "Details not available",
                "You may see this entry's first line in the change logs, but not its details: they need the right \
                 details_all (or details_own for your own entries). Ask an administrator.",
            );
        }
        Err(error) => return problem(&ui, StatusCode::SERVICE_UNAVAILABLE, "Entry", &error.message),
    };
    let (job, related) = crate::routes::events::related_to(&state, &ui.viewer, &event).await.unwrap_or_default();
    let covering = state.store.checkpoint_covering(trail_core::tree::size_through(event.id)).await.ok().flatten();
    let body = &event.body;
    let content = html! {
        p { a href="/" { "« Change logs" } }
        h1 { "Entry " (event.id) ": " (body.summary()) }
        dl.fields {
            dt { "Time" } dd { (ui.time(body.time)) }
            dt { "User" } dd { (body.user) }
            dt { "Kind" } dd { (body.kind) }
            dt { "Action" } dd { (body.action) }
            dt { "Name" } dd { (body.name) }
            dt { "Severity" } dd { (severity_badge(body.severity)) }
            (field("Outcome", body.outcome.map(|o| o.name())))
            (field("Process", Some(&body.process)))
            (field("Client", body.client.as_deref()))
            (field("Sent by", body.submitted_by.as_deref()))
            @if let Some(request) = &body.request_id {
                dt { "Request" } dd { (request) @if related.len() > 1 { " · " a href="#related-entries" { "its related entries" } } }
            }
            (field("Session", body.session_id.as_deref()))
            // Links only for ids: these fields are free text on events sent by platforms.
            @if let Some(job_id) = &body.job_id {
                dt { "Job" } dd {
                    @match job_id.parse::<i64>() {
                        Ok(job) => a href={ "/jobs/" (job) } data-window={ "trail-job-" (job) } { "Job " (job) },
                        Err(_) => (job_id),
                    }
                }
            }
            @if let Some(parent) = &body.parent_id {
                dt { "Parent" } dd {
                    @match parent.parse::<i64>() {
                        Ok(id) => a href={ "/events/" (id) } { "Entry " (id) },
                        Err(_) => (parent),
                    }
                }
            }
            dt { "Hash" } dd.muted { code { (event.hash) } }
        }
        h2 { "Message" }
        (message(&body.message))
        @if !body.attributes.is_empty() {
            h2 { "Attributes" }
            table { tbody {
                @for (key, value) in &body.attributes {
                    tr { th scope="row" { (key) } td { @match value { serde_json::Value::String(text) => (text), other => (other.to_string()) } } }
                }
            } }
        }
        (integrity(&ui, &state, &event, covering.as_ref()))
        @if let Some(job) = &job {
            h2 { "Job" }
            p {
                a href={ "/jobs/" (job.id) } data-window={ "trail-job-" (job.id) } { (job.name) }
                " " (status_badge(job.status().name())) " submitted by " (job.submitter)
            }
        }
        @if related.len() > 1 {
            h2 #related-entries { "Related entries" }
            (related_table(&ui, &related, event.id))
        }
    };
    ui.page(&format!("Entry {}", event.id), content)
}

/// Which signed checkpoint covers the entry, who cosigned it, and its proof to download (S4).
fn integrity(
    ui: &Ui,
    state: &AppState,
    event: &Event,
    covering: Option<&trail_core::checkpoint::RecordedCheckpoint>,
) -> Markup {
    let witnesses = state.checkpointer.as_deref().map(|c| c.witnesses());
    html! {
        section #integrity {
            h2 { "Integrity" }
            @if let Some(checkpoint) = covering {
                @let origin = checkpoint.note.lines().next().unwrap_or_default();
                p {
                    "Covered by the checkpoint of " (checkpoint.size) " entries that " code { (origin) } " signed "
                    (ui.time(checkpoint.signed_at)) " ("
                    a href={ "/events/" (checkpoint.event_id) } { "entry " (checkpoint.event_id) } "). "
                    @match witnesses.filter(|w| !w.keys().is_empty()) {
                        Some(witnesses) => {
                            @let cosigned = trail_core::witness::cosigned_by(&checkpoint.note, &witnesses.keys());
                            "Cosigned by " (cosigned.len()) " of " (witnesses.keys().len()) " witnesses"
                            @if !cosigned.is_empty() { " (" (cosigned.join(", ")) ")" }
                            "; " (witnesses.required()) " make it final."
                        }
                        None => "No witness cosigns this trail's checkpoints.",
                    }
                }
                p {
                    a href={ "/api/v1/events/" (event.id) "/proof" } download={ "trail-entry-" (event.id) ".proof.json" } {
                        "Download its proof"
                    }
                    " (against the newest checkpoint), to check offline with " code { "trail verify-proof" } "."
                }
            } @else {
                p.muted { "No signed checkpoint covers this entry yet: one is signed within seconds of new entries." }
            }
        }
    }
}

fn related_table(ui: &Ui, related: &[Event], current: EventId) -> Markup {
    html! {
        div.table-wrap { table #related {
            thead { tr { th { "Time" } th { "User" } th { "Kind" } th { "Name" } th { "Message" } } }
            tbody {
                @for event in related {
                    tr tabindex="0" data-href={ "/events/" (event.id) } aria-current=[(event.id == current).then_some("true")] {
                        td.time { (ui.time(event.body.time)) }
                        td { (event.body.user) }
                        td { (event.body.kind) }
                        td { (event.body.name) }
                        td.summary { a href={ "/events/" (event.id) } { (event.body.summary()) } }
                    }
                }
            }
        } }
    }
}
