//! TLS for syslog (RFC 5425) via rustls: the server is checked against a CA file and a name;
//! a client certificate is offered when configured.

use super::SyslogConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

pub(crate) struct Connector {
    pub connector: tokio_rustls::TlsConnector,
    pub server_name: ServerName<'static>,
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let read = CertificateDer::pem_file_iter(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certificates: Vec<_> =
        read.collect::<Result<_, _>>().map_err(|e| format!("{} is not PEM certificates: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    Ok(certificates)
}

pub(crate) fn connector(config: &SyslogConfig, host: &str) -> Result<Connector, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let ca_file = config.ca_file.clone().unwrap_or_else(|| PathBuf::from(SYSTEM_CAS));
    for certificate in certificates(&ca_file)? {
        roots.add(certificate).map_err(|e| format!("{}: {e}", ca_file.display()))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let client = match (&config.client_cert, &config.client_key) {
        (Some(cert), Some(key)) => {
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("cannot read {}: {e}", key.display()))?;
            builder.with_client_auth_cert(certificates(cert)?, key).map_err(|e| format!("client certificate: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("client_cert and client_key go together: set both or neither".to_owned()),
    };
    let name = config.server_name.clone().unwrap_or_else(|| host.to_owned());
    let server_name = ServerName::try_from(name.clone()).map_err(|_| format!("{name:?} is not a valid server name"))?;
    Ok(Connector { connector: tokio_rustls::TlsConnector::from(Arc::new(client)), server_name })
}
