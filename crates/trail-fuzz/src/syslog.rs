//! The syslog encoder (F2): what it writes for any event fits the destination's limit, keeps
//! line feeds out of LF-framed streams, and reads back, in an RFC 5424 parser someone else
//! wrote (`syslog_rfc5424`), as the event's own time, severity, facility, process, kind, fields,
//! attributes and message; a message or field cut to fit is marked `truncated` and is a prefix
//! of what it was. Input: an options octet, two octets of limit, then the host name and the
//! event's fields, separated by NULs.

use serde_json::json;
use trail_core::{Event, EventId};
use trail_forward::syslog::config::{SyslogConfig, Transport};
use trail_forward::syslog::{Encoder, encoder::timestamp_5424};

const SD_ID: &str = "trail@32473";
const SEVERITIES: [&str; 8] = ["emergency", "alert", "critical", "error", "warning", "notice", "info", "debug"];
const FIELDS: [&str; 9] = ["user", "action", "name", "outcome", "client", "request", "session", "job", "parent"];

pub fn run(data: &[u8]) {
    let Some((&[options, high, low], rest)) = data.split_first_chunk::<3>() else { return };
    let Some(rest) = crate::text(rest) else { return };
    let fields: Vec<&str> = rest.split('\0').collect();
    let field = |i: usize| fields.get(i).copied().unwrap_or("");
    let Some(event) = event(options, &fields) else { return };
    let rfc3164 = options & 0x80 != 0;
    let lf = options & 0x40 != 0;
    let transport = if options & 0x20 != 0 { Transport::Udp } else { Transport::Tcp };
    let config: SyslogConfig = serde_json::from_value(json!({
        "url": "tcp://127.0.0.1:514",
        "format": if rfc3164 { "rfc3164" } else { "rfc5424" },
        "framing": if lf { "lf" } else { "octet-counting" },
        "hostname": field(0),
        "max_message_bytes": 480 + usize::from(u16::from_be_bytes([high, low]) % 8192),
    }))
    .expect("a syslog configuration");
    let encoder = Encoder::new(&config, transport).expect("an encoder");
    let written = encoder.encode(&event);
    let limit = config.max_message_bytes.expect("set above");
    assert!(written.len() <= limit, "{} bytes over a limit of {limit}", written.len());
    let escaped = lf && transport != Transport::Udp;
    assert!(!(escaped && written.contains(&b'\n')), "a line feed in an LF-framed message");
    let text = std::str::from_utf8(&written).expect("syslog messages are UTF-8");
    if !rfc3164 {
        read_back(text, &event, &encoder, field(0), escaped);
    }
}

/// The event the fields describe, if it is one a sender could have sent.
fn event(options: u8, fields: &[&str]) -> Option<Event> {
    let field = |i: usize| fields.get(i).copied().unwrap_or("");
    let mut input = json!({
        "time": "2026-11-29T10:11:12.345678Z",
        "kind": if options & 0x10 != 0 { "AUTH_LOGIN_FAILURE" } else { "ACME.PROBE_1" },
        "severity": SEVERITIES[usize::from(options & 7)],
        "user": field(1),
        "process": field(2),
        "action": field(3),
        "name": field(4),
        "message": field(5),
        "client": field(6),
        "request_id": field(7),
        "attributes": {},
    });
    for pair in fields.get(8..).unwrap_or_default().chunks(2) {
        input["attributes"][pair[0]] = json!(pair.get(1).copied().unwrap_or(""));
    }
    if options & 0x10 != 0 {
        // A built-in kind names its own process and action.
        input.as_object_mut()?.retain(|key, _| !matches!(key.as_str(), "process" | "action" | "severity"));
    }
    let now: jiff::Timestamp = "2026-11-29T12:00:00Z".parse().ok()?;
    let input: trail_core::event::EventInput = serde_json::from_value(input).ok()?;
    let body = input.validate(now).ok()?;
    Some(Event { id: EventId::new(4711), body, hash: String::new() })
}

fn read_back(text: &str, event: &Event, encoder: &Encoder, hostname: &str, escaped: bool) {
    let message = syslog_rfc5424::parse_message(text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    let body = &event.body;
    assert_eq!(message.severity as u8, body.severity.code(), "severity");
    assert_eq!(message.facility as u8, encoder.facility_of(&body.kind).0, "facility");
    let stamp = timestamp_5424(body.time);
    assert_eq!(message.timestamp, Some(body.time.as_second()), "the event's own time ({stamp})");
    assert_eq!(message.timestamp_nanos, Some(body.time.subsec_nanosecond() as u32 / 1000 * 1000), "microseconds");
    assert_eq!(message.hostname, header_field(hostname, 255), "HOSTNAME");
    assert_eq!(message.appname, header_field(&body.process, 48), "APP-NAME");
    assert_eq!(message.msgid.as_deref(), Some(body.kind.as_str()), "MSGID");
    let params = message.sd.find_sdid(SD_ID).unwrap_or_else(|| panic!("no {SD_ID} element: {text:?}"));
    assert_eq!(params.get("id").map(String::as_str), Some("4711"), "id");
    let wire = |value: &str| if escaped { value.replace('\n', "#012").replace('\r', "#015") } else { value.to_owned() };
    let cut = params.contains_key("truncated");
    for (name, value) in expected_params(event) {
        match params.get(&name) {
            Some(got) if cut => assert!(wire(&value).starts_with(got.as_str()), "{name} is not a prefix"),
            Some(got) => assert_eq!(got, &wire(&value), "{name}"),
            None => assert!(cut, "{name} is missing from an uncut message: {text:?}"),
        }
    }
    let sent = message.msg.strip_prefix('\u{feff}').unwrap_or(&message.msg);
    if cut {
        assert!(wire(&body.message).starts_with(sent), "the message is not a prefix of the event's");
    } else {
        assert_eq!(sent, wire(&body.message), "the message");
    }
}

/// The SD-PARAMs the event should give, later ones replacing earlier ones of the same name as
/// the parser keeps them.
fn expected_params(event: &Event) -> std::collections::BTreeMap<String, String> {
    let body = &event.body;
    let outcome = body.outcome.map(|o| o.name().to_owned());
    let values = [
        Some(&body.user),
        Some(&body.action),
        Some(&body.name),
        outcome.as_ref(),
        body.client.as_ref(),
        body.request_id.as_ref(),
        body.session_id.as_ref(),
        body.job_id.as_ref(),
        body.parent_id.as_ref(),
    ];
    let mut params: std::collections::BTreeMap<String, String> = FIELDS
        .iter()
        .zip(values)
        .filter_map(|(name, value)| value.filter(|v| !v.is_empty()).map(|v| ((*name).to_owned(), v.clone())))
        .collect();
    for (key, value) in &body.attributes {
        let name = if FIELDS.contains(&key.as_str()) || key == "id" || key == "truncated" {
            format!("attr.{key}")
        } else {
            key.clone()
        };
        params.insert(name, value.as_str().map_or_else(|| value.to_string(), str::to_owned));
    }
    params
}

/// A header field as RFC 5424 allows it: printable US-ASCII, at most `max`, NILVALUE if empty.
fn header_field(text: &str, max: usize) -> Option<String> {
    let field: String = text.chars().take(max).map(|c| if c.is_ascii_graphic() { c } else { '_' }).collect();
    (!field.is_empty() && field != "-").then_some(field)
}
