//! Local accounts (A1) as stored, and the changes made to them. A change is always stored with
//! the events that record it, in one transaction (see `Store::write_account`).

use super::password::PasswordHash;
use super::policy::AccountState;
use super::username::Username;
use jiff::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub username: Username,
    pub display_name: String,
    pub roles: Vec<String>,
    pub password: PasswordHash,
    pub state: AccountState,
    pub created_at: Timestamp,
}

/// One change to the accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountWrite {
    /// Refused if the username exists.
    Create(Account),
    /// The rest are refused if the username does not exist.
    Delete(Username),
    Password(Username, PasswordHash),
    State(Username, AccountState),
    Roles(Username, Vec<String>),
}

impl AccountWrite {
    pub fn username(&self) -> &Username {
        match self {
            AccountWrite::Create(account) => &account.username,
            AccountWrite::Delete(name)
            | AccountWrite::Password(name, _)
            | AccountWrite::State(name, _)
            | AccountWrite::Roles(name, _) => name,
        }
    }
}
