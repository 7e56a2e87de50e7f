//! The configuration file `trail serve` reads: any text is either refused with a message or
//! read into settings whose every check (roles, the authentication policy, sessions, the
//! listening address, checkpoints, witnesses' keys, destinations' names and addresses) answers
//! without panicking. Nothing here opens a database or a socket.

use trail::config::{FileConfig, parse_listen};
use trail_forward::config::Protocol;
use trail_forward::syslog::Encoder;
use trail_forward::syslog::config::Endpoint;

pub fn run(data: &[u8]) {
    let Some(text) = crate::text(data) else { return };
    let Ok(config) = FileConfig::parse(text) else { return };
    let _ = config.roles();
    let _ = config.auth.policy();
    let _ = config.auth.sessions();
    if let Some(listen) = &config.listen {
        let _ = parse_listen(listen);
    }
    let _ = config.checkpoints.every();
    for witness in &config.witnesses {
        let _ = trail_core::witness::CosignerVerifier::parse(&witness.key);
    }
    let _ = trail_forward::config::check_unique_names(&config.destinations);
    for destination in &config.destinations {
        match &destination.protocol {
            Protocol::Syslog(syslog) => {
                if let Ok(endpoint) = Endpoint::parse(&syslog.url) {
                    let _ = Encoder::new(syslog, endpoint.transport);
                }
            }
            Protocol::Radius(radius) => {
                let _ = (radius.timing(), radius.in_flight());
            }
        }
    }
}
