//! Bearer tokens (no open door): every API route but health, metrics and the OpenAPI document
//! needs one. Identity, roles and scopes arrive with the identity issue; until then any valid
//! token reads and writes everything. A token configured for a user names the viewer, whose
//! searches default to their own entries (V2); the automation token (`TRAIL_TOKEN`) is nobody's,
//! so its searches default to every user.

use crate::AppState;
use crate::error::{ApiError, Code};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A token the server accepts, and the user it acts as (none for the automation token).
#[derive(Clone)]
pub struct TokenEntry {
    digest: [u8; 32],
    pub user: Option<String>,
}

impl TokenEntry {
    /// A person's token.
    pub fn new(token: &str, user: &str) -> TokenEntry {
        TokenEntry { digest: Sha256::digest(token.as_bytes()).into(), user: Some(user.to_owned()) }
    }

    /// The automation token: full rights, no person behind it.
    pub fn automation(token: &str) -> TokenEntry {
        TokenEntry { digest: Sha256::digest(token.as_bytes()).into(), user: None }
    }
}

#[derive(Clone, Default)]
pub struct Tokens(Vec<TokenEntry>);

impl Tokens {
    pub fn new(entries: Vec<TokenEntry>) -> Tokens {
        Tokens(entries)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares digests in constant time, and checks every entry, so neither the length nor
    /// the position of a match leaks through timing.
    pub fn find(&self, token: &str) -> Option<&TokenEntry> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for entry in &self.0 {
            if bool::from(entry.digest.ct_eq(&digest)) {
                found = Some(entry);
            }
        }
        found
    }
}

/// The authenticated caller; `user` is `None` for the automation token.
pub struct Viewer {
    pub user: Option<String>,
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Viewer, ApiError> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        // RFC 7235: the scheme is case-insensitive.
        let token = header
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        match token.and_then(|t| state.tokens.find(t)) {
            Some(entry) => Ok(Viewer { user: entry.user.clone() }),
            None => Err(ApiError::new(
                Code::Unauthorized,
                "send `Authorization: Bearer <token>` with a token the server knows (TRAIL_TOKEN, or `tokens` in the configuration)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_resolve_to_their_users() {
        let tokens = Tokens::new(vec![TokenEntry::new("a-secret", "alice"), TokenEntry::automation("robot")]);
        let user = |token: &str| tokens.find(token).map(|e| e.user.clone());
        assert_eq!(user("a-secret"), Some(Some("alice".to_owned())));
        assert_eq!(user("robot"), Some(None));
        assert_eq!(user("a-secre"), None);
        assert_eq!(user(""), None);
    }
}
