//! Identity's domain (A1–A4): usernames, passwords, the authentication policy and rights. Pure
//! logic; storage, sessions and HTTP build on it.

pub mod account;
pub mod limits;
pub mod password;
pub mod policy;
pub mod rights;
pub mod session;
pub mod token;
pub mod username;

pub use account::{Account, AccountWrite};
pub use limits::{AddressAttempts, Admission, FailureRecord, LimitState, LoginLimit, Ticket, UnknownName};
pub use password::{PasswordError, PasswordHash};
pub use policy::{
    AccountState, Attempt, AuthEvent, AuthPolicy, ClientAnswer, FailureReason, LockedBy, StoredAccountState,
};
pub use rights::{Right, RightSet, Roles, Scope};
pub use session::{Session, SessionPolicy, SessionState};
pub use token::{ApiToken, Grantor};
pub use username::{Username, UsernameError};
