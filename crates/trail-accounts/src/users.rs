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
