//! Passwords: argon2id hashes in PHC form (salt and parameters inside), limits on what is
//! accepted, and a verification whose cost does not reveal whether the account exists.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash as Phc;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Longer passwords are refused: hashing megabytes on request would be a denial of service.
pub const MAX_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is empty")]
    Empty,
    #[error("the password is longer than {MAX_BYTES} bytes")]
    TooLong,
    #[error("the password could not be hashed: {0}")]
    Hashing(String),
}

/// A stored password hash (`$argon2id$v=19$...`).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

fn check(password: &str) -> Result<(), PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    if password.len() > MAX_BYTES {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

impl PasswordHash {
    /// Hashes a new password with argon2id and a random salt.
    pub fn create(password: &str) -> Result<PasswordHash, PasswordError> {
        check(password)?;
        let hash =
            Argon2::default().hash_password(password.as_bytes()).map_err(|e| PasswordError::Hashing(e.to_string()))?;
        Ok(PasswordHash(hash.to_string()))
    }

    /// A hash read back from storage.
    pub fn from_stored(text: String) -> PasswordHash {
        PasswordHash(text)
    }

    pub fn as_stored(&self) -> &str {
        &self.0
    }

    /// Whether `password` is the one hashed. The comparison inside argon2 is constant-time; a
    /// password over the limit or a damaged hash is simply wrong.
    pub fn verify(&self, password: &str) -> bool {
        if check(password).is_err() {
            return false;
        }
        match Phc::new(&self.0) {
            Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        }
    }
}

/// Spends the same work as a real verification, for logins naming an unknown user, so timing
/// does not tell which usernames exist.
pub fn verify_nobody(password: &str) -> bool {
    use std::sync::OnceLock;
    static DUMMY: OnceLock<PasswordHash> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| PasswordHash::create("no account has this password").expect("hashable"));
    let _ = dummy.verify(password);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_hide_the_password() {
        let hash = PasswordHash::create("correct horse").unwrap();
        assert!(hash.as_stored().starts_with("$argon2id$"));
        assert!(!hash.as_stored().contains("correct horse"));
        assert!(!format!("{hash:?}").contains("argon2"), "Debug never prints the hash");
        assert!(hash.verify("correct horse"));
        assert!(!hash.verify("correct horsE"));
        assert!(!hash.verify(""));
        assert_ne!(PasswordHash::create("correct horse").unwrap(), hash, "salted");
    }

    #[test]
    fn empty_and_huge_passwords_are_refused() {
        assert_eq!(PasswordHash::create(""), Err(PasswordError::Empty));
        assert_eq!(PasswordHash::create(&"x".repeat(MAX_BYTES + 1)), Err(PasswordError::TooLong));
        assert!(PasswordHash::create(&"x".repeat(MAX_BYTES)).is_ok());
        let hash = PasswordHash::create("p").unwrap();
        assert!(!hash.verify(&"p".repeat(10 * MAX_BYTES)));
    }

    #[test]
    fn unknown_users_never_verify() {
        assert!(!verify_nobody("anything"));
        assert!(!PasswordHash::from_stored("garbage".into()).verify("garbage"));
    }
}
