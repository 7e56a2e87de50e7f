//! The single writer: group commit and the hash chain.
//!
//! Every write (appends, and content records with their events) goes through one thread that owns
//! the only write connection. It takes every
//! request waiting in its queue, writes them in one transaction (each request under its own
//! savepoint, so a batch is stored whole or not at all) and commits once, with
//! `synchronous=FULL`: concurrent requests share one fsync. Replies go out only after the
//! commit returns, so an acknowledged event is durable (S2).
//!
//! After each commit it wakes the indexer (`index.rs`), which keeps the search index in a file of
//! its own, off the commit path.

use crate::accounts;
use crate::contents;
use crate::index::IndexMessage;
use crate::jobs;
use crate::progress::Progress;
use crate::rows::outcome_code;
use crate::schema::EVENT_COLUMNS;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{mpsc, oneshot};
use trail_core::chain::{self, Hash};
use trail_core::content::{ContentOutcome, ContentRecord, content_hash};
use trail_core::identity::AccountWrite;
use trail_core::operations::results;
use trail_core::operations::{Job, JobError, JobId, LogEntry, NewJob, StatusReport};
use trail_core::{EventBody, EventId, time};
use trail_store::{LeafReport, StoreError, group};

/// A request to the writer, and where it answers once the work is durable (or why nothing of
/// it was stored).
pub enum Command {
    Append {
        events: Vec<EventBody>,
        reply: oneshot::Sender<Result<Vec<EventId>, StoreError>>,
    },
    RecordContent {
        record: ContentRecord,
        reply: oneshot::Sender<Result<ContentOutcome, StoreError>>,
    },
    /// An account change and the events recording it.
    Account {
        write: AccountWrite,
        events: Vec<EventBody>,
        reply: oneshot::Sender<Result<Vec<EventId>, StoreError>>,
    },
    CreateJob {
        job: NewJob,
        reply: oneshot::Sender<Result<Job, StoreError>>,
    },
    ReportLeaf {
        report: StatusReport,
        reply: oneshot::Sender<Result<LeafReport, StoreError>>,
    },
    AppendLog {
        job: JobId,
        entries: Vec<LogEntry>,
        reply: oneshot::Sender<Result<Vec<i64>, StoreError>>,
    },
    /// One batch of a purge (S3): answers how many events it removed.
    PurgeBatch {
        cutoff: jiff::Timestamp,
        batch: usize,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
    /// A forwarding destination's cursor (F4).
    SaveCursor {
        destination: String,
        delivered_through: EventId,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

impl Command {
    /// How many events the request may write, for bounding a group.
    fn weight(&self) -> usize {
        match self {
            Command::Append { events, .. } => events.len(),
            Command::RecordContent { .. } => 1,
            Command::Account { events, .. } => events.len(),
            Command::SaveCursor { .. } | Command::AppendLog { .. } => 0,
            Command::PurgeBatch { batch, .. } => *batch,
            Command::CreateJob { .. } => 1,
            Command::ReportLeaf { .. } => 3,
        }
    }

    fn fail(self, error: &rusqlite::Error) {
        match self {
            Command::Append { reply, .. } => refuse(reply, error),
            Command::RecordContent { reply, .. } => refuse(reply, error),
            Command::Account { reply, .. } => refuse(reply, error),
            Command::SaveCursor { reply, .. } => refuse(reply, error),
            Command::CreateJob { reply, .. } => refuse(reply, error),
            Command::ReportLeaf { reply, .. } => refuse(reply, error),
            Command::AppendLog { reply, .. } => refuse(reply, error),
            Command::PurgeBatch { reply, .. } => refuse(reply, error),
        }
    }
}

/// The outcome of one request inside a group, answered after the commit.
enum Done {
    Append(oneshot::Sender<Result<Vec<EventId>, StoreError>>, rusqlite::Result<Vec<EventId>>),
    Content(oneshot::Sender<Result<ContentOutcome, StoreError>>, rusqlite::Result<ContentOutcome>),
    /// The inner error is a refusal: nothing was written.
    Account(oneshot::Sender<Result<Vec<EventId>, StoreError>>, rusqlite::Result<Result<Vec<EventId>, StoreError>>),
    Cursor(oneshot::Sender<Result<(), StoreError>>, rusqlite::Result<()>),
    /// The inner errors are refusals: nothing was written.
    Job(oneshot::Sender<Result<Job, StoreError>>, rusqlite::Result<Job>),
    Leaf(oneshot::Sender<Result<LeafReport, StoreError>>, rusqlite::Result<Result<LeafReport, StoreError>>),
    Log(oneshot::Sender<Result<Vec<i64>, StoreError>>, rusqlite::Result<Result<Vec<i64>, StoreError>>),
    Purge(oneshot::Sender<Result<u64, StoreError>>, rusqlite::Result<u64>),
}

impl Done {
    fn stored_events(&self) -> u64 {
        match self {
            Done::Append(_, Ok(ids)) => ids.len() as u64,
            Done::Content(_, Ok(outcome)) => u64::from(outcome.event_id.is_some()),
            Done::Account(_, Ok(Ok(ids))) => ids.len() as u64,
            Done::Job(_, Ok(_)) => 1,
            Done::Leaf(_, Ok(Ok(report))) => report.event_ids.len() as u64,
            _ => 0,
        }
    }

    fn answer(self) {
        match self {
            Done::Append(reply, result) => drop(reply.send(result.map_err(backend))),
            Done::Content(reply, result) => drop(reply.send(result.map_err(backend))),
            Done::Account(reply, result) => drop(reply.send(result.map_err(backend).and_then(|r| r))),
            Done::Cursor(reply, result) => drop(reply.send(result.map_err(backend))),
            Done::Job(reply, result) => drop(reply.send(result.map_err(backend))),
            Done::Leaf(reply, result) => drop(reply.send(result.map_err(backend).and_then(|r| r))),
            Done::Log(reply, result) => drop(reply.send(result.map_err(backend).and_then(|r| r))),
            Done::Purge(reply, result) => drop(reply.send(result.map_err(backend))),
        }
    }

    fn fail(self, error: &rusqlite::Error) {
        match self {
            Done::Append(reply, _) => refuse(reply, error),
            Done::Content(reply, _) => refuse(reply, error),
            Done::Account(reply, _) => refuse(reply, error),
            Done::Cursor(reply, _) => refuse(reply, error),
            Done::Job(reply, _) => refuse(reply, error),
            Done::Leaf(reply, _) => refuse(reply, error),
            Done::Log(reply, _) => refuse(reply, error),
            Done::Purge(reply, _) => refuse(reply, error),
        }
    }
}

/// Runs an event builder so that a panic in it fails the request, never the writer thread.
fn built<T>(build: impl FnOnce() -> T) -> rusqlite::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(build))
        .map_err(|_| rusqlite::Error::ToSqlConversionFailure("building the event failed".into()))
}

/// Tells a caller that nothing of its request was stored, and why.
fn refuse<T>(reply: oneshot::Sender<Result<T, StoreError>>, error: &rusqlite::Error) {
    let _ = reply.send(Err(StoreError::backend(error.to_string())));
}

pub struct Writer {
    conn: Connection,
    last_id: EventId,
    last_hash: Hash,
    progress: Arc<Progress>,
    /// Users already in `known_users`, so most events skip that insert.
    known_users: HashSet<String>,
    indexer: std::sync::mpsc::SyncSender<IndexMessage>,
}

fn backend(error: rusqlite::Error) -> StoreError {
    StoreError::caused(error.to_string(), error)
}

impl Writer {
    pub fn new(
        conn: Connection,
        progress: Arc<Progress>,
        indexer: std::sync::mpsc::SyncSender<IndexMessage>,
    ) -> Result<Writer, StoreError> {
        let head: Option<(EventId, Vec<u8>)> = conn
            .query_row("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(backend)?;
        // Every event may have been purged: the chain then continues from the purge's marker.
        let head = match head {
            Some(head) => Some(head),
            None => conn
                .query_row("SELECT through, hash FROM prune_marker WHERE only = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(backend)?,
        };
        let (last_id, last_hash) = match head {
            Some((id, hash)) => {
                (id, hash.try_into().map_err(|_| StoreError::Corrupt(format!("event {id} has a malformed hash")))?)
            }
            None => (0, chain::GENESIS),
        };
        progress.publish_head(last_id);
        Ok(Writer { conn, last_id, last_hash, progress, known_users: HashSet::new(), indexer })
    }

    /// Runs until every sender is gone.
    pub fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        while let Some(first) = commands.blocking_recv() {
            let group = group::gather(first, &mut commands, Command::weight);
            self.group_commit(group);
            // A full queue only means the indexer already has a wake-up waiting.
            let _ = self.indexer.try_send(IndexMessage::Wake);
        }
    }

    /// Writes every waiting request in one transaction and answers each after the commit.
    fn group_commit(&mut self, group: Vec<Command>) {
        let start = (self.last_id, self.last_hash);
        let mut done = Vec::with_capacity(group.len());
        let mut pending = group.into_iter();
        let outcome = (|| -> rusqlite::Result<()> {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            for command in pending.by_ref() {
                done.push(match command {
                    Command::Append { events, reply } => {
                        Done::Append(reply, self.in_savepoint(|w| w.insert_events(&events))?)
                    }
                    Command::RecordContent { record, reply } => {
                        Done::Content(reply, self.in_savepoint(|w| w.record_content(record))?)
                    }
                    Command::Account { write, events, reply } => {
                        Done::Account(reply, self.in_savepoint(|w| w.write_account(&write, &events))?)
                    }
                    Command::CreateJob { job, reply } => Done::Job(reply, self.in_savepoint(|w| w.create_job(job))?),
                    Command::ReportLeaf { report, reply } => {
                        Done::Leaf(reply, self.in_savepoint(|w| w.report_leaf(report))?)
                    }
                    Command::AppendLog { job, entries, reply } => {
                        Done::Log(reply, self.in_savepoint(|w| w.append_log(job, &entries))?)
                    }
                    Command::PurgeBatch { cutoff, batch, reply } => {
                        Done::Purge(reply, self.in_savepoint(|w| w.purge_batch(cutoff, batch))?)
                    }
                    Command::SaveCursor { destination, delivered_through, reply } => {
                        Done::Cursor(reply, self.in_savepoint(|w| w.save_cursor(&destination, delivered_through))?)
                    }
                });
            }
            self.conn.execute_batch("COMMIT")
        })();
        match outcome {
            Ok(()) => {
                self.progress.publish_head(self.last_id);
                self.progress.commits.fetch_add(1, Ordering::SeqCst);
                metrics::counter!("trail_store_commits_total").increment(1);
                metrics::counter!("trail_events_stored_total").increment(done.iter().map(Done::stored_events).sum());
                done.into_iter().for_each(Done::answer);
            }
            Err(error) => {
                // Restore first: whatever the rollback does, the chain continues from the last
                // committed event.
                (self.last_id, self.last_hash) = start;
                self.known_users.clear();
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                tracing::error!(%error, "group commit failed; nothing of it was stored");
                done.into_iter().for_each(|d| d.fail(&error));
                pending.for_each(|command| command.fail(&error));
            }
        }
    }

    /// One request under a savepoint. The inner result is the request's own: stored whole, or
    /// rolled back whole with the chain position restored. The outer error fails the whole group:
    /// the savepoint could not be released or rolled back, or SQLite dropped the transaction.
    fn in_savepoint<T>(
        &mut self,
        work: impl FnOnce(&mut Self) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<rusqlite::Result<T>> {
        let start = (self.last_id, self.last_hash);
        self.conn.execute_batch("SAVEPOINT request")?;
        match work(self) {
            Ok(value) => {
                self.conn.execute_batch("RELEASE request")?;
                Ok(Ok(value))
            }
            Err(error) => {
                (self.last_id, self.last_hash) = start;
                self.known_users.clear();
                if self.conn.is_autocommit() {
                    // SQLite rolled the whole transaction back (disk full, I/O error).
                    return Err(error);
                }
                self.conn.execute_batch("ROLLBACK TO request; RELEASE request")?;
                Ok(Err(error))
            }
        }
    }

    /// E4: new or changed content becomes the device's latest, with its event; unchanged
    /// content only moves the time it was last seen.
    fn record_content(&mut self, record: ContentRecord) -> rusqlite::Result<ContentOutcome> {
        let hash = content_hash(&record.content);
        let at = time::to_micros(record.time);
        let previous = contents::latest(&self.conn, &record.device, record.kind)?;
        if previous.as_ref().is_some_and(|p| p.hash == hash) {
            contents::touch(&self.conn, &record.device, record.kind, at)?;
            return Ok(ContentOutcome { hash, event_id: None });
        }
        contents::replace(&self.conn, &record.device, record.kind, &hash, &record.content, at)?;
        let on_change = record.on_change;
        // The builder is the caller's code: a panic in it fails this request, not the writer.
        let event = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| on_change(previous.as_ref())))
            .map_err(|_| rusqlite::Error::ToSqlConversionFailure("building the change event panicked".into()))?;
        let ids = self.insert_events(std::slice::from_ref(&event))?;
        Ok(ContentOutcome { hash, event_id: ids.first().copied() })
    }

    fn create_job(&mut self, new: NewJob) -> rusqlite::Result<Job> {
        let id = jobs::insert(&self.conn, &new)?;
        let event = built(|| results::submission(id, &new))?;
        let ids = self.insert_events(&[event])?;
        jobs::set_submit_event(&self.conn, id, ids[0])?;
        jobs::get(&self.conn, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
    }

    /// A status report, applied by the core's rules, with the events it records; a refusal
    /// writes nothing.
    fn report_leaf(&mut self, report: StatusReport) -> rusqlite::Result<Result<LeafReport, StoreError>> {
        let Some(mut job) = jobs::get(&self.conn, report.job)? else {
            return Ok(Err(JobError::UnknownJob(report.job).into()));
        };
        let transition = match job.apply(&report.target, report.status, &report.message, report.time) {
            Ok(transition) => transition,
            Err(refusal) => return Ok(Err(refusal.into())),
        };
        let events = built(|| results::report_events(&job, &transition, &report))?;
        let event_ids = self.insert_events(&events)?;
        results::settle_report(&mut job, &transition, &event_ids);
        let leaf = job.leaf(&report.target).expect("apply found it");
        jobs::save_leaf(&self.conn, job.id, leaf)?;
        if transition.job_finished.is_some()
            && let Some(completed) = job.completed_event_id
        {
            jobs::set_completed_event(&self.conn, job.id, completed)?;
        }
        Ok(Ok(LeafReport { job, transition, event_ids }))
    }

    fn append_log(&mut self, job: JobId, entries: &[LogEntry]) -> rusqlite::Result<Result<Vec<i64>, StoreError>> {
        let Some(targets) = jobs::targets(&self.conn, job)? else {
            return Ok(Err(JobError::UnknownJob(job).into()));
        };
        if let Some(target) = entries.iter().filter_map(|e| e.target.as_ref()).find(|t| !targets.contains(t)) {
            return Ok(Err(JobError::UnknownTarget { job, target: target.clone() }.into()));
        }
        Ok(Ok(jobs::append_log(&self.conn, job, entries)?))
    }

    /// Removes the oldest events while they are older than `cutoff` (at most `batch`), and
    /// moves the marker to the last one removed, in the same transaction.
    fn purge_batch(&mut self, cutoff: jiff::Timestamp, batch: usize) -> rusqlite::Result<u64> {
        let cutoff = time::to_micros(cutoff);
        // Never what a forwarding destination has yet to deliver (F4).
        let undelivered: Option<EventId> =
            self.conn.query_row("SELECT min(delivered_through) FROM forward_cursors", [], |r| r.get(0))?;
        let limit = undelivered.unwrap_or(EventId::MAX);
        let mut prefix =
            self.conn.prepare_cached("SELECT id, time, hash FROM events WHERE id <= ?2 ORDER BY id LIMIT ?1")?;
        let mut rows = prefix.query(params![batch as i64, limit])?;
        let mut last: Option<(EventId, Vec<u8>)> = None;
        let mut count = 0u64;
        while let Some(row) = rows.next()? {
            if row.get::<_, i64>(1)? >= cutoff {
                break;
            }
            last = Some((row.get(0)?, row.get(2)?));
            count += 1;
        }
        drop(rows);
        drop(prefix);
        let Some((through, hash)) = last else { return Ok(0) };
        self.conn.prepare_cached("DELETE FROM events WHERE id <= ?1")?.execute([through])?;
        self.conn
            .prepare_cached(
                "INSERT INTO prune_marker (only, through, hash, purged_at) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT (only) DO UPDATE SET through = ?1, hash = ?2, purged_at = ?3",
            )?
            .execute(params![through, hash, time::to_micros(jiff::Timestamp::now())])?;
        // Contents no device holds any more (E4 keeps only the latest of each).
        self.conn.execute("DELETE FROM contents WHERE hash NOT IN (SELECT hash FROM device_contents)", [])?;
        Ok(count)
    }

    fn save_cursor(&mut self, destination: &str, delivered_through: EventId) -> rusqlite::Result<()> {
        let now = time::to_micros(jiff::Timestamp::now());
        self.conn
            .prepare_cached(
                "INSERT INTO forward_cursors (destination, delivered_through, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (destination) DO UPDATE SET delivered_through = ?2, updated_at = ?3",
            )?
            .execute(params![destination, delivered_through, now])?;
        Ok(())
    }

    /// An account change with its events, or a refusal that writes nothing.
    fn write_account(
        &mut self,
        write: &AccountWrite,
        events: &[EventBody],
    ) -> rusqlite::Result<Result<Vec<EventId>, StoreError>> {
        if !accounts::apply(&self.conn, write)? {
            return Ok(Err(StoreError::Conflict(write.refusal())));
        }
        Ok(Ok(self.insert_events(events)?))
    }

    fn insert_events(&mut self, events: &[EventBody]) -> rusqlite::Result<Vec<EventId>> {
        let mut insert = self.conn.prepare_cached(&format!(
            "INSERT INTO events ({EVENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
        ))?;
        let mut remember_user = self.conn.prepare_cached("INSERT OR IGNORE INTO known_users(user) VALUES (?1)")?;
        let mut ids = Vec::with_capacity(events.len());
        for body in events {
            let id = self.last_id + 1;
            let hash = chain::link(&self.last_hash, id, body);
            let attributes = serde_json::to_string(&body.attributes)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
            let change = body
                .change
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
            insert.execute(params![
                id,
                time::to_micros(body.time),
                body.user,
                body.client,
                body.process,
                body.kind,
                body.action,
                body.name,
                body.severity.code(),
                outcome_code(body.outcome),
                body.message,
                attributes,
                body.request_id,
                body.session_id,
                body.job_id,
                body.parent_id,
                change,
                &hash[..],
                body.submitted_by,
            ])?;
            if !self.known_users.contains(&body.user) {
                remember_user.execute([&body.user])?;
                // Remembered before the commit; every rollback clears the cache, so a user is
                // never remembered without its row.
                self.known_users.insert(body.user.clone());
            }
            self.last_id = id;
            self.last_hash = hash;
            ids.push(id);
        }
        Ok(ids)
    }
}
