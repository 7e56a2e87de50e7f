//! API tokens: issued, revoked, and resolved when presented.

use super::*;

/// Resolved tokens by digest, with when they were resolved (`None`: not a valid token), as of a
/// count of the store's credential changes.
#[derive(Default)]
pub(crate) struct TokenCache {
    credentials: u64,
    resolved: HashMap<[u8; 32], (std::time::Instant, Option<TokenHolder>)>,
}

impl TokenCache {
    /// What is cached for `digest`, unless a credential changed since (then nothing is).
    fn get(&mut self, digest: &[u8; 32], credentials: u64) -> Option<Option<TokenHolder>> {
        if self.credentials != credentials {
            self.resolved.clear();
            self.credentials = credentials;
        }
        let (at, holder) = self.resolved.get(digest)?;
        (at.elapsed() < TOKEN_CACHE).then(|| holder.clone())
    }

    /// Keeps what was resolved while the count stood at `credentials`; nothing if the cache has
    /// seen it move since.
    fn keep(&mut self, digest: [u8; 32], holder: Option<TokenHolder>, credentials: u64) {
        if self.credentials != credentials {
            return;
        }
        if self.resolved.len() > 10_000 {
            self.resolved.clear();
        }
        self.resolved.insert(digest, (std::time::Instant::now(), holder));
    }
}

/// How long a resolved token is trusted before it is looked up again. A change that can stop a
/// token, made through any node, clears every node's cache at once (see
/// `AccountStore::watch_credentials`); this bounds what a lost announcement could cost.
const TOKEN_CACHE: std::time::Duration = std::time::Duration::from_secs(10);
/// The longest token name: it is part of every event the token sends (`submitted_by`).
const TOKEN_NAME_CHARS: usize = 64;

/// `last_used_at` is written at most this often per token.
pub(crate) const TOUCH_EVERY: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

/// Who a presented API token acts for, and with which rights.
#[derive(Debug, Clone)]
pub struct TokenHolder {
    pub token: ApiToken,
    pub rights: RightSet,
}

/// A new token: its secret is shown once and stored nowhere.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub id: i64,
    pub secret: String,
}

impl Accounts {
    /// Issues an API token for `owner`, narrowed to `scopes`, if `grantor` may hand them on
    /// (see [`Grantor::may_issue`]). The event names the creator, the owner and the scopes, never
    /// the secret.
    pub async fn create_token(
        &self,
        actor: &Actor,
        grantor: &Grantor,
        owner: &str,
        name: &str,
        scopes: Vec<Scope>,
    ) -> Result<IssuedToken, AccountError> {
        grantor.may_issue(&scopes).map_err(AccountError::Forbidden)?;
        let owner = Username::parse(owner)?;
        let length = name.chars().count();
        if !(1..=TOKEN_NAME_CHARS).contains(&length) || name.chars().any(char::is_control) {
            return Err(AccountError::Role(format!(
                "a token's name is 1-{TOKEN_NAME_CHARS} characters without control characters, got {length}"
            )));
        }
        if scopes.is_empty() {
            return Err(AccountError::Role("a token needs at least one scope: ingest, read or admin".into()));
        }
        let secret = format!("{}{}", token::PREFIX, random_hex(24)?);
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

    /// Revokes a token at once, if `grantor` may manage it.
    pub async fn revoke_token(
        &self,
        actor: &Actor,
        grantor: &Grantor,
        token: &ApiToken,
    ) -> Result<EventId, AccountError> {
        if !grantor.may_manage(token) {
            return Err(AccountError::Forbidden(format!("token {} has scopes this credential lacks", token.id)));
        }
        let now = (self.clock)();
        let details = [("token", token.name.clone()), ("id", token.id.to_string())];
        let event = audit("TOKEN_REVOKED", actor, token.owner.as_str(), None, &details, now);
        let ids = self.store.write_account(AccountWrite::RevokeToken { id: token.id, at: now }, vec![event]).await?;
        self.forget_tokens();
        Ok(ids[0])
    }

    /// Drops every resolved token, after a change that may stop some (a lock, a deletion, a
    /// revocation): the next request looks its token up again.
    pub(crate) fn forget_tokens(&self) {
        self.resolved.lock().expect("token cache").resolved.clear();
    }

    /// The tokens a caller may list and revoke: see [`Accounts::may_manage`].
    pub async fn manageable_tokens(
        &self,
        viewer: Option<&str>,
        rights: &RightSet,
        grantor: &Grantor,
    ) -> Result<Vec<ApiToken>, AccountError> {
        let mut tokens = self.store.tokens().await?;
        tokens.retain(|token| Accounts::may_manage(viewer, rights, grantor, token));
        Ok(tokens)
    }

    /// Resolves a presented secret: an active token of an existing, unlocked account, with its
    /// owner's rights narrowed to its scopes. `None` for anything else.
    pub async fn authenticate_token(&self, secret: &str) -> Result<Option<TokenHolder>, AccountError> {
        if !secret.starts_with(token::PREFIX) {
            return Ok(None);
        }
        let digest = token::digest(secret);
        let credentials = *self.credentials.borrow();
        if let Some(holder) = self.resolved.lock().expect("token cache").get(&digest, credentials) {
            return Ok(holder);
        }
        let holder = self.resolve(digest).await?;
        // Kept only if no credential changed while it was looked up.
        if *self.credentials.borrow() == credentials {
            self.resolved.lock().expect("token cache").keep(digest, holder.clone(), credentials);
        }
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

    /// Whether `viewer` (by name, rights and credential) may manage `token`: their own, or any
    /// with `administer`, and only one whose scopes the credential holds.
    fn may_manage(viewer: Option<&str>, rights: &RightSet, grantor: &Grantor, token: &ApiToken) -> bool {
        (rights.contains(&Right::Administer) || viewer == Some(token.owner.as_str())) && grantor.may_manage(token)
    }
}
