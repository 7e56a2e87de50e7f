//! Logins under the authentication policy.

use super::*;

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
    /// The id of the session this login opens (its login event already names it).
    pub(crate) session_id: String,
}

/// Logins of the same account run one at a time, so concurrent guesses cannot overwrite each
/// other's failure counts. Striped by username hash: bounded memory, little contention.
pub(crate) const LOGIN_STRIPES: usize = 64;

impl Accounts {
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
        let actor = Actor { user: shown.clone(), client: Some(client), session: None };
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
        let session_id = random_hex(32)?;
        let session = public_id(&token::digest(&session_id));
        let recorded = login_events(&attempt.events, &actor, &session, &shown, now);
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
                let account = Account { state: attempt.state, ..account };
                return Ok(Ok(LoggedIn { account, rights, session_id }));
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
}
