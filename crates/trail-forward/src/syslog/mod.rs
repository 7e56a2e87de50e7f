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

use crate::ConfigError;
use crate::runner::Sink;

pub(crate) fn sink(name: &str, config: &SyslogConfig) -> Result<Box<dyn Sink>, ConfigError> {
    let problem = |p: String| ConfigError::new(name, p);
    let endpoint = config::Endpoint::parse(&config.url).map_err(problem)?;
    let encoder = Encoder::new(config, endpoint.transport).map_err(problem)?;
    let tls = match endpoint.transport {
        config::Transport::Tls => Some(tls::connector(config, &endpoint.host).map_err(problem)?),
        _ => None,
    };
    Ok(Box::new(transport::SyslogSink::new(endpoint, encoder, config.framing, tls)))
}
