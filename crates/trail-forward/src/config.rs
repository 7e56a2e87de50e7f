//! Destinations as declared in the configuration file (`[[destinations]]`), and the selection
//! each one forwards (F2: minimum severity, kinds, processes).

use crate::radius::RadiusConfig;
use crate::sink::{ConfigError, Sink};
use crate::syslog::SyslogConfig;
use serde::Deserialize;
use std::collections::HashSet;
use trail_core::{Event, Severity};

/// One destination: the keys every destination has, and its protocol's own. Unknown keys are
/// refused, so a typo is an error at startup rather than a setting silently ignored.
#[derive(Debug, Clone)]
pub struct DestinationConfig {
    pub name: String,
    pub selection: Selection,
    pub start: StartAt,
    /// The longest pause between attempts after a failure, in milliseconds.
    pub retry_max_ms: Option<u64>,
    pub protocol: Protocol,
}

/// The `type` key, with the keys of that protocol.
#[derive(Debug, Clone)]
pub enum Protocol {
    Syslog(SyslogConfig),
    Radius(RadiusConfig),
}

impl Protocol {
    /// The destination's sink, built from its configuration.
    pub(crate) fn sink(&self, name: &str) -> Result<Box<dyn Sink>, ConfigError> {
        match self {
            Protocol::Syslog(config) => config.sink(name),
            Protocol::Radius(config) => config.sink(name),
        }
    }
}

/// The keys every destination has.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Common {
    name: String,
    #[serde(default)]
    min_severity: Option<Severity>,
    #[serde(default)]
    kinds: Vec<String>,
    #[serde(default)]
    processes: Vec<String>,
    #[serde(default)]
    start: StartAt,
    #[serde(default)]
    retry_max_ms: Option<u64>,
}

const COMMON_KEYS: [&str; 6] = ["name", "min_severity", "kinds", "processes", "start", "retry_max_ms"];

impl<'de> Deserialize<'de> for DestinationConfig {
    /// Splits the table: the common keys into [`Common`], the rest into the protocol's struct,
    /// each refusing keys it does not know. (serde's `flatten` would accept any key.)
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        use serde_json::{Map, Value};
        let mut table = Map::deserialize(deserializer)?;
        let common: Map<String, Value> = COMMON_KEYS.iter().filter_map(|key| table.remove_entry(*key)).collect();
        let common: Common = serde_json::from_value(Value::Object(common)).map_err(D::Error::custom)?;
        let kind = table.remove("type").ok_or_else(|| D::Error::missing_field("type"))?;
        let rest = Value::Object(table);
        let protocol = match kind.as_str() {
            Some("syslog") => Protocol::Syslog(serde_json::from_value(rest).map_err(D::Error::custom)?),
            Some("radius") => Protocol::Radius(serde_json::from_value(rest).map_err(D::Error::custom)?),
            _ => {
                return Err(D::Error::custom(format!(
                    "type {kind} is not a destination type: use \"syslog\" or \"radius\""
                )));
            }
        };
        Ok(DestinationConfig {
            name: common.name,
            selection: Selection {
                min_severity: common.min_severity,
                kinds: common.kinds,
                processes: common.processes,
            },
            start: common.start,
            retry_max_ms: common.retry_max_ms,
            protocol,
        })
    }
}

/// Where a destination seen for the first time starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// Only events committed after the destination was first started (the default: adding a
    /// destination does not replay years of history into it).
    #[default]
    Newest,
    /// Every event in the trail, oldest first.
    Oldest,
}

/// Which events a destination forwards: its `min_severity` (`notice` forwards emerg through
/// notice), `kinds` (`AUTH_*` matches every kind starting with `AUTH_`) and `processes`; an
/// empty list allows everything. Events it skips still move its cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub min_severity: Option<Severity>,
    pub kinds: Vec<String>,
    pub processes: Vec<String>,
}

impl Selection {
    pub fn matches(&self, event: &Event) -> bool {
        let body = &event.body;
        self.min_severity.is_none_or(|min| body.severity <= min)
            && (self.kinds.is_empty() || self.kinds.iter().any(|k| kind_matches(k, &body.kind)))
            && (self.processes.is_empty() || self.processes.contains(&body.process))
    }
}

fn kind_matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => kind.starts_with(prefix),
        None => pattern == kind,
    }
}

impl DestinationConfig {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn type_name(&self) -> &'static str {
        match self.protocol {
            Protocol::Syslog(_) => "syslog",
            Protocol::Radius(_) => "radius",
        }
    }

    /// Where it sends, as shown in reports.
    pub fn target(&self) -> String {
        match &self.protocol {
            Protocol::Syslog(c) => c.url.clone(),
            Protocol::Radius(c) => c.servers.join(", "),
        }
    }

    /// The longest wait between attempts.
    pub fn retry_max(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.retry_max_ms.unwrap_or(5_000).max(10))
    }
}

/// Names key the durable cursors, so two destinations may not share one.
pub fn check_unique_names(configs: &[DestinationConfig]) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for config in configs {
        let name = config.name();
        if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(ConfigError::new(name, "a name is 1-64 characters of A-Z a-z 0-9 - _ ."));
        }
        if !seen.insert(name) {
            return Err(ConfigError::new(name, "two destinations have this name; names must be unique"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use trail_core::EventId;

    #[test]
    fn selection_by_severity_kind_and_process() {
        let event = |kind: &str, process: &str, severity: &str| -> Event {
            let input: trail_core::EventInput = serde_json::from_value(serde_json::json!({
                "user": "alice", "kind": kind, "process": process, "action": "x", "severity": severity,
                "message": "m"
            }))
            .unwrap();
            Event {
                id: EventId::new(1),
                body: input.validate(jiff::Timestamp::UNIX_EPOCH).unwrap(),
                hash: String::new(),
            }
        };
        let selection = Selection {
            min_severity: Some(Severity::Notice),
            kinds: vec!["AUTH_*".into(), "ACME.SYNC".into()],
            processes: vec![],
        };
        assert!(selection.matches(&event("AUTH_LOGOUT", "trail-auth", "warning")));
        assert!(selection.matches(&event("ACME.SYNC", "acme", "notice")));
        assert!(!selection.matches(&event("AUTH_LOGOUT", "trail-auth", "info")), "below the minimum");
        assert!(!selection.matches(&event("ACME.SYNC2", "acme", "err")), "exact kinds are exact");
        let by_process = Selection { processes: vec!["acme".into()], ..Selection::default() };
        assert!(by_process.matches(&event("ACME.SYNC", "acme", "debug")));
        assert!(!by_process.matches(&event("ACME.SYNC", "other", "debug")));
    }

    #[test]
    fn destinations_parse_and_typos_are_refused() {
        let text = r#"
            [[destinations]]
            name = "siem"
            type = "syslog"
            url = "tcp://127.0.0.1:15514"
            format = "rfc5424"
            min_severity = "notice"
            [[destinations]]
            name = "aaa"
            type = "radius"
            servers = ["127.0.0.1:18131"]
            secret = "testing123"
        "#;
        #[derive(Deserialize)]
        struct File {
            destinations: Vec<DestinationConfig>,
        }
        let file: File = toml::from_str(text).unwrap();
        assert_eq!(file.destinations.len(), 2);
        assert_eq!(file.destinations[0].selection.min_severity, Some(Severity::Notice));
        check_unique_names(&file.destinations).unwrap();
        let typo = toml::from_str::<File>(&text.replace("format", "fromat")).err().unwrap().to_string();
        assert!(typo.contains("fromat"), "{typo}");
        let mut twice = file.destinations.clone();
        twice.push(file.destinations[0].clone());
        assert!(check_unique_names(&twice).unwrap_err().to_string().contains("unique"));
    }
}
