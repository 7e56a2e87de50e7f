//! Inventory documents (E4): a canonical form, so the same inventory always hashes the same, and
//! a structured diff by path (`chassis.serial`, `modules[2].model`).

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The document with every object's keys sorted, pretty-printed: what is stored and hashed.
pub fn canonical(document: &Value) -> String {
    serde_json::to_string_pretty(&sorted(document)).expect("a JSON value serializes")
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&map[k]))).collect::<Map<_, _>>())
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        scalar => scalar.clone(),
    }
}

/// Every scalar of the document by its path.
fn flatten(value: &Value, path: String, into: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                flatten(child, path, into);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, child) in items.iter().enumerate() {
                flatten(child, format!("{path}[{i}]"), into);
            }
        }
        Value::String(text) => {
            into.insert(path, text.clone());
        }
        other => {
            into.insert(path, other.to_string());
        }
    }
}

/// What changed between two inventory documents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryDiff {
    pub added: Vec<(String, String)>,
    pub removed: Vec<(String, String)>,
    pub changed: Vec<(String, String, String)>,
}

impl InventoryDiff {
    pub fn between(old: &Value, new: &Value) -> InventoryDiff {
        let (mut before, mut after) = (BTreeMap::new(), BTreeMap::new());
        flatten(old, String::new(), &mut before);
        flatten(new, String::new(), &mut after);
        let mut diff = InventoryDiff::default();
        for (path, value) in &after {
            match before.get(path) {
                None => diff.added.push((path.clone(), value.clone())),
                Some(old) if old != value => diff.changed.push((path.clone(), old.clone(), value.clone())),
                Some(_) => {}
            }
        }
        for (path, value) in before {
            if !after.contains_key(&path) {
                diff.removed.push((path, value));
            }
        }
        diff
    }

    /// One line per difference: `+ path: value`, `- path: value`, `~ path: old -> new`; a
    /// newline or other control character in a path or value is shown escaped, so that no item
    /// can pass for another line.
    pub fn render(&self) -> String {
        let one = |text: &str| super::printable(text, &[]);
        let mut lines: Vec<String> = Vec::new();
        lines.extend(self.changed.iter().map(|(p, o, n)| format!("~ {}: {} -> {}", one(p), one(o), one(n))));
        lines.extend(self.added.iter().map(|(p, v)| format!("+ {}: {}", one(p), one(v))));
        lines.extend(self.removed.iter().map(|(p, v)| format!("- {}: {}", one(p), one(v))));
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_change_the_canonical_form() {
        let a = json!({"b": 1, "a": {"y": true, "x": [1, {"k": "v", "j": null}]}});
        let b = json!({"a": {"x": [1, {"j": null, "k": "v"}], "y": true}, "b": 1});
        assert_eq!(canonical(&a), canonical(&b));
    }

    #[test]
    fn no_item_passes_for_another_line() {
        let diff = InventoryDiff::between(&json!({"a": 1}), &json!({"a": 1, "k\nFORGED": "v\nw", "bell": "\u{7}"}));
        assert_eq!(diff.render(), "+ bell: \\u{7}\n+ k\\nFORGED: v\\nw");
    }

    #[test]
    fn diff_by_path() {
        let old = json!({"chassis": {"serial": "AB1", "model": "mx204"}, "modules": [{"slot": 0, "model": "pic"}]});
        let new = json!({"chassis": {"serial": "AB2", "model": "mx204"}, "modules": [{"slot": 0, "model": "pic"}, {"slot": 1, "model": "sfp"}]});
        let diff = InventoryDiff::between(&old, &new);
        assert_eq!(diff.render(), "~ chassis.serial: AB1 -> AB2\n+ modules[1].model: sfp\n+ modules[1].slot: 1");
        let back = InventoryDiff::between(&new, &old);
        assert_eq!(back.removed.len(), 2);
    }
}
