//! `[checkpoints]`: how often the trail signs, with which key, under which name.

use crate::checkpointer::{Checkpointer, RetiringKey};
use crate::key::{self, KeyFileError};
use crate::witnesses::{WitnessConfig, Witnesses};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use trail_store::Store;

/// The key file's name in the data directory when `key_file` is not set.
pub const DEFAULT_KEY_FILE: &str = "checkpoint.key";

/// `[checkpoints]`; every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointsConfig {
    /// Sign a checkpoint this often when events other than checkpoints were added (default 10).
    pub every_seconds: Option<u64>,
    /// The signing key [default: `checkpoint.key` in the data directory]. Made at first start.
    pub key_file: Option<PathBuf>,
    /// The name of a key made at first start: the origin line of every checkpoint
    /// [default: `trail/` and 16 random hex digits].
    pub origin: Option<String>,
    /// Cosignatures that make a checkpoint final [default: 1 when `[[witnesses]]` are given].
    pub witnesses_required: Option<usize>,
}

/// Why the configuration builds no checkpointer.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Key(#[from] KeyFileError),
    #[error("{0}")]
    Witnesses(String),
}

impl CheckpointsConfig {
    pub fn key_file(&self, data: &Path) -> PathBuf {
        self.key_file.clone().unwrap_or_else(|| data.join(DEFAULT_KEY_FILE))
    }

    pub fn every(&self) -> Result<Duration, String> {
        match self.every_seconds.unwrap_or(10) {
            0 => Err("[checkpoints] every_seconds must be at least 1".into()),
            seconds => Ok(Duration::from_secs(seconds)),
        }
    }

    /// The checkpointer this configuration describes, with the `[[witnesses]]` given, its key
    /// read (or made, when there is none). Answers whether the key was made.
    pub fn build(
        &self,
        store: Arc<dyn Store>,
        data: &Path,
        witnesses: &[WitnessConfig],
    ) -> Result<(Checkpointer, bool), ConfigError> {
        let witnesses = Witnesses::new(witnesses, self.witnesses_required).map_err(ConfigError::Witnesses)?;
        let key_file = self.key_file(data);
        let (key, made) = key::load_or_create(&key_file, self.origin.as_deref())?;
        let retiring = key::load_retiring(&key_file, &key)?;
        let mut checkpointer = Checkpointer::new(store, key).with_witnesses(witnesses);
        if let Some((key, file)) = retiring {
            checkpointer = checkpointer.retiring(RetiringKey { key, file: Some(file) });
        }
        Ok((checkpointer, made))
    }
}
