//! The PostgreSQL schema and its migrations, numbered in `trail_schema`.

/// Each entry migrates from version `i` to `i + 1`; append, never edit.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE events (
    id          BIGINT PRIMARY KEY,    -- assigned under the sequencer lock: commits in id order
    time        BIGINT NOT NULL,       -- microseconds since the Unix epoch, UTC
    username    TEXT NOT NULL,
    client      TEXT,
    process     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    action      TEXT NOT NULL,
    name        TEXT NOT NULL,
    severity    SMALLINT NOT NULL,
    outcome     SMALLINT,              -- NULL, 1 success, 2 failure
    message     TEXT NOT NULL,
    attributes  TEXT NOT NULL,         -- JSON object, order kept
    request_id  TEXT,
    session_id  TEXT,
    job_id      TEXT,
    parent_id   TEXT,
    change      TEXT,
    hash        BYTEA NOT NULL         -- SHA-256 chain link (S4)
);
CREATE INDEX events_by_user ON events (username, id);
-- The chain's head: read and moved by every append, under the sequencer lock.
CREATE TABLE chain_head (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_id    BIGINT NOT NULL,
    last_hash  BYTEA NOT NULL
);
INSERT INTO chain_head VALUES (1, 0, decode(repeat('00', 32), 'hex'));
"#,
    r#"
CREATE TABLE known_users (username TEXT PRIMARY KEY);
-- F4: how far each forwarding destination has delivered.
CREATE TABLE forward_cursors (
    destination        TEXT PRIMARY KEY,
    delivered_through  BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
"#,
];

/// Applies the migrations not yet applied, one transaction each, under a lock so that nodes
/// starting together migrate once.
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<(), tokio_postgres::Error> {
    let transaction = client.transaction().await?;
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS trail_schema (version INTEGER NOT NULL); \
                        INSERT INTO trail_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM trail_schema)",
        )
        .await?;
    let version: i32 = transaction.query_one("SELECT version FROM trail_schema", &[]).await?.get(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        transaction.batch_execute(sql).await?;
        transaction.execute("UPDATE trail_schema SET version = $1", &[&(i as i32 + 1)]).await?;
    }
    transaction.commit().await
}

/// Advisory lock keys (arbitrary, fixed): migrations, and the sequencer.
pub const MIGRATION_LOCK: i64 = 0x7472_6169_6c00_0001;
pub const SEQUENCER_LOCK: i64 = 0x7472_6169_6c00_0002;
