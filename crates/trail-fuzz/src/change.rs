//! Structured changes (C1): a change a sender posts is stored with a message that is exactly
//! its rendering, each part of which stays on its own lines (no key, value or name can start a
//! line that passes for another part), and with no secret value left in either.

use trail_core::change::{Change, MASK};
use trail_core::request::change_from_json;

pub fn run(data: &[u8]) {
    let now: jiff::Timestamp = "2026-11-29T12:00:00Z".parse().expect("a time");
    let secrets = secret_values(data);
    let Ok(event) = change_from_json(data, now) else { return };
    let change = event.change.as_ref().expect("a change event keeps its change");
    assert_eq!(event.message, change.render(), "the message is not the stored change's rendering");
    check_layout(change, &event.message);
    for variable in change.changes.iter().filter(|variable| variable.secret) {
        for value in [&variable.old, &variable.new].into_iter().flatten() {
            assert_eq!(value, MASK, "a secret value is stored");
        }
    }
    for secret in secrets.iter().filter(|secret| secret.len() > MASK.len() && !secret.contains(MASK)) {
        let shown = change
            .changes
            .iter()
            .filter(|v| !v.secret)
            .any(|v| [&v.old, &v.new].into_iter().flatten().any(|value| value.contains(secret.as_str())));
        if !shown {
            assert!(!event.message.contains(secret.as_str()), "the secret {secret:?} shows in the message");
        }
    }
}

/// The values the sender marked secret, read from its own JSON.
fn secret_values(data: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return Vec::new() };
    let Some(changes) = value.get("changes").and_then(|c| c.as_array()) else { return Vec::new() };
    changes
        .iter()
        .filter(|change| change.get("secret").and_then(|s| s.as_bool()) == Some(true))
        .flat_map(|change| ["old", "new"].map(|side| change.get(side).and_then(|v| v.as_str()).map(str::to_owned)))
        .flatten()
        .collect()
}

/// Line 1 names the object, line 2 holds every key, and each variable's section opens with its
/// name on a line of its own, every other line indented.
fn check_layout(change: &Change, message: &str) {
    let lines: Vec<&str> = message.split('\n').collect();
    let header = lines[0];
    assert!(header.ends_with(&format!(" ({})", change.table)), "line 1 is not the object's: {header:?}");
    let keys: Vec<String> = change
        .keys
        .iter()
        .map(|(key, value)| format!("{key} = {}", value.as_str().map_or_else(|| value.to_string(), str::to_owned)))
        .collect();
    let keys_line = if keys.is_empty() { "Keys:".to_owned() } else { format!("Keys: {}", keys.join(", ")) };
    assert_eq!(lines.get(1), Some(&keys_line.as_str()), "the keys do not stay on line 2: {message:?}");
    if change.changes.is_empty() {
        assert_eq!(lines.len(), 2, "lines after the keys of a change without variables: {message:?}");
        return;
    }
    assert_eq!(lines.get(2), Some(&""), "the keys run past line 2: {message:?}");
    let headers: Vec<&str> = lines[3..].iter().copied().filter(|line| !line.starts_with("    ")).collect();
    let names: Vec<String> =
        change.changes.iter().filter(|v| !v.variable.starts_with("    ")).map(|v| format!("{}:", v.variable)).collect();
    assert_eq!(headers, names, "a line passes for a variable's name: {message:?}");
}
