//! The PostgreSQL schema and its migrations, numbered in `trail_schema`.
//!
//! The events are partitioned by month (S3: a purge drops whole partitions). A partition's
//! `month` is not the event's own month but a monotone one: each event's is the later of the
//! previous event's and its own (capped at the current month), so every partition holds one
//! contiguous range of ids and a purge of the oldest ids drops the oldest partitions whole. An
//! ordinary stream, and a migrated trail, land in the partitions of their own months; a late
//! event lands in the current one.

/// Each entry migrates from version `i` to `i + 1`; append, never edit.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
CREATE TABLE events (
    id              BIGINT NOT NULL,       -- assigned under the sequencer lock: commits in id order
    month           INTEGER NOT NULL,      -- the partition: see above
    time            BIGINT NOT NULL,       -- microseconds since the Unix epoch, UTC
    username        TEXT NOT NULL,
    client          TEXT,
    process         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    action          TEXT NOT NULL,
    name            TEXT NOT NULL,
    severity        SMALLINT NOT NULL,
    outcome         SMALLINT,              -- NULL, 1 success, 2 failure
    message         TEXT NOT NULL,
    message_folded  TEXT,                  -- the message case-folded by trail-core, when that changes it
    attributes      TEXT NOT NULL,         -- JSON object, order kept
    request_id      TEXT,
    session_id      TEXT,
    job_id          TEXT,
    parent_id       TEXT,
    change          TEXT,                  -- JSON structured change, secrets masked
    hash            BYTEA NOT NULL,        -- SHA-256 chain link (S4)
    PRIMARY KEY (id, month)
) PARTITION BY RANGE (month);
CREATE INDEX events_by_user ON events (username, id);
-- Month and day filters: times mostly follow ids, so block ranges are selective and nearly free.
CREATE INDEX events_by_time ON events USING brin (time);
-- Message filters: trigrams of the folded text, prefiltering for LIKE over the same expression.
CREATE INDEX events_by_text ON events USING gin ((coalesce(message_folded, message)) public.gin_trgm_ops);
CREATE INDEX events_by_job ON events (job_id, id) WHERE job_id IS NOT NULL;
CREATE INDEX events_by_request ON events (request_id, id) WHERE request_id IS NOT NULL;
-- The chain's head: read and moved by every append, under the sequencer lock.
CREATE TABLE chain_head (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_id     BIGINT NOT NULL,
    last_hash   BYTEA NOT NULL,
    last_month  INTEGER NOT NULL
);
INSERT INTO chain_head VALUES (1, 0, decode(repeat('00', 32), 'hex'), 0);
-- S3: where the chain resumes after a purge (the last purged id and its hash).
CREATE TABLE prune_marker (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    through    BIGINT NOT NULL,
    hash       BYTEA NOT NULL,
    purged_at  BIGINT NOT NULL
);
CREATE TABLE known_users (username TEXT PRIMARY KEY);
-- F4: how far each forwarding destination has delivered.
CREATE TABLE forward_cursors (
    destination        TEXT PRIMARY KEY,
    delivered_through  BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
-- E4: each device's latest content per kind, the contents stored once per hash.
CREATE TABLE contents (hash TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE device_contents (
    device      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    hash        TEXT NOT NULL REFERENCES contents (hash),
    changed_at  BIGINT NOT NULL,
    seen_at     BIGINT NOT NULL,
    PRIMARY KEY (device, kind)
);
-- A1, A2: local accounts, API tokens (by digest) and browser sessions (by digest).
CREATE TABLE accounts (
    username      TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    roles         TEXT NOT NULL,
    password      TEXT NOT NULL,
    failures      TEXT NOT NULL,
    locked_at     BIGINT,
    locked_by     TEXT,
    created_at    BIGINT NOT NULL
);
CREATE TABLE api_tokens (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner         TEXT NOT NULL,
    name          TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    digest        BYTEA NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE TABLE sessions (
    digest        BYTEA PRIMARY KEY,
    username      TEXT NOT NULL,
    csrf          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    client        TEXT
);
-- V7, V8: jobs, a leaf per target, and job logs (apart from the audit trail).
CREATE TABLE jobs (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                TEXT NOT NULL,
    submitter           TEXT NOT NULL,
    submitted_at        BIGINT NOT NULL,
    request_id          TEXT,
    session_id          TEXT,
    client              TEXT,
    submit_event_id     BIGINT NOT NULL,
    completed_event_id  BIGINT
);
CREATE TABLE job_targets (
    job_id      BIGINT NOT NULL REFERENCES jobs (id),
    position    INTEGER NOT NULL,
    target      TEXT NOT NULL,
    status      TEXT NOT NULL,
    message     TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    event_id    BIGINT,
    PRIMARY KEY (job_id, position),
    UNIQUE (job_id, target)
);
CREATE TABLE job_logs (
    job_id  BIGINT NOT NULL,
    seq     BIGINT NOT NULL,
    target  TEXT,
    time    BIGINT NOT NULL,
    text    TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
"#,
    r#"
-- Who sent each event (the credential, or Trail itself); covered by the chain. Events stored
-- before this have none.
ALTER TABLE events ADD COLUMN submitted_by TEXT;
"#,
    r#"
-- S4: the Merkle tree's stored hashes, a row per 16 leaves (event id - 1): a run of the stored
-- layout (trail_core::tree::row_of). Derived from the events, but a purge keeps them, so that
-- roots and proofs about purged events still hold.
CREATE TABLE tree_rows (number BIGINT PRIMARY KEY, hashes BYTEA NOT NULL);
"#,
    r#"
-- S4: signed checkpoints, each beside the CHECKPOINT event that recorded it (a purge keeps them,
-- as it keeps the tree).
CREATE TABLE checkpoints (
    size       BIGINT PRIMARY KEY,    -- the tree's leaves
    root       BYTEA NOT NULL,
    note       TEXT NOT NULL,         -- the signed note, with every signature
    event_id   BIGINT NOT NULL,
    signed_at  BIGINT NOT NULL
);
"#,
    r#"
-- The trigram block index (trail_store::block_index), fed off the commit path by one node at a
-- time (index.rs): for each trigram key of a message, name or action and each chunk of ids, the
-- bitmap of the chunk's 16-event blocks holding it. It replaces the GIN index on messages,
-- which every commit paid for inside the sequencer's transaction.
CREATE TABLE search_chunks (
    level     SMALLINT NOT NULL,
    number    BIGINT NOT NULL,
    first_id  BIGINT NOT NULL,
    last_id   BIGINT NOT NULL,
    min_time  BIGINT NOT NULL,
    max_time  BIGINT NOT NULL,
    PRIMARY KEY (level, number)
);
CREATE INDEX search_chunks_by_id ON search_chunks (first_id);
CREATE TABLE search_postings (
    level   SMALLINT NOT NULL,
    number  BIGINT NOT NULL,
    key     BIGINT NOT NULL,     -- a u32 trigram key
    bits    BYTEA NOT NULL,      -- block_index::geometry::encode
    PRIMARY KEY (level, number, key)
);
-- How far the index reaches, and what it keys (block_index::VERSION; 0: nothing yet).
CREATE TABLE search_state (
    singleton        INTEGER PRIMARY KEY CHECK (singleton = 1),
    indexed_through  BIGINT NOT NULL,
    version          BIGINT NOT NULL
);
INSERT INTO search_state VALUES (1, 0, 0);
DROP INDEX events_by_text;
"#,
    r#"
-- What the login policy remembers of client addresses and of names that are no account
-- (trail_core::identity::limits), shared by every node; `settles_at` (µs) is when the sweep
-- should next look at a key.
CREATE TABLE login_limits (
    key         TEXT PRIMARY KEY,
    state       TEXT NOT NULL,
    settles_at  BIGINT NOT NULL
);
CREATE INDEX login_limits_by_settling ON login_limits (settles_at);
"#,
];

use crate::pg;
use trail_store::StoreError;

/// Applies the migrations not yet applied, in one transaction, under a lock so that nodes
/// starting together migrate once.
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<(), StoreError> {
    let transaction = client.transaction().await.map_err(pg)?;
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(pg)?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS trail_schema (version INTEGER NOT NULL); \
             INSERT INTO trail_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM trail_schema)",
        )
        .await
        .map_err(pg)?;
    let version: i32 = transaction.query_one("SELECT version FROM trail_schema", &[]).await.map_err(pg)?.get(0);
    if version as usize > MIGRATIONS.len() {
        return Err(newer_schema(version as usize));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        transaction.batch_execute(sql).await.map_err(pg)?;
        transaction.execute("UPDATE trail_schema SET version = $1", &[&(i as i32 + 1)]).await.map_err(pg)?;
    }
    transaction.commit().await.map_err(pg)
}

/// For a reader, which never migrates: whether the database at `shown` (a URL without its
/// password) holds a trail at this Trail's schema version.
pub async fn check_current(client: &impl deadpool_postgres::GenericClient, shown: &str) -> Result<(), StoreError> {
    // Where a writer would have made it: the first schema of the search path that exists, not
    // one further down that happens to hold a trail too.
    let made = "SELECT to_regclass(quote_ident(current_schema()) || '.trail_schema') IS NOT NULL";
    let version: Option<i32> = if client.query_one(made, &[]).await.map_err(pg)?.get::<_, Option<bool>>(0) == Some(true)
    {
        client.query_opt("SELECT version FROM trail_schema", &[]).await.map_err(pg)?.map(|row| row.get(0))
    } else {
        None
    };
    let current = MIGRATIONS.len();
    match version.unwrap_or(0) as usize {
        0 => Err(StoreError::NoTrail(shown.to_owned())),
        version if version == current => Ok(()),
        version if version < current => Err(StoreError::backend(format!(
            "the trail at {shown} is at schema version {version}, older than this trail's ({current}); \
             start `trail serve` on it once, which migrates it, then read"
        ))),
        version => Err(newer_schema(version)),
    }
}

/// The refusal of a database migrated by a newer Trail.
fn newer_schema(version: usize) -> StoreError {
    StoreError::backend(format!(
        "the database is at schema version {version}, newer than this trail ({}); upgrade trail",
        MIGRATIONS.len()
    ))
}

/// The advisory lock key (arbitrary, fixed) under which nodes migrate. Forwarding leases use
/// keys of their own (see `lease.rs`); the sequencer is the chain head's row lock.
pub const MIGRATION_LOCK: i64 = 0x7472_6169_6c00_0001;

/// A month as a partition key: months since year 0, in UTC.
pub fn month_of(time: jiff::Timestamp) -> i32 {
    let date = time.to_zoned(jiff::tz::TimeZone::UTC).date();
    i32::from(date.year()) * 12 + i32::from(date.month()) - 1
}

/// The partition holding a month's events, quoted.
pub fn partition_name(month: i32) -> String {
    format!("\"events_{:04}_{:02}\"", month.div_euclid(12), month.rem_euclid(12) + 1)
}

/// The month of a partition, from its (unquoted) name: the inverse of [`partition_name`].
pub fn partition_month(name: &str) -> Option<i32> {
    let (year, month) = name.strip_prefix("events_")?.rsplit_once('_')?;
    Some(year.parse::<i32>().ok()? * 12 + month.parse::<i32>().ok()? - 1)
}

/// Creates the partition of a month's events, when it is not there yet.
pub fn create_partition(month: i32) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} PARTITION OF events FOR VALUES FROM ({month}) TO ({})",
        partition_name(month),
        month + 1
    )
}
