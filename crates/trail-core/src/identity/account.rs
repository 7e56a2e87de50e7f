//! Local accounts (A1) as stored, and the changes made to them. A change is always stored with
//! the events that record it, in one transaction (see `Store::write_account`).

use super::password::PasswordHash;
use super::policy::AccountState;
use super::rights::Scope;
use super::username::Username;
use jiff::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub username: Username,
    pub display_name: String,
    pub roles: Vec<String>,
    pub password: PasswordHash,
    pub state: AccountState,
    pub created_at: Timestamp,
}

/// One change to the accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountWrite {
    /// Refused if the username exists.
    Create(Account),
    /// The rest are refused if the username does not exist.
    Delete(Username),
    /// A new password: the account's sessions end, but `keep_session` (the one making the
    /// change), and with `revoke_tokens_at` its active API tokens are revoked.
    Password {
        name: Username,
        hash: PasswordHash,
        keep_session: Option<[u8; 32]>,
        revoke_tokens_at: Option<Timestamp>,
    },
    State(Username, AccountState),
    Roles(Username, Vec<String>),
    /// A new API token of an existing account, stored by digest.
    CreateToken {
        owner: Username,
        name: String,
        scopes: Vec<Scope>,
        digest: [u8; 32],
        at: Timestamp,
    },
    /// Refused if the token does not exist or is already revoked.
    RevokeToken {
        id: i64,
        at: Timestamp,
    },
    /// Remembers that a token was used.
    TouchToken {
        id: i64,
        at: Timestamp,
    },
    /// A new browser session of an existing account.
    CreateSession(super::session::Session),
    /// Remembers a session's latest request.
    TouchSession {
        digest: [u8; 32],
        at: Timestamp,
    },
    /// Ends a session (logout, expiry, or a new login replacing it).
    EndSession {
        digest: [u8; 32],
    },
}

impl AccountWrite {
    /// Whether the change can stop a credential that worked: a deletion, a lock (any change of
    /// state), new roles or password, a revoked token. Every node forgets the tokens it
    /// resolved when one commits anywhere.
    pub fn changes_credentials(&self) -> bool {
        matches!(
            self,
            AccountWrite::Delete(_)
                | AccountWrite::Password { .. }
                | AccountWrite::State(..)
                | AccountWrite::Roles(..)
                | AccountWrite::RevokeToken { .. }
        )
    }

    /// What a refusal of this change says.
    pub fn refusal(&self) -> String {
        match self {
            AccountWrite::Create(account) => format!("the username {} is taken", account.username),
            AccountWrite::Delete(name)
            | AccountWrite::Password { name, .. }
            | AccountWrite::State(name, _)
            | AccountWrite::Roles(name, _)
            | AccountWrite::CreateToken { owner: name, .. } => format!("there is no account {name}"),
            AccountWrite::CreateSession(session) => format!("there is no account {}", session.username),
            AccountWrite::TouchSession { .. } | AccountWrite::EndSession { .. } => "the session has ended".to_owned(),
            AccountWrite::RevokeToken { id, .. } | AccountWrite::TouchToken { id, .. } => {
                format!("there is no active token {id}")
            }
        }
    }
}
