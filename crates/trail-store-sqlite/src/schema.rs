//! The SQLite schema and its migrations, keyed by `PRAGMA user_version`.

use rusqlite::Connection;

/// Each entry migrates from version `i` to `i + 1`; append, never edit.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,   -- assigned by the writer, monotonic, never reused
    time        INTEGER NOT NULL,      -- microseconds since the Unix epoch, UTC
    user        TEXT NOT NULL,
    client      TEXT,
    process     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    action      TEXT NOT NULL,
    name        TEXT NOT NULL,
    severity    INTEGER NOT NULL,
    outcome     INTEGER,               -- NULL, 1 success, 2 failure
    message     TEXT NOT NULL,
    attributes  TEXT NOT NULL,         -- JSON object, order kept
    request_id  TEXT,
    session_id  TEXT,
    job_id      TEXT,
    parent_id   TEXT,
    change      TEXT,                  -- JSON structured change, secrets masked
    hash        BLOB NOT NULL          -- SHA-256 chain link (S4)
);
CREATE INDEX events_by_user ON events(user, id);
CREATE TABLE known_users (user TEXT PRIMARY KEY) WITHOUT ROWID;
-- Time filters use the zone maps of the search index (index.rs), and the search index lives in
-- a file of its own, so this database holds the events and nothing derived from them.
"#,
    r#"
-- E4: each device's latest content per kind, the contents stored once per hash.
CREATE TABLE contents (hash TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE device_contents (
    device      TEXT NOT NULL,
    kind        TEXT NOT NULL,             -- archive, inventory
    hash        TEXT NOT NULL REFERENCES contents(hash),
    changed_at  INTEGER NOT NULL,          -- when this content was first recorded
    seen_at     INTEGER NOT NULL,          -- when it was last recorded
    PRIMARY KEY (device, kind)
) WITHOUT ROWID;
"#,
    r#"
-- A1: local accounts. The lockout state is the policy's (trail_core::identity::policy).
CREATE TABLE accounts (
    username      TEXT PRIMARY KEY,        -- normalised (NFKC, lower case)
    display_name  TEXT NOT NULL,
    roles         TEXT NOT NULL,           -- JSON array of role names
    password      TEXT NOT NULL,           -- argon2id PHC string
    failures      TEXT NOT NULL,           -- JSON array of recent failure times (microseconds)
    locked_at     INTEGER,
    locked_by     TEXT,                    -- NULL: the policy; else the administrator
    created_at    INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    r#"
-- A2: API tokens, stored by digest only.
CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY,
    owner         TEXT NOT NULL,           -- an account; its tokens go with it
    name          TEXT NOT NULL,
    scopes        TEXT NOT NULL,           -- JSON array: ingest, read, admin
    digest        BLOB NOT NULL UNIQUE,    -- SHA-256 of the secret
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);
"#,
    r#"
-- A2: browser sessions, stored by the digest of their id.
CREATE TABLE sessions (
    digest        BLOB PRIMARY KEY,
    username      TEXT NOT NULL,
    csrf          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    client        TEXT
) WITHOUT ROWID;
"#,
    r#"
-- F4: how far each forwarding destination has delivered.
CREATE TABLE forward_cursors (
    destination        TEXT PRIMARY KEY,
    delivered_through  INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    r#"
-- V7, V8: jobs, a leaf per target, and job logs (apart from the audit trail).
CREATE TABLE jobs (
    id                  INTEGER PRIMARY KEY,
    name                TEXT NOT NULL,
    submitter           TEXT NOT NULL,
    submitted_at        INTEGER NOT NULL,
    request_id          TEXT,
    session_id          TEXT,
    client              TEXT,
    submit_event_id     INTEGER NOT NULL,
    completed_event_id  INTEGER
);
CREATE TABLE job_targets (
    job_id      INTEGER NOT NULL REFERENCES jobs(id),
    position    INTEGER NOT NULL,
    target      TEXT NOT NULL,
    status      TEXT NOT NULL,
    message     TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    event_id    INTEGER,
    PRIMARY KEY (job_id, position),
    UNIQUE (job_id, target)
) WITHOUT ROWID;
CREATE TABLE job_logs (
    job_id  INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    target  TEXT,
    time    INTEGER NOT NULL,
    text    TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
-- Correlation: from a request to its job and results, and back. Partial, so events without
-- them cost nothing.
CREATE INDEX events_by_job ON events(job_id, id) WHERE job_id IS NOT NULL;
CREATE INDEX events_by_request ON events(request_id, id) WHERE request_id IS NOT NULL;
"#,
    r#"
-- S3: where the chain resumes after a purge (the last purged id and its hash).
CREATE TABLE prune_marker (
    only       INTEGER PRIMARY KEY CHECK (only = 1),
    through    INTEGER NOT NULL,
    hash       BLOB NOT NULL,
    purged_at  INTEGER NOT NULL
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
CREATE TABLE tree_rows (number INTEGER PRIMARY KEY, hashes BLOB NOT NULL);
"#,
    r#"
-- S4: signed checkpoints, each beside the CHECKPOINT event that recorded it (a purge keeps them,
-- as it keeps the tree).
CREATE TABLE checkpoints (
    size       INTEGER PRIMARY KEY,   -- the tree's leaves
    root       BLOB NOT NULL,
    note       TEXT NOT NULL,         -- the signed note, with every signature
    event_id   INTEGER NOT NULL,
    signed_at  INTEGER NOT NULL
);
"#,
];

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > MIGRATIONS.len() {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "the database is at schema version {version}, newer than this trail ({}); upgrade trail",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// The columns of an event, in the order [`crate::rows::event_from_row`] reads them.
pub const EVENT_COLUMNS: &str = "id, time, user, client, process, kind, action, name, severity, outcome, \
     message, attributes, request_id, session_id, job_id, parent_id, change, hash, submitted_by";
