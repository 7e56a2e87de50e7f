//! V7 and V8's storage: jobs, their leaves, and their logs (apart from the audit trail).

use rusqlite::{Connection, OptionalExtension, Row, params};
use trail_core::EventId;
use trail_core::operations::{
    Job, JobId, JobSummary, Leaf, LogEntry, LogPage, LogQuery, NewJob, Status, StoredLogEntry,
};
use trail_core::query::Budget;
use trail_core::time;

fn status_at(row: &Row<'_>, column: usize) -> rusqlite::Result<Status> {
    let text: String = row.get(column)?;
    Status::parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            format!("status {text:?}").into(),
        )
    })
}

/// Inserts the job and its queued leaves; the caller sets the submit event after.
pub fn insert(conn: &Connection, job: &NewJob) -> rusqlite::Result<JobId> {
    conn.prepare_cached(
        "INSERT INTO jobs (name, submitter, submitted_at, request_id, session_id, client, submit_event_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
    )?
    .execute(params![
        job.name,
        job.submitter,
        time::to_micros(job.submitted_at),
        job.request_id,
        job.session_id,
        job.client
    ])?;
    let id = conn.last_insert_rowid();
    let mut leaf = conn.prepare_cached(
        "INSERT INTO job_targets (job_id, position, target, status, message, updated_at) VALUES (?1, ?2, ?3, 'queued', '', ?4)",
    )?;
    for (position, target) in job.targets.iter().enumerate() {
        leaf.execute(params![id, position as i64, target, time::to_micros(job.submitted_at)])?;
    }
    Ok(JobId::new(id))
}

pub fn set_submit_event(conn: &Connection, id: JobId, event: EventId) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE jobs SET submit_event_id = ?2 WHERE id = ?1")?
        .execute(params![id.get(), event.get()])?;
    Ok(())
}

pub fn save_leaf(conn: &Connection, id: JobId, leaf: &Leaf) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE job_targets SET status = ?3, message = ?4, updated_at = ?5, event_id = ?6 WHERE job_id = ?1 AND target = ?2",
    )?
    .execute(params![
        id.get(),
        leaf.target,
        leaf.status.name(),
        leaf.message,
        time::to_micros(leaf.updated_at),
        leaf.event_id.map(EventId::get)
    ])?;
    Ok(())
}

pub fn set_completed_event(conn: &Connection, id: JobId, event: EventId) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE jobs SET completed_event_id = ?2 WHERE id = ?1")?
        .execute(params![id.get(), event.get()])?;
    Ok(())
}

pub fn get(conn: &Connection, id: JobId) -> rusqlite::Result<Option<Job>> {
    let job = conn
        .prepare_cached(
            "SELECT name, submitter, submitted_at, request_id, session_id, submit_event_id, completed_event_id \
             FROM jobs WHERE id = ?1",
        )?
        .query_row([id.get()], |r| {
            Ok(Job {
                id,
                name: r.get(0)?,
                submitter: r.get(1)?,
                submitted_at: time::from_micros(r.get(2)?),
                request_id: r.get(3)?,
                session_id: r.get(4)?,
                submit_event_id: r.get(5).map(EventId::new)?,
                leaves: Vec::new(),
                completed_event_id: r.get::<_, Option<i64>>(6)?.map(EventId::new),
            })
        })
        .optional()?;
    let Some(mut job) = job else { return Ok(None) };
    let mut leaves = conn.prepare_cached(
        "SELECT target, status, message, updated_at, event_id FROM job_targets WHERE job_id = ?1 ORDER BY position",
    )?;
    job.leaves = leaves
        .query_map([id.get()], |r| {
            Ok(Leaf {
                target: r.get(0)?,
                status: status_at(r, 1)?,
                message: r.get(2)?,
                updated_at: time::from_micros(r.get(3)?),
                event_id: r.get::<_, Option<i64>>(4)?.map(EventId::new),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(job))
}

pub fn list(conn: &Connection, before: Option<JobId>, limit: usize) -> rusqlite::Result<Vec<JobSummary>> {
    let mut statement = conn
        .prepare_cached("SELECT id, name, submitter, submitted_at FROM jobs WHERE id < ?1 ORDER BY id DESC LIMIT ?2")?;
    let mut jobs: Vec<JobSummary> = statement
        .query_map(params![before.unwrap_or(JobId::MAX).get(), limit as i64], |r| {
            Ok(JobSummary {
                id: r.get(0).map(JobId::new)?,
                name: r.get(1)?,
                submitter: r.get(2)?,
                submitted_at: time::from_micros(r.get(3)?),
                counts: [0; 5],
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut counts =
        conn.prepare_cached("SELECT status, count(*) FROM job_targets WHERE job_id = ?1 GROUP BY status")?;
    for job in &mut jobs {
        for row in counts.query_map([job.id.get()], |r| Ok((status_at(r, 0)?, r.get::<_, i64>(1)?)))? {
            let (status, count) = row?;
            job.counts[status.index()] = count as usize;
        }
    }
    Ok(jobs)
}

/// The job's targets, when it exists.
pub fn targets(conn: &Connection, id: JobId) -> rusqlite::Result<Option<Vec<String>>> {
    if conn.prepare_cached("SELECT 1 FROM jobs WHERE id = ?1")?.query_row([id.get()], |_| Ok(())).optional()?.is_none()
    {
        return Ok(None);
    }
    let mut statement = conn.prepare_cached("SELECT target FROM job_targets WHERE job_id = ?1")?;
    Ok(Some(statement.query_map([id.get()], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?))
}

pub fn append_log(conn: &Connection, id: JobId, entries: &[LogEntry]) -> rusqlite::Result<Vec<i64>> {
    let last: i64 = conn
        .prepare_cached("SELECT coalesce(max(seq), 0) FROM job_logs WHERE job_id = ?1")?
        .query_row([id.get()], |r| r.get(0))?;
    let mut insert =
        conn.prepare_cached("INSERT INTO job_logs (job_id, seq, target, time, text) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    let mut numbers = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let seq = last + 1 + i as i64;
        insert.execute(params![id.get(), seq, entry.target, time::to_micros(entry.time), entry.text])?;
        numbers.push(seq);
    }
    Ok(numbers)
}

pub fn log(conn: &Connection, query: &LogQuery) -> rusqlite::Result<LogPage> {
    let mut statement = conn.prepare_cached(
        "SELECT seq, target, time, text FROM job_logs WHERE job_id = ?1 AND seq > ?2 \
         AND (?3 IS NULL OR target = ?3) ORDER BY seq",
    )?;
    let mut rows = statement.query(params![query.job.get(), query.after, query.target])?;
    let mut page = Vec::new();
    let mut budget = Budget::until(query.deadline);
    while page.len() < query.limit {
        let Some(row) = rows.next()? else { break };
        if budget.exhausted_at(row.get(0)?) {
            break;
        }
        let text: String = row.get(3)?;
        if query.contains.as_ref().is_some_and(|pattern| !pattern.is_match(&text)) {
            continue;
        }
        page.push(StoredLogEntry {
            seq: row.get(0)?,
            entry: LogEntry { time: time::from_micros(row.get(2)?), target: row.get(1)?, text },
        });
    }
    Ok(LogPage { entries: page, stopped_at: budget.stopped_at })
}
