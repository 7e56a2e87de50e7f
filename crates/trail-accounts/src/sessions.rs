//! Browser sessions: opened at login, resolved per request, ended by logout or expiry.

use super::*;

/// A browser session just opened: the id goes in the cookie, the CSRF token to the page.
#[derive(Debug, Clone)]
pub struct OpenedSession {
    pub id: String,
    pub csrf: String,
}

/// A request's session, resolved.
#[derive(Debug, Clone)]
pub struct SessionHolder {
    pub session: Session,
    pub rights: RightSet,
}

impl Accounts {
    /// Opens a browser session after a successful login. The id is always new (never one the
    /// client offered, against session fixation), and a session the client still held ends.
    pub async fn open_session(
        &self,
        logged_in: &LoggedIn,
        replacing: Option<&str>,
        client: IpAddr,
    ) -> Result<OpenedSession, AccountError> {
        if let Some(old) = replacing {
            let digest = token::digest(old);
            if self.store.session(digest).await?.is_some() {
                self.store.write_account(AccountWrite::EndSession { digest }, vec![]).await?;
            }
        }
        let (id, csrf) = (logged_in.session_id.clone(), random_hex(16)?);
        let now = (self.clock)();
        let session = Session {
            digest: token::digest(&id),
            username: logged_in.account.username.clone(),
            csrf: csrf.clone(),
            created_at: now,
            last_seen_at: now,
            client: Some(client.to_string()),
        };
        self.store.write_account(AccountWrite::CreateSession(session), vec![]).await?;
        Ok(OpenedSession { id, csrf })
    }

    /// The session behind a cookie, if it is open, within its expiries, and its account exists
    /// and is unlocked. An expired session ends here, recorded.
    pub async fn resolve_session(&self, id: &str) -> Result<Option<SessionHolder>, AccountError> {
        let Some(session) = self.store.session(token::digest(id)).await? else { return Ok(None) };
        let now = (self.clock)();
        if self.sessions.state(&session, now) != SessionState::Active {
            self.end_expired(&session, now).await?;
            return Ok(None);
        }
        let Some(owner) = self.store.account(&session.username).await? else { return Ok(None) };
        if self.is_locked(&owner) {
            return Ok(None);
        }
        if now.duration_since(session.last_seen_at) >= TOUCH_EVERY {
            self.store.write_account(AccountWrite::TouchSession { digest: session.digest, at: now }, vec![]).await?;
        }
        Ok(Some(SessionHolder { rights: self.roles.rights_of(&owner.roles), session }))
    }

    /// Logout: the session ends, recorded.
    pub async fn logout(&self, id: &str, client: IpAddr) -> Result<(), AccountError> {
        let Some(session) = self.store.session(token::digest(id)).await? else { return Ok(()) };
        let actor = Actor {
            user: session.username.to_string(),
            client: Some(client),
            session: Some(public_id(&session.digest)),
            submitted_by: trail_core::event::submitted_by::session(session.username.as_str()),
        };
        let event = audit(
            "AUTH_LOGOUT",
            &actor,
            session.username.as_str(),
            Some(trail_core::Outcome::Success),
            &[],
            (self.clock)(),
        );
        match self.store.write_account(AccountWrite::EndSession { digest: session.digest }, vec![event]).await {
            Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }

    async fn end_expired(&self, session: &Session, now: Timestamp) -> Result<(), AccountError> {
        let reason = match self.sessions.state(session, now) {
            SessionState::IdleExpired => "idle",
            _ => "absolute",
        };
        // Trail ends an expired session on its own.
        let actor =
            Actor { user: session.username.to_string(), session: Some(public_id(&session.digest)), ..Actor::system() };
        let event = audit(
            "AUTH_SESSION_EXPIRED",
            &actor,
            session.username.as_str(),
            None,
            &[("expiry", reason.to_owned())],
            now,
        );
        match self.store.write_account(AccountWrite::EndSession { digest: session.digest }, vec![event]).await {
            // Another request ended it first: its expiry is already recorded.
            Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }

    /// Ends and records every expired session; the server runs this every minute, so sessions
    /// nobody returns to are closed too.
    pub async fn sweep_sessions(&self) -> Result<usize, AccountError> {
        let now = (self.clock)();
        let mut ended = 0;
        for session in self.store.sessions().await? {
            if self.sessions.state(&session, now) != SessionState::Active {
                self.end_expired(&session, now).await?;
                ended += 1;
            }
        }
        Ok(ended)
    }
}
