//! Events as accounting records (F3).
//!
//! Sessions:
//! - a login (`AUTH_LOGIN_SUCCESS` with a session id) is a Start, a logout or an expiry
//!   (`AUTH_LOGOUT`, `AUTH_SESSION_EXPIRED`) a Stop, and every other event of that session an
//!   Interim-Update, all with the session id as Acct-Session-Id;
//! - a job is a session of its own, `job-<job id>`: `JOB_SUBMITTED` is its Start,
//!   `OPERATION_COMPLETED` its Stop, and its other events Interim-Updates;
//! - an event outside any session (a failed login, an automation token's change) is an
//!   Interim-Update with Acct-Session-Id `event-<id>`.
//!
//! Every record carries User-Name, NAS-Identifier, Event-Timestamp (the event's own time),
//! Calling-Station-Id (the client address, when known), Acct-Delay-Time (set per transmission)
//! and the vendor-specific attributes of `dictionary.trail`.

use super::packet::Attributes;
use trail_core::Event;

pub const USER_NAME: u8 = 1;
pub const CALLING_STATION_ID: u8 = 31;
pub const NAS_IDENTIFIER: u8 = 32;
pub const ACCT_STATUS_TYPE: u8 = 40;
pub const ACCT_DELAY_TIME: u8 = 41;
pub const ACCT_SESSION_ID: u8 = 44;
pub const ACCT_TERMINATE_CAUSE: u8 = 49;
pub const EVENT_TIMESTAMP: u8 = 55;

/// Trail's vendor-specific attributes, numbered as in `dictionary.trail`.
pub const VENDOR_ATTRIBUTES: [(u8, &str); 10] = [
    (1, "Trail-Kind"),
    (2, "Trail-Process"),
    (3, "Trail-Object"),
    (4, "Trail-Action"),
    (5, "Trail-Severity"),
    (6, "Trail-Outcome"),
    (7, "Trail-Event-Id"),
    (8, "Trail-Message"),
    (9, "Trail-Job-Id"),
    (10, "Trail-Request-Id"),
];

/// The FreeRADIUS dictionary for [`VENDOR_ATTRIBUTES`], shipped with Trail.
pub const DICTIONARY: &str = include_str!("dictionary.trail");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusType {
    Start = 1,
    Stop = 2,
    InterimUpdate = 3,
}

/// RFC 2866 5.10 termination causes Trail reports.
const USER_REQUEST: u32 = 1;
const IDLE_TIMEOUT: u32 = 4;
const SESSION_TIMEOUT: u32 = 5;

/// An event ready to send, but for Acct-Delay-Time, which each transmission sets.
#[derive(Debug, Clone)]
pub struct Record {
    pub status: StatusType,
    pub session: String,
    pub time: jiff::Timestamp,
    pub attributes: Attributes,
}

pub fn status_and_session(event: &Event) -> (StatusType, String) {
    let body = &event.body;
    if let Some(job) = &body.job_id {
        let status = match body.kind.as_str() {
            "JOB_SUBMITTED" => StatusType::Start,
            "OPERATION_COMPLETED" => StatusType::Stop,
            _ => StatusType::InterimUpdate,
        };
        return (status, format!("job-{job}"));
    }
    if let Some(session) = &body.session_id {
        let status = match body.kind.as_str() {
            "AUTH_LOGIN_SUCCESS" => StatusType::Start,
            "AUTH_LOGOUT" | "AUTH_SESSION_EXPIRED" => StatusType::Stop,
            _ => StatusType::InterimUpdate,
        };
        return (status, session.clone());
    }
    (StatusType::InterimUpdate, format!("event-{}", event.id))
}

fn terminate_cause(event: &Event) -> Option<u32> {
    match event.body.kind.as_str() {
        "AUTH_LOGOUT" => Some(USER_REQUEST),
        "AUTH_SESSION_EXPIRED" => {
            let idle = event.body.attributes.get("expiry").and_then(|v| v.as_str()) == Some("idle");
            Some(if idle { IDLE_TIMEOUT } else { SESSION_TIMEOUT })
        }
        _ => None,
    }
}

pub fn record(event: &Event, nas_identifier: &str, vendor: u32) -> Record {
    let body = &event.body;
    let (status, session) = status_and_session(event);
    let mut attributes = Attributes::default();
    attributes.text(USER_NAME, &body.user);
    attributes.text(NAS_IDENTIFIER, nas_identifier);
    attributes.integer(ACCT_STATUS_TYPE, status as u32);
    attributes.text(ACCT_SESSION_ID, &session);
    attributes.integer(EVENT_TIMESTAMP, body.time.as_second().clamp(0, i64::from(u32::MAX)) as u32);
    if let Some(client) = &body.client {
        attributes.text(CALLING_STATION_ID, client);
    }
    if status == StatusType::Stop
        && let Some(cause) = terminate_cause(event)
    {
        attributes.integer(ACCT_TERMINATE_CAUSE, cause);
    }
    let outcome = body.outcome.map_or("", |o| o.name());
    let (severity, id) = (body.severity.to_string(), event.id.to_string());
    let values: [&str; 10] = [
        &body.kind,
        &body.process,
        &body.name,
        &body.action,
        &severity,
        outcome,
        &id,
        body.summary(),
        body.job_id.as_deref().unwrap_or(""),
        body.request_id.as_deref().unwrap_or(""),
    ];
    for ((number, _), value) in VENDOR_ATTRIBUTES.iter().zip(values) {
        attributes.vendor_text(vendor, *number, value);
    }
    Record { status, session, time: body.time, attributes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trail_core::EventId;

    fn event(id: i64, json: serde_json::Value) -> Event {
        let input: trail_core::EventInput = serde_json::from_value(json).unwrap();
        Event { id: EventId::new(id), body: input.validate(jiff::Timestamp::UNIX_EPOCH).unwrap(), hash: String::new() }
    }

    #[test]
    fn sessions_start_update_and_stop() {
        let in_session =
            |kind: &str| event(1, serde_json::json!({"user": "a", "kind": kind, "session_id": "s9", "message": "m"}));
        assert_eq!(status_and_session(&in_session("AUTH_LOGIN_SUCCESS")), (StatusType::Start, "s9".into()));
        assert_eq!(status_and_session(&in_session("USER_ADDED")), (StatusType::InterimUpdate, "s9".into()));
        assert_eq!(status_and_session(&in_session("AUTH_LOGOUT")), (StatusType::Stop, "s9".into()));
        let in_job = |kind: &str| {
            event(2, serde_json::json!({"user": "a", "kind": kind, "job_id": "17", "session_id": "s9", "message": "m"}))
        };
        assert_eq!(status_and_session(&in_job("JOB_SUBMITTED")), (StatusType::Start, "job-17".into()));
        assert_eq!(
            status_and_session(&in_job("LEAF_OPERATION_COMPLETED")),
            (StatusType::InterimUpdate, "job-17".into())
        );
        assert_eq!(status_and_session(&in_job("OPERATION_COMPLETED")), (StatusType::Stop, "job-17".into()));
        let alone = event(3, serde_json::json!({"user": "a", "kind": "AUTH_LOGIN_FAILURE", "message": "m"}));
        assert_eq!(status_and_session(&alone), (StatusType::InterimUpdate, "event-3".into()));
    }

    #[test]
    fn the_shipped_dictionary_names_every_vendor_attribute() {
        for (number, name) in VENDOR_ATTRIBUTES {
            let line = DICTIONARY
                .lines()
                .find(|line| line.split_whitespace().nth(1) == Some(name))
                .unwrap_or_else(|| panic!("{name} is missing from dictionary.trail"));
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(fields, ["ATTRIBUTE", name, &number.to_string(), "string"]);
        }
        assert!(DICTIONARY.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["VENDOR", "Trail", "32473"]));
    }
}
