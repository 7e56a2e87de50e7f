//! API tokens (A2): a secret shown once, stored only as its SHA-256 digest, scoped, revocable,
//! remembering when it was last used.

use super::rights::Scope;
use super::username::Username;
use jiff::Timestamp;
use sha2::{Digest, Sha256};

/// Tokens read `trl_` and 48 hex digits; the prefix makes a leaked token easy to spot.
pub const PREFIX: &str = "trl_";

pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A stored token (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    pub owner: Username,
    /// What it is for ("ci", "platform ingest"...).
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl ApiToken {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}
