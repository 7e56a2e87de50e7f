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
//! per failure past the budget (at most [`MAX_THROTTLE_DELAY`]) and is then judged as any other,
//! so a correct password still gets in, and an attacker behind the same proxy as everyone else
//! locks nobody out. Its failures are no longer recorded one by one: one event says the address
//! is throttled, one more at the end of its window counts what followed.
//!
//! Usernames that do not exist fail like those that do: after as many failures they answer
//! "account locked" too, so the answer never tells which accounts exist.

use jiff::{SignedDuration, Timestamp};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockedBy {
    /// The policy, after repeated failures.
    Policy,
    /// An administrator, by username.
    Administrator(String),
}

/// What the policy remembers of one account.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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

/// The longest an attempt from a throttled address waits.
pub const MAX_THROTTLE_DELAY: SignedDuration = SignedDuration::from_secs(10);

/// Failures per client address, across usernames, so one address cannot guess through many
/// accounts quickly. Memory is bounded: addresses beyond `MAX_ADDRESSES` push out the stalest.
#[derive(Debug, Default)]
pub struct AddressThrottle {
    addresses: HashMap<IpAddr, AddressFailures>,
}

#[derive(Debug, Default)]
struct AddressFailures {
    /// Times of the failures within the window, oldest first.
    times: VecDeque<Timestamp>,
    /// Failures since the address was throttled, not recorded one by one.
    unrecorded: u32,
    /// Attempts admitted and not yet finished: a burst of parallel attempts counts at once.
    pending: u32,
    /// When the next slowed attempt's turn comes: slowed attempts are spaced, not parallel.
    next_turn: Option<Timestamp>,
}

/// When an attempt from an address may be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Now,
    /// After this wait (the address is past its budget).
    After(SignedDuration),
    /// Not at all: the address's queue of slowed attempts reaches past
    /// [`MAX_THROTTLE_QUEUE`]; it may try again after this.
    Busy(SignedDuration),
}

/// How far ahead slowed attempts of one address may queue before more are turned away.
pub const MAX_THROTTLE_QUEUE: SignedDuration = SignedDuration::from_secs(60);

/// The throttle's key for an address: IPv4-mapped IPv6 as IPv4, and IPv6 by its /64 (one
/// host holds a whole /64, so counting per address would let it rotate past the budget).
fn bucket(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::V6(octets.into())
        }
        v4 => v4,
    }
}

/// How a failure is to be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureRecord {
    /// As an event of its own.
    Individually,
    /// The address has just passed its budget: one event says so, naming the failures so far.
    ThrottleStarts { failures: u32 },
    /// Counted only, for the summary at the end of the window.
    Counted,
}

/// A throttled address's window has ended: this many failures were counted, not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSummary {
    pub address: IpAddr,
    pub unrecorded: u32,
}

const MAX_ADDRESSES: usize = 100_000;

impl AddressThrottle {
    /// Admits an attempt from `address` (counted as in flight until [`AddressThrottle::finish`]):
    /// at once within the budget; past it, each attempt waits its turn, spaced a second per
    /// failure past the budget (at most [`MAX_THROTTLE_DELAY`]); when the turns reach further
    /// than [`MAX_THROTTLE_QUEUE`], it is turned away (and not counted).
    pub fn admit(&mut self, policy: &AuthPolicy, address: IpAddr, now: Timestamp) -> Admission {
        let failures = self.entry(address);
        failures.age(policy, now);
        failures.pending += 1;
        let seen = failures.times.len() as u32 + failures.pending;
        let past = seen.saturating_sub(policy.max_failures_per_address);
        if past == 0 {
            return Admission::Now;
        }
        let spacing = SignedDuration::from_secs(i64::from(past)).min(MAX_THROTTLE_DELAY);
        let start = failures.next_turn.filter(|turn| *turn > now).unwrap_or(now);
        if start.duration_since(now) > MAX_THROTTLE_QUEUE {
            failures.pending -= 1;
            return Admission::Busy(start.duration_since(now));
        }
        let turn = start + spacing;
        failures.next_turn = Some(turn);
        Admission::After(turn.duration_since(now))
    }

    /// An admitted attempt is over (judged, or abandoned).
    pub fn finish(&mut self, address: IpAddr) {
        if let Some(failures) = self.addresses.get_mut(&bucket(address)) {
            failures.pending = failures.pending.saturating_sub(1);
        }
    }

    fn entry(&mut self, address: IpAddr) -> &mut AddressFailures {
        let key = bucket(address);
        if self.addresses.len() >= MAX_ADDRESSES && !self.addresses.contains_key(&key) {
            let stalest = self.addresses.iter().min_by_key(|(_, f)| f.times.back().copied()).map(|(a, _)| *a);
            if let Some(stalest) = stalest {
                self.addresses.remove(&stalest);
            }
        }
        self.addresses.entry(key).or_default()
    }

    /// Counts a failure from `address`, and says how to record it.
    pub fn record_failure(&mut self, policy: &AuthPolicy, address: IpAddr, now: Timestamp) -> FailureRecord {
        let failures = self.entry(address);
        failures.age(policy, now);
        failures.times.push_back(now);
        let count = failures.times.len() as u32;
        if count <= policy.max_failures_per_address {
            FailureRecord::Individually
        } else if count == policy.max_failures_per_address + 1 && failures.unrecorded == 0 {
            FailureRecord::ThrottleStarts { failures: count }
        } else {
            failures.unrecorded += 1;
            FailureRecord::Counted
        }
    }

    /// The throttled addresses whose windows have ended by `now`, with what they counted; they
    /// start afresh. Called now and then (the server's minute sweep).
    pub fn ended(&mut self, policy: &AuthPolicy, now: Timestamp) -> Vec<ThrottleSummary> {
        let mut summaries = Vec::new();
        self.addresses.retain(|address, failures| {
            failures.age(policy, now);
            if (failures.times.len() as u32) < policy.max_failures_per_address && failures.unrecorded > 0 {
                summaries.push(ThrottleSummary { address: *address, unrecorded: failures.unrecorded });
                failures.unrecorded = 0;
            }
            !failures.times.is_empty() || failures.unrecorded > 0 || failures.pending > 0
        });
        summaries
    }
}

impl AddressFailures {
    fn age(&mut self, policy: &AuthPolicy, now: Timestamp) {
        while self.times.front().is_some_and(|at| now.duration_since(*at) >= policy.failure_window) {
            self.times.pop_front();
        }
    }
}

/// What the policy remembers of usernames that do not exist, so that they fail exactly as
/// existing ones do (and lock, and unlock) without telling anyone which exist. Bounded like the
/// address throttle.
#[derive(Debug, Default)]
pub struct UnknownNames {
    states: HashMap<String, AccountState>,
}

impl UnknownNames {
    /// A failed attempt on the unknown `name`: what the client is told, as for an account.
    pub fn attempt(&mut self, policy: &AuthPolicy, name: &str, now: Timestamp) -> ClientAnswer {
        if self.states.len() >= MAX_ADDRESSES && !self.states.contains_key(name) {
            self.states.retain(|_, state| policy.is_locked(state, now) || !state.recent_failures.is_empty());
            if self.states.len() >= MAX_ADDRESSES {
                self.states.clear();
            }
        }
        let state = self.states.entry(name.to_owned()).or_default();
        let attempt = policy.attempt(state, now, false);
        *state = attempt.state;
        attempt.answer
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

    #[test]
    fn one_address_is_slowed_across_usernames_and_summarised() {
        let policy = AuthPolicy { max_failures_per_address: 3, ..AuthPolicy::default() };
        let mut throttle = AddressThrottle::default();
        let (attacker, other): (IpAddr, IpAddr) = ("192.0.2.66".parse().unwrap(), "192.0.2.7".parse().unwrap());
        let mut records = Vec::new();
        let mut attempt = |at: Timestamp| {
            let admission = throttle.admit(&policy, attacker, at);
            let record = throttle.record_failure(&policy, attacker, at);
            throttle.finish(attacker);
            (admission, record)
        };
        for minute in 0..3 {
            let (admission, record) = attempt(t(minute));
            assert_eq!(admission, Admission::Now);
            records.push(record);
        }
        assert_eq!(records, [FailureRecord::Individually; 3]);
        let (admission, record) = attempt(t(3));
        assert_eq!(admission, Admission::After(SignedDuration::from_secs(1)), "slowed, not refused");
        assert_eq!(record, FailureRecord::ThrottleStarts { failures: 4 });
        for _ in 0..26 {
            assert_eq!(attempt(t(4)).1, FailureRecord::Counted);
        }
        assert_eq!(throttle.admit(&policy, other, t(5)), Admission::Now, "other addresses are unaffected");
        let later = t(4) + SignedDuration::from_secs(300);
        assert_eq!(throttle.admit(&policy, attacker, later), Admission::After(MAX_THROTTLE_DELAY), "bounded");
        throttle.finish(attacker);
        assert_eq!(throttle.ended(&policy, t(10)), [], "the window has not ended");
        assert_eq!(throttle.ended(&policy, t(30)), [ThrottleSummary { address: attacker, unrecorded: 26 }]);
        assert_eq!(throttle.ended(&policy, t(31)), [], "summarised once");
        assert_eq!(throttle.admit(&policy, attacker, t(31)), Admission::Now, "failures age out");
    }

    #[test]
    fn parallel_attempts_are_counted_at_once_and_queue_no_further_than_a_minute() {
        let policy = AuthPolicy { max_failures_per_address: 3, ..AuthPolicy::default() };
        let mut throttle = AddressThrottle::default();
        let attacker: IpAddr = "2001:db8::1".parse().unwrap();
        let neighbour: IpAddr = "2001:db8::ffff".parse().unwrap();
        let admissions: Vec<Admission> = (0..20).map(|_| throttle.admit(&policy, attacker, t(0))).collect();
        assert_eq!(admissions[..3], [Admission::Now; 3], "a burst in flight counts at once");
        assert_eq!(admissions[3], Admission::After(SignedDuration::from_secs(1)));
        assert_eq!(admissions[4], Admission::After(SignedDuration::from_secs(3)), "turns are spaced");
        assert!(admissions.iter().any(|a| matches!(a, Admission::Busy(_))), "the queue is bounded: {admissions:?}");
        assert!(
            matches!(throttle.admit(&policy, neighbour, t(0)), Admission::Busy(_)),
            "one host's /64 is one address"
        );
        let mapped: IpAddr = "::ffff:192.0.2.66".parse().unwrap();
        assert_eq!(bucket(mapped), "192.0.2.66".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn unknown_names_lock_as_accounts_do() {
        let policy = AuthPolicy::default();
        let mut unknown = UnknownNames::default();
        let answers: Vec<ClientAnswer> = (0..6).map(|minute| unknown.attempt(&policy, "nobody", t(minute))).collect();
        let expected: Vec<ClientAnswer> = {
            let mut state = AccountState::default();
            (0..6)
                .map(|minute| {
                    let attempt = policy.attempt(&state, t(minute), false);
                    state = attempt.state;
                    attempt.answer
                })
                .collect()
        };
        assert_eq!(answers, expected, "the same answers, attempt by attempt");
        assert_eq!(answers[4], ClientAnswer::AccountLocked);
        assert_eq!(unknown.attempt(&policy, "nobody", t(40)), ClientAnswer::InvalidCredentials, "and unlocks alike");
    }
}
