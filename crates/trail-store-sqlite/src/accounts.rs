//! A1's storage: local accounts and their lockout state.

use rusqlite::{Connection, OptionalExtension, Row, params};
use trail_core::identity::{Account, AccountState, AccountWrite, LockedBy, PasswordHash, Username};
use trail_core::time;

const COLUMNS: &str = "username, display_name, roles, password, failures, locked_at, locked_by, created_at";

fn json_error(column: usize, error: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(error))
}

fn account_from_row(row: &Row<'_>) -> rusqlite::Result<Account> {
    let username: String = row.get(0)?;
    let roles: String = row.get(2)?;
    let failures: String = row.get(4)?;
    let failures: Vec<i64> = serde_json::from_str(&failures).map_err(|e| json_error(4, e))?;
    let locked_at: Option<i64> = row.get(5)?;
    let locked_by: Option<String> = row.get(6)?;
    Ok(Account {
        // Stored names were normalised on the way in; parsing again cannot change them.
        username: Username::parse(&username).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.to_string().into())
        })?,
        display_name: row.get(1)?,
        roles: serde_json::from_str(&roles).map_err(|e| json_error(2, e))?,
        password: PasswordHash::from_stored(row.get(3)?),
        state: AccountState {
            recent_failures: failures.into_iter().map(time::from_micros).collect(),
            locked: locked_at
                .map(|at| (time::from_micros(at), locked_by.map_or(LockedBy::Policy, LockedBy::Administrator))),
        },
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

fn state_columns(state: &AccountState) -> (String, Option<i64>, Option<String>) {
    let failures: Vec<i64> = state.recent_failures.iter().map(|t| time::to_micros(*t)).collect();
    let failures = serde_json::to_string(&failures).unwrap_or_else(|_| "[]".into());
    match &state.locked {
        None => (failures, None, None),
        Some((at, LockedBy::Policy)) => (failures, Some(time::to_micros(*at)), None),
        Some((at, LockedBy::Administrator(by))) => (failures, Some(time::to_micros(*at)), Some(by.clone())),
    }
}

/// Applies a change. `Ok(false)` means it was refused (the name is taken, or gone) and nothing
/// was written.
pub fn apply(conn: &Connection, write: &AccountWrite) -> rusqlite::Result<bool> {
    let name = write.username().as_str();
    let changed = match write {
        AccountWrite::Create(account) => {
            let (failures, locked_at, locked_by) = state_columns(&account.state);
            let roles = serde_json::to_string(&account.roles).map_err(|e| json_error(2, e))?;
            conn.prepare_cached(&format!(
                "INSERT OR IGNORE INTO accounts ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ))?
            .execute(params![
                name,
                account.display_name,
                roles,
                account.password.as_stored(),
                failures,
                locked_at,
                locked_by,
                time::to_micros(account.created_at)
            ])?
        }
        AccountWrite::Delete(_) => conn.prepare_cached("DELETE FROM accounts WHERE username = ?1")?.execute([name])?,
        AccountWrite::Password(_, hash) => conn
            .prepare_cached("UPDATE accounts SET password = ?2 WHERE username = ?1")?
            .execute(params![name, hash.as_stored()])?,
        AccountWrite::State(_, state) => {
            let (failures, locked_at, locked_by) = state_columns(state);
            conn.prepare_cached(
                "UPDATE accounts SET failures = ?2, locked_at = ?3, locked_by = ?4 WHERE username = ?1",
            )?
            .execute(params![name, failures, locked_at, locked_by])?
        }
        AccountWrite::Roles(_, roles) => {
            let roles = serde_json::to_string(roles).map_err(|e| json_error(2, e))?;
            conn.prepare_cached("UPDATE accounts SET roles = ?2 WHERE username = ?1")?.execute(params![name, roles])?
        }
    };
    Ok(changed == 1)
}
