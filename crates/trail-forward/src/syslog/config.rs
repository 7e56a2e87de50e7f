//! A syslog destination's settings.
//!
//! ```toml
//! [[destinations]]
//! name = "siem"
//! type = "syslog"
//! url = "tls://siem.example.net:6514"   # udp:// tcp:// tls://
//! format = "rfc5424"                    # or rfc3164
//! framing = "octet-counting"            # or "lf" (TCP and TLS)
//! facility = "local0"
//! kind_facilities = { TFTP_REFUSED = "daemon" }
//! sd_id = "trail@32473"
//! ca_file = "/etc/trail/siem-ca.pem"
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// `udp://host:port`, `tcp://host:port` or `tls://host:port` (ports default to 514 and 6514).
    pub url: String,
    #[serde(default)]
    pub format: Format,
    /// Stream framing (RFC 6587); UDP sends one message per datagram.
    #[serde(default)]
    pub framing: Framing,
    /// The facility of every event but those overridden below (default `local0`).
    #[serde(default)]
    pub facility: Option<Facility>,
    /// Per-kind facilities. Authentication events (`AUTH_*`) go to `authpriv` unless set here.
    #[serde(default)]
    pub kind_facilities: BTreeMap<String, Facility>,
    /// The RFC 5424 SD-ID holding the event's fields and attributes: `name@enterprise-number`.
    #[serde(default)]
    pub sd_id: Option<String>,
    /// HOSTNAME in every message (default: this machine's host name).
    #[serde(default)]
    pub hostname: Option<String>,
    /// The longest message sent, in bytes; longer messages are cut (see the README).
    #[serde(default)]
    pub max_message_bytes: Option<usize>,
    /// TLS: the CA certificates (PEM) that sign the server's certificate (default: the
    /// system's, `/etc/ssl/certs/ca-certificates.crt`).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// TLS: the name the server's certificate must carry (default: the URL's host).
    #[serde(default)]
    pub server_name: Option<String>,
    /// TLS: a client certificate and its key (PEM), for servers that ask for one.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Rfc5424,
    Rfc3164,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    /// `LEN SP MSG` (RFC 6587 3.4.1): any message, line feeds included, arrives whole.
    #[default]
    OctetCounting,
    /// `MSG LF` (RFC 6587 3.4.2): line feeds inside a message are sent as `#012`.
    Lf,
}

/// Syslog facilities by their usual names (RFC 5424 table 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Facility(pub u8);

const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp",
    "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

impl Facility {
    pub const AUTHPRIV: Facility = Facility(10);
    pub const LOCAL0: Facility = Facility(16);
}

impl TryFrom<String> for Facility {
    type Error = String;

    fn try_from(name: String) -> Result<Facility, String> {
        FACILITIES
            .iter()
            .position(|f| *f == name)
            .map(|code| Facility(code as u8))
            .ok_or_else(|| format!("unknown facility {name:?}; use one of {}", FACILITIES.join(", ")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

/// A parsed destination URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub transport: Transport,
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let explain = || format!("url {url:?} is not udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT");
        let (scheme, rest) = url.split_once("://").ok_or_else(explain)?;
        let (transport, default_port) = match scheme {
            "udp" => (Transport::Udp, 514),
            "tcp" => (Transport::Tcp, 514),
            "tls" => (Transport::Tls, 6514),
            _ => return Err(explain()),
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(':') && (host.starts_with('[') || !host.contains(':')) => {
                (host, port.parse().map_err(|_| format!("url {url:?}: {port:?} is not a port"))?)
            }
            _ => (rest, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(explain());
        }
        Ok(Endpoint { transport, host: host.to_owned(), port })
    }

    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let e = Endpoint::parse("tcp://127.0.0.1:15514").unwrap();
        assert_eq!((e.transport, e.host.as_str(), e.port), (Transport::Tcp, "127.0.0.1", 15514));
        assert_eq!(Endpoint::parse("tls://siem.example.net").unwrap().port, 6514);
        assert_eq!(Endpoint::parse("udp://[::1]:514").unwrap().address(), "[::1]:514");
        assert!(Endpoint::parse("http://x:1").unwrap_err().contains("udp://"));
        assert!(Endpoint::parse("tcp://x:port").unwrap_err().contains("not a port"));
    }

    #[test]
    fn facilities_by_name() {
        assert_eq!(Facility::try_from("local0".to_owned()).unwrap(), Facility::LOCAL0);
        assert_eq!(Facility::try_from("authpriv".to_owned()).unwrap(), Facility::AUTHPRIV);
        assert!(Facility::try_from("local9".to_owned()).unwrap_err().contains("local7"));
    }
}
