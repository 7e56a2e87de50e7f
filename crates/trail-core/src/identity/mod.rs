//! Identity's domain (A1–A4): usernames, passwords, the authentication policy and rights. Pure
//! logic; storage, sessions and HTTP build on it.

pub mod account;
pub mod password;
pub mod policy;
pub mod rights;
pub mod session;
pub mod token;
pub mod username;

pub use account::{Account, AccountWrite};
pub use password::{PasswordError, PasswordHash};
pub use policy::{
    AccountState, AddressThrottle, Admission, Attempt, AuthEvent, AuthPolicy, ClientAnswer, FailureReason,
    FailureRecord, LockedBy, StoredAccountState, ThrottleSummary, UnknownNames,
};
pub use rights::{Right, RightSet, Roles, Scope};
pub use session::{Session, SessionPolicy, SessionState};
pub use token::{ApiToken, Grantor};
pub use username::{Username, UsernameError};
