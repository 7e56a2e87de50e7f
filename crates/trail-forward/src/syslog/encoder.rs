//! One event to one syslog message, with the event's own time.
//!
//! Hand-written: the syslog crates stamp messages with the time of sending and know nothing of
//! structured data limits, while an audit trail must carry the event's own time (RFC 5424
//! TIMESTAMP with microseconds) and its fields as escaped SD-PARAMs.
//!
//! RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD-ID id=.. user=.. ..] BOM MSG`
//! - APP-NAME is the event's process, PROCID Trail's process id, MSGID the event's kind;
//! - the SD element holds `id`, `user`, `action`, `name`, `outcome`, `client`, `request`,
//!   `session`, `job` and `parent` when present, then the attributes (an attribute named like
//!   one of those is sent as `attr.NAME`);
//! - a message longer than the limit is cut at a character boundary and the element gains
//!   `truncated="true"`; if the header and element alone pass the limit, the attributes go,
//!   and if the fields alone still pass it, the value that crosses it is cut on a whole escaped
//!   character and the fields after it go: a cut message is still valid RFC 5424.
//!
//! RFC 3164: `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: KIND: MSG`, time in UTC.

use super::config::{Facility, Format, Framing, SyslogConfig, Transport};
use std::collections::BTreeMap;
use std::fmt::Write;
use trail_core::Event;
use trail_core::event::prefix_within;

const BOM: &str = "\u{feff}";
/// Receivers must accept 480 octets (RFC 5424 6.1); smaller limits are refused.
const SMALLEST_LIMIT: usize = 480;
const FIELD_PARAMS: [&str; 10] =
    ["id", "user", "action", "name", "outcome", "client", "request", "session", "job", "parent"];

#[derive(Debug)]
pub struct Encoder {
    format: Format,
    facility: Facility,
    kind_facilities: BTreeMap<String, Facility>,
    sd_id: String,
    hostname: String,
    procid: String,
    max_bytes: usize,
    escape_line_feeds: bool,
}

/// The default longest message: RFC 3164's 1024 bytes; for RFC 5424, 2048 over UDP (what
/// receivers should accept, RFC 5426) and 8192 over streams (rsyslog's default
/// `maxMessageSize`).
fn default_limit(format: Format, transport: Transport) -> usize {
    match (format, transport) {
        (Format::Rfc3164, _) => 1024,
        (Format::Rfc5424, Transport::Udp) => 2048,
        (Format::Rfc5424, _) => 8192,
    }
}

impl Encoder {
    pub fn new(config: &SyslogConfig, transport: Transport) -> Result<Encoder, String> {
        let sd_id = config.sd_id.clone().unwrap_or_else(|| "trail@32473".to_owned());
        check_sd_id(&sd_id)?;
        let max_bytes = config.max_message_bytes.unwrap_or_else(|| default_limit(config.format, transport));
        if max_bytes < SMALLEST_LIMIT {
            return Err(format!("max_message_bytes must be at least {SMALLEST_LIMIT}"));
        }
        let hostname = config.hostname.clone().unwrap_or_else(system_hostname);
        Ok(Encoder {
            format: config.format,
            facility: config.facility.unwrap_or(Facility::LOCAL0),
            kind_facilities: config.kind_facilities.clone(),
            sd_id,
            hostname: printable_ascii(&hostname, 255),
            procid: std::process::id().to_string(),
            max_bytes,
            escape_line_feeds: transport != Transport::Udp && config.framing == Framing::Lf,
        })
    }

    /// The kind's override, else `authpriv` for authentication events, else the destination's.
    pub fn facility_of(&self, kind: &str) -> Facility {
        match self.kind_facilities.get(kind) {
            Some(facility) => *facility,
            None if kind.starts_with("AUTH_") => Facility::AUTHPRIV,
            None => self.facility,
        }
    }

    pub fn encode(&self, event: &Event) -> Vec<u8> {
        let pri = u16::from(self.facility_of(&event.body.kind).0) * 8 + u16::from(event.body.severity.code());
        let message = if self.escape_line_feeds {
            std::borrow::Cow::Owned(event.body.message.replace('\n', "#012").replace('\r', "#015"))
        } else {
            std::borrow::Cow::Borrowed(event.body.message.as_str())
        };
        match self.format {
            Format::Rfc5424 => self.rfc5424(event, pri, &message),
            Format::Rfc3164 => self.rfc3164(event, pri, &message),
        }
        .into_bytes()
    }

    fn rfc5424(&self, event: &Event, pri: u16, message: &str) -> String {
        let body = &event.body;
        let header = format!(
            "<{pri}>1 {} {} {} {} {} ",
            timestamp_5424(body.time),
            self.hostname,
            printable_ascii(&body.process, 48),
            self.procid,
            body.kind
        );
        let assemble = |sd: &str, msg: &str| {
            if msg.is_empty() { format!("{header}{sd}") } else { format!("{header}{sd} {BOM}{msg}") }
        };
        let whole = assemble(&self.structured_data(event, true, None), message);
        if whole.len() <= self.max_bytes {
            return whole;
        }
        let room = self.max_bytes.saturating_sub(header.len());
        let mut sd = self.structured_data(event, true, Some(usize::MAX));
        if sd.len() + 1 + BOM.len() > room {
            sd = self.structured_data(event, false, Some(room));
        }
        let budget = room.saturating_sub(sd.len() + 1 + BOM.len());
        assemble(&sd, prefix_within(message, budget))
    }

    fn rfc3164(&self, event: &Event, pri: u16, message: &str) -> String {
        let body = &event.body;
        let time = body.time.to_zoned(jiff::tz::TimeZone::UTC).strftime("%b %e %H:%M:%S");
        let tag: String =
            body.process.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).take(32).collect();
        let line = format!("<{pri}>{time} {} {tag}[{}]: {}: {message}", self.hostname, self.procid, body.kind);
        prefix_within(&line, self.max_bytes).to_owned()
    }

    /// `[SD-ID id="1" user="alice" ...]`, values escaped as RFC 5424 6.3.3 requires. With
    /// `room`, the element is marked `truncated="true"` and is at most `room` bytes: the value
    /// that would cross it is cut on a whole escaped character, and what follows it is left out.
    fn structured_data(&self, event: &Event, with_attributes: bool, room: Option<usize>) -> String {
        const MARK: &str = " truncated=\"true\"]";
        let body = &event.body;
        let mut sd = format!("[{} id=\"{}\"", self.sd_id, event.id);
        // Room for the parameters, keeping the mark (or the closing bracket) its place.
        let limit = room.map_or(usize::MAX, |room| room.saturating_sub(MARK.len()));
        let outcome = body.outcome.map(|o| o.name().to_owned());
        let fields = [
            ("user", Some(&body.user)),
            ("action", Some(&body.action)),
            ("name", Some(&body.name)),
            ("outcome", outcome.as_ref()),
            ("client", body.client.as_ref()),
            ("request", body.request_id.as_ref()),
            ("session", body.session_id.as_ref()),
            ("job", body.job_id.as_ref()),
            ("parent", body.parent_id.as_ref()),
        ];
        let mut params: Vec<(String, std::borrow::Cow<'_, str>)> = fields
            .into_iter()
            .filter_map(|(name, value)| value.filter(|v| !v.is_empty()).map(|v| (name.to_owned(), v.as_str().into())))
            .collect();
        if with_attributes {
            for (key, value) in &body.attributes {
                let mut name = param_name(key);
                if FIELD_PARAMS.contains(&name.as_str()) || name == "truncated" {
                    name = format!("attr.{name}");
                }
                let value = match value {
                    serde_json::Value::String(text) => text.as_str().into(),
                    other => other.to_string().into(),
                };
                params.push((name, value));
            }
        }
        for (name, value) in &params {
            if !param(&mut sd, name, value, self.escape_line_feeds, limit) {
                break;
            }
        }
        match room {
            Some(_) => sd.push_str(MARK),
            None => sd.push(']'),
        }
        sd
    }
}

/// Appends an SD-PARAM, escaped as RFC 5424 6.3.3 requires; with LF framing a line feed (or
/// carriage return) in a value would end the frame, so they travel as `#012` and `#015`.
/// Keeps `sd` within `limit` bytes: a parameter whose name does not fit is left out, and a
/// value that does not fit is cut before the escaped character that would cross the limit.
/// Answers whether the parameter went whole.
fn param(sd: &mut String, name: &str, value: &str, escape_line_feeds: bool, limit: usize) -> bool {
    let start = sd.len();
    let _ = write!(sd, " {name}=\"");
    if sd.len() + 1 > limit {
        sd.truncate(start);
        return false;
    }
    let mut unit = [0u8; 4];
    for c in value.chars() {
        let escaped = match c {
            '\n' if escape_line_feeds => "#012",
            '\r' if escape_line_feeds => "#015",
            '"' => "\\\"",
            '\\' => "\\\\",
            ']' => "\\]",
            _ => c.encode_utf8(&mut unit),
        };
        if sd.len() + escaped.len() + 1 > limit {
            sd.push('"');
            return false;
        }
        sd.push_str(escaped);
    }
    sd.push('"');
    true
}

/// SD-NAME: 1-32 printable US-ASCII characters but `=`, space, `]` and `"`.
fn param_name(key: &str) -> String {
    let name: String = key
        .chars()
        .take(32)
        .map(|c| if c.is_ascii_graphic() && !matches!(c, '=' | ']' | '"') { c } else { '_' })
        .collect();
    if name.is_empty() { "_".to_owned() } else { name }
}

fn check_sd_id(sd_id: &str) -> Result<(), String> {
    let valid = sd_id.len() <= 32
        && sd_id.split_once('@').is_some_and(|(name, number)| {
            !name.is_empty()
                && param_name(name) == name
                && !name.contains('@')
                && !number.is_empty()
                && number.split('.').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        });
    if valid {
        Ok(())
    } else {
        Err(format!("sd_id {sd_id:?} is not NAME@ENTERPRISE-NUMBER (such as trail@32473), at most 32 characters"))
    }
}

/// RFC 5424 header fields are printable US-ASCII; anything else becomes `_`, empty becomes `-`.
fn printable_ascii(text: &str, max: usize) -> String {
    let cleaned: String = text.chars().take(max).map(|c| if c.is_ascii_graphic() { c } else { '_' }).collect();
    if cleaned.is_empty() { "-".to_owned() } else { cleaned }
}

fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "-".to_owned())
}

/// `2026-11-21T23:33:25.123456Z`: UTC, always six fractional digits.
pub fn timestamp_5424(time: jiff::Timestamp) -> String {
    let utc = time.to_zoned(jiff::tz::TimeZone::UTC);
    format!("{}.{:06}Z", utc.strftime("%Y-%m-%dT%H:%M:%S"), utc.subsec_nanosecond() / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use trail_core::EventId;

    fn config(extra: &str) -> SyslogConfig {
        toml::from_str(&format!("url = \"tcp://127.0.0.1:1\"\nhostname = \"node1\"\n{extra}")).unwrap()
    }

    fn event(json: serde_json::Value) -> Event {
        let input: trail_core::EventInput = serde_json::from_value(json).unwrap();
        let body = input.validate(jiff::Timestamp::UNIX_EPOCH).unwrap();
        Event { id: EventId::new(42), body, hash: String::new() }
    }

    fn login() -> Event {
        event(serde_json::json!({
            "time": "2026-11-21T23:33:25.123456Z", "user": "alice", "kind": "AUTH_LOGIN_SUCCESS", "name": "alice",
            "client": "10.0.0.1", "outcome": "success", "session_id": "s1",
            "message": "User alice logged in\nvia ssh",
            "attributes": {"method": "pass\"w]o\\rd", "id": "clash", "count": 3}
        }))
    }

    #[test]
    fn rfc5424_fields_escaping_and_bom() {
        let encoder = Encoder::new(&config(""), Transport::Tcp).unwrap();
        let text = String::from_utf8(encoder.encode(&login())).unwrap();
        let pid = std::process::id();
        assert_eq!(
            text,
            format!(
                "<85>1 2026-11-21T23:33:25.123456Z node1 trail-auth {pid} AUTH_LOGIN_SUCCESS [trail@32473 id=\"42\" \
                 user=\"alice\" action=\"login\" name=\"alice\" outcome=\"success\" client=\"10.0.0.1\" session=\"s1\" \
                 method=\"pass\\\"w\\]o\\\\rd\" attr.id=\"clash\" count=\"3\"] \u{feff}User alice logged in\nvia ssh"
            )
        );
    }

    #[test]
    fn facilities_default_authpriv_and_overrides() {
        let encoder =
            Encoder::new(&config("facility = \"user\"\nkind_facilities = { AUTH_LOGOUT = \"auth\" }"), Transport::Udp)
                .unwrap();
        assert_eq!(encoder.facility_of("DEVICE_EDITED"), Facility(1));
        assert_eq!(encoder.facility_of("AUTH_LOGIN_FAILURE"), Facility::AUTHPRIV);
        assert_eq!(encoder.facility_of("AUTH_LOGOUT"), Facility(4));
    }

    #[test]
    fn long_messages_are_cut_whole_characters_and_marked() {
        let encoder = Encoder::new(&config("max_message_bytes = 600"), Transport::Tcp).unwrap();
        let long = event(serde_json::json!({"user": "bob", "kind": "DEVICE_EDITED", "message": "é".repeat(1000)}));
        let text = String::from_utf8(encoder.encode(&long)).unwrap();
        assert!(text.len() <= 600 && text.len() > 590, "{}", text.len());
        assert!(text.contains("truncated=\"true\"]"));
        let short = String::from_utf8(encoder.encode(&login())).unwrap();
        assert!(!short.contains("truncated"));
    }

    /// The structured data of a message, checked as RFC 5424 6.3 reads it: every value closed,
    /// every backslash escaping `"`, `\` or `]`; answers the element's text.
    fn well_formed_sd(text: &str) -> &str {
        let start = text.find(" [").expect("an SD element") + 1;
        let bytes = text.as_bytes();
        let (mut at, mut in_value) = (start + 1, false);
        loop {
            match (bytes[at], in_value) {
                (b'\\', true) => {
                    assert!(matches!(bytes[at + 1], b'"' | b'\\' | b']'), "a lone backslash at {at}: {text}");
                    at += 1;
                }
                (b'"', _) => in_value = !in_value,
                (b']', false) => return &text[start..=at],
                _ => {}
            }
            at += 1;
            assert!(at < bytes.len(), "the element is never closed: {text}");
        }
    }

    #[test]
    fn a_message_cut_inside_its_fields_stays_valid() {
        for (transport, limit) in [(Transport::Udp, 2048), (Transport::Tcp, 600)] {
            let encoder = Encoder::new(&config(&format!("max_message_bytes = {limit}")), transport).unwrap();
            // Each filler makes a name of 2,000 bytes or more once escaped (or of 1,000 over TCP).
            let fillers: &[&str] = if limit > 1000 { &["\"", "\\", "]", "é"] } else { &["\"", "é", "a"] };
            for filler in fillers {
                let quotes = event(serde_json::json!({"user": "u", "kind": "DEVICE_EDITED",
                    "name": filler.repeat(1000), "client": "10.0.0.1", "message": "m"}));
                let text = String::from_utf8(encoder.encode(&quotes)).unwrap();
                assert!(text.len() <= limit, "{} > {limit}", text.len());
                let sd = well_formed_sd(&text);
                assert!(sd.ends_with(" truncated=\"true\"]"), "{sd}");
                assert!(sd.contains("name=\"") && !sd.contains("client="), "the fields after the cut go: {sd}");
            }
        }
    }

    #[test]
    fn lf_framing_escapes_line_feeds_everywhere() {
        let encoder = Encoder::new(&config("framing = \"lf\""), Transport::Tcp).unwrap();
        let text = String::from_utf8(encoder.encode(&login())).unwrap();
        assert!(text.ends_with("logged in#012via ssh"), "{text}");
        let forged = event(serde_json::json!({"user": "u", "kind": "DEVICE_EDITED", "message": "m",
            "attributes": {"note": "a\n<13>1 - forged - - - - injected"}}));
        let text = String::from_utf8(encoder.encode(&forged)).unwrap();
        assert!(!text.contains('\n') && text.contains("note=\"a#012<13>1 - forged"), "{text}");
    }

    #[test]
    fn rfc3164_layout() {
        let encoder = Encoder::new(&config("format = \"rfc3164\""), Transport::Udp).unwrap();
        let text = String::from_utf8(encoder.encode(&login())).unwrap();
        let pid = std::process::id();
        assert_eq!(
            text,
            format!("<85>Nov 21 23:33:25 node1 trail-auth[{pid}]: AUTH_LOGIN_SUCCESS: User alice logged in\nvia ssh")
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(Encoder::new(&config("sd_id = \"trail\""), Transport::Tcp).unwrap_err().contains("NAME@"));
        assert!(Encoder::new(&config("max_message_bytes = 100"), Transport::Tcp).unwrap_err().contains("480"));
    }
}
