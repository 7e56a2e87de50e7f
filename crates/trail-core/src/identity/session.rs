//! Browser sessions (A2): server-made ids stored by digest, a CSRF token each, and two expiries.
//!
//! Defaults: a session ends after 30 minutes without a request, and 12 hours after login
//! whatever happens.

use super::username::Username;
use jiff::{SignedDuration, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle: SignedDuration,
    pub absolute: SignedDuration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy { idle: SignedDuration::from_mins(30), absolute: SignedDuration::from_hours(12) }
    }
}

/// A stored session (never its id: only the id's digest is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub digest: [u8; 32],
    pub username: Username,
    /// Sent back with every state-changing request the session makes.
    pub csrf: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub client: Option<String>,
}

/// A session's name in events (`session_id`, and so RADIUS Acct-Session-Id): the first 8
/// bytes of its id's digest, in hex. It tells sessions apart without revealing anything that
/// opens one.
pub fn public_id(digest: &[u8; 32]) -> String {
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Active,
    IdleExpired,
    AbsoluteExpired,
}

impl SessionPolicy {
    pub fn state(&self, session: &Session, now: Timestamp) -> SessionState {
        if now.duration_since(session.created_at) >= self.absolute {
            SessionState::AbsoluteExpired
        } else if now.duration_since(session.last_seen_at) >= self.idle {
            SessionState::IdleExpired
        } else {
            SessionState::Active
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + SignedDuration::from_mins(minutes)
    }

    #[test]
    fn idle_and_absolute_expiry() {
        let policy = SessionPolicy::default();
        let mut session = Session {
            digest: [0; 32],
            username: Username::parse("a").unwrap(),
            csrf: "c".into(),
            created_at: at(0),
            last_seen_at: at(0),
            client: None,
        };
        assert_eq!(policy.state(&session, at(29)), SessionState::Active);
        assert_eq!(policy.state(&session, at(30)), SessionState::IdleExpired);
        session.last_seen_at = at(12 * 60 - 1);
        assert_eq!(policy.state(&session, at(12 * 60)), SessionState::AbsoluteExpired, "activity does not extend it");
    }
}
