//! What the login policy (A1) remembers beyond accounts: the attempts of each client address,
//! across usernames, and the failures of names that are not accounts. Each is a small state
//! under a key ([`address_key`], [`name_key`]) that the store keeps for every node sharing the
//! trail and changes one update at a time, so that N nodes never give an attacker N budgets.
//! Pure: the store carries each state as the text [`LimitState::to_limit`] writes.

use super::policy::{AccountState, AuthPolicy, ClientAnswer, LockedBy};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::net::IpAddr;

/// The longest an attempt from a throttled address waits.
pub const MAX_THROTTLE_DELAY: SignedDuration = SignedDuration::from_secs(10);

/// How far ahead slowed attempts of one address may queue before more are turned away.
pub const MAX_THROTTLE_QUEUE: SignedDuration = SignedDuration::from_secs(60);

/// A key's state as a store keeps it: the text, and when the sweep should next look at it (the
/// state changes by itself then: failures age out, a window ends, a lock expires).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginLimit {
    pub text: String,
    pub settles_at: Timestamp,
}

/// A state kept under a key.
pub trait LimitState: Default + Serialize + for<'de> Deserialize<'de> {
    /// The saved text's state; a text this version cannot read counts as nothing remembered.
    fn from_text(text: Option<&str>) -> Self {
        text.and_then(|text| serde_json::from_str(text).ok()).unwrap_or_default()
    }

    /// When the sweep should next look at it; `None` when nothing is left to remember.
    fn settles_at(&self, policy: &AuthPolicy) -> Option<Timestamp>;

    /// What to save (`None`: forget the key).
    fn to_limit(&self, policy: &AuthPolicy) -> Option<LoginLimit> {
        let settles_at = self.settles_at(policy)?;
        let text = serde_json::to_string(self).expect("a limit's state serialises");
        Some(LoginLimit { text, settles_at })
    }
}

/// The key of an address's attempts: IPv4-mapped IPv6 as IPv4, and IPv6 by its /64 (one host
/// holds a whole /64, so counting per address would let it rotate past the budget).
pub fn address_key(address: IpAddr) -> String {
    format!("address/{}", bucket(address))
}

/// The key of a name that is not an account.
pub fn name_key(name: &str) -> String {
    format!("name/{name}")
}

/// The address a key names, if it names one.
pub fn address_of_key(key: &str) -> Option<IpAddr> {
    key.strip_prefix("address/")?.parse().ok()
}

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

/// When an attempt from an address may be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// After `wait` (zero within the budget).
    Admitted { wait: SignedDuration, ticket: Ticket },
    /// Not at all: the address's queue of slowed attempts reaches past [`MAX_THROTTLE_QUEUE`];
    /// it may try again after this.
    Busy(SignedDuration),
}

/// An admitted attempt: its place among its address's attempts within the window (1 for the
/// first), and when it was admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    rank: u32,
    admitted_at: Timestamp,
}

/// How a failure is to be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureRecord {
    /// As an event of its own.
    Individually,
    /// The address has just passed its budget: one event says so, naming its attempts so far.
    ThrottleStarts { failures: u32 },
    /// Counted only, for the summary at the end of the window.
    Counted,
}

/// What the throttle remembers of one address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressAttempts {
    /// When the attempts within the window were admitted, oldest first: the failures, and the
    /// attempts not yet judged, which count as failures until they succeed. So a burst in
    /// flight counts at once, on every node, and an attempt its node lost still counts.
    attempts: VecDeque<Timestamp>,
    /// Failures since the address was throttled, not recorded one by one.
    #[serde(default)]
    unrecorded: u32,
    /// Whether the event saying the address is throttled has been recorded.
    #[serde(default)]
    announced: bool,
    /// When the next slowed attempt's turn comes: slowed attempts are spaced, not parallel.
    #[serde(default)]
    next_turn: Option<Timestamp>,
}

impl AddressAttempts {
    /// Admits an attempt: at once within the budget; past it, each attempt waits its turn,
    /// spaced a second per attempt past the budget (at most [`MAX_THROTTLE_DELAY`]); when the
    /// turns reach further than [`MAX_THROTTLE_QUEUE`], it is turned away (and not counted).
    pub fn admit(&mut self, policy: &AuthPolicy, now: Timestamp) -> Admission {
        self.age(policy, now);
        let rank = self.attempts.len() as u32 + 1;
        let past = rank.saturating_sub(policy.max_failures_per_address);
        let mut wait = SignedDuration::ZERO;
        if past > 0 {
            let spacing = SignedDuration::from_secs(i64::from(past)).min(MAX_THROTTLE_DELAY);
            let start = self.next_turn.filter(|turn| *turn > now).unwrap_or(now);
            if start.duration_since(now) > MAX_THROTTLE_QUEUE {
                return Admission::Busy(start.duration_since(now));
            }
            let turn = start + spacing;
            self.next_turn = Some(turn);
            wait = turn.duration_since(now);
        }
        self.attempts.push_back(now);
        Admission::Admitted { wait, ticket: Ticket { rank, admitted_at: now } }
    }

    /// The attempt succeeded: it no longer counts.
    pub fn succeeded(&mut self, ticket: Ticket) {
        if let Some(at) = self.attempts.iter().position(|at| *at == ticket.admitted_at) {
            self.attempts.remove(at);
        }
    }

    /// The attempt failed (it counts already): how to record it.
    pub fn failed(&mut self, policy: &AuthPolicy, ticket: Ticket) -> FailureRecord {
        if ticket.rank <= policy.max_failures_per_address {
            FailureRecord::Individually
        } else if !self.announced {
            self.announced = true;
            FailureRecord::ThrottleStarts { failures: ticket.rank }
        } else {
            self.unrecorded += 1;
            FailureRecord::Counted
        }
    }

    /// Once the address is back within its budget, how many failures were counted rather than
    /// recorded since it was throttled (the server's sweep records them); it starts afresh.
    pub fn window_ended(&mut self, policy: &AuthPolicy, now: Timestamp) -> Option<u32> {
        self.age(policy, now);
        if self.attempts.len() as u32 >= policy.max_failures_per_address {
            return None;
        }
        self.announced = false;
        Some(std::mem::take(&mut self.unrecorded)).filter(|unrecorded| *unrecorded > 0)
    }

    fn age(&mut self, policy: &AuthPolicy, now: Timestamp) {
        while self.attempts.front().is_some_and(|at| now.duration_since(*at) >= policy.failure_window) {
            self.attempts.pop_front();
        }
    }
}

impl LimitState for AddressAttempts {
    fn settles_at(&self, policy: &AuthPolicy) -> Option<Timestamp> {
        match self.attempts.front() {
            Some(oldest) => Some(*oldest + policy.failure_window),
            None if self.unrecorded > 0 || self.announced => Some(Timestamp::UNIX_EPOCH),
            None => None,
        }
    }
}

/// What the policy remembers of a name that is not an account, so that it fails exactly as an
/// account does (and locks, and unlocks) without telling anyone which names exist.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnknownName(AccountState);

impl UnknownName {
    /// A failed attempt on the name: what the client is told, as for an account.
    pub fn attempt(&mut self, policy: &AuthPolicy, now: Timestamp) -> ClientAnswer {
        let attempt = policy.attempt(&self.0, now, false);
        self.0 = attempt.state;
        attempt.answer
    }

    /// Forgets what has aged out by `now`: failures past the window, a lock past its period.
    pub fn settle(&mut self, policy: &AuthPolicy, now: Timestamp) {
        if self.0.locked.is_some() && !policy.is_locked(&self.0, now) {
            self.0 = AccountState::default();
        }
        self.0.recent_failures.retain(|at| now.duration_since(*at) < policy.failure_window);
    }
}

impl LimitState for UnknownName {
    fn settles_at(&self, policy: &AuthPolicy) -> Option<Timestamp> {
        match &self.0.locked {
            Some((since, LockedBy::Policy)) => {
                Some(policy.auto_unlock_after.map_or(Timestamp::MAX, |after| *since + after))
            }
            Some((_, LockedBy::Administrator(_))) => Some(Timestamp::MAX),
            None => self.0.recent_failures.first().map(|oldest| *oldest + policy.failure_window),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(minutes: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + SignedDuration::from_mins(minutes)
    }

    /// The state as another node would find it after this one saved it.
    fn saved<S: LimitState>(state: &S, policy: &AuthPolicy) -> S {
        S::from_text(state.to_limit(policy).as_ref().map(|limit| limit.text.as_str()))
    }

    fn wait_of(admission: Admission) -> SignedDuration {
        match admission {
            Admission::Admitted { wait, .. } => wait,
            Admission::Busy(_) => panic!("turned away"),
        }
    }

    #[test]
    fn one_address_is_slowed_across_usernames_and_summarised() {
        let policy = AuthPolicy { max_failures_per_address: 3, ..AuthPolicy::default() };
        let mut attacker = AddressAttempts::default();
        let mut attempt = |at: Timestamp| {
            let admission = attacker.admit(&policy, at);
            let Admission::Admitted { ticket, wait } = admission else { panic!("turned away") };
            let record = attacker.failed(&policy, ticket);
            attacker = saved(&attacker, &policy);
            (wait, record)
        };
        let records: Vec<_> = (0..3).map(|minute| attempt(t(minute))).collect();
        assert_eq!(records, [(SignedDuration::ZERO, FailureRecord::Individually); 3]);
        let (wait, record) = attempt(t(3));
        assert_eq!(wait, SignedDuration::from_secs(1), "slowed, not refused");
        assert_eq!(record, FailureRecord::ThrottleStarts { failures: 4 });
        for i in 0..26 {
            assert_eq!(attempt(t(4) + SignedDuration::from_secs(10 * i)).1, FailureRecord::Counted);
        }
        let later = t(4) + SignedDuration::from_secs(300);
        assert_eq!(wait_of(attacker.admit(&policy, later)), MAX_THROTTLE_DELAY, "bounded");
        assert_eq!(attacker.window_ended(&policy, t(10)), None, "the window has not ended");
        assert_eq!(attacker.window_ended(&policy, t(30)), Some(26));
        assert_eq!(attacker.window_ended(&policy, t(31)), None, "summarised once");
        assert_eq!(wait_of(attacker.admit(&policy, t(31))), SignedDuration::ZERO, "failures age out");
    }

    #[test]
    fn a_success_does_not_count_and_the_state_is_forgotten_once_settled() {
        let policy = AuthPolicy { max_failures_per_address: 2, ..AuthPolicy::default() };
        let mut address = AddressAttempts::default();
        for _ in 0..5 {
            let Admission::Admitted { ticket, wait } = address.admit(&policy, t(0)) else { panic!() };
            assert_eq!(wait, SignedDuration::ZERO);
            address.succeeded(ticket);
        }
        assert_eq!(address.to_limit(&policy), None, "nothing to remember");
        address.admit(&policy, t(1));
        assert_eq!(address.to_limit(&policy).map(|limit| limit.settles_at), Some(t(16)));
    }

    #[test]
    fn parallel_attempts_are_counted_at_once_and_queue_no_further_than_a_minute() {
        let policy = AuthPolicy { max_failures_per_address: 3, ..AuthPolicy::default() };
        let mut attacker = AddressAttempts::default();
        let admissions: Vec<Admission> = (0..20).map(|_| attacker.admit(&policy, t(0))).collect();
        let waits: Vec<i64> = admissions
            .iter()
            .map(|a| match a {
                Admission::Admitted { wait, .. } => wait.as_secs(),
                Admission::Busy(_) => -1,
            })
            .collect();
        assert_eq!(waits[..5], [0, 0, 0, 1, 3], "a burst in flight counts at once, and turns are spaced");
        assert!(waits.contains(&-1), "the queue is bounded: {waits:?}");
        let neighbour: IpAddr = "2001:db8::ffff".parse().unwrap();
        assert_eq!(address_key("2001:db8::1".parse().unwrap()), address_key(neighbour), "one host's /64 is one key");
        let mapped: IpAddr = "::ffff:192.0.2.66".parse().unwrap();
        assert_eq!(address_key(mapped), "address/192.0.2.66");
        assert_eq!(address_of_key(&address_key(mapped)), Some("192.0.2.66".parse().unwrap()));
    }

    #[test]
    fn unknown_names_lock_as_accounts_do() {
        let policy = AuthPolicy::default();
        let mut unknown = UnknownName::default();
        let answers: Vec<ClientAnswer> = (0..6)
            .map(|minute| {
                let answer = unknown.attempt(&policy, t(minute));
                unknown = saved(&unknown, &policy);
                answer
            })
            .collect();
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
        assert_eq!(unknown.settles_at(&policy), Some(t(34)), "the lock's end");
        let mut settled = unknown.clone();
        settled.settle(&policy, t(33));
        assert_eq!(settled, unknown, "still locked");
        settled.settle(&policy, t(34));
        assert_eq!(settled.to_limit(&policy), None, "the lock has ended: nothing to remember");
        assert_eq!(unknown.attempt(&policy, t(40)), ClientAnswer::InvalidCredentials, "and unlocks alike");
    }
}
