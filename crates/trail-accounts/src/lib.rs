//! The account service (A1–A4) over any [`Store`]: logins under the authentication policy
//! (`login.rs`), user administration and the first administrator (`users.rs`), API tokens
//! (`tokens.rs`) and browser sessions (`sessions.rs`). Every action is recorded as events written
//! with the account change they describe. The server and the CLI both use it; it knows no HTTP.

pub mod events;
mod login;
mod sessions;
mod tokens;
mod users;

pub use login::{LoggedIn, LoginRefusal};
pub use sessions::{OpenedSession, SessionHolder};
pub use tokens::{IssuedToken, TokenHolder};
pub use users::PasswordChanged;

use login::LOGIN_STRIPES;
use tokens::{TOUCH_EVERY, TokenCache};

use events::{Actor, audit, login_events, login_failure, printable_name};
use jiff::Timestamp;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use trail_core::identity::limits::{address_key, address_of_key, name_key};
use trail_core::identity::password::verify_nobody;
use trail_core::identity::session::public_id;
use trail_core::identity::{
    Account, AccountState, AccountWrite, AddressAttempts, Admission, ApiToken, AuthPolicy, ClientAnswer, FailureReason,
    FailureRecord, Grantor, LimitState, PasswordError, PasswordHash, Right, RightSet, Roles, Scope, Session,
    SessionPolicy, SessionState, Ticket, UnknownName, Username, UsernameError, token,
};
use trail_core::{EventBody, EventId};
use trail_store::{AccountStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Username(#[from] UsernameError),
    #[error("{0}")]
    Password(#[from] PasswordError),
    #[error("{0}")]
    Role(String),
    /// The caller's credential may not do this (a token handing on scopes it lacks).
    #[error("{0}")]
    Forbidden(String),
    #[error("no randomness from the operating system: {0}")]
    Randomness(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Accounts {
    store: Arc<dyn AccountStore>,
    policy: AuthPolicy,
    roles: Roles,
    stripes: Vec<tokio::sync::Mutex<()>>,
    clock: fn() -> Timestamp,
    sessions: SessionPolicy,
    /// Presented tokens resolved recently: authentication needs no query per request.
    resolved: Mutex<TokenCache>,
    /// The store's count of credential changes (on any node); the cache is dropped when it moves.
    credentials: tokio::sync::watch::Receiver<u64>,
}

/// `bytes` random bytes as hex: secrets, session ids, generated passwords.
pub fn random_hex(bytes: usize) -> Result<String, AccountError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|e| AccountError::Randomness(e.to_string()))?;
    Ok(hex::encode(buffer))
}

/// Runs argon2 off the async threads: a verification costs tens of milliseconds.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.expect("password hashing does not panic")
}

impl Accounts {
    pub fn new(store: Arc<dyn AccountStore>, policy: AuthPolicy, roles: Roles) -> Accounts {
        Accounts {
            policy,
            roles,
            stripes: (0..LOGIN_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            clock: Timestamp::now,
            sessions: SessionPolicy::default(),
            resolved: Mutex::default(),
            credentials: store.watch_credentials(),
            store,
        }
    }

    /// Replaces the session lifetimes.
    pub fn with_sessions(mut self, sessions: SessionPolicy) -> Accounts {
        self.sessions = sessions;
        self
    }

    /// Replaces the clock (tests of the policy's timing).
    pub fn with_clock(mut self, clock: fn() -> Timestamp) -> Accounts {
        self.clock = clock;
        self
    }

    pub fn policy(&self) -> &AuthPolicy {
        &self.policy
    }

    pub fn roles(&self) -> &Roles {
        &self.roles
    }
}
