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
        let (admitted_at, address) = ((self.clock)(), address_key(client));
        let admission =
            self.limit(&address, |attempts: &mut AddressAttempts| attempts.admit(&self.policy, admitted_at));
        let ticket = match admission.await? {
            Admission::Busy(retry_after) => {
                let retry_after_secs = retry_after.as_secs().max(1) as u64;
                return Ok(Err(LoginRefusal::TooManyAttempts { retry_after_secs }));
            }
            Admission::Admitted { wait, ticket } => {
                tokio::time::sleep(wait.unsigned_abs()).await;
                ticket
            }
        };
        let now = (self.clock)();
        let shown = Username::parse(raw_username).map_or_else(|_| printable_name(raw_username), |u| u.to_string());
        // Trail records a login attempt: no credential has been shown yet.
        let actor = Actor { user: shown.clone(), client: Some(client), ..Actor::system() };
        let attempt = FailedAttempt { actor: &actor, client, address: &address, ticket };
        let Ok(username) = Username::parse(raw_username) else {
            return self.unknown_user(&attempt, &shown, password, now, true).await;
        };
        let _serial = self.serialize(&username).await?;
        let Some(account) = self.store.account(&username).await? else {
            return self.unknown_user(&attempt, &shown, password, now, true).await;
        };
        let (hash, attempt_password) = (account.password.clone(), password.to_owned());
        let password_ok = blocking(move || hash.verify(&attempt_password)).await;
        let judged = self.policy.attempt(&account.state, now, password_ok);
        let session_id = random_hex(32)?;
        let session = public_id(&token::digest(&session_id));
        let mut recorded = login_events(&judged.events, &actor, &session, &shown, now);
        let failed = judged.answer != ClientAnswer::Accepted;
        if failed {
            recorded = self.failure_recorded(recorded, &attempt, now).await?;
        }
        if judged.state.locked.is_some() {
            self.forget_tokens();
        }
        match self.store.write_account(AccountWrite::State(username, judged.state.clone()), recorded).await {
            // The account went meanwhile; a failed attempt was counted against the address already.
            Err(StoreError::Conflict(_)) => return self.unknown_user(&attempt, &shown, "", now, !failed).await,
            other => other?,
        };
        match judged.answer {
            ClientAnswer::Accepted => {
                self.limit(&address, |attempts: &mut AddressAttempts| attempts.succeeded(ticket)).await?;
                let rights = self.roles.rights_of(&account.roles);
                let account = Account { state: judged.state, ..account };
                Ok(Ok(LoggedIn { account, rights, session_id }))
            }
            ClientAnswer::InvalidCredentials => Ok(Err(LoginRefusal::InvalidCredentials)),
            ClientAnswer::AccountLocked => Ok(Err(LoginRefusal::AccountLocked)),
        }
    }

    /// A name that is not an account fails as an account would: a verification's cost, so
    /// timing does not tell, and the same answers, "account locked" included, so the answer does
    /// not either. `uncounted`: the attempt has not been counted against its address yet.
    async fn unknown_user(
        &self,
        attempt: &FailedAttempt<'_>,
        shown: &str,
        password: &str,
        now: Timestamp,
        uncounted: bool,
    ) -> Result<Result<LoggedIn, LoginRefusal>, AccountError> {
        let password = password.to_owned();
        blocking(move || verify_nobody(&password)).await;
        let answer = self.limit(&name_key(shown), |name: &mut UnknownName| name.attempt(&self.policy, now)).await?;
        let failure = login_failure(attempt.actor, shown, FailureReason::UnknownUser, now);
        let recorded =
            if uncounted { self.failure_recorded(vec![failure], attempt, now).await? } else { vec![failure] };
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
    async fn failure_recorded(
        &self,
        events: Vec<EventBody>,
        attempt: &FailedAttempt<'_>,
        now: Timestamp,
    ) -> Result<Vec<EventBody>, AccountError> {
        let ticket = attempt.ticket;
        let record =
            self.limit(attempt.address, |attempts: &mut AddressAttempts| attempts.failed(&self.policy, ticket));
        let record = record.await?;
        if record == FailureRecord::Individually {
            return Ok(events);
        }
        let mut kept: Vec<EventBody> = events.into_iter().filter(|e| e.kind != "AUTH_LOGIN_FAILURE").collect();
        if let FailureRecord::ThrottleStarts { failures } = record {
            kept.push(throttled(attempt.client, &[("failures", failures.to_string())], now));
        }
        Ok(kept)
    }

    /// Ages what the login limits remember, through every node's sweep, and records, for each
    /// throttled address whose window has ended, how many failures were counted rather than
    /// recorded. The server calls it every minute.
    pub async fn record_throttle_summaries(&self) -> Result<usize, AccountError> {
        let now = (self.clock)();
        let mut events = Vec::new();
        for key in self.store.settled_login_limits(now).await? {
            let Some(address) = address_of_key(&key) else {
                self.limit(&key, |name: &mut UnknownName| name.settle(&self.policy, now)).await?;
                continue;
            };
            let ended = self.limit(&key, |attempts: &mut AddressAttempts| attempts.window_ended(&self.policy, now));
            if let Some(unrecorded) = ended.await? {
                events.push(throttled(address, &[("unrecorded", unrecorded.to_string())], now));
            }
        }
        let summaries = events.len();
        if !events.is_empty() {
            self.store.append(events).await?;
        }
        Ok(summaries)
    }

    /// Changes what the login limits remember under `key`: through every node sharing the
    /// trail, one change of a key at a time.
    async fn limit<S: LimitState, R: Send>(
        &self,
        key: &str,
        change: impl FnOnce(&mut S) -> R + Send,
    ) -> Result<R, AccountError> {
        let (policy, mut answer) = (&self.policy, None);
        let answer_slot = &mut answer;
        let update = Box::new(move |saved: Option<&str>| {
            let mut state = S::from_text(saved);
            *answer_slot = Some(change(&mut state));
            state.to_limit(policy)
        });
        self.store.update_login_limit(key, update).await?;
        answer.ok_or_else(|| StoreError::backend("the store did not apply a login limit's change").into())
    }
}

/// A login attempt as its failure is counted: who made it, from where, and its place among
/// its address's attempts.
struct FailedAttempt<'a> {
    actor: &'a Actor,
    client: IpAddr,
    /// The address's key among the login limits.
    address: &'a str,
    ticket: Ticket,
}

/// The AUTH_LOGIN_THROTTLED event of `address`, by Trail itself.
fn throttled(address: IpAddr, details: &[(&str, String)], now: Timestamp) -> EventBody {
    let actor = Actor { client: Some(address), ..Actor::system() };
    audit("AUTH_LOGIN_THROTTLED", &actor, &address.to_string(), Some(trail_core::Outcome::Failure), details, now)
}

fn stripe_of(bytes: impl Iterator<Item = u8>) -> usize {
    bytes.fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(usize::from(b))) % LOGIN_STRIPES
}
