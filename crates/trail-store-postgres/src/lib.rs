//! Trail's PostgreSQL storage (S1), for several Trail nodes on one database.
//!
//! Work in progress: this is the event log, the part several nodes must get right together.
//! The rest of the `Store` trait (search, contents, accounts, jobs, cursors, retention) comes
//! next, behind the same conformance suite as SQLite.
//!
//! **The sequencer.** Ids are assigned in one order and must commit in the same order, or a
//! reader paging by id (a snapshot, a forwarding cursor, the chain's verifier) could pass an id
//! whose transaction commits later and never see it. So every append transaction, on every
//! node, first takes one transaction-scoped advisory lock, then reads and moves the one-row
//! chain head: ids and hashes continue from the last commit, and the lock is released only by
//! the commit. Each node groups the requests waiting for it into one transaction (group
//! commit), so the lock is taken once per group, not per event.
#![forbid(unsafe_code)]

mod schema;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::NoTls;
use trail_core::chain::{self, Hash};
use trail_core::{Event, EventBody, EventId, Outcome, Severity, time};
use trail_store::StoreError;

/// The channel on which every commit announces the new head, to every node: one per schema,
/// since notifications cross the whole database.
async fn head_channel(client: &tokio_postgres::Client) -> Result<String, StoreError> {
    let schema: String = client.query_one("SELECT current_schema()", &[]).await.map_err(pg)?.get(0);
    Ok(format!("trail_head.{schema}"))
}

/// Most events written in one group.
const MAX_GROUP_EVENTS: usize = 20_000;
const POOL_SIZE: usize = 16;

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

/// PostgreSQL's own words: tokio-postgres shows only "db error" for a server's refusal.
fn pg(error: tokio_postgres::Error) -> StoreError {
    match error.as_db_error() {
        Some(db) => StoreError::Backend(format!("PostgreSQL: {} ({})", db.message(), db.code().code())),
        None => backend(error),
    }
}

struct Append {
    events: Vec<EventBody>,
    reply: oneshot::Sender<Result<Vec<EventId>, StoreError>>,
}

/// The event log on PostgreSQL: appends through this node's writer task, reads from a pool.
pub struct PgLog {
    pool: Pool,
    appends: mpsc::Sender<Append>,
    head: tokio::sync::watch::Sender<EventId>,
}

const COLUMNS: &str = "id, time, username, client, process, kind, action, name, severity, outcome, message, \
                       attributes, request_id, session_id, job_id, parent_id, change, hash";

impl PgLog {
    /// Connects to `url` (a `postgres://` URL; `search_path` may be set as an option), migrates,
    /// and starts this node's writer.
    pub async fn connect(url: &str, search_path: Option<&str>) -> Result<PgLog, StoreError> {
        let config = pg_config(url, search_path)?;
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager).max_size(POOL_SIZE).build().map_err(backend)?;
        let mut client = pool.get().await.map_err(|e| backend(format!("cannot connect to PostgreSQL: {e}")))?;
        schema::migrate(&mut client).await.map_err(pg)?;
        let channel = head_channel(&client).await?;
        drop(client);
        let (appends, requests) = mpsc::channel(4096);
        tokio::spawn(write(pool.clone(), requests, channel.clone()));
        let head = tokio::sync::watch::Sender::new(0);
        listen(url, search_path, &channel, head.clone()).await?;
        let log = PgLog { pool, appends, head };
        log.head.send_replace(log.head().await?);
        Ok(log)
    }

    /// The newest committed id, moving with every commit on any node.
    pub fn watch_head(&self) -> tokio::sync::watch::Receiver<EventId> {
        self.head.subscribe()
    }

    /// Every user with an event, sorted.
    pub async fn known_users(&self) -> Result<Vec<String>, StoreError> {
        let client = self.pool.get().await.map_err(backend)?;
        let rows = client.query("SELECT username FROM known_users ORDER BY username", &[]).await.map_err(pg)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub async fn forward_cursor(&self, destination: &str) -> Result<Option<EventId>, StoreError> {
        let client = self.pool.get().await.map_err(backend)?;
        let row = client
            .query_opt("SELECT delivered_through FROM forward_cursors WHERE destination = $1", &[&destination])
            .await
            .map_err(pg)?;
        Ok(row.map(|r| r.get(0)))
    }

    pub async fn save_forward_cursor(&self, destination: &str, delivered_through: EventId) -> Result<(), StoreError> {
        let client = self.pool.get().await.map_err(backend)?;
        let now = time::to_micros(jiff::Timestamp::now());
        client
            .execute(
                "INSERT INTO forward_cursors VALUES ($1, $2, $3) \
                 ON CONFLICT (destination) DO UPDATE SET delivered_through = $2, updated_at = $3",
                &[&destination, &delivered_through, &now],
            )
            .await
            .map_err(pg)?;
        Ok(())
    }

    /// Stores the events as one batch, durable and chained, and returns their ids.
    pub async fn append(&self, events: Vec<EventBody>) -> Result<Vec<EventId>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.appends.send(Append { events, reply }).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    pub async fn get(&self, id: EventId) -> Result<Option<Event>, StoreError> {
        let client = self.pool.get().await.map_err(backend)?;
        let row = client.query_opt(&format!("SELECT {COLUMNS} FROM events WHERE id = $1"), &[&id]).await.map_err(pg)?;
        row.map(|r| event_from_row(&r)).transpose()
    }

    /// Up to `limit` events after `after`, in id order.
    pub async fn read_after(&self, after: EventId, limit: usize) -> Result<Vec<Event>, StoreError> {
        let client = self.pool.get().await.map_err(backend)?;
        let rows = client
            .query(
                &format!("SELECT {COLUMNS} FROM events WHERE id > $1 ORDER BY id LIMIT $2"),
                &[&after, &(limit as i64)],
            )
            .await
            .map_err(pg)?;
        rows.iter().map(event_from_row).collect()
    }

    /// The newest committed id.
    pub async fn head(&self) -> Result<EventId, StoreError> {
        let client = self.pool.get().await.map_err(backend)?;
        Ok(client.query_one("SELECT last_id FROM chain_head", &[]).await.map_err(pg)?.get(0))
    }
}

/// The connection settings: the URL, and the schema when one is given.
fn pg_config(url: &str, search_path: Option<&str>) -> Result<tokio_postgres::Config, StoreError> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| backend(format!("{url:?}: {e}")))?;
    if let Some(path) = search_path {
        config.options(format!("-c search_path={path},public"));
    }
    Ok(config)
}

/// A connection of its own that listens for every node's commits and moves `head`.
async fn listen(
    url: &str,
    search_path: Option<&str>,
    channel: &str,
    head: tokio::sync::watch::Sender<EventId>,
) -> Result<(), StoreError> {
    let (client, mut connection) = pg_config(url, search_path)?.connect(NoTls).await.map_err(pg)?;
    let (ready, listening) = oneshot::channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        let _ = ready.send(());
        while let Some(message) = futures_util::StreamExt::next(&mut messages).await {
            if let Ok(tokio_postgres::AsyncMessage::Notification(note)) = message
                && let Ok(id) = note.payload().parse::<EventId>()
            {
                head.send_if_modified(|seen| {
                    let newer = id > *seen;
                    *seen = (*seen).max(id);
                    newer
                });
            }
        }
    });
    listening.await.map_err(|_| StoreError::Closed)?;
    let quoted = channel.replace('"', "\"\"");
    client.batch_execute(&format!("LISTEN \"{quoted}\"")).await.map_err(pg)?;
    // The client must live as long as the connection listens.
    tokio::spawn(async move {
        let _client = client;
        std::future::pending::<()>().await;
    });
    Ok(())
}

/// This node's writer: takes every request waiting, writes them in one transaction under the
/// sequencer lock (a savepoint each, so a bad batch fails alone), commits, then answers.
async fn write(pool: Pool, mut requests: mpsc::Receiver<Append>, channel: String) {
    while let Some(first) = requests.recv().await {
        let mut weight = first.events.len();
        let mut group = vec![first];
        while weight < MAX_GROUP_EVENTS {
            let Ok(next) = requests.try_recv() else { break };
            weight += next.events.len();
            group.push(next);
        }
        let outcome = match pool.get().await {
            Ok(mut client) => commit_group(&mut client, &group, &channel).await,
            Err(error) => Err(backend(error)),
        };
        match outcome {
            Ok(results) => {
                for (request, result) in group.into_iter().zip(results) {
                    let _ = request.reply.send(result);
                }
            }
            Err(error) => {
                tracing::error!(%error, "group commit failed; nothing of it was stored");
                for request in group {
                    let _ = request.reply.send(Err(StoreError::Backend(error.to_string())));
                }
            }
        }
    }
}

type Results = Vec<Result<Vec<EventId>, StoreError>>;

async fn commit_group(
    client: &mut deadpool_postgres::Object,
    group: &[Append],
    channel: &str,
) -> Result<Results, StoreError> {
    let mut transaction = client.transaction().await.map_err(pg)?;
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&schema::SEQUENCER_LOCK]).await.map_err(pg)?;
    let head = transaction.query_one("SELECT last_id, last_hash FROM chain_head FOR UPDATE", &[]).await.map_err(pg)?;
    let mut last_id: EventId = head.get(0);
    let stored: Vec<u8> = head.get(1);
    let mut last_hash: Hash =
        stored.try_into().map_err(|_| StoreError::Corrupt("the chain head's hash is malformed".into()))?;
    let mut results = Vec::with_capacity(group.len());
    for request in group {
        let savepoint = transaction.savepoint("request").await.map_err(pg)?;
        let (mut id, mut hash) = (last_id, last_hash);
        let rows = Rows::of(&request.events, &mut id, &mut hash)?;
        match rows.insert(&savepoint).await {
            Ok(()) => {
                savepoint.commit().await.map_err(pg)?;
                results.push(Ok(((last_id + 1)..=id).collect()));
                (last_id, last_hash) = (id, hash);
            }
            Err(error) => {
                savepoint.rollback().await.map_err(pg)?;
                results.push(Err(pg(error)));
            }
        }
    }
    let mut users: Vec<&str> = group.iter().flat_map(|r| r.events.iter().map(|e| e.user.as_str())).collect();
    users.sort_unstable();
    users.dedup();
    transaction
        .execute("INSERT INTO known_users SELECT * FROM UNNEST($1::text[]) ON CONFLICT DO NOTHING", &[&users])
        .await
        .map_err(pg)?;
    transaction
        .execute("UPDATE chain_head SET last_id = $1, last_hash = $2", &[&last_id, &&last_hash[..]])
        .await
        .map_err(pg)?;
    // Delivered at the commit to every node listening: their forwarders and live views wake.
    transaction.execute("SELECT pg_notify($1, $2)", &[&channel, &last_id.to_string()]).await.map_err(pg)?;
    transaction.commit().await.map_err(pg)?;
    Ok(results)
}

/// A request's events as columns, for one multi-row insert (`UNNEST` of arrays).
#[derive(Default)]
struct Rows {
    id: Vec<i64>,
    time: Vec<i64>,
    user: Vec<String>,
    client: Vec<Option<String>>,
    process: Vec<String>,
    kind: Vec<String>,
    action: Vec<String>,
    name: Vec<String>,
    severity: Vec<i16>,
    outcome: Vec<Option<i16>>,
    message: Vec<String>,
    attributes: Vec<String>,
    request_id: Vec<Option<String>>,
    session_id: Vec<Option<String>>,
    job_id: Vec<Option<String>>,
    parent_id: Vec<Option<String>>,
    change: Vec<Option<String>>,
    hash: Vec<Vec<u8>>,
}

impl Rows {
    /// Numbers and chains the events after `id` and `hash`, which it moves to the last one.
    fn of(events: &[EventBody], id: &mut EventId, hash: &mut Hash) -> Result<Rows, StoreError> {
        let mut rows = Rows::default();
        for body in events {
            *id += 1;
            *hash = chain::link(hash, *id, body);
            rows.id.push(*id);
            rows.time.push(time::to_micros(body.time));
            rows.user.push(body.user.clone());
            rows.client.push(body.client.clone());
            rows.process.push(body.process.clone());
            rows.kind.push(body.kind.clone());
            rows.action.push(body.action.clone());
            rows.name.push(body.name.clone());
            rows.severity.push(i16::from(body.severity.code()));
            rows.outcome.push(body.outcome.map(|o| i16::from(o.code())));
            rows.message.push(body.message.clone());
            rows.attributes.push(serde_json::to_string(&body.attributes).map_err(backend)?);
            rows.request_id.push(body.request_id.clone());
            rows.session_id.push(body.session_id.clone());
            rows.job_id.push(body.job_id.clone());
            rows.parent_id.push(body.parent_id.clone());
            rows.change.push(body.change.as_ref().map(serde_json::to_string).transpose().map_err(backend)?);
            rows.hash.push(hash.to_vec());
        }
        Ok(rows)
    }

    async fn insert(&self, transaction: &tokio_postgres::Transaction<'_>) -> Result<(), tokio_postgres::Error> {
        let sql = format!(
            "INSERT INTO events ({COLUMNS}) SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], \
             $5::text[], $6::text[], $7::text[], $8::text[], $9::smallint[], $10::smallint[], $11::text[], $12::text[], \
             $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::bytea[])"
        );
        transaction
            .execute(
                &sql,
                &[
                    &self.id,
                    &self.time,
                    &self.user,
                    &self.client,
                    &self.process,
                    &self.kind,
                    &self.action,
                    &self.name,
                    &self.severity,
                    &self.outcome,
                    &self.message,
                    &self.attributes,
                    &self.request_id,
                    &self.session_id,
                    &self.job_id,
                    &self.parent_id,
                    &self.change,
                    &self.hash,
                ],
            )
            .await
            .map(|_| ())
    }
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn event_from_row(row: &tokio_postgres::Row) -> Result<Event, StoreError> {
    let id: i64 = row.get(0);
    let severity: i16 = row.get(8);
    let outcome: Option<i16> = row.get(9);
    let attributes: String = row.get(11);
    let change: Option<String> = row.get(16);
    let hash: Vec<u8> = row.get(17);
    let body = EventBody {
        time: time::from_micros(row.get(1)),
        user: row.get(2),
        client: row.get(3),
        process: row.get(4),
        kind: row.get(5),
        action: row.get(6),
        name: row.get(7),
        severity: Severity::from_code(severity as u8)
            .ok_or_else(|| corrupt(format!("event {id}: severity {severity}")))?,
        outcome: outcome
            .map(|code| Outcome::from_code(code.into()).ok_or_else(|| corrupt(format!("event {id}: outcome {code}"))))
            .transpose()?,
        message: row.get(10),
        attributes: serde_json::from_str(&attributes).map_err(|e| corrupt(format!("event {id}: {e}")))?,
        request_id: row.get(12),
        session_id: row.get(13),
        job_id: row.get(14),
        parent_id: row.get(15),
        change: change
            .map(|c| serde_json::from_str(&c))
            .transpose()
            .map_err(|e| corrupt(format!("event {id}: {e}")))?,
    };
    let hash: Hash = hash.try_into().map_err(|_| corrupt(format!("event {id}: the hash is not 32 bytes")))?;
    Ok(Event { id, body, hash: chain::to_hex(&hash) })
}
