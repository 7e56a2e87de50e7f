//! Bearer tokens (no open door): every API route but health, metrics and the OpenAPI document
//! needs one. Identity, roles and scopes arrive with the identity issue; until then any valid
//! token reads and writes everything, and names the viewer for "own entries" (V2).

use crate::AppState;
use crate::error::{ApiError, Code};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A token the server accepts, and the user it acts as.
#[derive(Clone)]
pub struct TokenEntry {
    digest: [u8; 32],
    pub user: String,
}

impl TokenEntry {
    pub fn new(token: &str, user: &str) -> TokenEntry {
        TokenEntry { digest: Sha256::digest(token.as_bytes()).into(), user: user.to_owned() }
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
    pub fn user_for(&self, token: &str) -> Option<&str> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for entry in &self.0 {
            if bool::from(entry.digest.ct_eq(&digest)) {
                found = Some(entry.user.as_str());
            }
        }
        found
    }
}

/// The authenticated caller.
pub struct Viewer {
    pub user: String,
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Viewer, ApiError> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let token = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim);
        match token.and_then(|t| state.tokens.user_for(t)) {
            Some(user) => Ok(Viewer { user: user.to_owned() }),
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
        let tokens = Tokens::new(vec![TokenEntry::new("a-secret", "alice"), TokenEntry::new("b-secret", "bob")]);
        assert_eq!(tokens.user_for("b-secret"), Some("bob"));
        assert_eq!(tokens.user_for("b-secre"), None);
        assert_eq!(tokens.user_for(""), None);
    }
}
