//! The account service (A1, A4): logins under the authentication policy, user administration
//! and the first administrator, over any [`Store`]. Every action is recorded as events written
//! with the account change they describe. The server and the CLI both use it; it knows no HTTP.
#![forbid(unsafe_code)]

pub mod events;

use events::{Actor, audit, login_events, login_failure, printable_name};
use jiff::Timestamp;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use trail_core::EventId;
use trail_core::identity::password::verify_nobody;
use trail_core::identity::{
    Account, AccountState, AccountWrite, AddressThrottle, ApiToken, AuthPolicy, ClientAnswer, FailureReason,
    PasswordError, PasswordHash, Right, RightSet, Roles, Scope, Session, SessionPolicy, SessionState, Username,
    UsernameError, token,
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
    sessions: SessionPolicy,
    /// Presented tokens resolved recently: authentication needs no query per request.
    resolved: Mutex<TokenCache>,
}

/// Resolved tokens by digest, with when they were resolved (`None`: not a valid token).
type TokenCache = HashMap<[u8; 32], (std::time::Instant, Option<TokenHolder>)>;

/// How long a resolved token is trusted before it is looked up again (revocation through this
/// node clears the cache at once).
const TOKEN_CACHE: std::time::Duration = std::time::Duration::from_secs(10);
/// `last_used_at` is written at most this often per token.
const TOUCH_EVERY: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

/// Who a presented API token acts for, and with which rights.
#[derive(Debug, Clone)]
pub struct TokenHolder {
    pub token: ApiToken,
    pub rights: RightSet,
}

/// A browser session just opened: the id goes in the cookie, the CSRF token to the page.
#[derive(Debug, Clone)]
pub struct OpenedSession {
    pub id: String,
    pub csrf: String,
}

/// A request's session, resolved.
#[derive(Debug, Clone)]
pub struct SessionHolder {
    pub session: Session,
    pub rights: RightSet,
}

fn random_hex(bytes: usize) -> Result<String, AccountError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|e| AccountError::Role(format!("no randomness: {e}")))?;
    Ok(hex::encode(buffer))
}

/// A new token: its secret is shown once and stored nowhere.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub id: i64,
    pub secret: String,
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
            sessions: SessionPolicy::default(),
            resolved: Mutex::default(),
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
        if attempt.state.locked.is_some() {
            self.forget_tokens();
        }
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
        let id = self.store.write_account(AccountWrite::Delete(username), vec![event]).await?[0];
        self.forget_tokens();
        Ok(id)
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
        let id = self.store.write_account(AccountWrite::State(username, state), vec![event]).await?[0];
        self.forget_tokens();
        Ok(id)
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

    /// Issues an API token for `owner`, narrowed to `scopes`. The event names the creator, the
    /// owner and the scopes, never the secret.
    pub async fn create_token(
        &self,
        actor: &Actor,
        owner: &str,
        name: &str,
        scopes: Vec<Scope>,
    ) -> Result<IssuedToken, AccountError> {
        let owner = Username::parse(owner)?;
        if scopes.is_empty() {
            return Err(AccountError::Role("a token needs at least one scope: ingest, read or admin".into()));
        }
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).map_err(|e| AccountError::Role(format!("no randomness: {e}")))?;
        let secret = format!("{}{}", token::PREFIX, hex::encode(bytes));
        let digest = token::digest(&secret);
        let now = (self.clock)();
        let scope_names: Vec<&str> = scopes.iter().map(|s| s.name()).collect();
        let details = [("token", name.to_owned()), ("scopes", scope_names.join(", "))];
        let event = audit("TOKEN_CREATED", actor, owner.as_str(), None, &details, now);
        let write = AccountWrite::CreateToken { owner, name: name.to_owned(), scopes, digest, at: now };
        self.store.write_account(write, vec![event]).await?;
        let stored = self
            .store
            .token_by_digest(digest)
            .await?
            .ok_or_else(|| StoreError::Conflict("the token vanished".into()))?;
        Ok(IssuedToken { id: stored.id, secret })
    }

    /// Revokes a token at once.
    pub async fn revoke_token(&self, actor: &Actor, token: &ApiToken) -> Result<EventId, AccountError> {
        let now = (self.clock)();
        let details = [("token", token.name.clone()), ("id", token.id.to_string())];
        let event = audit("TOKEN_REVOKED", actor, token.owner.as_str(), None, &details, now);
        let ids = self.store.write_account(AccountWrite::RevokeToken { id: token.id, at: now }, vec![event]).await?;
        self.forget_tokens();
        Ok(ids[0])
    }

    /// Opens a browser session after a successful login. The id is always new (never one the
    /// client offered, against session fixation), and a session the client still held ends.
    pub async fn open_session(
        &self,
        logged_in: &LoggedIn,
        replacing: Option<&str>,
        client: IpAddr,
    ) -> Result<OpenedSession, AccountError> {
        if let Some(old) = replacing {
            let digest = token::digest(old);
            if self.store.session(digest).await?.is_some() {
                self.store.write_account(AccountWrite::EndSession { digest }, vec![]).await?;
            }
        }
        let (id, csrf) = (random_hex(32)?, random_hex(16)?);
        let now = (self.clock)();
        let session = Session {
            digest: token::digest(&id),
            username: logged_in.account.username.clone(),
            csrf: csrf.clone(),
            created_at: now,
            last_seen_at: now,
            client: Some(client.to_string()),
        };
        self.store.write_account(AccountWrite::CreateSession(session), vec![]).await?;
        Ok(OpenedSession { id, csrf })
    }

    /// The session behind a cookie, if it is open, within its expiries, and its account exists
    /// and is unlocked. An expired session ends here, recorded.
    pub async fn resolve_session(&self, id: &str) -> Result<Option<SessionHolder>, AccountError> {
        let Some(session) = self.store.session(token::digest(id)).await? else { return Ok(None) };
        let now = (self.clock)();
        if self.sessions.state(&session, now) != SessionState::Active {
            self.end_expired(&session, now).await?;
            return Ok(None);
        }
        let Some(owner) = self.store.account(&session.username).await? else { return Ok(None) };
        if self.is_locked(&owner) {
            return Ok(None);
        }
        if now.duration_since(session.last_seen_at) >= TOUCH_EVERY {
            self.store.write_account(AccountWrite::TouchSession { digest: session.digest, at: now }, vec![]).await?;
        }
        Ok(Some(SessionHolder { rights: self.roles.rights_of(&owner.roles), session }))
    }

    /// Logout: the session ends, recorded.
    pub async fn logout(&self, id: &str, client: IpAddr) -> Result<(), AccountError> {
        let Some(session) = self.store.session(token::digest(id)).await? else { return Ok(()) };
        let actor = Actor { user: session.username.to_string(), client: Some(client) };
        let event = audit(
            "AUTH_LOGOUT",
            &actor,
            session.username.as_str(),
            Some(trail_core::Outcome::Success),
            &[],
            (self.clock)(),
        );
        match self.store.write_account(AccountWrite::EndSession { digest: session.digest }, vec![event]).await {
            Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }

    async fn end_expired(&self, session: &Session, now: Timestamp) -> Result<(), AccountError> {
        let reason = match self.sessions.state(session, now) {
            SessionState::IdleExpired => "idle",
            _ => "absolute",
        };
        let actor = Actor { user: session.username.to_string(), client: None };
        let event = audit(
            "AUTH_SESSION_EXPIRED",
            &actor,
            session.username.as_str(),
            None,
            &[("expiry", reason.to_owned())],
            now,
        );
        match self.store.write_account(AccountWrite::EndSession { digest: session.digest }, vec![event]).await {
            // Another request ended it first: its expiry is already recorded.
            Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }

    /// Ends and records every expired session; the server runs this every minute, so sessions
    /// nobody returns to are closed too.
    pub async fn sweep_sessions(&self) -> Result<usize, AccountError> {
        let now = (self.clock)();
        let mut ended = 0;
        for session in self.store.sessions().await? {
            if self.sessions.state(&session, now) != SessionState::Active {
                self.end_expired(&session, now).await?;
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Drops every resolved token, after a change that may stop some (a lock, a deletion, a
    /// revocation): the next request looks its token up again.
    fn forget_tokens(&self) {
        self.resolved.lock().expect("token cache").clear();
    }

    pub async fn tokens(&self) -> Result<Vec<ApiToken>, AccountError> {
        Ok(self.store.tokens().await?)
    }

    /// Resolves a presented secret: an active token of an existing, unlocked account, with its
    /// owner's rights narrowed to its scopes. `None` for anything else.
    pub async fn authenticate_token(&self, secret: &str) -> Result<Option<TokenHolder>, AccountError> {
        if !secret.starts_with(token::PREFIX) {
            return Ok(None);
        }
        let digest = token::digest(secret);
        if let Some((at, holder)) = self.resolved.lock().expect("token cache").get(&digest)
            && at.elapsed() < TOKEN_CACHE
        {
            return Ok(holder.clone());
        }
        let holder = self.resolve(digest).await?;
        let mut cache = self.resolved.lock().expect("token cache");
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(digest, (std::time::Instant::now(), holder.clone()));
        Ok(holder)
    }

    async fn resolve(&self, digest: [u8; 32]) -> Result<Option<TokenHolder>, AccountError> {
        let Some(token) = self.store.token_by_digest(digest).await?.filter(ApiToken::is_active) else {
            return Ok(None);
        };
        let Some(owner) = self.store.account(&token.owner).await? else { return Ok(None) };
        if self.is_locked(&owner) {
            return Ok(None);
        }
        let now = (self.clock)();
        if token.last_used_at.is_none_or(|used| now.duration_since(used) >= TOUCH_EVERY) {
            self.store.write_account(AccountWrite::TouchToken { id: token.id, at: now }, vec![]).await?;
        }
        let rights = Scope::narrow(&self.roles.rights_of(&owner.roles), &token.scopes);
        Ok(Some(TokenHolder { token, rights }))
    }

    /// Whether `viewer` (by name and rights) may manage `token`: their own, or any with
    /// `administer`.
    pub fn may_manage(viewer: Option<&str>, rights: &RightSet, token: &ApiToken) -> bool {
        rights.contains(&Right::Administer) || viewer == Some(token.owner.as_str())
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
