//! The account service (A1, A4): logins under the authentication policy, user administration
//! and the first administrator, over any [`Store`]. Every action is recorded as events written
//! with the account change they describe. The server and the CLI both use it; it knows no HTTP.
#![forbid(unsafe_code)]

pub mod events;

use events::{Actor, audit, login_events, login_failure, printable_name};
use jiff::Timestamp;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use trail_core::EventId;
use trail_core::identity::password::verify_nobody;
use trail_core::identity::{
    Account, AccountState, AccountWrite, AddressThrottle, AuthPolicy, ClientAnswer, FailureReason, PasswordError,
    PasswordHash, RightSet, Roles, Username, UsernameError,
};
use trail_store::{Store, StoreError};

pub use events::Actor as AccountActor;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Username(#[from] UsernameError),
    #[error("{0}")]
    Password(#[from] PasswordError),
    #[error("{0}")]
    Role(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a refused login is told: nothing more (A1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    InvalidCredentials,
    AccountLocked,
}

impl LoginRefusal {
    pub fn message(self) -> &'static str {
        match self {
            LoginRefusal::InvalidCredentials => "invalid credentials",
            LoginRefusal::AccountLocked => "account locked",
        }
    }
}

/// A successful login: who, and what they may do.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    pub account: Account,
    pub rights: RightSet,
}

/// Logins of the same account run one at a time, so concurrent guesses cannot overwrite each
/// other's failure counts. Striped by username hash: bounded memory, little contention.
const LOGIN_STRIPES: usize = 64;

pub struct Accounts {
    store: Arc<dyn Store>,
    policy: AuthPolicy,
    roles: Roles,
    throttle: Mutex<AddressThrottle>,
    stripes: Vec<tokio::sync::Mutex<()>>,
    clock: fn() -> Timestamp,
}

/// Runs argon2 off the async threads: a verification costs tens of milliseconds.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.expect("password hashing does not panic")
}

impl Accounts {
    pub fn new(store: Arc<dyn Store>, policy: AuthPolicy, roles: Roles) -> Accounts {
        Accounts {
            store,
            policy,
            roles,
            throttle: Mutex::default(),
            stripes: (0..LOGIN_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            clock: Timestamp::now,
        }
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

    fn stripe(&self, username: &Username) -> &tokio::sync::Mutex<()> {
        let hash = username.as_str().bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(usize::from(b)));
        &self.stripes[hash % LOGIN_STRIPES]
    }

    /// A login attempt from `client`. Every attempt is recorded; the refusal says only
    /// "invalid credentials" or "account locked".
    pub async fn login(
        &self,
        raw_username: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<Result<LoggedIn, LoginRefusal>, AccountError> {
        let now = (self.clock)();
        let shown = Username::parse(raw_username).map_or_else(|_| printable_name(raw_username), |u| u.to_string());
        let actor = Actor { user: shown.clone(), client: Some(client) };
        let allowed = self.throttle.lock().expect("throttle lock").allows(&self.policy, client, now);
        if !allowed {
            self.store.append(vec![login_failure(&actor, &shown, FailureReason::AddressThrottled, now)]).await?;
            return Ok(Err(LoginRefusal::InvalidCredentials));
        }
        let Ok(username) = Username::parse(raw_username) else {
            return self.unknown_user(&actor, &shown, password, client, now).await;
        };
        let _serial = self.stripe(&username).lock().await;
        let Some(account) = self.store.account(&username).await? else {
            return self.unknown_user(&actor, &shown, password, client, now).await;
        };
        let (hash, attempt_password) = (account.password.clone(), password.to_owned());
        let password_ok = blocking(move || hash.verify(&attempt_password)).await;
        let attempt = self.policy.attempt(&account.state, now, password_ok);
        let recorded = login_events(&attempt.events, &actor, &shown, now);
        match self.store.write_account(AccountWrite::State(username, attempt.state.clone()), recorded).await {
            Err(StoreError::Conflict(_)) => return self.unknown_user(&actor, &shown, "", client, now).await,
            other => other?,
        };
        let refusal = match attempt.answer {
            ClientAnswer::Accepted => {
                let rights = self.roles.rights_of(&account.roles);
                return Ok(Ok(LoggedIn { account: Account { state: attempt.state, ..account }, rights }));
            }
            ClientAnswer::InvalidCredentials => LoginRefusal::InvalidCredentials,
            ClientAnswer::AccountLocked => LoginRefusal::AccountLocked,
        };
        self.throttle.lock().expect("throttle lock").record_failure(client, now);
        Ok(Err(refusal))
    }

    /// An unknown user costs a verification too, so timing does not reveal which names exist.
    async fn unknown_user(
        &self,
        actor: &Actor,
        shown: &str,
        password: &str,
        client: IpAddr,
        now: Timestamp,
    ) -> Result<Result<LoggedIn, LoginRefusal>, AccountError> {
        let password = password.to_owned();
        blocking(move || verify_nobody(&password)).await;
        self.store.append(vec![login_failure(actor, shown, FailureReason::UnknownUser, now)]).await?;
        self.throttle.lock().expect("throttle lock").record_failure(client, now);
        Ok(Err(LoginRefusal::InvalidCredentials))
    }

    fn check_roles(&self, roles: &[String]) -> Result<(), AccountError> {
        match roles.iter().find(|r| !self.roles.exists(r)) {
            Some(unknown) => Err(AccountError::Role(format!(
                "{unknown:?} is not a role; the built-in roles are admin, auditor, operator and viewer, \
                 and the configuration may define more"
            ))),
            None => Ok(()),
        }
    }

    /// Adds a user; the event names the administrator and the account, never the password.
    pub async fn add_user(
        &self,
        actor: &Actor,
        raw_username: &str,
        display_name: &str,
        roles: Vec<String>,
        password: &str,
    ) -> Result<EventId, AccountError> {
        let username = Username::parse(raw_username)?;
        self.check_roles(&roles)?;
        let password = password.to_owned();
        let hash = blocking(move || PasswordHash::create(&password)).await?;
        let now = (self.clock)();
        let details = [("roles", roles.join(", "))];
        let event = audit("USER_ADDED", actor, username.as_str(), None, &details, now);
        let display_name =
            if display_name.trim().is_empty() { username.to_string() } else { display_name.trim().to_owned() };
        let account =
            Account { username, display_name, roles, password: hash, state: AccountState::default(), created_at: now };
        Ok(self.store.write_account(AccountWrite::Create(account), vec![event]).await?[0])
    }

    pub async fn delete_user(&self, actor: &Actor, raw_username: &str) -> Result<EventId, AccountError> {
        let username = Username::parse(raw_username)?;
        let event = audit("USER_DELETED", actor, username.as_str(), None, &[], (self.clock)());
        Ok(self.store.write_account(AccountWrite::Delete(username), vec![event]).await?[0])
    }

    pub async fn set_password(
        &self,
        actor: &Actor,
        raw_username: &str,
        password: &str,
    ) -> Result<EventId, AccountError> {
        let username = Username::parse(raw_username)?;
        let password = password.to_owned();
        let hash = blocking(move || PasswordHash::create(&password)).await?;
        let event = audit("USER_PASSWORD_CHANGED", actor, username.as_str(), None, &[], (self.clock)());
        Ok(self.store.write_account(AccountWrite::Password(username, hash), vec![event]).await?[0])
    }

    /// An administrator locks an account: no automatic unlock.
    pub async fn lock_user(&self, actor: &Actor, raw_username: &str) -> Result<EventId, AccountError> {
        let username = Username::parse(raw_username)?;
        let now = (self.clock)();
        let state = self.policy.lock(now, &actor.user);
        let event = audit("USER_LOCKED", actor, username.as_str(), None, &[], now);
        Ok(self.store.write_account(AccountWrite::State(username, state), vec![event]).await?[0])
    }

    /// An administrator unlocks an account, which also clears its failure count.
    pub async fn unlock_user(&self, actor: &Actor, raw_username: &str) -> Result<EventId, AccountError> {
        let username = Username::parse(raw_username)?;
        let event = audit("USER_UNLOCKED", actor, username.as_str(), None, &[], (self.clock)());
        Ok(self.store.write_account(AccountWrite::State(username, self.policy.unlock()), vec![event]).await?[0])
    }

    pub async fn users(&self) -> Result<Vec<Account>, AccountError> {
        Ok(self.store.accounts().await?)
    }

    pub fn is_locked(&self, account: &Account) -> bool {
        self.policy.is_locked(&account.state, (self.clock)())
    }

    /// First start (A4): with no accounts at all, creates `admin` with the given password, or a
    /// generated one, returned so the caller can show it once.
    pub async fn ensure_admin(&self, password: Option<String>) -> Result<Option<String>, AccountError> {
        if !self.store.accounts().await?.is_empty() {
            return Ok(None);
        }
        let generated = password.is_none();
        let password = match password {
            Some(given) => given,
            None => {
                let mut bytes = [0u8; 15];
                getrandom::fill(&mut bytes).map_err(|e| AccountError::Role(format!("no randomness: {e}")))?;
                hex::encode(bytes)
            }
        };
        self.add_user(&Actor::system(), "admin", "Administrator", vec!["admin".into()], &password).await?;
        Ok(generated.then_some(password))
    }
}
