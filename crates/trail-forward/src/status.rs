//! What each destination reports: how far it has delivered, its backlog and its last error.

use crate::DestinationConfig;
use serde::Serialize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use trail_core::EventId;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LastError {
    /// RFC 3339.
    pub at: String,
    pub message: String,
}

/// One destination as the API, `/metrics` and `trail destinations` show it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DestinationReport {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub target: String,
    /// Every event up to this id is delivered (or skipped by the selection).
    pub delivered_through: EventId,
    /// Committed events after `delivered_through`.
    pub backlog: u64,
    /// Events sent since the server started (resends included).
    pub sent: u64,
    /// `delivering`; `retrying` after an error until a send succeeds again; or `standby` while
    /// another node holds this destination's lease (or the lease cannot be taken: see
    /// `last_error`).
    pub state: String,
    pub last_error: Option<LastError>,
}

pub(crate) struct DestinationStatus {
    name: String,
    type_name: &'static str,
    target: String,
    delivered_through: AtomicI64,
    sent: AtomicU64,
    failing: std::sync::atomic::AtomicBool,
    /// Another node holds the lease and forwards this destination.
    standby: std::sync::atomic::AtomicBool,
    last_error: Mutex<Option<LastError>>,
}

impl DestinationStatus {
    pub fn new(config: &DestinationConfig) -> DestinationStatus {
        DestinationStatus {
            name: config.name().to_owned(),
            type_name: config.type_name(),
            target: config.target(),
            delivered_through: AtomicI64::new(0),
            sent: AtomicU64::new(0),
            failing: Default::default(),
            standby: Default::default(),
            last_error: Mutex::new(None),
        }
    }

    pub fn delivered(&self, through: EventId, head: EventId) {
        self.delivered_through.store(through.get(), Ordering::SeqCst);
        let labels = [("destination", self.name.clone())];
        metrics::gauge!("trail_forward_delivered_through", &labels).set(through.get() as f64);
        metrics::gauge!("trail_forward_backlog", &labels).set((head - through).max(0) as f64);
    }

    pub fn standby(&self, waiting: bool) {
        self.standby.store(waiting, Ordering::SeqCst);
    }

    pub fn sent(&self, events: usize) {
        self.sent.fetch_add(events as u64, Ordering::Relaxed);
        self.failing.store(false, Ordering::SeqCst);
        metrics::counter!("trail_forward_sent_total", "destination" => self.name.clone()).increment(events as u64);
    }

    pub fn failed(&self, message: String) {
        tracing::warn!(destination = %self.name, %message, "forwarding failed; retrying");
        self.failing.store(true, Ordering::SeqCst);
        metrics::counter!("trail_forward_errors_total", "destination" => self.name.clone()).increment(1);
        let at = jiff::Timestamp::now().to_string();
        *self.last_error.lock().expect("status lock") = Some(LastError { at, message });
    }

    /// The report as of now; the backlog gauge follows, so a scrape sees it current.
    pub fn report(&self, head: EventId) -> DestinationReport {
        let delivered_through = EventId::new(self.delivered_through.load(Ordering::SeqCst));
        metrics::gauge!("trail_forward_backlog", "destination" => self.name.clone())
            .set((head - delivered_through).max(0) as f64);
        DestinationReport {
            name: self.name.clone(),
            type_name: self.type_name.to_owned(),
            target: self.target.clone(),
            delivered_through,
            backlog: (head - delivered_through).max(0) as u64,
            sent: self.sent.load(Ordering::Relaxed),
            state: if self.standby.load(Ordering::SeqCst) {
                "standby"
            } else if self.failing.load(Ordering::SeqCst) {
                "retrying"
            } else {
                "delivering"
            }
            .to_owned(),
            last_error: self.last_error.lock().expect("status lock").clone(),
        }
    }
}
