//! Jobs (V7): the list, a job's leaves and its paged log (each job opens in a window of its own),
//! and the operations in progress, live (V8).

use super::{Ui, problem, status_badge};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use trail_core::Pattern;
use trail_core::operations::{JobId, LogQuery};

#[derive(Deserialize)]
pub struct ListQuery {
    before: Option<JobId>,
}

const PAGE: usize = 100;

pub async fn list(State(state): State<AppState>, ui: Ui, Query(query): Query<ListQuery>) -> Response {
    let jobs = match state.operations.jobs(query.before, PAGE).await {
        Ok(jobs) => jobs,
        Err(error) => return problem(&ui, StatusCode::SERVICE_UNAVAILABLE, "Jobs", &error.to_string()),
    };
    let content = html! {
        h1 { "Jobs" }
        div.table-wrap { table #jobs {
            caption.muted { "Newest first. Each job opens in a window of its own." }
            thead { tr {
                th scope="col" { "Job" } th scope="col" { "Name" } th scope="col" { "Submitter" }
                th scope="col" { "Submitted" } th scope="col" { "Status" }
                th scope="col" { "Queued" } th scope="col" { "Running" } th scope="col" { "Succeeded" }
                th scope="col" { "Failed" } th scope="col" { "Cancelled" }
            } }
            tbody {
                @for job in &jobs {
                    @let [queued, running, succeeded, failed, cancelled] = job.counts;
                    tr {
                        td { a href={ "/jobs/" (job.id) } target={ "trail-job-" (job.id) } data-window={ "trail-job-" (job.id) }
                            aria-label={ "Open job " (job.id) " in a new window" } { (job.id) } }
                        td { (job.name) }
                        td { (job.submitter) }
                        td.time { (ui.time(job.submitted_at)) }
                        td { (status_badge(job.status().name())) }
                        td { (queued) } td { (running) } td { (succeeded) } td { (failed) } td { (cancelled) }
                    }
                }
                @if jobs.is_empty() { tr { td colspan="10" { "No jobs yet." } } }
            }
        } }
        nav.pager aria-label="Pages" {
            @if query.before.is_some() { a href="/jobs" { "« Newest" } }
            @if jobs.len() == PAGE { @if let Some(last) = jobs.last() { a href={ "/jobs?before=" (last.id) } rel="next" { "Older »" } } }
        }
    };
    ui.page("Jobs", content)
}

#[derive(Deserialize)]
pub struct JobQuery {
    target: Option<String>,
    q: Option<String>,
    after: Option<i64>,
}

pub async fn job(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    Query(query): Query<JobQuery>,
) -> Response {
    let Ok(id) = id.parse::<JobId>() else {
        return problem(&ui, StatusCode::NOT_FOUND, "No such job", "There is no such job.");
    };
    let job = match state.operations.job(id).await {
        Ok(job) => job,
        Err(_) => return problem(&ui, StatusCode::NOT_FOUND, "No such job", &format!("There is no job {id}.")),
    };
    let target = query.target.clone().filter(|t| !t.is_empty());
    let q = query.q.clone().filter(|q| !q.is_empty());
    let contains = match q.as_deref().map(Pattern::parse).transpose() {
        Ok(contains) => contains,
        Err(error) => return problem(&ui, StatusCode::BAD_REQUEST, "Search refused", &error.to_string()),
    };
    let log = LogQuery {
        job: id,
        target: target.clone(),
        contains,
        after: query.after.unwrap_or(0),
        limit: PAGE,
        deadline: trail_core::query::search_deadline(),
    };
    let may_read_log = ui.viewer.details_reach().covers(&job.submitter);
    let page = if may_read_log { state.operations.log(log).await.unwrap_or_default() } else { Default::default() };
    let entries = &page.entries;
    let next = page.next_after(PAGE);
    let page_url = |after: Option<i64>| {
        let mut url = form_urlencoded::Serializer::new(String::new());
        if let Some(target) = &target {
            url.append_pair("target", target);
        }
        if let Some(q) = &q {
            url.append_pair("q", q);
        }
        if let Some(after) = after {
            url.append_pair("after", &after.to_string());
        }
        format!("/jobs/{id}?{}", url.finish())
    };
    let content = html! {
        h1 { "Job " (job.id) ": " (job.name) " " (status_badge(job.status().name())) }
        p.muted {
            "Submitted by " (job.submitter) " at " (ui.time(job.submitted_at)) ". "
            a href={ "/events/" (job.submit_event_id) } { "Submission entry" }
            @if let Some(done) = job.completed_event_id { " · " a href={ "/events/" (done) } { "Completion entry" } }
        }
        h2 { "Targets" }
        div.table-wrap { table #leaves {
            thead { tr { th scope="col" { "Target" } th scope="col" { "Status" } th scope="col" { "Updated" } th scope="col" { "Message" } th scope="col" { "Entry" } } }
            tbody {
                @for leaf in &job.leaves {
                    tr data-target=(leaf.target) {
                        td { (leaf.target) }
                        td { (status_badge(leaf.status.name())) }
                        td.time { (ui.time(leaf.updated_at)) }
                        td.summary { (leaf.message.lines().next().unwrap_or("")) }
                        td { @if let Some(event) = leaf.event_id { a href={ "/events/" (event) } { (event) } } }
                    }
                }
            }
        } }
        h2 #log { "Log" }
        form.filters method="get" action={ "/jobs/" (id) } aria-label="Filter the job log" {
            label { "Target"
                select name="target" {
                    option value="" { "All" }
                    @for leaf in &job.leaves { option value=(leaf.target) selected[target.as_deref() == Some(leaf.target.as_str())] { (leaf.target) } }
                }
            }
            label { "Search" input name="q" value=(q.as_deref().unwrap_or("")); }
            button.primary type="submit" { "Apply" }
        }
        @if !may_read_log { p.notice role="note" { (crate::routes::jobs::log_needs_details(&job.submitter)) } }
        @if page.stopped_at.is_some() {
            p.notice role="status" { "The search stopped at its time budget: these are the lines found so far. Go on with the next page." }
        }
        pre.message #log-lines {
            @for entry in entries {
                span.muted { (entry.seq) " " (ui.time(entry.entry.time)) }
                @if let Some(target) = &entry.entry.target { " [" (target) "]" }
                " " (entry.entry.text) "\n"
            }
            @if entries.is_empty() && may_read_log { "No log lines." }
        }
        nav.pager aria-label="Log pages" {
            @if query.after.unwrap_or(0) > 0 { a href=(page_url(None)) { "« First" } }
            @if let Some(next) = next { a #log-next href=(page_url(Some(next))) rel="next" { "Next »" } }
        }
    };
    ui.page(&format!("Job {}", job.id), content)
}

pub async fn status(State(state): State<AppState>, ui: Ui) -> Response {
    let running = state.operations.in_progress(1000).await.unwrap_or_default();
    let content = html! {
        h1 { "Status" }
        p.muted { "Operations in progress, updating " span #live-state role="status" { "…" } }
        div.table-wrap { table #live-status {
            thead { tr {
                th scope="col" { "Job" } th scope="col" { "Name" } th scope="col" { "Status" }
                th scope="col" { "Queued" } th scope="col" { "Running" } th scope="col" { "Succeeded" }
                th scope="col" { "Failed" } th scope="col" { "Cancelled" } th scope="col" { "Last change" }
            } }
            tbody {
                @for job in &running {
                    tr data-job=(job.job) {
                        td data-field="job" { a href={ "/jobs/" (job.job) } { (job.job) } }
                        td data-field="name" { (job.name) }
                        td data-field="status" class={ "st-" (job.status.name()) } { (job.status.name()) }
                        td data-field="queued" { (job.queued) }
                        td data-field="running" { (job.running) }
                        td data-field="succeeded" { (job.succeeded) }
                        td data-field="failed" { (job.failed) }
                        td data-field="cancelled" { (job.cancelled) }
                        td data-field="last" { "-" }
                    }
                }
                @if running.is_empty() { tr #live-empty { td colspan="9" { "Nothing is running." } } }
            }
        } }
    };
    ui.page("Status", content)
}
