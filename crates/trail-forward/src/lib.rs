//! Forwarding (F1–F4): every committed event, in id order, to syslog servers and RADIUS
//! accounting servers, at least once, across restarts and peer outages.
//!
//! Each destination is a [`runner`] reading the store after its durable cursor and handing
//! batches to a sink: [`syslog`] (UDP, TCP, TLS; RFC 5424 or RFC 3164) or [`radius`] (our own
//! accounting client). The runner only moves the cursor past what the sink confirms, so a crash,
//! a restart or a peer outage resends rather than loses. No HTTP here: the server shows the
//! [`DestinationReport`]s this crate produces.

pub mod config;
#[cfg(feature = "peers")]
pub mod peers;
pub mod radius;
mod runner;
mod sink;
mod status;
pub mod syslog;

pub use config::{DestinationConfig, Selection, StartAt};
pub use sink::ConfigError;
pub use status::{DestinationReport, LastError};

use status::DestinationStatus;
use std::sync::Arc;
use tokio::sync::watch;
use trail_core::EventId;
use trail_store::ForwardingStore;

/// A destination's configuration could not be used: says which destination and what to fix.
/// The running destinations of one server.
pub struct Forwarding {
    statuses: Vec<Arc<DestinationStatus>>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    store: Option<Arc<dyn ForwardingStore>>,
}

impl Forwarding {
    /// No destinations (tests, and servers configured without any).
    pub fn none() -> Forwarding {
        Forwarding { statuses: Vec::new(), tasks: Default::default(), store: None }
    }

    /// Checks every configuration first (names unique, files readable, addresses valid), reads
    /// (or, for a new destination, sets) each cursor, then starts one task per destination.
    /// They run until `shutdown` turns true.
    pub async fn start(
        store: Arc<dyn ForwardingStore>,
        configs: Vec<DestinationConfig>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Forwarding, ConfigError> {
        config::check_unique_names(&configs)?;
        let mut prepared = Vec::with_capacity(configs.len());
        for config in configs {
            let sink = config.protocol.sink(config.name())?;
            prepared.push((config, sink));
        }
        let (mut statuses, mut tasks) = (Vec::new(), Vec::new());
        for (config, sink) in prepared {
            let cursor = runner::initial_cursor(&*store, &config)
                .await
                .map_err(|e| ConfigError::new(config.name(), format!("cannot read its cursor: {e}")))?;
            let status = Arc::new(DestinationStatus::new(&config));
            statuses.push(status.clone());
            let runner = runner::Runner::new(store.clone(), config, cursor, sink, status, shutdown.clone());
            tasks.push(tokio::spawn(runner.run_leased()));
        }
        Ok(Forwarding { statuses, tasks: std::sync::Mutex::new(tasks), store: Some(store) })
    }

    /// Each destination with its backlog and last error (F4).
    pub fn reports(&self) -> Vec<DestinationReport> {
        let head = match &self.store {
            Some(store) => *store.watch_head().borrow(),
            None => EventId::ZERO,
        };
        self.statuses.iter().map(|status| status.report(head)).collect()
    }

    /// Waits for every destination to stop after shutdown (each saves its cursor first).
    pub async fn stopped(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("tasks lock"));
        for task in tasks {
            let _ = task.await;
        }
    }
}
