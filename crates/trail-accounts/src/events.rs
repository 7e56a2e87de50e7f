//! The audit events of identity actions, worded by the catalog. No password ever reaches one.

use std::net::IpAddr;
use trail_core::catalog;
use trail_core::event::submitted_by;
use trail_core::identity::{AuthEvent, FailureReason};
use trail_core::{EventBody, EventInput, Outcome};

/// Who does something, from where, with which credential.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: String,
    pub client: Option<IpAddr>,
    /// The public id of the browser session acting, if any.
    pub session: Option<String>,
    /// The credential that caused the events (`submitted_by`, see
    /// [`trail_core::event::submitted_by`]).
    pub submitted_by: String,
}

impl Actor {
    /// Trail itself (first start, automatic unlocks, expiries, login attempts).
    pub fn system() -> Actor {
        Actor { user: "trail".into(), client: None, session: None, submitted_by: submitted_by::TRAIL.into() }
    }
}

/// One audit event of a built-in kind: line 1 from the catalog's summary, then `details`.
pub fn audit(
    kind: &str,
    actor: &Actor,
    name: &str,
    outcome: Option<Outcome>,
    details: &[(&str, String)],
    now: jiff::Timestamp,
) -> EventBody {
    let spec = catalog::lookup(kind).expect("identity events use built-in kinds");
    let client = actor.client.map(|c| c.to_string());
    let attribute = |key: &str| details.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
    let mut message =
        catalog::render_summary(spec.summary, &actor.user, name, client.as_deref().unwrap_or("-"), attribute);
    for (key, value) in details {
        message.push_str(&format!("\n{key}: {value}"));
    }
    let attributes = details.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone()))).collect();
    let input = EventInput {
        user: Some(actor.user.clone()),
        kind: Some(kind.to_owned()),
        name: Some(name.to_owned()),
        client,
        outcome,
        message: Some(message),
        attributes: Some(attributes),
        session_id: actor.session.clone(),
        ..EventInput::default()
    };
    let mut body = input.validate(now).expect("identity events are built from valid parts");
    body.submitted_by = Some(actor.submitted_by.clone());
    body
}

/// The events a login attempt records. The failure reason is stored here and nowhere else. A
/// success names the session it opens.
pub fn login_events(
    events: &[AuthEvent],
    actor: &Actor,
    session: &str,
    username: &str,
    now: jiff::Timestamp,
) -> Vec<EventBody> {
    events
        .iter()
        .map(|event| match event {
            AuthEvent::LoginSucceeded => {
                let in_session = Actor { session: Some(session.to_owned()), ..actor.clone() };
                audit("AUTH_LOGIN_SUCCESS", &in_session, username, Some(Outcome::Success), &[], now)
            }
            AuthEvent::LoginFailed(reason) => login_failure(actor, username, *reason, now),
            AuthEvent::LockedByPolicy { failures } => audit(
                "AUTH_ACCOUNT_LOCKED",
                &Actor { client: actor.client, ..Actor::system() },
                username,
                None,
                &[("failures", failures.to_string())],
                now,
            ),
            AuthEvent::UnlockedAutomatically => {
                audit("AUTH_ACCOUNT_UNLOCKED", &Actor::system(), username, None, &[], now)
            }
        })
        .collect()
}

pub fn login_failure(actor: &Actor, username: &str, reason: FailureReason, now: jiff::Timestamp) -> EventBody {
    audit("AUTH_LOGIN_FAILURE", actor, username, Some(Outcome::Failure), &[("reason", reason.as_str().to_owned())], now)
}

/// A name fit for an event even when it is not a valid username (a failed login can send
/// anything): control characters dropped, at most 64 characters.
pub fn printable_name(raw: &str) -> String {
    let cleaned: String = raw.chars().filter(|c| !c.is_control()).take(64).collect();
    if cleaned.trim().is_empty() { "(empty)".to_owned() } else { cleaned }
}
