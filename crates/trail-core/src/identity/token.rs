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

/// What the credential asking to issue or manage a token holds (A2). A token never hands on
/// more than it has: it issues tokens only with the `admin` scope, and issues or manages only
/// tokens whose every scope it holds itself. A browser session (or a password login) holds
/// every scope; the owner's rights narrow each token in any case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantor {
    Session,
    Token(Vec<Scope>),
}

impl Grantor {
    /// Whether a token with `wanted` scopes may be issued; the refusal says why.
    pub fn may_issue(&self, wanted: &[Scope]) -> Result<(), String> {
        let Grantor::Token(held) = self else { return Ok(()) };
        if !held.contains(&Scope::Admin) {
            return Err("issuing tokens needs a browser session or a token with the `admin` scope".into());
        }
        match wanted.iter().find(|scope| !held.contains(scope)) {
            Some(missing) => Err(format!(
                "this token does not hold the scope `{}`, so it cannot issue a token with it",
                missing.name()
            )),
            None => Ok(()),
        }
    }

    /// Whether `token` may be listed or revoked by this credential (ownership aside).
    pub fn may_manage(&self, token: &ApiToken) -> bool {
        match self {
            Grantor::Session => true,
            Grantor::Token(held) => token.scopes.iter().all(|scope| held.contains(scope)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_never_hands_on_more_than_it_holds() {
        let ingest = Grantor::Token(vec![Scope::Ingest]);
        assert!(ingest.may_issue(&[Scope::Ingest]).is_err(), "issuing needs the admin scope");
        assert!(ingest.may_issue(&[Scope::Admin, Scope::Read]).is_err());
        let admin = Grantor::Token(vec![Scope::Admin, Scope::Ingest]);
        assert!(admin.may_issue(&[Scope::Ingest]).is_ok());
        let refused = admin.may_issue(&[Scope::Read]).unwrap_err();
        assert!(refused.contains("`read`"), "{refused}");
        assert!(Grantor::Session.may_issue(&Scope::ALL).is_ok());
        let token = |scopes: Vec<Scope>| ApiToken {
            id: 1,
            owner: Username::parse("alice").unwrap(),
            name: "t".into(),
            scopes,
            created_at: Timestamp::UNIX_EPOCH,
            last_used_at: None,
            revoked_at: None,
        };
        assert!(ingest.may_manage(&token(vec![Scope::Ingest])));
        assert!(!ingest.may_manage(&token(vec![Scope::Ingest, Scope::Admin])));
        assert!(Grantor::Session.may_manage(&token(Scope::ALL.to_vec())));
    }
}
