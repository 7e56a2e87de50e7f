//! A RADIUS accounting destination's settings.
//!
//! ```toml
//! [[destinations]]
//! name = "aaa"
//! type = "radius"
//! servers = ["10.0.0.5:1813", "10.0.0.6:1813"]   # tried in order, failing over
//! secret = "..."
//! vendor_id = 32473        # your enterprise number; match dictionary.trail
//! nas_identifier = "trail"
//! ```

use super::client::Timing;
use serde::Deserialize;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusConfig {
    /// `host:port` (port 1813 when left out), in failover order.
    pub servers: Vec<String>,
    pub secret: String,
    #[serde(default)]
    pub nas_identifier: Option<String>,
    /// The enterprise number of the vendor-specific attributes (default 32473, RFC 5612's
    /// documentation number).
    #[serde(default)]
    pub vendor_id: Option<u32>,
    /// RFC 5080 IRT, MRT, MRC and MRD (defaults 2000 ms, 16000 ms, 5, 30000 ms).
    #[serde(default)]
    pub initial_timeout_ms: Option<u64>,
    #[serde(default)]
    pub max_timeout_ms: Option<u64>,
    #[serde(default)]
    pub max_retransmits: Option<u32>,
    #[serde(default)]
    pub max_duration_ms: Option<u64>,
    /// Records in flight at once (1-128, default 32); a session's records go one at a time.
    #[serde(default)]
    pub max_in_flight: Option<usize>,
}

impl RadiusConfig {
    pub fn timing(&self) -> Timing {
        let defaults = Timing::default();
        let ms = |value: Option<u64>, default: Duration| value.map_or(default, Duration::from_millis);
        Timing {
            initial: ms(self.initial_timeout_ms, defaults.initial),
            max: ms(self.max_timeout_ms, defaults.max),
            max_retransmits: self.max_retransmits.unwrap_or(defaults.max_retransmits),
            max_duration: ms(self.max_duration_ms, defaults.max_duration),
        }
    }

    pub fn addresses(&self) -> Result<Vec<SocketAddr>, String> {
        if self.servers.is_empty() {
            return Err("servers is empty: name at least one accounting server".to_owned());
        }
        self.servers
            .iter()
            .map(|server| {
                let with_port = if server.parse::<SocketAddr>().is_ok()
                    || server.rsplit_once(':').is_some_and(|(h, _)| !h.contains(':'))
                {
                    server.clone()
                } else {
                    format!("{server}:1813")
                };
                with_port
                    .to_socket_addrs()
                    .map_err(|e| format!("server {server:?}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("server {server:?} has no address"))
            })
            .collect::<Result<Vec<SocketAddr>, String>>()
            .and_then(|addresses| {
                // One socket sends to them all, so they share an address family.
                if addresses.iter().any(|a| a.is_ipv4() != addresses[0].is_ipv4()) {
                    return Err("servers mix IPv4 and IPv6 addresses; use one family per destination".to_owned());
                }
                Ok(addresses)
            })
    }

    /// Each record in flight may hold two of RADIUS's 256 identifiers.
    pub fn in_flight(&self) -> Result<usize, String> {
        match self.max_in_flight.unwrap_or(32) {
            n @ 1..=128 => Ok(n),
            n => Err(format!("max_in_flight is {n}; use 1-128 (RADIUS has 256 identifiers, two per record)")),
        }
    }
}
