//! Every size limit the README's "Limits" table states is the one enforced: a field at its limit
//! is accepted, one character (or byte, or key) more is refused, never truncated.

use serde_json::{Value, json};
use trail_core::EventInput;
use trail_core::event::limits;

/// The README's Limits table: each row's field cell and limit cell.
fn documented() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme.split("\n## Limits\n").nth(1).expect("a Limits section").split("\n## ").next().unwrap();
    section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            (cells[0].to_owned(), cells[1].to_owned())
        })
        .collect()
}

fn limit_cell(field: &str) -> String {
    let rows = documented();
    rows.iter().find(|(cell, _)| cell.starts_with(field)).unwrap_or_else(|| panic!("{field} in {rows:?}")).1.clone()
}

fn accepted(fields: Value) -> bool {
    let mut event = json!({"user": "alice", "kind": "DEVICE_EDITED", "message": "m"});
    for (key, value) in fields.as_object().unwrap() {
        event[key] = value.clone();
    }
    let input: EventInput = serde_json::from_value(event).unwrap();
    input.validate(jiff::Timestamp::now()).is_ok()
}

/// `field` of `limit` characters (`unit` each) is accepted; one more is refused.
fn holds_at(field: &str, limit: usize, unit: &str) {
    assert!(accepted(json!({ field: unit.repeat(limit) })), "{field} of {limit} is accepted");
    assert!(!accepted(json!({ field: unit.repeat(limit + 1) })), "{field} of {} is refused", limit + 1);
}

#[test]
fn the_readme_states_the_enforced_limits() {
    let says = |field: &str, text: &str| {
        let cell = limit_cell(field);
        assert!(cell.contains(text), "README: {field} is `{cell}`, the code enforces {text}");
    };
    says("`user`, `client`, correlation ids", &format!("{} characters", limits::USER_CHARS));
    assert_eq!((limits::CLIENT_CHARS, limits::CORRELATION_CHARS), (limits::USER_CHARS, limits::USER_CHARS));
    says("`process`", &format!("{} characters", limits::PROCESS_CHARS));
    says("`action`", &format!("{} characters", limits::ACTION_CHARS));
    says("`name`", &format!("{} characters", limits::NAME_CHARS));
    says("`message`", &format!("{} MiB", limits::MESSAGE_BYTES / (1024 * 1024)));
    says("`attributes`", &format!("{} keys of 1–{} characters", limits::ATTRIBUTES, limits::ATTRIBUTE_KEY_CHARS));
    says("`attributes`", &format!("up to {} KiB", limits::ATTRIBUTE_VALUE_BYTES / 1024));
    says("`kind`", &format!("1–{} characters", limits::KIND_CHARS));
}

#[test]
fn text_fields_are_refused_one_character_past_their_limit() {
    // Characters, not bytes: each `é` is two bytes.
    for field in ["user", "client", "request_id", "session_id", "job_id", "parent_id"] {
        holds_at(field, limits::USER_CHARS, "é");
    }
    holds_at("name", limits::NAME_CHARS, "é");
    holds_at("action", limits::ACTION_CHARS, "a");
    holds_at("process", limits::PROCESS_CHARS, "a");
    // An integrator's kind (a built-in is shorter): namespaced, with what the catalog would give.
    let kind = |n: usize| {
        let kind = format!("ACME.{}", "A".repeat(n - "ACME.".len()));
        json!({"kind": kind, "process": "acme", "action": "sync", "severity": "info"})
    };
    assert!(accepted(kind(limits::KIND_CHARS)), "a kind of {} is accepted", limits::KIND_CHARS);
    assert!(!accepted(kind(limits::KIND_CHARS + 1)), "a kind of {} is refused", limits::KIND_CHARS + 1);
    assert!(!accepted(json!({"kind": ""})), "a kind has at least one character");
    // The message is counted in bytes.
    holds_at("message", limits::MESSAGE_BYTES, "a");
}

#[test]
fn attributes_are_refused_past_their_count_key_and_value_limits() {
    let keys = |n: usize| Value::Object((0..n).map(|i| (format!("k{i}"), json!("v"))).collect());
    assert!(accepted(json!({"attributes": keys(limits::ATTRIBUTES)})));
    assert!(!accepted(json!({"attributes": keys(limits::ATTRIBUTES + 1)})));
    let key = |n: usize| json!({ "k".repeat(n): "v" });
    assert!(accepted(json!({"attributes": key(limits::ATTRIBUTE_KEY_CHARS)})));
    assert!(!accepted(json!({"attributes": key(limits::ATTRIBUTE_KEY_CHARS + 1)})));
    assert!(!accepted(json!({"attributes": key(0)})), "a key has at least one character");
    let value = |n: usize| json!({"k": "v".repeat(n)});
    assert!(accepted(json!({"attributes": value(limits::ATTRIBUTE_VALUE_BYTES)})));
    assert!(!accepted(json!({"attributes": value(limits::ATTRIBUTE_VALUE_BYTES + 1)})));
}
