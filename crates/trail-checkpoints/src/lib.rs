//! Signed checkpoints of the trail's Merkle tree (S4): the key they are signed with (made at
//! first start), the checkpointer that signs them as the trail grows and records each as a
//! CHECKPOINT event, the witnesses that cosign them (`witnesses.rs`, Trail's side; `witness.rs`,
//! the witness's own, for `trail witness serve`), and their configuration. The formats (C2SP signed notes over
//! `tlog-checkpoint` bodies) are `trail_core::checkpoint`'s; this crate does the I/O around them.

mod checkpointer;
mod config;
pub mod key;
pub mod witness;
mod witnesses;

pub use checkpointer::{CheckpointError, Checkpointer, RetiringKey, TRAIL_USER};
pub use config::{CheckpointsConfig, ConfigError, DEFAULT_KEY_FILE};
pub use witnesses::{WitnessConfig, WitnessReport, Witnesses};
