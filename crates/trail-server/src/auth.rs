//! Bearer tokens (no open door): every API route but health, metrics, login and the OpenAPI
//! document needs one (see `rights.rs`). A token carries rights. One configured for a user names
//! the viewer, whose searches default to their own entries (V2); the automation token
//! (`TRAIL_TOKEN`) is nobody's, has every right, and its searches default to every user.

use crate::AppState;
use crate::error::{ApiError, Code};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::net::IpAddr;
use subtle::ConstantTimeEq;
use trail_accounts::events::Actor;
use trail_core::identity::{Grantor, Right, RightSet, Scope, token};

/// A token the server accepts, the user it acts as (none for the automation token) and its
/// rights.
#[derive(Clone)]
pub struct TokenEntry {
    digest: [u8; 32],
    pub user: Option<String>,
    pub rights: RightSet,
}

impl TokenEntry {
    /// A person's token, with that person's rights.
    pub fn new(token: &str, user: &str, rights: RightSet) -> TokenEntry {
        TokenEntry { digest: token::digest(token), user: Some(user.to_owned()), rights }
    }

    /// The automation token: every right, no person behind it.
    pub fn automation(token: &str) -> TokenEntry {
        TokenEntry { digest: token::digest(token), user: None, rights: Right::ALL.into_iter().collect() }
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
        self.find_comparing(token, |stored, given| stored.ct_eq(given))
    }

    /// [`Tokens::find`], with the comparison given: it is made once per entry, whichever entry
    /// matches (a test counts them).
    fn find_comparing(
        &self,
        token: &str,
        mut equal: impl FnMut(&[u8; 32], &[u8; 32]) -> subtle::Choice,
    ) -> Option<&TokenEntry> {
        let digest: [u8; 32] = token::digest(token);
        let mut found = None;
        for entry in &self.0 {
            if bool::from(equal(&entry.digest, &digest)) {
                found = Some(entry);
            }
        }
        found
    }
}

/// The authenticated caller; `user` is `None` for the automation token.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user: Option<String>,
    pub rights: RightSet,
    /// What the caller presented.
    pub credential: Credential,
}

/// How a caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A browser session: its public id, which the events it causes carry, and the CSRF token
    /// its state-changing requests must carry in `X-CSRF-Token`.
    Session { id: String, csrf: String },
    /// An API token issued through `/api/v1/tokens`.
    IssuedToken { id: i64, name: String, scopes: Vec<Scope> },
    /// A token from the configuration (`tokens`, or `TRAIL_TOKEN` for automation).
    ConfiguredToken,
}

/// The actor of an administrative action: the caller (the automation token acts as
/// `automation`), from their address.
pub fn actor(viewer: &Viewer, client: IpAddr) -> Actor {
    Actor {
        user: viewer.user.clone().unwrap_or_else(|| "automation".into()),
        client: Some(client),
        session: viewer.session().map(str::to_owned),
        submitted_by: viewer.submitted_by(),
    }
}

/// Scopes by name, refused with the names that exist.
pub fn parse_scopes(names: &[String]) -> Result<Vec<Scope>, ApiError> {
    names
        .iter()
        .map(|name| {
            Scope::parse(name).ok_or_else(|| {
                ApiError::new(Code::InvalidAccount, format!("{name:?} is not a scope: use ingest, read or admin"))
            })
        })
        .collect()
}

/// The name of the browser session cookie.
pub const SESSION_COOKIE: &str = "trail_session";

/// The value of a cookie in the request.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether a request from a session carries its CSRF token (compared in constant time).
pub fn csrf_holds(viewer: &Viewer, headers: &axum::http::HeaderMap) -> bool {
    viewer.session_csrf().is_none_or(|expected| csrf_matches(expected, headers))
}

/// Whether the request's `X-CSRF-Token` is `expected` (compared in constant time).
pub fn csrf_matches(expected: &str, headers: &axum::http::HeaderMap) -> bool {
    headers.get("x-csrf-token").is_some_and(|sent| bool::from(sent.as_bytes().ct_eq(expected.as_bytes())))
}

impl Viewer {
    pub fn may(&self, right: Right) -> bool {
        self.rights.contains(&right)
    }

    /// The CSRF token of the caller's browser session, if it came with one.
    pub fn session_csrf(&self) -> Option<&str> {
        match &self.credential {
            Credential::Session { csrf, .. } => Some(csrf),
            _ => None,
        }
    }

    /// The public id of the caller's browser session, if it came with one.
    pub fn session(&self) -> Option<&str> {
        match &self.credential {
            Credential::Session { id, .. } => Some(id),
            _ => None,
        }
    }

    /// What this caller may hand on to tokens: a session everything; an issued token its
    /// scopes; a configured token the scopes its rights fill.
    pub fn grantor(&self) -> Grantor {
        match &self.credential {
            Credential::Session { .. } => Grantor::Session,
            Credential::IssuedToken { scopes, .. } => Grantor::Token(scopes.clone()),
            Credential::ConfiguredToken => Grantor::Token(
                Scope::ALL.into_iter().filter(|scope| !Scope::narrow(&self.rights, &[*scope]).is_empty()).collect(),
            ),
        }
    }

    /// What the events this caller causes record as `submitted_by`.
    pub fn submitted_by(&self) -> String {
        use trail_core::event::submitted_by;
        let user = self.user.as_deref().unwrap_or("");
        match (&self.credential, &self.user) {
            (Credential::Session { .. }, _) => submitted_by::session(user),
            (Credential::IssuedToken { id, name, .. }, _) => submitted_by::token(*id, name, user),
            (Credential::ConfiguredToken, Some(user)) => submitted_by::configured_token(user),
            (Credential::ConfiguredToken, None) => submitted_by::AUTOMATION.to_owned(),
        }
    }

    /// Whose entries' details this viewer may see (V6), for redaction and for filters alike.
    pub fn details_reach(&self) -> trail_core::DetailsReach {
        trail_core::DetailsReach::of(&self.rights, self.user.as_deref())
    }
}

/// Set by the rights middleware on every route that needs a token.
impl FromRequestParts<AppState> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Viewer, ApiError> {
        match parts.extensions.get::<Viewer>() {
            Some(viewer) => Ok(viewer.clone()),
            None => authenticate(state, &parts.headers).await,
        }
    }
}

/// The caller named by the `Authorization` header: a configured token, or an API token issued
/// through `/api/v1/tokens`.
pub async fn authenticate(state: &AppState, headers: &axum::http::HeaderMap) -> Result<Viewer, ApiError> {
    let header = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    // RFC 7235: the scheme is case-insensitive.
    let token = header
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    if token.is_none()
        && let Some(id) = cookie(headers, SESSION_COOKIE)
        && let Some(holder) = state.accounts.resolve_session(id).await?
    {
        return Ok(Viewer {
            user: Some(holder.session.username.to_string()),
            rights: holder.rights,
            credential: Credential::Session {
                id: trail_core::identity::session::public_id(&holder.session.digest),
                csrf: holder.session.csrf,
            },
        });
    }
    if let Some(entry) = token.and_then(|t| state.tokens.find(t)) {
        return Ok(Viewer {
            user: entry.user.clone(),
            rights: entry.rights.clone(),
            credential: Credential::ConfiguredToken,
        });
    }
    let issued = match token {
        Some(secret) => state.accounts.authenticate_token(secret).await?,
        None => None,
    };
    match issued {
        Some(holder) => Ok(Viewer {
            user: Some(holder.token.owner.to_string()),
            rights: holder.rights,
            credential: Credential::IssuedToken {
                id: holder.token.id,
                name: holder.token.name.clone(),
                scopes: holder.token.scopes.clone(),
            },
        }),
        None => Err(ApiError::new(
            Code::Unauthorized,
            "send `Authorization: Bearer <token>` with a token the server knows (TRAIL_TOKEN, or `tokens` in the configuration)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_resolve_to_their_users() {
        let tokens =
            Tokens::new(vec![TokenEntry::new("a-secret", "alice", RightSet::new()), TokenEntry::automation("robot")]);
        let user = |token: &str| tokens.find(token).map(|e| e.user.clone());
        assert_eq!(user("a-secret"), Some(Some("alice".to_owned())));
        assert_eq!(user("robot"), Some(None));
        assert_eq!(user("a-secre"), None);
        assert_eq!(user(""), None);
    }

    /// Finding a token compares its digest with every entry, matched or not, in constant time
    /// (`subtle`), so the time taken says nothing about which entry (if any) matched: an early
    /// return at the match would compare fewer entries for the first than for none.
    #[test]
    fn token_lookup_compares_every_entry_whichever_matches() {
        let entries: Vec<TokenEntry> =
            (0..200).map(|i| TokenEntry::new(&format!("secret-{i}"), "u", RightSet::new())).collect();
        let tokens = Tokens::new(entries);
        for token in ["secret-0", "secret-100", "secret-199", "no-such-secret"] {
            let mut compared = 0;
            let found = tokens.find_comparing(token, |stored, given| {
                compared += 1;
                stored.ct_eq(given)
            });
            assert_eq!(found.is_some(), token != "no-such-secret");
            assert_eq!(compared, 200, "{token}: every entry is compared");
        }
    }
}
