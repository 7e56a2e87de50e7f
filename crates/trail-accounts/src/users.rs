//! User administration and the first administrator.

use super::*;

impl Accounts {
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

    /// Sets a password. Whoever held the old one may have opened sessions with it, so every
    /// session of the account ends but the one making the change (`actor.session`, when the
    /// holder changes their own). API tokens are separate credentials, made for machines, and
    /// are kept unless `revoke_tokens` asks to revoke them all. The event says what ended.
    pub async fn set_password(
        &self,
        actor: &Actor,
        raw_username: &str,
        password: &str,
        revoke_tokens: bool,
    ) -> Result<PasswordChanged, AccountError> {
        let username = Username::parse(raw_username)?;
        let password = password.to_owned();
        let hash = blocking(move || PasswordHash::create(&password)).await?;
        let now = (self.clock)();
        let own = actor.user == username.as_str();
        let sessions: Vec<[u8; 32]> =
            self.store.sessions().await?.into_iter().filter(|s| s.username == username).map(|s| s.digest).collect();
        let keep_session =
            sessions.iter().copied().find(|digest| own && actor.session.as_deref() == Some(&public_id(digest)));
        let sessions_ended = sessions.len() - usize::from(keep_session.is_some());
        let tokens_revoked = if revoke_tokens {
            self.store.tokens().await?.iter().filter(|t| t.owner == username && t.is_active()).count()
        } else {
            0
        };
        let tokens = if revoke_tokens { format!("{tokens_revoked} revoked") } else { "kept".to_owned() };
        let details = [("sessions_ended", sessions_ended.to_string()), ("tokens", tokens)];
        let event = audit("USER_PASSWORD_CHANGED", actor, username.as_str(), None, &details, now);
        let write = AccountWrite::Password {
            name: username,
            hash,
            keep_session,
            revoke_tokens_at: revoke_tokens.then_some(now),
        };
        let event_id = self.store.write_account(write, vec![event]).await?[0];
        self.forget_tokens();
        Ok(PasswordChanged { event_id, sessions_ended, tokens_revoked })
    }

    /// An administrator locks an account: no automatic unlock.
    pub async fn lock_user(&self, actor: &Actor, raw_username: &str) -> Result<EventId, AccountError> {
        let username = Username::parse(raw_username)?;
        // Not between a login attempt's reading the state and its writing it back.
        let _serial = self.serialize(&username).await?;
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
        let _serial = self.serialize(&username).await?;
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
            None => random_hex(15)?,
        };
        self.add_user(&Actor::system(), "admin", "Administrator", vec!["admin".into()], &password).await?;
        Ok(generated.then_some(password))
    }
}

/// What a password change ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordChanged {
    pub event_id: EventId,
    /// The account's other browser sessions, now ended.
    pub sessions_ended: usize,
    /// Its API tokens revoked (only when asked).
    pub tokens_revoked: usize,
}
