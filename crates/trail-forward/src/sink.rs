//! What every destination's transport is to the delivery loop: a sink that sends events and
//! says what the peer confirmed, and the errors of building and sending. Each destination's
//! configuration builds its own sink (`Protocol::sink`), so the loop never names a protocol.

use async_trait::async_trait;
use trail_core::{Event, EventId};

/// A destination's configuration is refused: which one, and why.
#[derive(Debug, thiserror::Error)]
#[error("destination {destination:?}: {problem}")]
pub struct ConfigError {
    pub destination: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(destination: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError { destination: destination.to_owned(), problem: problem.into() }
    }
}

/// Why a send failed, in words for the status and the log.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SendFailed(pub String);

impl SendFailed {
    pub fn io(what: &str, error: std::io::Error) -> SendFailed {
        SendFailed(format!("{what}: {error}"))
    }
}

/// A transport with its encoder.
#[async_trait]
pub(crate) trait Sink: Send + Sync {
    /// Sends `events` (the selected events of a batch that ends at id `through`), in order.
    /// Answers the id through which delivery is confirmed, which may lag `through` when the
    /// transport confirms late (TCP).
    async fn send(&mut self, events: &[Event], through: EventId) -> Result<Option<EventId>, SendFailed>;

    /// Called while idle: what has been confirmed since.
    async fn settle(&mut self) -> Result<Option<EventId>, SendFailed> {
        Ok(None)
    }

    /// Drops the connection and whatever it had not confirmed, after a failure.
    fn reset(&mut self);

    /// At shutdown: closes cleanly, and answers what the peer is then known to have.
    async fn close(&mut self) -> Option<EventId> {
        None
    }
}
