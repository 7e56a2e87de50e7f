//! RADIUS accounting (F3): each forwarded event is an Accounting-Request.
//!
//! - [`config`]: the destination's settings;
//! - [`accounting`]: which record an event makes (sessions: Start, Interim-Update, Stop);
//! - [`packet`]: the wire format and its authenticators;
//! - [`client`]: retransmission, failover and identifiers.
//!
//! Order: records go out in id order, several at once, but never two of one session at once,
//! so each session's Start, Interim-Updates and Stop arrive in order.

pub mod accounting;
pub mod client;
pub mod config;
pub mod packet;

pub use accounting::DICTIONARY;
pub use config::RadiusConfig;

use crate::sink::ConfigError;
use crate::sink::{SendFailed, Sink};
use async_trait::async_trait;
use client::{RadiusClient, Timing};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use trail_core::{Event, EventId};

pub(crate) struct RadiusSink {
    name: String,
    servers: Vec<SocketAddr>,
    secret: Vec<u8>,
    timing: Timing,
    nas_identifier: String,
    vendor: u32,
    in_flight: usize,
    client: Option<Arc<RadiusClient>>,
}

impl RadiusConfig {
    /// The destination's client, failing over across its servers.
    pub(crate) fn sink(&self, name: &str) -> Result<Box<dyn Sink>, ConfigError> {
        let problem = |p: String| ConfigError::new(name, p);
        if self.secret.is_empty() {
            return Err(problem("secret is empty: set the secret shared with the accounting servers".to_owned()));
        }
        Ok(Box::new(RadiusSink {
            name: name.to_owned(),
            servers: self.addresses().map_err(problem)?,
            secret: self.secret.as_bytes().to_vec(),
            timing: self.timing(),
            nas_identifier: self.nas_identifier.clone().unwrap_or_else(|| "trail".to_owned()),
            vendor: self.vendor_id.unwrap_or(32473),
            in_flight: self.in_flight().map_err(problem)?,
            client: None,
        }))
    }
}

impl RadiusSink {
    async fn client(&mut self) -> Result<Arc<RadiusClient>, SendFailed> {
        if self.client.is_none() {
            let client = RadiusClient::new(&self.name, self.servers.clone(), &self.secret, self.timing)
                .await
                .map_err(|e| SendFailed::io("cannot open a UDP socket", e))?;
            self.client = Some(Arc::new(client));
        }
        Ok(self.client.clone().expect("made above"))
    }
}

#[async_trait]
impl Sink for RadiusSink {
    async fn send(&mut self, events: &[Event], through: EventId) -> Result<Option<EventId>, SendFailed> {
        let client = self.client().await?;
        let mut in_flight = FuturesUnordered::new();
        let mut busy = HashSet::new();
        for event in events {
            let record = accounting::record(event, &self.nas_identifier, self.vendor);
            while in_flight.len() >= self.in_flight || busy.contains(&record.session) {
                let (session, result): (String, Result<(), String>) = in_flight.next().await.expect("in flight");
                busy.remove(&session);
                result.map_err(SendFailed)?;
            }
            busy.insert(record.session.clone());
            let client = client.clone();
            in_flight.push(async move {
                let result = client.send(&record).await;
                (record.session, result)
            });
        }
        while let Some((_, result)) = in_flight.next().await {
            result.map_err(SendFailed)?;
        }
        Ok(Some(through))
    }

    fn reset(&mut self) {}
}
