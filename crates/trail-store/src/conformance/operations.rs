//! V7-V8: jobs and their leaves, job logs, and correlation.

use super::*;
use crate::{Store, StoreError};
use std::sync::Arc;
use trail_core::Pattern;
use trail_core::operations::{Status, StatusReport};

/// A status report as the platform running the job sends it.
fn report(job: i64, target: &str, status: Status, message: &str, time: jiff::Timestamp) -> StatusReport {
    StatusReport::new(JobId::new(job), target, status, message, time, "platform")
}

fn new_job(name: &str, targets: &[&str]) -> trail_core::operations::NewJob {
    trail_core::operations::NewJob {
        name: name.into(),
        targets: targets.iter().map(|t| (*t).to_string()).collect(),
        submitter: "alice".into(),
        submitted_at: at("2026-06-15T12:00:00Z"),
        request_id: Some("req-9".into()),
        session_id: None,
        client: None,
        submitted_by: "session of alice".into(),
    }
}

pub async fn jobs_follow_their_leaves_and_record_finals<S: Store>(store: Arc<S>) {
    use trail_core::operations::Status::*;
    let job = store.create_job(new_job("archive edge routers", &["edge1", "edge2", "edge3"])).await.unwrap();
    assert_eq!(job.leaves.len(), 3);
    let submitted = store.get(job.submit_event_id).await.unwrap().unwrap();
    assert_eq!(
        (submitted.body.kind.as_str(), submitted.body.job_id.clone()),
        ("JOB_SUBMITTED", Some(job.id.to_string()))
    );
    let now = at("2026-06-15T12:01:00Z");
    let started = store.report_leaf(report(job.id.get(), "edge1", Running, "", now)).await.unwrap();
    assert_eq!(started.event_ids.len(), 1, "the job's start is recorded once");
    assert!(store.report_leaf(report(job.id.get(), "edge2", Running, "", now)).await.unwrap().event_ids.is_empty());
    let done = store.report_leaf(report(job.id.get(), "edge1", Succeeded, "archived", now)).await.unwrap();
    assert_eq!(done.event_ids.len(), 1);
    store.report_leaf(report(job.id.get(), "edge2", Failed, "timeout", now)).await.unwrap();
    let last = store.report_leaf(report(job.id.get(), "edge3", Cancelled, "", now)).await.unwrap();
    assert_eq!(last.event_ids.len(), 2, "the last leaf and the whole operation");
    let stored = store.job(job.id).await.unwrap().unwrap();
    assert_eq!(stored.status(), Failed);
    assert_eq!(stored.completed_event_id, Some(last.event_ids[1]));
    assert_eq!(stored.leaf("edge2").unwrap().message, "timeout");
    let failed = store.get(stored.leaf("edge2").unwrap().event_id.unwrap()).await.unwrap().unwrap();
    assert_eq!(
        (failed.body.kind.as_str(), failed.body.severity),
        ("LEAF_OPERATION_COMPLETED", trail_core::Severity::Err)
    );
    assert_eq!(failed.body.parent_id, Some(job.submit_event_id.to_string()));
    let completed = store.get(last.event_ids[1]).await.unwrap().unwrap();
    assert_eq!(completed.body.kind, "OPERATION_COMPLETED");
    assert_eq!(completed.body.severity, trail_core::Severity::Err, "a failed operation is an error (E3)");
    let listed = store.jobs(None, 10).await.unwrap();
    assert_eq!((listed[0].id, listed[0].counts, listed[0].status()), (job.id, [0, 0, 1, 1, 1], Failed));
}

pub async fn refused_reports_store_nothing<S: Store>(store: Arc<S>) {
    use trail_core::operations::Status::*;
    let job = store.create_job(new_job("restore", &["edge1"])).await.unwrap();
    let now = at("2026-06-15T12:01:00Z");
    store.report_leaf(report(job.id.get(), "edge1", Succeeded, "", now)).await.unwrap();
    let head = store.stats().await.unwrap().head;
    let finished = store.report_leaf(report(job.id.get(), "edge1", Running, "", now)).await.unwrap_err();
    assert!(matches!(&finished, StoreError::Conflict(m) if m.contains("already finished")), "{finished}");
    assert!(matches!(
        store.report_leaf(report(job.id.get(), "edge9", Running, "", now)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.report_leaf(report((job.id + 100).get(), "edge1", Running, "", now)).await,
        Err(StoreError::NotFound(_))
    ));
    let entry = trail_core::operations::LogEntry { time: now, target: Some("edge9".into()), text: "x".into() };
    assert!(matches!(store.append_job_log(job.id, vec![entry]).await, Err(StoreError::NotFound(_))));
    assert_eq!(store.stats().await.unwrap().head, head);
    assert_eq!(store.job(job.id).await.unwrap().unwrap().leaf("edge1").unwrap().status, Succeeded);
}

pub async fn job_logs_page_and_search<S: Store>(store: Arc<S>) {
    use trail_core::operations::{LogEntry, LogQuery};
    let job = store.create_job(new_job("scan", &["edge1", "edge2"])).await.unwrap();
    let now = at("2026-06-15T12:01:00Z");
    let entries: Vec<LogEntry> = (0..250)
        .map(|i| LogEntry {
            time: now,
            target: Some(if i % 2 == 0 { "edge1" } else { "edge2" }.into()),
            text: format!("line {i}\ncontinued"),
        })
        .collect();
    let numbers = store.append_job_log(job.id, entries).await.unwrap();
    assert_eq!((numbers[0], numbers[249]), (1, 250));
    let query = |after, target: Option<&str>, contains: Option<&str>| LogQuery {
        job: job.id,
        target: target.map(str::to_owned),
        contains: contains.map(Pattern::new),
        after,
        limit: 100,
        deadline: None,
    };
    let first = store.job_log(query(0, None, None)).await.unwrap().entries;
    assert_eq!((first.len(), first[0].seq, first[99].seq), (100, 1, 100));
    let last = store.job_log(query(200, None, None)).await.unwrap().entries;
    assert_eq!(last.len(), 50);
    let edge2 = store.job_log(query(0, Some("edge2"), None)).await.unwrap().entries;
    assert!(edge2.iter().all(|e| e.entry.target.as_deref() == Some("edge2")) && edge2[0].seq == 2);
    let found = store.job_log(query(0, None, Some("LINE 24_\nCONT"))).await.unwrap().entries;
    assert_eq!(found.iter().map(|e| e.seq).collect::<Vec<_>>(), (241..=250).collect::<Vec<_>>());
    assert_eq!(found[0].entry.text, "line 240\ncontinued");
    // A search whose time is up answers with what it found and where it stopped.
    let spent = LogQuery { limit: 1000, deadline: Some(std::time::Instant::now()), ..query(0, None, None) };
    let page = store.job_log(spent).await.unwrap();
    let stopped = page.stopped_at.expect("the log search stopped at its deadline");
    assert!(page.entries.len() < 250, "{} entries", page.entries.len());
    assert_eq!(page.entries.last().map_or(0, |e| e.seq), stopped - 1, "it stopped right after what it gave");
}

pub async fn correlated_events_walk_from_request_to_results<S: Store>(store: Arc<S>) {
    let job = store.create_job(new_job("archive", &["edge1"])).await.unwrap();
    let request =
        event(serde_json::json!({"user": "alice", "kind": "DEVICE_EDITED", "request_id": "req-9", "message": "asked"}));
    let result = event(serde_json::json!({"user": "alice", "kind": "ARCHIVE_COMPLETED", "name": "edge1",
        "job_id": job.id.to_string(), "message": "archived"}));
    let unrelated = simple("bob", "edge2", "elsewhere");
    let stored = store.append(vec![request, result, unrelated]).await.unwrap();
    let from_job = store.correlated(Some(job.id.to_string()), Some("req-9".into()), 100).await.unwrap();
    assert_eq!(ids(&from_job), vec![job.submit_event_id, stored[0], stored[1]]);
    let only_job = store.correlated(Some(job.id.to_string()), None, 100).await.unwrap();
    assert_eq!(ids(&only_job), vec![job.submit_event_id, stored[1]]);
}
