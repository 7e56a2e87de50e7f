//! V7 and V8's storage: jobs, their leaves, and their logs (apart from the audit trail).

use crate::{corrupt, pg};
use deadpool_postgres::GenericClient;
use trail_core::EventId;
use trail_core::operations::{
    Job, JobId, JobSummary, Leaf, LogEntry, LogPage, LogQuery, NewJob, Status, StoredLogEntry,
};
use trail_core::query::Budget;
use trail_core::time;
use trail_store::StoreError;

fn status(text: &str) -> Result<Status, StoreError> {
    Status::parse(text).ok_or_else(|| corrupt(format!("a leaf's status {text:?}")))
}

/// Inserts the job and its queued leaves; the caller sets the submit event after.
pub async fn insert(client: &impl GenericClient, job: &NewJob) -> Result<JobId, StoreError> {
    let at = time::to_micros(job.submitted_at);
    let row = client
        .query_one(
            "INSERT INTO jobs (name, submitter, submitted_at, request_id, session_id, client, submit_event_id) \
             VALUES ($1, $2, $3, $4, $5, $6, 0) RETURNING id",
            &[&job.name, &job.submitter, &at, &job.request_id, &job.session_id, &job.client],
        )
        .await
        .map_err(pg)?;
    let id: JobId = JobId::new(row.get(0));
    let positions: Vec<i32> = (0..job.targets.len() as i32).collect();
    client
        .execute(
            "INSERT INTO job_targets (job_id, position, target, status, message, updated_at) \
             SELECT $1, position, target, 'queued', '', $3 FROM UNNEST($2::text[], $4::integer[]) AS t(target, position)",
            &[&id.get(), &job.targets, &at, &positions],
        )
        .await
        .map_err(pg)?;
    Ok(id)
}

pub async fn set_submit_event(client: &impl GenericClient, id: JobId, event: EventId) -> Result<(), StoreError> {
    client
        .execute("UPDATE jobs SET submit_event_id = $2 WHERE id = $1", &[&id.get(), &event.get()])
        .await
        .map_err(pg)?;
    Ok(())
}

pub async fn set_completed_event(client: &impl GenericClient, id: JobId, event: EventId) -> Result<(), StoreError> {
    client
        .execute("UPDATE jobs SET completed_event_id = $2 WHERE id = $1", &[&id.get(), &event.get()])
        .await
        .map_err(pg)?;
    Ok(())
}

pub async fn save_leaf(client: &impl GenericClient, id: JobId, leaf: &Leaf) -> Result<(), StoreError> {
    client
        .execute(
            "UPDATE job_targets SET status = $3, message = $4, updated_at = $5, event_id = $6 \
             WHERE job_id = $1 AND target = $2",
            &[
                &id.get(),
                &leaf.target,
                &leaf.status.name(),
                &leaf.message,
                &time::to_micros(leaf.updated_at),
                &leaf.event_id.map(EventId::get),
            ],
        )
        .await
        .map_err(pg)?;
    Ok(())
}

pub async fn get(client: &impl GenericClient, id: JobId) -> Result<Option<Job>, StoreError> {
    let Some(row) = client
        .query_opt(
            "SELECT name, submitter, submitted_at, request_id, session_id, submit_event_id, completed_event_id \
             FROM jobs WHERE id = $1",
            &[&id.get()],
        )
        .await
        .map_err(pg)?
    else {
        return Ok(None);
    };
    let leaves = client
        .query(
            "SELECT target, status, message, updated_at, event_id FROM job_targets WHERE job_id = $1 ORDER BY position",
            &[&id.get()],
        )
        .await
        .map_err(pg)?;
    let leaves = leaves
        .iter()
        .map(|r| {
            Ok(Leaf {
                target: r.get(0),
                status: status(r.get(1))?,
                message: r.get(2),
                updated_at: time::from_micros(r.get(3)),
                event_id: r.get::<_, Option<i64>>(4).map(EventId::new),
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Some(Job {
        id,
        name: row.get(0),
        submitter: row.get(1),
        submitted_at: time::from_micros(row.get(2)),
        request_id: row.get(3),
        session_id: row.get(4),
        submit_event_id: EventId::new(row.get(5)),
        leaves,
        completed_event_id: row.get::<_, Option<i64>>(6).map(EventId::new),
    }))
}

pub async fn list(
    client: &impl GenericClient,
    before: Option<JobId>,
    limit: usize,
) -> Result<Vec<JobSummary>, StoreError> {
    let rows = client
        .query(
            "SELECT j.id, j.name, j.submitter, j.submitted_at, \
                    (SELECT array_agg(status) FROM job_targets t WHERE t.job_id = j.id) \
             FROM jobs j WHERE j.id < $1 ORDER BY j.id DESC LIMIT $2",
            &[&before.unwrap_or(JobId::MAX).get(), &(limit as i64)],
        )
        .await
        .map_err(pg)?;
    rows.iter()
        .map(|r| {
            let mut counts = [0; 5];
            for text in r.get::<_, Option<Vec<String>>>(4).unwrap_or_default() {
                let leaf = status(&text)?;
                counts[leaf.index()] += 1;
            }
            Ok(JobSummary {
                id: JobId::new(r.get(0)),
                name: r.get(1),
                submitter: r.get(2),
                submitted_at: time::from_micros(r.get(3)),
                counts,
            })
        })
        .collect()
}

/// The job's targets when it exists, its row locked to the commit, so that nodes appending to
/// one job's log at once number apart.
pub async fn targets_locked(client: &impl GenericClient, job: JobId) -> Result<Option<Vec<String>>, StoreError> {
    if client.query_opt("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", &[&job.get()]).await.map_err(pg)?.is_none() {
        return Ok(None);
    }
    let rows = client.query("SELECT target FROM job_targets WHERE job_id = $1", &[&job.get()]).await.map_err(pg)?;
    Ok(Some(rows.iter().map(|r| r.get(0)).collect()))
}

/// Appends entries to a job's log, numbered after its last (under [`targets_locked`]'s lock).
pub async fn append_log(client: &impl GenericClient, job: JobId, entries: &[LogEntry]) -> Result<Vec<i64>, StoreError> {
    let last: i64 = client
        .query_one("SELECT coalesce(max(seq), 0) FROM job_logs WHERE job_id = $1", &[&job.get()])
        .await
        .map_err(pg)?
        .get(0);
    let numbers: Vec<i64> = (1..=entries.len() as i64).map(|n| last + n).collect();
    let target: Vec<Option<&str>> = entries.iter().map(|e| e.target.as_deref()).collect();
    let times: Vec<i64> = entries.iter().map(|e| time::to_micros(e.time)).collect();
    let texts: Vec<&str> = entries.iter().map(|e| e.text.as_str()).collect();
    client
        .execute(
            "INSERT INTO job_logs (job_id, seq, target, time, text) \
             SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::bigint[], $5::text[])",
            &[&job.get(), &numbers, &target, &times, &texts],
        )
        .await
        .map_err(pg)?;
    Ok(numbers)
}

/// One page of a job's log. The text filter is decided here, with the V3 matcher; rows are
/// read in slices until the page is full.
pub async fn log(client: &impl GenericClient, query: &LogQuery) -> Result<LogPage, StoreError> {
    const SLICE: i64 = 2000;
    let mut page = Vec::new();
    let mut budget = Budget::until(query.deadline);
    if query.limit == 0 {
        return Ok(LogPage::default());
    }
    let mut after = query.after;
    loop {
        let rows = client
            .query(
                "SELECT seq, target, time, text FROM job_logs WHERE job_id = $1 AND seq > $2 \
                 AND ($3::text IS NULL OR target = $3) ORDER BY seq LIMIT $4",
                &[&query.job.get(), &after, &query.target, &SLICE],
            )
            .await
            .map_err(pg)?;
        for row in &rows {
            after = row.get(0);
            if budget.exhausted_at(after) {
                return Ok(LogPage { entries: page, stopped_at: budget.stopped_at });
            }
            let text: String = row.get(3);
            if query.contains.as_ref().is_some_and(|pattern| !pattern.is_match(&text)) {
                continue;
            }
            page.push(StoredLogEntry {
                seq: after,
                entry: LogEntry { time: time::from_micros(row.get(2)), target: row.get(1), text },
            });
            if page.len() >= query.limit {
                return Ok(LogPage { entries: page, stopped_at: None });
            }
        }
        if (rows.len() as i64) < SLICE {
            return Ok(LogPage { entries: page, stopped_at: None });
        }
    }
}
