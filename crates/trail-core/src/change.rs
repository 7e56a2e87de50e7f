//! Change records (C1, C2): a structured change rendered into the message exactly as the
//! automation platform does, with secrets masked everywhere.
//!
//! ```text
//! Updated node (nodes)
//! Keys: hostname = edge1, site = AMS
//!
//! description:
//!     core uplink => core uplink (10G)
//! config:
//!     ---------- diff ----------
//!     @@ -1,2 +1,2 @@
//!      hostname edge1
//!     -ntp server 192.0.2.1
//!     +ntp server 192.0.2.2
//!     ---------- new value ----------
//!     hostname edge1
//!     ntp server 192.0.2.2
//!     ---------- end ----------
//! ```
//!
//! Values with leading or trailing white space, and empty values, are quoted so the difference
//! stays visible; an absent value (a created or deleted object) is shown as `(none)`.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// What replaces a secret's value wherever it would appear.
pub const MASK: &str = "********";
const INDENT: &str = "    ";

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    Create,
    Update,
    Delete,
}

impl ChangeOp {
    /// The verb of line 1.
    pub fn verb(self) -> &'static str {
        match self {
            ChangeOp::Create => "Added",
            ChangeOp::Update => "Updated",
            ChangeOp::Delete => "Deleted",
        }
    }

    /// The built-in kind a change of this operation is recorded as, unless the sender names one.
    pub fn default_kind(self) -> &'static str {
        match self {
            ChangeOp::Create => "OBJECT_CREATED",
            ChangeOp::Update => "OBJECT_UPDATED",
            ChangeOp::Delete => "OBJECT_DELETED",
        }
    }
}

/// One changed variable. `old` is absent for a created object, `new` for a deleted one.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableChange {
    pub variable: String,
    #[serde(default, deserialize_with = "scalar_text")]
    pub old: Option<String>,
    #[serde(default, deserialize_with = "scalar_text")]
    pub new: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

/// A structured change: object, table, ordered keys and changed variables.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub op: ChangeOp,
    pub object: String,
    pub table: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub keys: Map<String, Value>,
    #[serde(default)]
    pub changes: Vec<VariableChange>,
}

/// Accepts strings, numbers and booleans as a variable's value (platforms send all three).
fn scalar_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(serde::de::Error::custom("a value must be a string, a number, a boolean or null")),
    }
}

impl Change {
    /// The same change with every secret value replaced by [`MASK`] (C2). Applied before a
    /// change is stored, so a secret never reaches the database, a log or a forwarder.
    pub fn masked(mut self) -> Change {
        for change in self.changes.iter_mut().filter(|c| c.secret) {
            change.old = change.old.as_ref().map(|_| MASK.to_owned());
            change.new = change.new.as_ref().map(|_| MASK.to_owned());
        }
        self
    }

    /// The keys' values, joined: the default object name of the event (`edge1, AMS`).
    pub fn key_names(&self) -> String {
        self.keys.values().map(key_text).collect::<Vec<_>>().join(", ")
    }

    /// Renders the message (C1). Secrets are masked whether or not [`Change::masked`] ran.
    pub fn render(&self) -> String {
        let mut out = format!("{} {} ({})\n", self.op.verb(), self.object, self.table);
        let keys: Vec<String> = self.keys.iter().map(|(key, value)| format!("{key} = {}", key_text(value))).collect();
        out.push_str("Keys:");
        if !keys.is_empty() {
            out.push(' ');
            out.push_str(&keys.join(", "));
        }
        if !self.changes.is_empty() {
            out.push_str("\n\n");
            let sections: Vec<String> = self.changes.iter().map(render_variable).collect();
            out.push_str(&sections.join("\n"));
        }
        out
    }
}

fn key_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn render_variable(change: &VariableChange) -> String {
    let mut out = format!("{}:\n", change.variable);
    if change.secret {
        let mask = |v: &Option<String>| if v.is_some() { MASK } else { "(none)" };
        out.push_str(&format!("{INDENT}{} => {}", mask(&change.old), mask(&change.new)));
        return out;
    }
    let old = change.old.as_deref();
    let new = change.new.as_deref();
    let multi_line = old.is_some_and(|v| v.contains('\n')) || new.is_some_and(|v| v.contains('\n'));
    if multi_line {
        out.push_str(&render_multi_line(old.unwrap_or(""), new));
    } else {
        out.push_str(&format!("{INDENT}{} => {}", show_value(old), show_value(new)));
    }
    out
}

/// A single-line value as shown beside the arrow.
fn show_value(value: Option<&str>) -> String {
    match value {
        None => "(none)".to_owned(),
        Some(text) if text.is_empty() || text.trim() != text || text == "(none)" => {
            serde_json::to_string(text).unwrap_or_default()
        }
        Some(text) => text.to_owned(),
    }
}

fn demarcation(title: &str) -> String {
    format!("{INDENT}---------- {title} ----------")
}

/// The section that replaces the arrow line when a value spans lines: a unified diff of old
/// against new, then the full new value, set apart by demarcation lines.
fn render_multi_line(old: &str, new: Option<&str>) -> String {
    let hunks = crate::diff::unified(old, new.unwrap_or(""), None).unified;
    let mut lines = vec![demarcation("diff")];
    lines.extend(hunks.lines().map(|line| format!("{INDENT}{line}")));
    lines.push(demarcation("new value"));
    match new {
        Some(value) => lines.extend(value.lines().map(|line| format!("{INDENT}{line}"))),
        None => lines.push(format!("{INDENT}(none)")),
    }
    lines.push(demarcation("end"));
    lines.join("\n")
}
