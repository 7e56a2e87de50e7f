//! A1's storage: local accounts and their lockout state.

use rusqlite::{Connection, OptionalExtension, Row, params};
use trail_core::identity::{
    Account, AccountState, AccountWrite, ApiToken, PasswordHash, Scope, Session, StoredAccountState, Username,
};
use trail_core::time;

const COLUMNS: &str = "username, display_name, roles, password, failures, locked_at, locked_by, created_at";

fn json_error(column: usize, error: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(error))
}

fn conversion(column: usize, problem: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, problem.into())
}

/// A stored username. Stored names were normalised on the way in; parsing again cannot change
/// them, only catch a damaged row.
fn username_at(row: &Row<'_>, column: usize) -> rusqlite::Result<Username> {
    let text: String = row.get(column)?;
    Username::parse(&text).map_err(|e| conversion(column, e.to_string()))
}

fn account_from_row(row: &Row<'_>) -> rusqlite::Result<Account> {
    let roles: String = row.get(2)?;
    let stored = StoredAccountState { failures: row.get(4)?, locked_at: row.get(5)?, locked_by: row.get(6)? };
    Ok(Account {
        username: username_at(row, 0)?,
        display_name: row.get(1)?,
        roles: serde_json::from_str(&roles).map_err(|e| json_error(2, e))?,
        password: PasswordHash::from_stored(row.get(3)?),
        state: AccountState::from_stored(stored).map_err(|e| json_error(4, e))?,
        created_at: time::from_micros(row.get(7)?),
    })
}

pub fn get(conn: &Connection, username: &Username) -> rusqlite::Result<Option<Account>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM accounts WHERE username = ?1"))?
        .query_row([username.as_str()], account_from_row)
        .optional()
}

pub fn all(conn: &Connection) -> rusqlite::Result<Vec<Account>> {
    let mut statement = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM accounts ORDER BY username"))?;
    let rows = statement.query_map([], account_from_row)?;
    rows.collect()
}

/// Applies a change. `Ok(false)` means it was refused (the name is taken, the account or the
/// token is gone) and nothing was written.
pub fn apply(conn: &Connection, write: &AccountWrite) -> rusqlite::Result<bool> {
    let changed = match write {
        AccountWrite::Create(account) => {
            let StoredAccountState { failures, locked_at, locked_by } = account.state.to_stored();
            let roles = serde_json::to_string(&account.roles).map_err(|e| json_error(2, e))?;
            conn.prepare_cached(&format!("INSERT OR IGNORE INTO accounts ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"))?
                .execute(params![
                    account.username.as_str(),
                    account.display_name,
                    roles,
                    account.password.as_stored(),
                    failures,
                    locked_at,
                    locked_by,
                    time::to_micros(account.created_at)
                ])?
        }
        AccountWrite::Delete(name) => {
            conn.prepare_cached("DELETE FROM api_tokens WHERE owner = ?1")?.execute([name.as_str()])?;
            conn.prepare_cached("DELETE FROM sessions WHERE username = ?1")?.execute([name.as_str()])?;
            conn.prepare_cached("DELETE FROM accounts WHERE username = ?1")?.execute([name.as_str()])?
        }
        AccountWrite::Password { name, hash, keep_session, revoke_tokens_at } => {
            let changed = conn
                .prepare_cached("UPDATE accounts SET password = ?2 WHERE username = ?1")?
                .execute(params![name.as_str(), hash.as_stored()])?;
            conn.prepare_cached("DELETE FROM sessions WHERE username = ?1 AND digest IS NOT ?2")?
                .execute(params![name.as_str(), keep_session.map(|d| d.to_vec())])?;
            if let Some(at) = revoke_tokens_at {
                conn.prepare_cached(
                    "UPDATE api_tokens SET revoked_at = ?2 WHERE owner = ?1 AND revoked_at IS NULL",
                )?
                .execute(params![name.as_str(), time::to_micros(*at)])?;
            }
            changed
        }
        AccountWrite::State(name, state) => {
            let StoredAccountState { failures, locked_at, locked_by } = state.to_stored();
            conn.prepare_cached("UPDATE accounts SET failures = ?2, locked_at = ?3, locked_by = ?4 WHERE username = ?1")?
                .execute(params![name.as_str(), failures, locked_at, locked_by])?
        }
        AccountWrite::Roles(name, roles) => {
            let roles = serde_json::to_string(roles).map_err(|e| json_error(2, e))?;
            conn.prepare_cached("UPDATE accounts SET roles = ?2 WHERE username = ?1")?.execute(params![name.as_str(), roles])?
        }
        AccountWrite::CreateToken { owner, name, scopes, digest, at } => {
            if get(conn, owner)?.is_none() {
                return Ok(false);
            }
            let scopes: Vec<&str> = scopes.iter().map(|s| s.name()).collect();
            let scopes = serde_json::to_string(&scopes).map_err(|e| json_error(3, e))?;
            conn.prepare_cached(
                "INSERT INTO api_tokens(owner, name, scopes, digest, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![owner.as_str(), name, scopes, &digest[..], time::to_micros(*at)])?
        }
        AccountWrite::RevokeToken { id, at } => conn
            .prepare_cached("UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")?
            .execute(params![id, time::to_micros(*at)])?,
        AccountWrite::CreateSession(session) => {
            if get(conn, &session.username)?.is_none() {
                return Ok(false);
            }
            conn.prepare_cached(
                "INSERT INTO sessions(digest, username, csrf, created_at, last_seen_at, client) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                &session.digest[..],
                session.username.as_str(),
                session.csrf,
                time::to_micros(session.created_at),
                time::to_micros(session.last_seen_at),
                session.client
            ])?
        }
        AccountWrite::TouchSession { digest, at } => conn
            .prepare_cached("UPDATE sessions SET last_seen_at = max(last_seen_at, ?2) WHERE digest = ?1")?
            .execute(params![&digest[..], time::to_micros(*at)])?,
        AccountWrite::EndSession { digest } => {
            conn.prepare_cached("DELETE FROM sessions WHERE digest = ?1")?.execute([&digest[..]])?
        }
        AccountWrite::TouchToken { id, at } => conn
            .prepare_cached(
                "UPDATE api_tokens SET last_used_at = max(coalesce(last_used_at, 0), ?2) WHERE id = ?1 AND revoked_at IS NULL",
            )?
            .execute(params![id, time::to_micros(*at)])?,
    };
    Ok(changed == 1)
}

pub(crate) const TOKEN_COLUMNS: &str = "id, owner, name, scopes, created_at, last_used_at, revoked_at";

pub(crate) fn token_from_row(row: &Row<'_>) -> rusqlite::Result<ApiToken> {
    let scopes: String = row.get(3)?;
    let scopes: Vec<String> = serde_json::from_str(&scopes).map_err(|e| json_error(3, e))?;
    let optional_time = |at: Option<i64>| at.map(time::from_micros);
    Ok(ApiToken {
        id: row.get(0)?,
        owner: username_at(row, 1)?,
        name: row.get(2)?,
        scopes: scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
        created_at: time::from_micros(row.get(4)?),
        last_used_at: optional_time(row.get(5)?),
        revoked_at: optional_time(row.get(6)?),
    })
}

pub fn token_by_digest(conn: &Connection, digest: &[u8; 32]) -> rusqlite::Result<Option<ApiToken>> {
    conn.prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE digest = ?1"))?
        .query_row([&digest[..]], token_from_row)
        .optional()
}

pub fn tokens(conn: &Connection) -> rusqlite::Result<Vec<ApiToken>> {
    let mut statement = conn.prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY id"))?;
    let rows = statement.query_map([], token_from_row)?;
    rows.collect()
}

const SESSION_COLUMNS: &str = "digest, username, csrf, created_at, last_seen_at, client";

fn session_from_row(row: &Row<'_>) -> rusqlite::Result<Session> {
    let digest: Vec<u8> = row.get(0)?;
    Ok(Session {
        digest: digest.try_into().map_err(|_| conversion(0, "a digest is 32 bytes".into()))?,
        username: username_at(row, 1)?,
        csrf: row.get(2)?,
        created_at: time::from_micros(row.get(3)?),
        last_seen_at: time::from_micros(row.get(4)?),
        client: row.get(5)?,
    })
}

pub fn session(conn: &Connection, digest: &[u8; 32]) -> rusqlite::Result<Option<Session>> {
    conn.prepare_cached(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE digest = ?1"))?
        .query_row([&digest[..]], session_from_row)
        .optional()
}

pub fn sessions(conn: &Connection) -> rusqlite::Result<Vec<Session>> {
    let mut statement = conn.prepare_cached(&format!("SELECT {SESSION_COLUMNS} FROM sessions ORDER BY created_at"))?;
    let rows = statement.query_map([], session_from_row)?;
    rows.collect()
}
