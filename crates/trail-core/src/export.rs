//! The CSV form of an event, shared by `trail export` and the API's export: the columns of the
//! event JSON, with attributes and change as JSON in their cells.

use crate::Event;
use crate::time;

pub const CSV_HEADER: [&str; 18] = [
    "id",
    "time",
    "user",
    "client",
    "process",
    "kind",
    "action",
    "name",
    "severity",
    "outcome",
    "message",
    "attributes",
    "request_id",
    "session_id",
    "job_id",
    "parent_id",
    "change",
    "hash",
];

/// One event's cells, in [`CSV_HEADER`] order.
pub fn csv_fields(event: &Event) -> [String; 18] {
    let body = &event.body;
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let json = |value: serde_json::Result<String>| value.unwrap_or_default();
    [
        event.id.to_string(),
        time::format_rfc3339(body.time),
        body.user.clone(),
        text(&body.client),
        body.process.clone(),
        body.kind.clone(),
        body.action.clone(),
        body.name.clone(),
        body.severity.name().to_owned(),
        body.outcome.map_or(String::new(), |o| o.name().to_owned()),
        body.message.clone(),
        json(serde_json::to_string(&body.attributes)),
        text(&body.request_id),
        text(&body.session_id),
        text(&body.job_id),
        text(&body.parent_id),
        body.change.as_ref().map_or(String::new(), |c| json(serde_json::to_string(c))),
        event.hash.clone(),
    ]
}
