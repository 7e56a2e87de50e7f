//! RFC 5424 severities and outcomes (E1, E3).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// RFC 5424 severity, 0 (emerg) to 7 (debug). Lower is more severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Severity {
    Emerg = 0,
    Alert = 1,
    Crit = 2,
    Err = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

impl Severity {
    pub const ALL: [Severity; 8] = [
        Severity::Emerg,
        Severity::Alert,
        Severity::Crit,
        Severity::Err,
        Severity::Warning,
        Severity::Notice,
        Severity::Info,
        Severity::Debug,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Severity> {
        Severity::ALL.get(usize::from(code)).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            Severity::Emerg => "emerg",
            Severity::Alert => "alert",
            Severity::Crit => "crit",
            Severity::Err => "err",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
            Severity::Info => "info",
            Severity::Debug => "debug",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a severity that is neither a known name nor a number 0–7.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}: use one of emerg, alert, crit, err, warning, notice, info, debug, or a number 0-7")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(text: &str) -> Result<Self, UnknownSeverity> {
        if let Ok(code) = text.parse::<u8>() {
            return Severity::from_code(code).ok_or_else(|| UnknownSeverity(text.to_owned()));
        }
        Severity::ALL.into_iter().find(|s| s.name() == text).ok_or_else(|| UnknownSeverity(text.to_owned()))
    }
}

impl Serialize for Severity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // The contract accepts the names and, on input, the numbers 0-7.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum NameOrCode {
            Name(String),
            Code(u64),
        }
        let text = match NameOrCode::deserialize(deserializer)? {
            NameOrCode::Name(name) => name,
            NameOrCode::Code(code) => code.to_string(),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What an event says happened: success, failure, or nothing to say (`null` in JSON).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }

    /// The stored form: 1 success, 2 failure (no outcome is stored as NULL).
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 1,
            Outcome::Failure => 2,
        }
    }

    pub fn from_code(code: i64) -> Option<Outcome> {
        match code {
            1 => Some(Outcome::Success),
            2 => Some(Outcome::Failure),
            _ => None,
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        match text {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_parse() {
        assert_eq!("warning".parse::<Severity>().unwrap(), Severity::Warning);
        assert_eq!("3".parse::<Severity>().unwrap(), Severity::Err);
        assert!("8".parse::<Severity>().is_err());
        assert!("WARNING".parse::<Severity>().is_err());
        let err = "loud".parse::<Severity>().unwrap_err().to_string();
        assert!(err.contains("emerg, alert"), "{err}");
    }

    #[test]
    fn json_accepts_numbers_and_writes_names() {
        let s: Severity = serde_json::from_str("4").unwrap();
        assert_eq!(s, Severity::Warning);
        assert_eq!(serde_json::to_string(&Severity::Notice).unwrap(), "\"notice\"");
    }
}
