//! A1 and A2's storage: local accounts with their lockout state, API tokens and browser
//! sessions, the secrets stored by digest only.

use crate::{corrupt, pg};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use trail_core::identity::{
    Account, AccountState, AccountWrite, ApiToken, PasswordHash, Scope, Session, StoredAccountState, Username,
};
use trail_core::time;
use trail_store::StoreError;

const COLUMNS: &str = "username, display_name, roles, password, failures, locked_at, locked_by, created_at";

fn json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(format!("{what}: {e}")))
}

/// A stored username. Stored names were normalised on the way in; parsing again cannot change
/// them, only catch a damaged row.
fn username(text: &str) -> Result<Username, StoreError> {
    Username::parse(text).map_err(|e| corrupt(format!("stored username {text:?}: {e}")))
}

fn account_from_row(row: &Row) -> Result<Account, StoreError> {
    let stored = StoredAccountState { failures: row.get(4), locked_at: row.get(5), locked_by: row.get(6) };
    Ok(Account {
        username: username(row.get(0))?,
        display_name: row.get(1),
        roles: json(row.get(2), "an account's roles")?,
        password: PasswordHash::from_stored(row.get(3)),
        state: AccountState::from_stored(stored).map_err(|e| corrupt(format!("an account's failures: {e}")))?,
        created_at: time::from_micros(row.get(7)),
    })
}

pub async fn get(client: &impl GenericClient, name: &Username) -> Result<Option<Account>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM accounts WHERE username = $1");
    let row = client.query_opt(&sql, &[&name.as_str()]).await.map_err(pg)?;
    row.as_ref().map(account_from_row).transpose()
}

pub async fn all(client: &impl GenericClient) -> Result<Vec<Account>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM accounts ORDER BY username");
    client.query(&sql, &[]).await.map_err(pg)?.iter().map(account_from_row).collect()
}

fn to_json(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(crate::backend)
}

/// Applies a change. `Ok(false)` means it was refused (the name is taken, the account or the
/// token is gone) and nothing was written.
pub async fn apply(client: &impl GenericClient, write: &AccountWrite) -> Result<bool, StoreError> {
    let run = async |sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]| {
        client.execute(sql, params).await.map_err(pg)
    };
    let changed = match write {
        AccountWrite::Create(account) => {
            let StoredAccountState { failures, locked_at, locked_by } = account.state.to_stored();
            let sql = format!(
                "INSERT INTO accounts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"
            );
            let created = time::to_micros(account.created_at);
            let roles = to_json(&account.roles)?;
            let fields: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
                &account.username.as_str(),
                &account.display_name,
                &roles,
                &account.password.as_stored(),
                &failures,
                &locked_at,
                &locked_by,
                &created,
            ];
            run(&sql, &fields).await?
        }
        AccountWrite::Delete(name) => {
            run("DELETE FROM api_tokens WHERE owner = $1", &[&name.as_str()]).await?;
            run("DELETE FROM sessions WHERE username = $1", &[&name.as_str()]).await?;
            run("DELETE FROM accounts WHERE username = $1", &[&name.as_str()]).await?
        }
        AccountWrite::Password { name, hash, keep_session, revoke_tokens_at } => {
            let changed =
                run("UPDATE accounts SET password = $2 WHERE username = $1", &[&name.as_str(), &hash.as_stored()])
                    .await?;
            let keep = keep_session.map(|digest| digest.to_vec());
            run("DELETE FROM sessions WHERE username = $1 AND digest IS DISTINCT FROM $2", &[&name.as_str(), &keep])
                .await?;
            if let Some(at) = revoke_tokens_at {
                run(
                    "UPDATE api_tokens SET revoked_at = $2 WHERE owner = $1 AND revoked_at IS NULL",
                    &[&name.as_str(), &time::to_micros(*at)],
                )
                .await?;
            }
            changed
        }
        AccountWrite::State(name, state) => {
            let StoredAccountState { failures, locked_at, locked_by } = state.to_stored();
            run(
                "UPDATE accounts SET failures = $2, locked_at = $3, locked_by = $4 WHERE username = $1",
                &[&name.as_str(), &failures, &locked_at, &locked_by],
            )
            .await?
        }
        AccountWrite::Roles(name, roles) => {
            run("UPDATE accounts SET roles = $2 WHERE username = $1", &[&name.as_str(), &to_json(roles)?]).await?
        }
        AccountWrite::CreateToken { owner, name, scopes, digest, at } => {
            if get(client, owner).await?.is_none() {
                return Ok(false);
            }
            let scopes: Vec<&str> = scopes.iter().map(|s| s.name()).collect();
            run(
                "INSERT INTO api_tokens (owner, name, scopes, digest, created_at) VALUES ($1, $2, $3, $4, $5)",
                &[&owner.as_str(), name, &to_json(&scopes)?, &&digest[..], &time::to_micros(*at)],
            )
            .await?
        }
        AccountWrite::RevokeToken { id, at } => {
            run(
                "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                &[id, &time::to_micros(*at)],
            )
            .await?
        }
        AccountWrite::TouchToken { id, at } => {
            run(
                "UPDATE api_tokens SET last_used_at = greatest(coalesce(last_used_at, 0), $2) \
                 WHERE id = $1 AND revoked_at IS NULL",
                &[id, &time::to_micros(*at)],
            )
            .await?
        }
        AccountWrite::CreateSession(session) => {
            if get(client, &session.username).await?.is_none() {
                return Ok(false);
            }
            run(
                "INSERT INTO sessions (digest, username, csrf, created_at, last_seen_at, client) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &&session.digest[..],
                    &session.username.as_str(),
                    &session.csrf,
                    &time::to_micros(session.created_at),
                    &time::to_micros(session.last_seen_at),
                    &session.client,
                ],
            )
            .await?
        }
        AccountWrite::TouchSession { digest, at } => {
            run(
                "UPDATE sessions SET last_seen_at = greatest(last_seen_at, $2) WHERE digest = $1",
                &[&&digest[..], &time::to_micros(*at)],
            )
            .await?
        }
        AccountWrite::EndSession { digest } => run("DELETE FROM sessions WHERE digest = $1", &[&&digest[..]]).await?,
    };
    Ok(changed == 1)
}

const TOKEN_COLUMNS: &str = "id, owner, name, scopes, created_at, last_used_at, revoked_at";

fn token_from_row(row: &Row) -> Result<ApiToken, StoreError> {
    let scopes: Vec<String> = json(row.get(3), "a token's scopes")?;
    let optional_time = |at: Option<i64>| at.map(time::from_micros);
    Ok(ApiToken {
        id: row.get(0),
        owner: username(row.get(1))?,
        name: row.get(2),
        scopes: scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
        created_at: time::from_micros(row.get(4)),
        last_used_at: optional_time(row.get(5)),
        revoked_at: optional_time(row.get(6)),
    })
}

pub async fn token_by_digest(client: &impl GenericClient, digest: &[u8; 32]) -> Result<Option<ApiToken>, StoreError> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE digest = $1");
    let row = client.query_opt(&sql, &[&&digest[..]]).await.map_err(pg)?;
    row.as_ref().map(token_from_row).transpose()
}

pub async fn tokens(client: &impl GenericClient) -> Result<Vec<ApiToken>, StoreError> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY id");
    client.query(&sql, &[]).await.map_err(pg)?.iter().map(token_from_row).collect()
}

const SESSION_COLUMNS: &str = "digest, username, csrf, created_at, last_seen_at, client";

fn session_from_row(row: &Row) -> Result<Session, StoreError> {
    let digest: &[u8] = row.get(0);
    Ok(Session {
        digest: digest.try_into().map_err(|_| corrupt("a session digest is not 32 bytes"))?,
        username: username(row.get(1))?,
        csrf: row.get(2),
        created_at: time::from_micros(row.get(3)),
        last_seen_at: time::from_micros(row.get(4)),
        client: row.get(5),
    })
}

pub async fn session(client: &impl GenericClient, digest: &[u8; 32]) -> Result<Option<Session>, StoreError> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE digest = $1");
    let row = client.query_opt(&sql, &[&&digest[..]]).await.map_err(pg)?;
    row.as_ref().map(session_from_row).transpose()
}

pub async fn sessions(client: &impl GenericClient) -> Result<Vec<Session>, StoreError> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions ORDER BY created_at");
    client.query(&sql, &[]).await.map_err(pg)?.iter().map(session_from_row).collect()
}

/// Changes the login limit under `key`, under a transaction-scoped lock on the key, so that
/// nodes change it one at a time (see [`trail_store::AccountStore::update_login_limit`]).
pub async fn update_login_limit(
    client: &mut deadpool_postgres::Object,
    key: &str,
    update: trail_store::LimitUpdate<'_>,
) -> Result<(), StoreError> {
    let transaction = client.transaction().await.map_err(pg)?;
    let lock = "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '/login-limit/' || $1, 0))";
    transaction.execute(lock, &[&key]).await.map_err(pg)?;
    let saved = transaction.query_opt("SELECT state FROM login_limits WHERE key = $1", &[&key]).await.map_err(pg)?;
    let saved: Option<String> = saved.map(|row| row.get(0));
    match update(saved.as_deref()) {
        Some(limit) => {
            let upsert = "INSERT INTO login_limits (key, state, settles_at) VALUES ($1, $2, $3) \
                          ON CONFLICT (key) DO UPDATE SET state = $2, settles_at = $3";
            let settles_at = time::to_micros(limit.settles_at);
            transaction.execute(upsert, &[&key, &limit.text, &settles_at]).await.map_err(pg)?
        }
        None => transaction.execute("DELETE FROM login_limits WHERE key = $1", &[&key]).await.map_err(pg)?,
    };
    transaction.commit().await.map_err(pg)
}

pub async fn settled_login_limits(
    client: &impl GenericClient,
    now: jiff::Timestamp,
) -> Result<Vec<String>, StoreError> {
    let rows = client
        .query("SELECT key FROM login_limits WHERE settles_at <= $1", &[&time::to_micros(now)])
        .await
        .map_err(pg)?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}
