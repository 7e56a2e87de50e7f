//! The HTTP API end to end, one test binary: `helpers` starts a real server; the other modules
//! are the tests.

mod contract;
mod events;
mod helpers;
mod identity;
mod integrity;
mod operations;
mod security;
