//! This node's writer: every write that appends events goes through it, and through the
//! database-wide sequencer.
//!
//! **The sequencer.** Ids are assigned in one order and must commit in the same order, or a
//! reader paging by id (a snapshot, a forwarding cursor, the chain's verifier) could pass an id
//! whose transaction commits later and never see it. So every such transaction, on every node,
//! first locks the one-row chain head (`FOR UPDATE`), then reads and moves it: ids and hashes continue from the last commit, and the lock is released only by the
//! commit. The writer groups the requests waiting for it into one transaction (group commit), so
//! the lock is taken once per group, not per request.
//!
//! Inside a group, each request that changes more than events (a content, an account, a job)
//! runs under a savepoint of its own, and the plain appends are inserted together under one
//! savepoint: a request that fails is rolled back alone, with the chain's position, and the rest
//! commit.

use crate::rows::{Rows, hash_from};
use crate::schema::{self, month_of};
use crate::{accounts, backend, contents, jobs, pg};
use deadpool_postgres::Pool;
use deadpool_postgres::Transaction;
use std::collections::{BTreeSet, HashSet};
use tokio::sync::{mpsc, oneshot};
use trail_core::chain::{self, Hash};
use trail_core::content::{ContentOutcome, ContentRecord, content_hash};
use trail_core::identity::AccountWrite;
use trail_core::operations::results;
use trail_core::operations::{Job, JobError, NewJob, StatusReport};
use trail_core::{EventBody, EventId, time};
use trail_store::{LeafReport, StoreError, group};

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub enum Command {
    Append { events: Vec<EventBody>, reply: Reply<Vec<EventId>> },
    RecordContent { record: ContentRecord, reply: Reply<ContentOutcome> },
    Account { write: AccountWrite, events: Vec<EventBody>, reply: Reply<Vec<EventId>> },
    CreateJob { job: NewJob, reply: Reply<Job> },
    ReportLeaf { report: StatusReport, reply: Reply<LeafReport> },
}

impl Command {
    fn weight(&self) -> usize {
        match self {
            Command::Append { events, .. } | Command::Account { events, .. } => events.len(),
            Command::RecordContent { .. } | Command::CreateJob { .. } => 1,
            Command::ReportLeaf { .. } => 3,
        }
    }
}

/// A request's outcome, answered only after the group commits (or fails).
enum Done {
    Ids(Reply<Vec<EventId>>, Result<Vec<EventId>, StoreError>),
    Content(Reply<ContentOutcome>, Result<ContentOutcome, StoreError>),
    Job(Reply<Job>, Result<Job, StoreError>),
    Leaf(Reply<LeafReport>, Result<LeafReport, StoreError>),
}

impl Done {
    fn answer(self) {
        match self {
            Done::Ids(reply, result) => drop(reply.send(result)),
            Done::Content(reply, result) => drop(reply.send(result)),
            Done::Job(reply, result) => drop(reply.send(result)),
            Done::Leaf(reply, result) => drop(reply.send(result)),
        }
    }

    fn fail(self, error: &StoreError) {
        let error = || StoreError::backend(format!("nothing was stored: {error}"));
        match self {
            Done::Ids(reply, _) => drop(reply.send(Err(error()))),
            Done::Content(reply, _) => drop(reply.send(Err(error()))),
            Done::Job(reply, _) => drop(reply.send(Err(error()))),
            Done::Leaf(reply, _) => drop(reply.send(Err(error()))),
        }
    }
}

/// The chain's position inside a group: moved by each request, put back when one rolls back.
#[derive(Clone)]
struct Position {
    id: EventId,
    hash: Hash,
    month: i32,
    /// Users of the events written so far, for `known_users`.
    users: BTreeSet<String>,
    /// Partitions created in this transaction (kept only if it commits).
    created: BTreeSet<i32>,
}

/// What a group needs beside the transaction.
struct Group<'a> {
    position: Position,
    now_month: i32,
    partitions: &'a HashSet<i32>,
}

impl Group<'_> {
    /// Numbers, chains and places `events` after the current position, into `rows`.
    fn number(&mut self, events: &[EventBody], rows: &mut Rows) -> Result<Vec<EventId>, StoreError> {
        let position = &mut self.position;
        let mut ids = Vec::with_capacity(events.len());
        for body in events {
            position.id += 1;
            position.hash = chain::link(&position.hash, position.id, body);
            // Monotone, so that each partition holds one range of ids; never past this month.
            position.month = position.month.max(month_of(body.time).min(self.now_month));
            rows.push(position.id, position.month, body, &position.hash)?;
            position.users.insert(body.user.clone());
            ids.push(position.id);
        }
        Ok(ids)
    }

    /// Inserts `rows`, creating the partitions of months not seen before.
    async fn insert(&mut self, tx: &Transaction<'_>, rows: &Rows) -> Result<(), StoreError> {
        let months: BTreeSet<i32> = rows.month.iter().copied().collect();
        for month in months {
            if !self.partitions.contains(&month) && !self.position.created.contains(&month) {
                tx.batch_execute(&schema::create_partition(month)).await.map_err(pg)?;
                self.position.created.insert(month);
            }
        }
        rows.copy_in(tx).await.map_err(pg)
    }

    /// Appends `events` at once: numbered, chained, inserted.
    async fn append(&mut self, tx: &Transaction<'_>, events: &[EventBody]) -> Result<Vec<EventId>, StoreError> {
        let mut rows = Rows::default();
        let ids = self.number(events, &mut rows)?;
        self.insert(tx, &rows).await?;
        Ok(ids)
    }
}

/// Runs an event builder so that a panic in it fails the request, never the writer task.
fn built<T>(build: impl FnOnce() -> T) -> Result<T, StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(build))
        .map_err(|_| StoreError::backend("building the event failed"))
}

pub struct Writer {
    pool: Pool,
    /// The channel on which commits announce the new head to every node.
    channel: String,
    /// Partitions known to exist.
    partitions: HashSet<i32>,
}

impl Writer {
    pub fn new(pool: Pool, channel: String) -> Writer {
        Writer { pool, channel, partitions: HashSet::new() }
    }

    /// Runs until every sender is gone.
    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        while let Some(first) = commands.recv().await {
            let group = group::gather(first, &mut commands, Command::weight);
            self.group_commit(group).await;
        }
    }

    async fn group_commit(&mut self, group: Vec<Command>) {
        let mut done = Vec::with_capacity(group.len());
        let outcome = match self.pool.get().await {
            Ok(mut client) => self.write_group(&mut client, group, &mut done).await,
            Err(error) => {
                done.extend(group.into_iter().map(unanswered));
                Err(backend(format!("cannot reach PostgreSQL: {error}")))
            }
        };
        match outcome {
            Ok((created, stored)) => {
                self.partitions.extend(created);
                metrics::counter!("trail_store_commits_total").increment(1);
                metrics::counter!("trail_events_stored_total").increment(stored);
                done.into_iter().for_each(Done::answer);
            }
            Err(error) => {
                // Whatever the failure, partitions are looked up again.
                self.partitions.clear();
                tracing::error!(%error, "group commit failed; nothing of it was stored");
                done.into_iter().for_each(|d| d.fail(&error));
            }
        }
    }

    /// Writes the group in one transaction under the sequencer; answers the partitions it made
    /// and how many events it stored. Every request lands in `done`, so that each is answered
    /// whatever happens.
    async fn write_group(
        &self,
        client: &mut deadpool_postgres::Object,
        group: Vec<Command>,
        done: &mut Vec<Done>,
    ) -> Result<(BTreeSet<i32>, u64), StoreError> {
        let mut appends = Vec::new();
        let mut others = Vec::new();
        for command in group {
            match command {
                Command::Append { events, reply } => appends.push((events, reply)),
                other => others.push(other),
            }
        }
        let started = match client.transaction().await {
            Ok(tx) => take_sequencer(&tx).await.map(|head| (tx, head)),
            Err(error) => Err(pg(error)),
        };
        let (mut tx, head) = match started {
            Ok(started) => started,
            Err(error) => {
                abandon(others, appends, done);
                return Err(error);
            }
        };
        let (now_month, start) = (month_of(jiff::Timestamp::now()), head.id);
        let mut state = Group { position: head, now_month, partitions: &self.partitions };
        let mut others = others.into_iter();
        while let Some(command) = others.next() {
            let (answer, outcome) = run_alone(&mut tx, &mut state, command).await;
            done.push(answer);
            if let Err(error) = outcome {
                abandon(others, appends, done);
                return Err(error);
            }
        }
        append_together(&mut tx, &mut state, appends, done).await?;
        let position = state.position;
        // A group that stored no event (an unchanged content, a session touched) leaves the
        // head, the users and the other nodes alone.
        if position.id != start {
            finish(&tx, &position, &self.channel).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok((position.created, (position.id - start) as u64))
    }
}

type Appends = Vec<(Vec<EventBody>, Reply<Vec<EventId>>)>;

/// Requests that never ran: each is answered with the group's failure.
fn abandon(others: impl IntoIterator<Item = Command>, appends: Appends, done: &mut Vec<Done>) {
    done.extend(others.into_iter().map(unanswered));
    done.extend(appends.into_iter().map(|(_, reply)| Done::Ids(reply, Err(StoreError::Closed))));
}

/// A request that never ran, answered with the group's failure.
fn unanswered(command: Command) -> Done {
    match command {
        Command::Append { reply, .. } | Command::Account { reply, .. } => Done::Ids(reply, Err(StoreError::Closed)),
        Command::RecordContent { reply, .. } => Done::Content(reply, Err(StoreError::Closed)),
        Command::CreateJob { reply, .. } => Done::Job(reply, Err(StoreError::Closed)),
        Command::ReportLeaf { reply, .. } => Done::Leaf(reply, Err(StoreError::Closed)),
    }
}

/// Takes the sequencer (the chain head's row lock, held to the commit) and reads where the
/// chain stands: a writer that waited reads the head its predecessor committed.
async fn take_sequencer(tx: &Transaction<'_>) -> Result<Position, StoreError> {
    let statement =
        tx.prepare_cached("SELECT last_id, last_hash, last_month FROM chain_head FOR UPDATE").await.map_err(pg)?;
    let head = tx.query_one(&statement, &[]).await.map_err(pg)?;
    Ok(Position {
        id: head.get(0),
        hash: hash_from(head.get(1), "the chain head")?,
        month: head.get(2),
        users: BTreeSet::new(),
        created: BTreeSet::new(),
    })
}

/// Moves the head and the known users, and announces the head at the commit.
async fn finish(tx: &Transaction<'_>, position: &Position, channel: &str) -> Result<(), StoreError> {
    let users: Vec<&str> = position.users.iter().map(String::as_str).collect();
    tx.execute("INSERT INTO known_users SELECT * FROM UNNEST($1::text[]) ON CONFLICT DO NOTHING", &[&users])
        .await
        .map_err(pg)?;
    tx.execute(
        "UPDATE chain_head SET last_id = $1, last_hash = $2, last_month = $3",
        &[&position.id, &&position.hash[..], &position.month],
    )
    .await
    .map_err(pg)?;
    // Delivered at the commit to every node listening: their forwarders and live views wake.
    tx.execute("SELECT pg_notify($1, $2)", &[&channel, &position.id.to_string()]).await.map_err(pg)?;
    Ok(())
}

/// The plain appends of a group, inserted together under one savepoint; when that fails, each
/// again under its own, so that only the failing one is refused.
async fn append_together(
    tx: &mut Transaction<'_>,
    state: &mut Group<'_>,
    appends: Appends,
    done: &mut Vec<Done>,
) -> Result<(), StoreError> {
    if appends.is_empty() {
        return Ok(());
    }
    let start = state.position.clone();
    let mut rows = Rows::default();
    let mut numbered = Vec::with_capacity(appends.len());
    for (events, _) in &appends {
        numbered.push(state.number(events, &mut rows)?);
    }
    let mut appends = appends.into_iter().zip(numbered).peekable();
    let together = match tx.savepoint("appends").await {
        Ok(savepoint) => match state.insert(&savepoint, &rows).await {
            Ok(()) => savepoint.commit().await.map_err(pg),
            Err(error) => {
                tracing::warn!(%error, "a group's appends failed together; retrying each alone");
                savepoint.rollback().await.map_err(pg).and(Err(error))
            }
        },
        Err(error) => Err(pg(error)),
    };
    if together.is_ok() {
        done.extend(appends.map(|((_, reply), ids)| Done::Ids(reply, Ok(ids))));
        return Ok(());
    }
    state.position = start;
    while let Some(((events, reply), _)) = appends.next() {
        let before = state.position.clone();
        let outcome = match tx.savepoint("append").await {
            Ok(savepoint) => match state.append(&savepoint, &events).await {
                Ok(ids) => savepoint.commit().await.map(|()| Ok(ids)).map_err(pg),
                Err(error) => savepoint.rollback().await.map(|()| Err(error)).map_err(pg),
            },
            Err(error) => Err(pg(error)),
        };
        match outcome {
            Ok(result) => {
                if result.is_err() {
                    state.position = before;
                }
                done.push(Done::Ids(reply, result));
            }
            Err(error) => {
                done.push(Done::Ids(reply, Err(StoreError::Closed)));
                done.extend(appends.map(|((_, reply), _)| Done::Ids(reply, Err(StoreError::Closed))));
                return Err(error);
            }
        }
    }
    Ok(())
}

/// A request that changes more than events, under a savepoint of its own. A refusal or a
/// failure rolls it back alone (the outer error fails the whole group: the savepoint itself
/// failed).
async fn run_alone(
    tx: &mut Transaction<'_>,
    state: &mut Group<'_>,
    command: Command,
) -> (Done, Result<(), StoreError>) {
    let before = state.position.clone();
    let savepoint = match tx.savepoint("request").await {
        Ok(savepoint) => savepoint,
        Err(error) => return (unanswered(command), Err(pg(error))),
    };
    let done = match command {
        Command::RecordContent { record, reply } => {
            Done::Content(reply, record_content(&savepoint, state, record).await)
        }
        Command::Account { write, events, reply } => {
            Done::Ids(reply, write_account(&savepoint, state, &write, &events).await)
        }
        Command::CreateJob { job, reply } => Done::Job(reply, create_job(&savepoint, state, job).await),
        Command::ReportLeaf { report, reply } => Done::Leaf(reply, report_leaf(&savepoint, state, report).await),
        // Plain appends are written together (`append_together`); one here is still served.
        Command::Append { events, reply } => Done::Ids(reply, state.append(&savepoint, &events).await),
    };
    let failed = match &done {
        Done::Ids(_, result) => result.is_err(),
        Done::Content(_, result) => result.is_err(),
        Done::Job(_, result) => result.is_err(),
        Done::Leaf(_, result) => result.is_err(),
    };
    let closed = if failed {
        state.position = before;
        savepoint.rollback().await
    } else {
        savepoint.commit().await
    };
    (done, closed.map_err(pg))
}

/// E4: new or changed content becomes the device's latest, with its event; unchanged content
/// only moves the time it was last seen.
async fn record_content(
    tx: &Transaction<'_>,
    state: &mut Group<'_>,
    record: ContentRecord,
) -> Result<ContentOutcome, StoreError> {
    let hash = content_hash(&record.content);
    let at = time::to_micros(record.time);
    let previous = contents::latest(tx, &record.device, record.kind).await?;
    if previous.as_ref().is_some_and(|p| p.hash == hash) {
        contents::touch(tx, &record.device, record.kind, at).await?;
        return Ok(ContentOutcome { hash, event_id: None });
    }
    contents::replace(tx, &record.device, record.kind, &hash, &record.content, at).await?;
    let on_change = record.on_change;
    let event = built(|| on_change(previous.as_ref()))?;
    let ids = state.append(tx, std::slice::from_ref(&event)).await?;
    Ok(ContentOutcome { hash, event_id: ids.first().copied() })
}

/// An account change with its events, or a refusal that writes nothing.
async fn write_account(
    tx: &Transaction<'_>,
    state: &mut Group<'_>,
    write: &AccountWrite,
    events: &[EventBody],
) -> Result<Vec<EventId>, StoreError> {
    if !accounts::apply(tx, write).await? {
        return Err(StoreError::Conflict(write.refusal()));
    }
    state.append(tx, events).await
}

async fn create_job(tx: &Transaction<'_>, state: &mut Group<'_>, new: NewJob) -> Result<Job, StoreError> {
    let id = jobs::insert(tx, &new).await?;
    let event = built(|| results::submission(id, &new))?;
    let ids = state.append(tx, &[event]).await?;
    jobs::set_submit_event(tx, id, ids[0]).await?;
    jobs::get(tx, id).await?.ok_or_else(|| backend(format!("job {id} vanished while it was created")))
}

/// A status report, applied by the core's rules, with the events it records.
async fn report_leaf(
    tx: &Transaction<'_>,
    state: &mut Group<'_>,
    report: StatusReport,
) -> Result<LeafReport, StoreError> {
    let Some(mut job) = jobs::get(tx, report.job).await? else {
        return Err(JobError::UnknownJob(report.job).into());
    };
    let transition = job.apply(&report.target, report.status, &report.message, report.time)?;
    let events = built(|| results::report_events(&job, &transition, &report))?;
    let event_ids = state.append(tx, &events).await?;
    results::settle_report(&mut job, &transition, &event_ids);
    let leaf = job.leaf(&report.target).expect("apply found it");
    jobs::save_leaf(tx, job.id, leaf).await?;
    if transition.job_finished.is_some()
        && let Some(completed) = job.completed_event_id
    {
        jobs::set_completed_event(tx, job.id, completed).await?;
    }
    Ok(LeafReport { job, transition, event_ids })
}

/// `trail migrate`: stores events that already have their ids and hashes, in one transaction
/// under the sequencer. Each must continue the chain from the head, recomputed here: a trail
/// that does not verify is refused whole.
pub async fn import(
    client: &mut deadpool_postgres::Object,
    events: &[trail_core::Event],
    channel: &str,
) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg)?;
    let head = take_sequencer(&tx).await?;
    let partitions = HashSet::new();
    let mut state = Group { position: head, now_month: month_of(jiff::Timestamp::now()), partitions: &partitions };
    let mut rows = Rows::default();
    for event in events {
        let ids = state.number(std::slice::from_ref(&event.body), &mut rows)?;
        if ids[0] != event.id || chain::to_hex(&state.position.hash) != event.hash {
            return Err(StoreError::Corrupt(format!(
                "event {} does not continue the chain at id {} (its id or hash differs); verify the source",
                event.id, ids[0]
            )));
        }
    }
    state.insert(&tx, &rows).await?;
    finish(&tx, &state.position, channel).await?;
    tx.commit().await.map_err(pg)
}

/// `trail migrate` of a purged trail: the chain starts after the source's marker. Only an
/// empty database may start so.
pub async fn start_after(
    client: &mut deadpool_postgres::Object,
    marker: &chain::PruneMarker,
) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg)?;
    let head = take_sequencer(&tx).await?;
    if head.id != 0 {
        return Err(StoreError::Conflict(format!(
            "the database already holds events (through id {}); migrate into an empty one",
            head.id
        )));
    }
    let now = time::to_micros(jiff::Timestamp::now());
    tx.execute("UPDATE chain_head SET last_id = $1, last_hash = $2", &[&marker.through, &&marker.hash[..]])
        .await
        .map_err(pg)?;
    tx.execute(
        "INSERT INTO prune_marker VALUES (1, $1, $2, $3) ON CONFLICT (singleton) DO UPDATE SET through = $1, hash = $2",
        &[&marker.through, &&marker.hash[..], &now],
    )
    .await
    .map_err(pg)?;
    tx.commit().await.map_err(pg)
}
