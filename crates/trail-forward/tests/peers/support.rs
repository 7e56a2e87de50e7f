//! The forwarding tests' harness: a trail with its destinations running, and a poll helper. The
//! peers themselves are in `trail_forward::peers`.

pub use trail_forward::peers::*;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use trail_core::EventBody;
use trail_core::EventId;
use trail_forward::{DestinationConfig, Forwarding};
use trail_store::prelude::*;
use trail_store_sqlite::SqliteStore;

/// Polls `check` until it holds, or fails after `limit` with `what`.
pub async fn eventually<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A trail with forwarding running, as `trail serve` runs it.
pub struct Trail {
    pub store: Arc<SqliteStore>,
    forwarding: Option<(Forwarding, tokio::sync::watch::Sender<bool>)>,
    pub path: PathBuf,
    dir: Option<tempfile::TempDir>,
}

impl Trail {
    pub async fn new(destinations: &str) -> Trail {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trail.db");
        let mut trail = Trail::open(&path, destinations).await;
        trail.dir = Some(dir);
        trail
    }

    pub async fn open(path: &Path, destinations: &str) -> Trail {
        let store = Arc::new(SqliteStore::open(path).unwrap());
        let configs = parse_destinations(destinations);
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let forwarding = Forwarding::start(store.clone(), configs, stopping).await.unwrap();
        Trail { store, forwarding: Some((forwarding, stop)), path: path.to_owned(), dir: None }
    }

    pub fn forwarding(&self) -> &Forwarding {
        &self.forwarding.as_ref().unwrap().0
    }

    pub async fn append(&self, events: Vec<EventBody>) -> Vec<EventId> {
        self.store.append(events).await.unwrap()
    }

    /// Stops forwarding as a clean shutdown does, keeping the data directory.
    pub async fn shut_down(mut self) -> Option<tempfile::TempDir> {
        if let Some((forwarding, stop)) = self.forwarding.take() {
            stop.send(true).unwrap();
            forwarding.stopped().await;
        }
        self.dir.take()
    }
}

pub fn parse_destinations(text: &str) -> Vec<DestinationConfig> {
    #[derive(serde::Deserialize)]
    struct File {
        destinations: Vec<DestinationConfig>,
    }
    toml::from_str::<File>(text).unwrap().destinations
}

pub fn event(json: serde_json::Value) -> EventBody {
    let input: trail_core::EventInput = serde_json::from_value(json).unwrap();
    input.validate(jiff::Timestamp::now()).unwrap()
}
