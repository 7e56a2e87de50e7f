//! What Trail's fuzz targets check. Each module takes the fuzzer's bytes, feeds them to one
//! parser or encoder, and panics when an oracle disagrees: a reference implementation written
//! apart from the code under test, a round trip, or an invariant the code documents.
//!
//! The libFuzzer harness (`/fuzz`, run by `scripts/fuzz`) calls [`TARGETS`]; the tests of this
//! crate run every target over its corpus (`corpus/<target>/`), where the inputs that once
//! failed are kept, so that a fixed crash stays fixed without a fuzzer.

pub mod change;
pub mod config;
pub mod cursor;
pub mod event;
pub mod pattern;
pub mod radius;
pub mod syslog;

/// A target: takes the fuzzer's bytes, panics when an oracle disagrees.
pub type Target = fn(&[u8]);

/// Every target, by name.
pub const TARGETS: &[(&str, Target)] = &[
    ("pattern", pattern::run),
    ("change", change::run),
    ("event", event::run),
    ("cursor", cursor::run),
    ("config", config::run),
    ("radius", radius::run),
    ("syslog", syslog::run),
];

/// The fuzzer's bytes as text; most targets take only what a client could send as UTF-8.
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}
