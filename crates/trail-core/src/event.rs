//! The event record (E1) and its validation at the edge (E2, the external contract).
//!
//! [`EventInput`] is what arrives (API bodies, NDJSON import): every field optional, as sent.
//! [`EventInput::validate`] turns it into an [`EventBody`] or says exactly what is wrong; nothing
//! past the edge ever sees an unvalidated event.

use crate::catalog;
use crate::change::Change;
use crate::severity::{Outcome, Severity};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

pub use crate::ids::EventId;

/// Ordered key/value attributes (object order is kept end to end).
pub type Attributes = Map<String, Value>;

/// Who sent an event to this trail (`submitted_by`), as every reader sees it: a platform's
/// report can always be told from Trail's own record, and one token's from another's.
pub mod submitted_by {
    /// Trail itself: its audit of logins, sessions and purges, its demonstration data.
    pub const TRAIL: &str = "trail";

    /// A browser session (or a password login) of `user`.
    pub fn session(user: &str) -> String {
        format!("session of {user}")
    }

    /// An API token issued through the API: its id, its name (quoted, so that no name can read
    /// as another token's or another owner's) and its owner.
    pub fn token(id: i64, name: &str, owner: &str) -> String {
        format!("token {id} {name:?} of {owner}")
    }

    /// A token of the configuration file, for `user`.
    pub fn configured_token(user: &str) -> String {
        format!("configured token of {user}")
    }

    /// The automation token (`TRAIL_TOKEN`).
    pub const AUTOMATION: &str = "automation token";

    /// A command on the data directory itself, run by the operating-system user `user`.
    pub fn local(user: &str) -> String {
        format!("local command by {user}")
    }
}

/// Size limits, documented in the README; oversized fields are refused, never truncated.
pub mod limits {
    pub const USER_CHARS: usize = 128;
    pub const CLIENT_CHARS: usize = 128;
    /// RFC 5424 allows 48 characters of APP-NAME, and the process becomes APP-NAME.
    pub const PROCESS_CHARS: usize = 48;
    pub const ACTION_CHARS: usize = 64;
    pub const NAME_CHARS: usize = 1024;
    pub const MESSAGE_BYTES: usize = 1024 * 1024;
    pub const ATTRIBUTES: usize = 64;
    /// RFC 5424 SD-PARAM names are at most 32 characters.
    pub const ATTRIBUTE_KEY_CHARS: usize = 32;
    pub const ATTRIBUTE_VALUE_BYTES: usize = 8 * 1024;
    pub const CORRELATION_CHARS: usize = 128;
    pub const KIND_CHARS: usize = 32;
}

/// The longest prefix of `text` within `max_bytes` that ends on a character boundary: how
/// forwarders and renderers cut text that must fit a limit.
pub fn prefix_within(text: &str, max_bytes: usize) -> &str {
    let mut end = max_bytes.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A validated kind: 1-32 characters of `A-Z 0-9 _ .`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kind(String);

impl Kind {
    pub fn parse(text: &str) -> Result<Kind, String> {
        let len = text.chars().count();
        if len == 0 || len > limits::KIND_CHARS {
            return Err(format!("must be 1-{} characters, got {len}", limits::KIND_CHARS));
        }
        if let Some(bad) = text.chars().find(|c| !matches!(c, 'A'..='Z' | '0'..='9' | '_' | '.')) {
            return Err(format!("{bad:?} is not allowed: use A-Z, 0-9, '_' and '.'"));
        }
        if text.split('.').any(str::is_empty) {
            return Err(format!(
                "{text:?} has an empty part: a namespaced kind is NAMESPACE.NAME, such as ACME.SYNC_DONE"
            ));
        }
        Ok(Kind(text.to_owned()))
    }

    /// An integrator's kind carries a namespace prefix ending in a dot (`ACME.SYNC_DONE`).
    pub fn is_namespaced(&self) -> bool {
        self.0.contains('.')
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Line 1 of a message: what lists show, and all of it a reader without its details sees.
pub fn summary_of(message: &str) -> &str {
    message.lines().next().unwrap_or("")
}

/// A validated event, ready to be stored: everything but the id and the hash.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventBody {
    #[serde(with = "crate::time::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub time: Timestamp,
    pub user: String,
    pub client: Option<String>,
    pub process: String,
    pub kind: String,
    pub action: String,
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub severity: Severity,
    pub outcome: Option<Outcome>,
    pub message: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub attributes: Attributes,
    pub request_id: Option<String>,
    pub session_id: Option<String>,
    pub job_id: Option<String>,
    pub parent_id: Option<String>,
    /// The structured form of a change record (C1), kept for rendering; secrets masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// Who sent the event to this trail (see [`submitted_by`]): set by Trail from the
    /// credential, never by the sender; covered by the chain. `None` only on events stored
    /// before Trail recorded it.
    #[serde(default)]
    pub submitted_by: Option<String>,
}

impl EventBody {
    /// Line 1 of the message: the summary that lists show.
    pub fn summary(&self) -> &str {
        summary_of(&self.message)
    }
}

/// A stored event, as the API, exports and `--json` output show it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    #[serde(flatten)]
    pub body: EventBody,
    /// Hex SHA-256 chaining this event to the previous one (S4).
    pub hash: String,
}

/// An event as sent: every field optional, validated by [`EventInput::validate`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    /// Assigned by Trail; accepted (so an export can be imported) and ignored.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub id: Option<Value>,
    /// Assigned by Trail; accepted and ignored like `id`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub hash: Option<Value>,
    /// Set by Trail from the credential that sends the event; accepted and ignored like `id`,
    /// so a sender can never name someone else.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub submitted_by: Option<Value>,
    pub time: Option<String>,
    pub user: Option<String>,
    pub client: Option<String>,
    pub process: Option<String>,
    pub kind: Option<String>,
    pub action: Option<String>,
    pub name: Option<String>,
    /// One of emerg alert crit err warning notice info debug, or 0-7.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub severity: Option<Severity>,
    pub outcome: Option<Outcome>,
    pub message: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub attributes: Option<Attributes>,
    pub request_id: Option<String>,
    pub session_id: Option<String>,
    pub job_id: Option<String>,
    pub parent_id: Option<String>,
    pub change: Option<Change>,
}

/// What is wrong with an event, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    pub field: String,
    pub problem: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.problem)
    }
}

impl ValidationError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        ValidationError { field: field.into(), problem: problem.into() }
    }
}

/// Which control characters a text field tolerates.
#[derive(Clone, Copy)]
enum Controls {
    None,
    /// Messages (and attribute values) may hold newlines and tabs.
    NewlineAndTab,
}

impl Controls {
    fn tolerates(self, c: char) -> bool {
        matches!(self, Controls::NewlineAndTab) && (c == '\n' || c == '\t')
    }

    /// Whether ASCII `bytes` hold a control character these refuse. Without an early exit and
    /// without branches, so that the compiler checks many bytes at once: under batch ingest,
    /// looking for the first one byte by byte was 3 % of the server's time.
    fn any_refused_in(self, bytes: &[u8]) -> bool {
        let tolerated = |b: u8| matches!(self, Controls::NewlineAndTab) & ((b == b'\n') | (b == b'\t'));
        bytes.iter().fold(false, |found, &b| found | (((b < 0x20) & !tolerated(b)) | (b == 0x7f)))
    }
}

fn check_text(field: &str, text: &str, max_chars: usize, controls: Controls) -> Result<(), ValidationError> {
    // Most text is ASCII and holds no refused control character: one pass over its bytes says
    // so (and its length is its byte count). Otherwise walk chars to find the first.
    let bad = if text.is_ascii() && !controls.any_refused_in(text.as_bytes()) {
        None
    } else {
        text.char_indices().find(|&(_, c)| c.is_control() && !controls.tolerates(c))
    };
    if let Some((at, c)) = bad {
        let allowed = match controls {
            Controls::None => "no control characters are allowed here",
            Controls::NewlineAndTab => "only newline and tab are allowed",
        };
        return Err(ValidationError::new(
            field,
            format!("control character U+{:04X} at byte {at}: {allowed}", u32::from(c)),
        ));
    }
    if text.len() > max_chars {
        let chars = if text.is_ascii() { text.len() } else { text.chars().count() };
        if chars > max_chars {
            return Err(ValidationError::new(field, format!("is {chars} characters; the limit is {max_chars}")));
        }
    }
    Ok(())
}

fn optional(field: &str, value: Option<String>, max_chars: usize) -> Result<Option<String>, ValidationError> {
    match value {
        Some(text) if text.is_empty() => Ok(None),
        Some(text) => check_text(field, &text, max_chars, Controls::None).map(|()| Some(text)),
        None => Ok(None),
    }
}

fn check_attributes(attributes: &Attributes) -> Result<(), ValidationError> {
    if attributes.len() > limits::ATTRIBUTES {
        return Err(ValidationError::new(
            "attributes",
            format!("has {} keys; the limit is {}", attributes.len(), limits::ATTRIBUTES),
        ));
    }
    for (key, value) in attributes {
        let field = format!("attributes.{key}");
        let key_ok = !key.is_empty()
            && key.len() <= limits::ATTRIBUTE_KEY_CHARS
            && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !key_ok {
            return Err(ValidationError::new(
                field,
                format!("keys are 1-{} characters of A-Z a-z 0-9 _ - .", limits::ATTRIBUTE_KEY_CHARS),
            ));
        }
        match value {
            Value::String(text) => {
                check_text(&field, text, usize::MAX, Controls::NewlineAndTab)?;
                if text.len() > limits::ATTRIBUTE_VALUE_BYTES {
                    return Err(ValidationError::new(
                        field,
                        format!("is {} bytes; the limit is {}", text.len(), limits::ATTRIBUTE_VALUE_BYTES),
                    ));
                }
            }
            Value::Number(_) | Value::Bool(_) => {}
            _ => {
                return Err(ValidationError::new(field, "must be a string, a number or a boolean"));
            }
        }
    }
    Ok(())
}

impl EventInput {
    /// Validates the event, filling process, action and severity from the catalog for built-in
    /// kinds. `now` stamps events that carry no time of their own.
    pub fn validate(self, now: Timestamp) -> Result<EventBody, ValidationError> {
        let user = self.user.filter(|u| !u.is_empty()).ok_or_else(|| {
            ValidationError::new("user", "is missing: name the actor (a user, or the process for back-end functions)")
        })?;
        check_text("user", &user, limits::USER_CHARS, Controls::None)?;

        let kind_text = self.kind.ok_or_else(|| ValidationError::new("kind", "is missing"))?;
        let kind = Kind::parse(&kind_text).map_err(|problem| ValidationError::new("kind", problem))?;
        let spec = if kind.is_namespaced() {
            None
        } else {
            Some(catalog::lookup(kind.as_str()).ok_or_else(|| {
                ValidationError::new(
                    "kind",
                    format!(
                        "{kind_text} is not a built-in kind (see docs/catalog.md); an integrator's kind \
                         needs a namespace, such as ACME.{kind_text}"
                    ),
                )
            })?)
        };
        let from_catalog = |field: &str, given: Option<String>, pick: fn(&catalog::KindSpec) -> &'static str| match (
            given.filter(|g| !g.is_empty()),
            spec,
        ) {
            (Some(value), _) => Ok(value),
            (None, Some(spec)) => Ok(pick(spec).to_owned()),
            (None, None) => {
                Err(ValidationError::new(field, format!("is required for the namespaced kind {kind_text}")))
            }
        };
        let process = from_catalog("process", self.process, |s| s.process)?;
        check_text("process", &process, limits::PROCESS_CHARS, Controls::None)?;
        let action = from_catalog("action", self.action, |s| s.action)?;
        check_text("action", &action, limits::ACTION_CHARS, Controls::None)?;
        let severity = match (self.severity, spec) {
            (Some(severity), _) => severity,
            (None, Some(spec)) => spec.severity_for(self.outcome),
            (None, None) => {
                return Err(ValidationError::new(
                    "severity",
                    format!("is required for the namespaced kind {kind_text}"),
                ));
            }
        };

        let message = self.message.filter(|m| !m.is_empty()).ok_or_else(|| {
            ValidationError::new("message", "is missing: line 1 is the summary, further lines carry detail")
        })?;
        if message.len() > limits::MESSAGE_BYTES {
            return Err(ValidationError::new(
                "message",
                format!("is {} bytes; the limit is {}", message.len(), limits::MESSAGE_BYTES),
            ));
        }
        check_text("message", &message, usize::MAX, Controls::NewlineAndTab)?;

        let name = self.name.unwrap_or_default();
        check_text("name", &name, limits::NAME_CHARS, Controls::None)?;
        let attributes = self.attributes.unwrap_or_default();
        check_attributes(&attributes)?;
        let time = match self.time {
            Some(text) => crate::time::parse_rfc3339(&text).map_err(|problem| ValidationError::new("time", problem))?,
            None => now,
        };

        Ok(EventBody {
            time: crate::time::truncate_to_micros(time),
            user,
            client: optional("client", self.client, limits::CLIENT_CHARS)?,
            process,
            kind: kind_text,
            action,
            name,
            severity,
            outcome: self.outcome,
            message,
            attributes,
            request_id: optional("request_id", self.request_id, limits::CORRELATION_CHARS)?,
            session_id: optional("session_id", self.session_id, limits::CORRELATION_CHARS)?,
            job_id: optional("job_id", self.job_id, limits::CORRELATION_CHARS)?,
            parent_id: optional("parent_id", self.parent_id, limits::CORRELATION_CHARS)?,
            change: self.change.map(Change::masked),
            submitted_by: None,
        })
    }
}

/// Decodes bytes as UTF-8, naming the offset of the first bad byte.
pub fn decode_utf8<'a>(what: &str, bytes: &'a [u8]) -> Result<&'a str, ValidationError> {
    std::str::from_utf8(bytes).map_err(|error| {
        ValidationError::new(what, format!("is not valid UTF-8 (first bad byte at offset {})", error.valid_up_to()))
    })
}

/// An event Trail records itself (a purge, a checkpoint): `input` with these text attributes,
/// validated as any event is, and sent by Trail, whoever asked for it.
pub(crate) fn sent_by_trail(mut input: EventInput, attributes: &[(&str, String)], now: Timestamp) -> EventBody {
    input.attributes = Some(
        attributes.iter().map(|(key, value)| ((*key).to_owned(), serde_json::Value::String(value.clone()))).collect(),
    );
    let mut event = input.validate(now).expect("Trail's own events are built from valid parts");
    event.submitted_by = Some(submitted_by::TRAIL.to_owned());
    event
}
