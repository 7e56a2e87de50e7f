//! The authentication policy (A1) as a pure state machine: given an account's state, the time
//! and whether the password was right, it says what the client learns, the next state, and the
//! events to record. Storage and HTTP only carry it out.
//!
//! Defaults: lock after 5 consecutive failures within 15 minutes;
//! unlock automatically 30 minutes later (or never, when `auto_unlock_after` is `None`); at most
//! 20 failures a client address may cause in 15 minutes, across all usernames, before its
//! attempts are slowed.
//!
//! An address past its budget is slowed, never shut out: each further attempt waits a second
//! per failure past the budget (at most [`MAX_THROTTLE_DELAY`](super::limits::MAX_THROTTLE_DELAY)) and is then judged as any other,
//! so a correct password still gets in, and an attacker behind the same proxy as everyone else
//! locks nobody out. Its failures are no longer recorded one by one: one event says the address
//! is throttled, one more at the end of its window counts what followed.
//!
//! Usernames that do not exist fail like those that do: after as many failures they answer
//! "account locked" too, so the answer never tells which accounts exist. What is remembered of
//! addresses and of such names is in [`super::limits`], shared by every node.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPolicy {
    pub max_failures: u32,
    pub failure_window: SignedDuration,
    pub auto_unlock_after: Option<SignedDuration>,
    pub max_failures_per_address: u32,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        AuthPolicy {
            max_failures: 5,
            failure_window: SignedDuration::from_mins(15),
            auto_unlock_after: Some(SignedDuration::from_mins(30)),
            max_failures_per_address: 20,
        }
    }
}

/// Who locked an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockedBy {
    /// The policy, after repeated failures.
    Policy,
    /// An administrator, by username.
    Administrator(String),
}

/// What the policy remembers of one account.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AccountState {
    /// Times of the recent consecutive failures, oldest first (at most `max_failures`).
    pub recent_failures: Vec<Timestamp>,
    pub locked: Option<(Timestamp, LockedBy)>,
}

/// An account's state as a store keeps it: the failure times as a JSON array of microseconds,
/// when the account was locked, and by which administrator (none: by the policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAccountState {
    pub failures: String,
    pub locked_at: Option<i64>,
    pub locked_by: Option<String>,
}

impl AccountState {
    pub fn to_stored(&self) -> StoredAccountState {
        let failures: Vec<i64> = self.recent_failures.iter().map(|t| crate::time::to_micros(*t)).collect();
        let failures = serde_json::to_string(&failures).unwrap_or_else(|_| "[]".into());
        let (locked_at, locked_by) = match &self.locked {
            None => (None, None),
            Some((at, LockedBy::Policy)) => (Some(crate::time::to_micros(*at)), None),
            Some((at, LockedBy::Administrator(by))) => (Some(crate::time::to_micros(*at)), Some(by.clone())),
        };
        StoredAccountState { failures, locked_at, locked_by }
    }

    pub fn from_stored(stored: StoredAccountState) -> Result<AccountState, serde_json::Error> {
        let failures: Vec<i64> = serde_json::from_str(&stored.failures)?;
        Ok(AccountState {
            recent_failures: failures.into_iter().map(crate::time::from_micros).collect(),
            locked: stored.locked_at.map(|at| {
                (crate::time::from_micros(at), stored.locked_by.map_or(LockedBy::Policy, LockedBy::Administrator))
            }),
        })
    }
}

/// Why a login failed. Stored in the event; the client only ever learns a [`ClientAnswer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    BadPassword,
    UnknownUser,
    AccountLocked,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::BadPassword => "bad password",
            FailureReason::UnknownUser => "unknown user",
            FailureReason::AccountLocked => "account locked",
        }
    }
}

/// All a client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAnswer {
    Accepted,
    InvalidCredentials,
    AccountLocked,
}

/// Something the policy wants recorded (each becomes an event of the catalog).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthEvent {
    LoginSucceeded,
    LoginFailed(FailureReason),
    /// Locked by the policy after this many consecutive failures.
    LockedByPolicy {
        failures: u32,
    },
    UnlockedAutomatically,
}

/// The result of one login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub answer: ClientAnswer,
    pub state: AccountState,
    pub events: Vec<AuthEvent>,
}

impl AuthPolicy {
    /// Applies a login attempt on an existing account.
    pub fn attempt(&self, state: &AccountState, now: Timestamp, password_ok: bool) -> Attempt {
        let mut state = state.clone();
        let mut events = Vec::new();
        if let Some((since, by)) = &state.locked {
            let expired = *by == LockedBy::Policy && self.auto_unlock_after.is_some_and(|after| now >= *since + after);
            if !expired {
                events.push(AuthEvent::LoginFailed(FailureReason::AccountLocked));
                return Attempt { answer: ClientAnswer::AccountLocked, state, events };
            }
            state = AccountState::default();
            events.push(AuthEvent::UnlockedAutomatically);
        }
        if password_ok {
            state.recent_failures.clear();
            events.push(AuthEvent::LoginSucceeded);
            return Attempt { answer: ClientAnswer::Accepted, state, events };
        }
        state.recent_failures.retain(|at| now.duration_since(*at) < self.failure_window);
        state.recent_failures.push(now);
        events.push(AuthEvent::LoginFailed(FailureReason::BadPassword));
        let failures = state.recent_failures.len() as u32;
        if failures >= self.max_failures {
            state.locked = Some((now, LockedBy::Policy));
            state.recent_failures.clear();
            events.push(AuthEvent::LockedByPolicy { failures });
            return Attempt { answer: ClientAnswer::AccountLocked, state, events };
        }
        Attempt { answer: ClientAnswer::InvalidCredentials, state, events }
    }

    /// An administrator locks an account.
    pub fn lock(&self, now: Timestamp, administrator: &str) -> AccountState {
        AccountState {
            recent_failures: Vec::new(),
            locked: Some((now, LockedBy::Administrator(administrator.to_owned()))),
        }
    }

    /// An administrator unlocks an account: the lock and the failure count both go.
    pub fn unlock(&self) -> AccountState {
        AccountState::default()
    }

    /// Whether the account is locked at `now` (a policy lock past its period is not).
    pub fn is_locked(&self, state: &AccountState, now: Timestamp) -> bool {
        match &state.locked {
            None => false,
            Some((since, LockedBy::Policy)) => self.auto_unlock_after.is_none_or(|after| now < *since + after),
            Some((_, LockedBy::Administrator(_))) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(minutes: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + SignedDuration::from_mins(minutes)
    }

    fn run(policy: &AuthPolicy, attempts: &[(i64, bool)]) -> (AccountState, Vec<ClientAnswer>, Vec<AuthEvent>) {
        let mut state = AccountState::default();
        let (mut answers, mut events) = (Vec::new(), Vec::new());
        for &(minute, ok) in attempts {
            let attempt = policy.attempt(&state, t(minute), ok);
            state = attempt.state;
            answers.push(attempt.answer);
            events.extend(attempt.events);
        }
        (state, answers, events)
    }

    #[test]
    fn five_failures_lock_and_the_lock_is_its_own_event() {
        let policy = AuthPolicy::default();
        let (state, answers, events) = run(&policy, &[(0, false), (1, false), (2, false), (3, false), (4, false)]);
        assert_eq!(answers[..4], [ClientAnswer::InvalidCredentials; 4]);
        assert_eq!(answers[4], ClientAnswer::AccountLocked);
        assert_eq!(events.last(), Some(&AuthEvent::LockedByPolicy { failures: 5 }));
        assert!(policy.is_locked(&state, t(5)));
    }

    #[test]
    fn a_success_resets_the_count() {
        let policy = AuthPolicy::default();
        let (state, answers, _) = run(
            &policy,
            &[
                (0, false),
                (1, false),
                (2, false),
                (3, false),
                (4, true),
                (5, false),
                (6, false),
                (7, false),
                (8, false),
            ],
        );
        assert_eq!(answers[4], ClientAnswer::Accepted);
        assert!(
            answers[5..].iter().all(|a| *a == ClientAnswer::InvalidCredentials),
            "four failures after the success: {answers:?}"
        );
        assert!(!policy.is_locked(&state, t(9)));
    }

    #[test]
    fn failures_age_out_of_the_window() {
        let policy = AuthPolicy::default();
        // Four failures, then one more 20 minutes later: the early ones no longer count.
        let (state, answers, _) =
            run(&policy, &[(0, false), (1, false), (2, false), (3, false), (20, false), (21, false)]);
        assert!(answers.iter().all(|a| *a == ClientAnswer::InvalidCredentials), "{answers:?}");
        assert_eq!(state.recent_failures.len(), 2);
    }

    #[test]
    fn a_locked_account_refuses_the_right_password_until_it_unlocks() {
        let policy = AuthPolicy::default();
        let (state, _, _) = run(&policy, &[(0, false), (1, false), (2, false), (3, false), (4, false)]);
        let locked = policy.attempt(&state, t(10), true);
        assert_eq!(locked.answer, ClientAnswer::AccountLocked);
        assert_eq!(locked.events, vec![AuthEvent::LoginFailed(FailureReason::AccountLocked)]);
        let later = policy.attempt(&locked.state, t(34), true);
        assert_eq!(later.answer, ClientAnswer::Accepted, "30 minutes after the lock");
        assert_eq!(later.events, vec![AuthEvent::UnlockedAutomatically, AuthEvent::LoginSucceeded]);
        let never = AuthPolicy { auto_unlock_after: None, ..AuthPolicy::default() };
        assert_eq!(never.attempt(&state, t(10_000), true).answer, ClientAnswer::AccountLocked);
    }

    #[test]
    fn administrators_lock_for_good_and_unlock_resets_the_count() {
        let policy = AuthPolicy::default();
        let locked = policy.lock(t(0), "root");
        assert_eq!(
            policy.attempt(&locked, t(100_000), true).answer,
            ClientAnswer::AccountLocked,
            "no automatic unlock"
        );
        let (state, _, _) = run(&policy, &[(0, false), (1, false), (2, false), (3, false)]);
        assert_eq!(state.recent_failures.len(), 4);
        let unlocked = policy.unlock();
        assert_eq!(unlocked, AccountState::default());
        let (_, answers, _) = run(&policy, &[(5, false), (6, false), (7, false), (8, false)]);
        assert!(answers.iter().all(|a| *a == ClientAnswer::InvalidCredentials), "the count started again");
    }
}
