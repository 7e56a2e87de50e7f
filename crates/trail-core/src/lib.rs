//! Trail's domain core: events, the catalog, change rendering, filter matching, cursors and the
//! hash chain. No I/O happens here; storage, HTTP and the CLI build on these types.

pub mod audit;
pub mod catalog;
pub mod chain;
pub mod change;
pub mod checkpoint;
pub mod content;
pub mod diff;
pub mod event;
pub mod export;
pub mod fold;
pub mod identity;
pub mod ids;
pub mod operations;
pub mod pattern;
pub mod proof;
pub mod query;
pub mod request;
pub mod retention;
pub mod rotation;
pub mod severity;
pub mod time;
pub mod tree;
pub mod trigram;
pub mod witness;

pub use change::{Change, ChangeOp, VariableChange};
pub use event::{Attributes, Event, EventBody, EventInput, ValidationError};
pub use ids::{EventId, JobId};
pub use pattern::Pattern;
pub use query::{Cursor, DetailsReach, Filter, SearchPage, SearchQuery, UserFilter};
pub use severity::{Outcome, Severity};
