//! Usernames, normalised so that two accounts cannot differ only by look-alike characters:
//! Unicode NFKC (fullwidth `ａｄｍｉｎ`, ligatures, the Kelvin sign fold to their plain forms), then
//! lower case.

use std::fmt;
use unicode_normalization::UnicodeNormalization;

pub const MAX_CHARS: usize = 64;

/// A normalised username.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("a username cannot be empty")]
    Empty,
    #[error("a username is at most {MAX_CHARS} characters")]
    TooLong,
    #[error("{0:?} is not allowed in a username: use letters, digits and . _ - @")]
    Character(char),
}

impl Username {
    pub fn parse(raw: &str) -> Result<Username, UsernameError> {
        let normal: String = raw.trim().nfkc().collect::<String>().to_lowercase().nfkc().collect();
        if normal.is_empty() {
            return Err(UsernameError::Empty);
        }
        if normal.chars().count() > MAX_CHARS {
            return Err(UsernameError::TooLong);
        }
        if let Some(bad) = normal.chars().find(|c| !(c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))) {
            return Err(UsernameError::Character(bad));
        }
        Ok(Username(normal))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(raw: &str) -> String {
        Username::parse(raw).unwrap().to_string()
    }

    #[test]
    fn look_alikes_and_case_meet() {
        assert_eq!(name("Admin"), "admin");
        assert_eq!(name("ＡＤＭＩＮ"), "admin", "fullwidth");
        assert_eq!(name("\u{212A}elvin"), "kelvin", "Kelvin sign");
        assert_eq!(name("ﬁona"), "fiona", "ligature");
        assert_eq!(name("  bob  "), "bob");
        assert_eq!(name("Jürgen"), name("Ju\u{0308}rgen"), "composed and decomposed");
        assert_eq!(name("ΣΟΦΙΑ"), "σοφια");
    }

    #[test]
    fn bad_names_are_explained() {
        assert_eq!(Username::parse("   "), Err(UsernameError::Empty));
        assert_eq!(Username::parse(&"a".repeat(65)), Err(UsernameError::TooLong));
        assert_eq!(Username::parse("al ice"), Err(UsernameError::Character(' ')));
        assert_eq!(Username::parse("a\u{0}b"), Err(UsernameError::Character('\u{0}')));
        assert!(Username::parse("ops.team-1@example").is_ok());
    }
}
