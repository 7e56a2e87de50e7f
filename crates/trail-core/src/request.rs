//! Parsing of what clients send (API bodies, NDJSON lines) into validated events. One place
//! decides what is malformed, so the API, `import` and `emit` refuse the same things the same
//! way.

use crate::change::Change;
use crate::event::{EventBody, EventInput, ValidationError, decode_utf8, limits};
use jiff::Timestamp;
use serde_json::{Map, Value};

/// Why a body was refused. Nothing of a refused body is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body {0}")]
    InvalidUtf8(String),
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the body is empty: send one event object or an array of them")]
    Empty,
    #[error("{0}")]
    Invalid(String),
    /// An event of a batch; `index` counts from 0.
    #[error("event {index}: {error}")]
    InvalidEvent { index: usize, error: ValidationError },
}

fn parse_json(bytes: &[u8]) -> Result<Value, BodyError> {
    decode_utf8("", bytes).map_err(|e| BodyError::InvalidUtf8(e.problem))?;
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => BodyError::Invalid(e.to_string()),
        _ => BodyError::MalformedJson(e.to_string()),
    })
}

fn event_input(index: usize, value: Value) -> Result<EventInput, BodyError> {
    serde_json::from_value(value)
        .map_err(|e| BodyError::InvalidEvent { index, error: ValidationError::new("event", e.to_string()) })
}

/// One event object or an array of them, all validated; the batch is refused whole if any
/// event is bad.
pub fn events_from_json(bytes: &[u8], now: Timestamp) -> Result<Vec<EventBody>, BodyError> {
    let events = read_events(bytes, now)?;
    refuse_trail_only(&events)?;
    Ok(events)
}

/// The events of a body, validated.
fn read_events(bytes: &[u8], now: Timestamp) -> Result<Vec<EventBody>, BodyError> {
    // The fast path parses straight into events; only a body that fails is parsed again, as
    // JSON values, to say which event is wrong and why.
    let direct = match first_byte(bytes) {
        Some(b'[') => serde_json::from_slice::<Vec<EventInput>>(bytes),
        Some(b'{') => serde_json::from_slice::<EventInput>(bytes).map(|event| vec![event]),
        _ => return Err(diagnose(bytes, now, None)),
    };
    match direct {
        Ok(inputs) if !inputs.is_empty() => inputs
            .into_iter()
            .enumerate()
            .map(|(index, input)| input.validate(now).map_err(|error| BodyError::InvalidEvent { index, error }))
            .collect(),
        Ok(_) => Err(BodyError::Empty),
        Err(error) => Err(diagnose(bytes, now, Some(error))),
    }
}

/// The first byte that is not JSON whitespace.
fn first_byte(bytes: &[u8]) -> Option<u8> {
    bytes.iter().find(|b| !b.is_ascii_whitespace()).copied()
}

/// Refuses events of the kinds only Trail records ([`crate::catalog::KindSpec::recorded_by_trail`]):
/// what platforms send can never pass for Trail's own record. (`import` restores Trail's own
/// exports and does not ask.)
pub fn refuse_trail_only(events: &[EventBody]) -> Result<(), BodyError> {
    // Trail's own components are the `trail-*` processes: no sender may name one either.
    let own = |event: &EventBody| {
        event.process.starts_with("trail-")
            || crate::catalog::lookup(&event.kind).is_some_and(|spec| spec.recorded_by_trail())
    };
    match events.iter().position(own) {
        Some(index) => Err(BodyError::InvalidEvent {
            index,
            error: ValidationError::new(
                "kind",
                format!(
                    "{} (process {}) is recorded by Trail itself (its accounts, logins, sessions, tokens, audits \
                     and purges) and cannot be sent; use a kind and a process of your own, such as ACME.LOGIN",
                    events[index].kind, events[index].process
                ),
            ),
        }),
        None => Ok(()),
    }
}

/// Why a body that failed the fast path (with `error`) is wrong, naming the event.
fn diagnose(bytes: &[u8], now: Timestamp, error: Option<serde_json::Error>) -> BodyError {
    let values = match parse_json(bytes) {
        Ok(values) => values,
        Err(error) => return error,
    };
    let values = match values {
        Value::Array(values) if values.is_empty() => return BodyError::Empty,
        Value::Array(values) => values,
        value @ Value::Object(_) => vec![value],
        _ => return BodyError::Invalid("send one event object or an array of them".into()),
    };
    for (index, value) in values.into_iter().enumerate() {
        let checked = event_input(index, value)
            .and_then(|input| input.validate(now).map_err(|error| BodyError::InvalidEvent { index, error }));
        if let Err(error) = checked {
            return error;
        }
    }
    // Each event reads as a JSON value but not as an event: a field given twice, which a value
    // keeps once and an event refuses (found by fuzzing). Two readers of such a body could
    // disagree on what it says, so it is refused, with serde's word for where.
    match error {
        Some(error) => BodyError::Invalid(format!("the body is not events as sent: {error}; give each field once")),
        None => BodyError::Invalid("send one event object or an array of them".into()),
    }
}

/// One NDJSON line (import, `emit`): judged as a body holding that one object is.
pub fn event_from_json_line(line: &str, now: Timestamp) -> Result<EventBody, BodyError> {
    if first_byte(line.as_bytes()) != Some(b'{') {
        parse_json(line.as_bytes())?;
        return Err(BodyError::Invalid("each line must be one event object".into()));
    }
    read_events(line.as_bytes(), now).map(|mut events| events.remove(0))
}

const CHANGE_FIELDS: [&str; 5] = ["op", "object", "table", "keys", "changes"];

/// A structured change (`POST /api/v1/changes`): the change fields plus any event field. The
/// message is rendered from the change (C1), so a `message` is refused.
pub fn change_from_json(bytes: &[u8], now: Timestamp) -> Result<EventBody, BodyError> {
    let Value::Object(mut fields) = parse_json(bytes)? else {
        return Err(BodyError::Invalid("send one change object".into()));
    };
    let invalid = |field: &str, problem: String| BodyError::InvalidEvent {
        index: 0,
        error: ValidationError::new(field, problem),
    };
    if fields.contains_key("message") {
        return Err(invalid("message", "is rendered from the change; leave it out".into()));
    }
    let mut change_fields = Map::new();
    for key in CHANGE_FIELDS {
        if let Some(value) = fields.remove(key) {
            change_fields.insert(key.to_owned(), value);
        }
    }
    let change: Change =
        serde_json::from_value(Value::Object(change_fields)).map_err(|e| invalid("change", e.to_string()))?;
    check_change(&change).map_err(|error| BodyError::InvalidEvent { index: 0, error })?;
    let mut input = event_input(0, Value::Object(fields))?;
    let change = change.masked();
    input.kind.get_or_insert_with(|| change.op.default_kind().to_owned());
    if input.name.as_deref().is_none_or(str::is_empty) {
        input.name = Some(change.key_names());
    }
    input.message = Some(change.render());
    input.change = Some(change);
    let event = input.validate(now).map_err(|error| BodyError::InvalidEvent { index: 0, error })?;
    refuse_trail_only(std::slice::from_ref(&event))?;
    Ok(event)
}

fn check_change(change: &Change) -> Result<(), ValidationError> {
    let plain = |field: &str, text: &str| {
        if text.is_empty() || text.chars().any(char::is_control) || text.chars().count() > limits::NAME_CHARS {
            Err(ValidationError::new(field, "must be 1-1024 characters without control characters"))
        } else {
            Ok(())
        }
    };
    plain("object", &change.object)?;
    plain("table", &change.table)?;
    for (key, value) in &change.keys {
        plain("keys", key)?;
        if !(value.is_string() || value.is_number() || value.is_boolean()) {
            return Err(ValidationError::new(format!("keys.{key}"), "must be a string, a number or a boolean"));
        }
        // A key's value is shown on the message's `Keys:` line: a line feed in it would start a
        // line that passes for another part of the change (found by fuzzing).
        if value.as_str().is_some_and(|text| text.chars().any(char::is_control)) {
            return Err(ValidationError::new(format!("keys.{key}"), "must have no control characters"));
        }
    }
    for (i, variable) in change.changes.iter().enumerate() {
        plain(&format!("changes[{i}].variable"), &variable.variable)?;
        if variable.old.is_none() && variable.new.is_none() {
            return Err(ValidationError::new(format!("changes[{i}]"), "needs an old or a new value"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-21T12:00:00Z".parse().unwrap()
    }

    fn refused(body: &str) -> BodyError {
        events_from_json(body.as_bytes(), now()).unwrap_err()
    }

    #[test]
    fn minimal_built_in_event_is_filled_from_the_catalog() {
        let events =
            events_from_json(br#"{"user":"alice","kind":"DEVICE_EDITED","message":"Device edge1 edited"}"#, now())
                .unwrap();
        let e = &events[0];
        assert_eq!((e.process.as_str(), e.action.as_str()), ("devices", "update"));
        assert_eq!(e.severity, crate::Severity::Notice);
        assert_eq!(e.time, now());
    }

    #[test]
    fn failure_outcome_raises_severity() {
        let e =
            &events_from_json(br#"{"user":"a","kind":"ARCHIVE_COMPLETED","message":"m","outcome":"failure"}"#, now())
                .unwrap()[0];
        assert_eq!(e.severity, crate::Severity::Err);
    }

    #[test]
    fn namespaced_kinds_need_process_action_severity() {
        let err = refused(r#"{"user":"a","kind":"ACME.SYNC_DONE","message":"m"}"#).to_string();
        assert!(err.contains("`process`") && err.contains("ACME.SYNC_DONE"), "{err}");
        let ok = r#"{"user":"a","kind":"ACME.SYNC_DONE","message":"m","process":"sync","action":"sync","severity":5}"#;
        assert_eq!(events_from_json(ok.as_bytes(), now()).unwrap()[0].severity, crate::Severity::Notice);
    }

    #[test]
    fn each_kind_of_bad_input_is_named() {
        let cases = [
            (r#"{"kind":"DEVICE_EDITED","message":"m"}"#, "field `user`: is missing"),
            (r#"{"user":"a","kind":"DEVICE_EDITED","message":"m","severity":"loud"}"#, "unknown severity"),
            (r#"{"user":"a","kind":"NOPE","message":"m"}"#, "not a built-in kind"),
            (r#"{"user":"a","kind":"bad kind","message":"m"}"#, "not allowed"),
            (r#"{"user":"a","kind":"ACME.","message":"m","process":"p","action":"a","severity":5}"#, "empty part"),
            (r#"{"user":"a","kind":".X","message":"m","process":"p","action":"a","severity":5}"#, "empty part"),
            (r#"{"user":"a","kind":"A..B","message":"m","process":"p","action":"a","severity":5}"#, "empty part"),
            (r#"{"user":"a\u0000","kind":"DEVICE_EDITED","message":"m"}"#, "U+0000"),
            (r#"{"user":"a","kind":"DEVICE_EDITED","message":"a\u0007b"}"#, "only newline and tab"),
            (r#"{"user":"a","kind":"DEVICE_EDITED","message":"a\tb\n\u007f"}"#, "U+007F at byte 4"),
            (r#"{"user":"a","kind":"DEVICE_EDITED","message":"ab\u007f"}"#, "U+007F at byte 2"),
            (r#"{"user":"a","kind":"DEVICE_EDITED","message":"m","name":"a\nb"}"#, "field `name`: control character"),
            (r#"{"user":5,"kind":"DEVICE_EDITED","message":"m"}"#, "invalid type"),
            (r#"{"user":"a","kind":"DEVICE_EDITED","message":"m","colour":"red"}"#, "unknown field `colour`"),
            (r#"{"user":"a","kind":"DEVICE_EDITED","message":"m","attributes":{"a b":"x"}}"#, "attributes.a b"),
            (r#"{"user":"a","kind":"DEVICE_EDITED","message":"m","attributes":{"k":[1]}}"#, "must be a string"),
            (r#"{"user":"a","kind":"DEVICE_EDITED","message":"m","time":"yesterday"}"#, "RFC 3339"),
            (r#"{"user":"a","kind":"DEVICE_EDITED""#, "not valid JSON"),
            ("[]", "body is empty"),
            (r#"{"user":"a","user":"b","kind":"DEVICE_EDITED","message":"m"}"#, "duplicate field `user`"),
        ];
        for (body, expected) in cases {
            let err = refused(body).to_string();
            assert!(err.contains(expected), "{body}: {err}");
        }
        let err = events_from_json(b"{\"user\":\"\xff\"}", now()).unwrap_err().to_string();
        assert!(err.contains("not valid UTF-8") && err.contains("offset 9"), "{err}");
        let twice = r#"{"user":"a","user":"b","kind":"DEVICE_EDITED","message":"m"}"#;
        let line = event_from_json_line(twice, now()).unwrap_err().to_string();
        assert!(line.contains("give each field once"), "an NDJSON line is judged as a body: {line}");
        let huge = format!(r#"{{"user":"{}","kind":"DEVICE_EDITED","message":"m"}}"#, "u".repeat(129));
        assert!(refused(&huge).to_string().contains("limit is 128"));
    }

    #[test]
    fn a_batch_with_one_bad_event_is_refused_whole() {
        let body = r#"[{"user":"a","kind":"DEVICE_EDITED","message":"m"},{"user":"a","kind":"DEVICE_EDITED"}]"#;
        assert!(matches!(refused(body), BodyError::InvalidEvent { index: 1, .. }));
    }

    #[test]
    fn a_ten_thousand_line_message_is_accepted_whole() {
        let message = (0..10_000).map(|i| format!("set interfaces ge-0/0/{i} unit 0")).collect::<Vec<_>>().join("\n");
        let body = serde_json::json!({"user":"a","kind":"CONFIG_COMMITTED","message":message}).to_string();
        assert_eq!(events_from_json(body.as_bytes(), now()).unwrap()[0].message, message);
    }

    #[test]
    fn changes_render_name_and_mask() {
        let body = br#"{"user":"alice","op":"update","object":"node","table":"nodes","keys":{"hostname":"edge1"},
            "changes":[{"variable":"snmp_community","old":"public","new":"s3cret","secret":true}],"client":"192.0.2.7"}"#;
        let e = change_from_json(body, now()).unwrap();
        assert_eq!(e.kind, "OBJECT_UPDATED");
        assert_eq!(e.name, "edge1");
        assert!(!e.message.contains("s3cret") && !e.message.contains("public"));
        assert!(!serde_json::to_string(&e).unwrap().contains("s3cret"));
        assert!(
            change_from_json(br#"{"user":"a","op":"update","object":"n","table":"t","message":"x"}"#, now()).is_err()
        );
    }

    #[test]
    fn a_key_value_cannot_start_a_line_of_its_own() {
        let forged = br#"{"user":"a","op":"update","object":"n","table":"t","name":"n",
            "keys":{"host":"edge1\n\nenable_password:\n    (none) => hunter2"}}"#;
        let error = change_from_json(forged, now()).unwrap_err().to_string();
        assert!(error.contains("keys.host") && error.contains("control characters"), "{error}");
    }
}
