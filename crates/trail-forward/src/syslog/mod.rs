//! Syslog forwarding (F1): RFC 5424 (or RFC 3164) messages over UDP, TCP or TLS.
//!
//! - [`config`]: the destination's settings and their defaults;
//! - [`encoder`]: one event to one message, with the event's own time;
//! - [`transport`]: framing, connections, and what counts as delivered.

pub mod config;
pub mod encoder;
mod tls;
mod transport;

pub use config::{Facility, Format, Framing, SyslogConfig};
pub use encoder::Encoder;

use crate::sink::ConfigError;
use crate::sink::Sink;

impl SyslogConfig {
    /// The destination's transport with its encoder.
    pub(crate) fn sink(&self, name: &str) -> Result<Box<dyn Sink>, ConfigError> {
        let problem = |p: String| ConfigError::new(name, p);
        let endpoint = config::Endpoint::parse(&self.url).map_err(problem)?;
        let encoder = Encoder::new(self, endpoint.transport).map_err(problem)?;
        let tls = match endpoint.transport {
            config::Transport::Tls => Some(tls::connector(self, &endpoint.host).map_err(problem)?),
            _ => None,
        };
        Ok(Box::new(transport::SyslogSink::new(endpoint, encoder, self.framing, tls)))
    }
}
