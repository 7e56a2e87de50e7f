//! Logins under the authentication policy.

use super::*;

/// What a refused login is told: nothing more (A1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    InvalidCredentials,
    AccountLocked,
    /// The attempt was not judged: the address has too many slowed attempts queued. It says
    /// nothing of the credentials; try again after this many seconds.
    TooManyAttempts {
        retry_after_secs: u64,
    },
}

impl LoginRefusal {
    pub fn message(self) -> String {
        match self {
            LoginRefusal::InvalidCredentials => "invalid credentials".into(),
            LoginRefusal::AccountLocked => "account locked".into(),
            LoginRefusal::TooManyAttempts { retry_after_secs } => {
                format!("too many login attempts from this address; try again in {retry_after_secs} seconds")
            }
        }
    }
}

/// An admitted attempt, in flight until dropped (see `AddressThrottle::finish`).
struct InFlight<'a> {
    throttle: &'a Mutex<AddressThrottle>,
    address: IpAddr,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.throttle.lock().expect("throttle lock").finish(self.address);
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
    /// Held while an account's state is read, judged and written (a login attempt, a lock or an
    /// unlock): one change at a time per account in this process (a stripe of mutexes, taken
    /// first, so that a node waits on the database's lock with one connection per stripe at
    /// most), and through every node sharing the trail (the store's lock).
    pub(crate) async fn serialize(
        &self,
        username: &Username,
    ) -> Result<(tokio::sync::MutexGuard<'_, ()>, trail_store::AccountSerial), AccountError> {
        let in_process = self.stripes[stripe_of(username.as_str().bytes())].lock().await;
        let across_nodes = self.store.serialize_account(username).await?;
        Ok((in_process, across_nodes))
    }

    /// A login attempt from `client`. Every attempt is recorded (those of a throttled address
    /// as a count, see [`trail_core::identity::policy`]); the refusal says only "invalid
    /// credentials" or "account locked", for accounts and unknown names alike.
    pub async fn login(
        &self,
        raw_username: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<Result<LoggedIn, LoginRefusal>, AccountError> {
        // A throttled address is slowed, its attempts spaced out, never judged wrongly; no lock
        // is held while one waits its turn.
        let admission = self.throttle.lock().expect("throttle lock").admit(&self.policy, client, (self.clock)());
        let _in_flight = match admission {
            Admission::Busy(retry_after) => {
                let retry_after_secs = retry_after.as_secs().max(1) as u64;
                return Ok(Err(LoginRefusal::TooManyAttempts { retry_after_secs }));
            }
            _ => InFlight { throttle: &self.throttle, address: client },
        };
        if let Admission::After(wait) = admission {
            tokio::time::sleep(wait.unsigned_abs()).await;
        }
        let now = (self.clock)();
        let shown = Username::parse(raw_username).map_or_else(|_| printable_name(raw_username), |u| u.to_string());
        // Trail records a login attempt: no credential has been shown yet.
        let actor = Actor { user: shown.clone(), client: Some(client), ..Actor::system() };
        let Ok(username) = Username::parse(raw_username) else {
            return self.unknown_user(&actor, &shown, password, now, false).await;
        };
        let _serial = self.serialize(&username).await?;
        let Some(account) = self.store.account(&username).await? else {
            return self.unknown_user(&actor, &shown, password, now, false).await;
        };
        let (hash, attempt_password) = (account.password.clone(), password.to_owned());
        let password_ok = blocking(move || hash.verify(&attempt_password)).await;
        let attempt = self.policy.attempt(&account.state, now, password_ok);
        let session_id = random_hex(32)?;
        let session = public_id(&token::digest(&session_id));
        let mut recorded = login_events(&attempt.events, &actor, &session, &shown, now);
        if attempt.answer != ClientAnswer::Accepted {
            recorded = self.failure_recorded(recorded, &actor, now);
        }
        if attempt.state.locked.is_some() {
            self.forget_tokens();
        }
        match self.store.write_account(AccountWrite::State(username, attempt.state.clone()), recorded).await {
            // The account went meanwhile: a failed attempt was counted against the address already.
            Err(StoreError::Conflict(_)) => {
                let counted = attempt.answer != ClientAnswer::Accepted;
                return self.unknown_user(&actor, &shown, "", now, counted).await;
            }
            other => other?,
        };
        match attempt.answer {
            ClientAnswer::Accepted => {
                let rights = self.roles.rights_of(&account.roles);
                let account = Account { state: attempt.state, ..account };
                Ok(Ok(LoggedIn { account, rights, session_id }))
            }
            ClientAnswer::InvalidCredentials => Ok(Err(LoginRefusal::InvalidCredentials)),
            ClientAnswer::AccountLocked => Ok(Err(LoginRefusal::AccountLocked)),
        }
    }

    /// A name that is not an account fails as an account would: a verification's cost, so
    /// timing does not tell, and the same answers, "account locked" included, so the answer does
    /// not either.
    async fn unknown_user(
        &self,
        actor: &Actor,
        shown: &str,
        password: &str,
        now: Timestamp,
        counted: bool,
    ) -> Result<Result<LoggedIn, LoginRefusal>, AccountError> {
        let password = password.to_owned();
        blocking(move || verify_nobody(&password)).await;
        let answer = self.unknown.lock().expect("unknown names lock").attempt(&self.policy, shown, now);
        let failure = login_failure(actor, shown, FailureReason::UnknownUser, now);
        let recorded = if counted { vec![failure] } else { self.failure_recorded(vec![failure], actor, now) };
        if !recorded.is_empty() {
            self.store.append(recorded).await?;
        }
        Ok(Err(match answer {
            ClientAnswer::AccountLocked => LoginRefusal::AccountLocked,
            _ => LoginRefusal::InvalidCredentials,
        }))
    }

    /// Counts a failed attempt against its address, and keeps of its events what the throttle
    /// says to record: all of them, or (once the address is throttled) all but the failure
    /// itself, with one event when the throttle starts. A lock is always recorded.
    fn failure_recorded(&self, events: Vec<EventBody>, actor: &Actor, now: Timestamp) -> Vec<EventBody> {
        let Some(client) = actor.client else { return events };
        let record = self.throttle.lock().expect("throttle lock").record_failure(&self.policy, client, now);
        if record == FailureRecord::Individually {
            return events;
        }
        let mut kept: Vec<EventBody> = events.into_iter().filter(|e| e.kind != "AUTH_LOGIN_FAILURE").collect();
        if let FailureRecord::ThrottleStarts { failures } = record {
            kept.push(throttled(client, &[("failures", failures.to_string())], now));
        }
        kept
    }

    /// Records, for each throttled address whose window has ended, how many failures were
    /// counted rather than recorded. The server calls it every minute.
    pub async fn record_throttle_summaries(&self) -> Result<usize, AccountError> {
        let now = (self.clock)();
        let ended = self.throttle.lock().expect("throttle lock").ended(&self.policy, now);
        let events: Vec<EventBody> = ended
            .iter()
            .map(|summary| throttled(summary.address, &[("unrecorded", summary.unrecorded.to_string())], now))
            .collect();
        if !events.is_empty() {
            self.store.append(events).await?;
        }
        Ok(ended.len())
    }
}

/// The AUTH_LOGIN_THROTTLED event of `address`, by Trail itself.
fn throttled(address: IpAddr, details: &[(&str, String)], now: Timestamp) -> EventBody {
    let actor = Actor { client: Some(address), ..Actor::system() };
    audit("AUTH_LOGIN_THROTTLED", &actor, &address.to_string(), Some(trail_core::Outcome::Failure), details, now)
}

fn stripe_of(bytes: impl Iterator<Item = u8>) -> usize {
    bytes.fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(usize::from(b))) % LOGIN_STRIPES
}
