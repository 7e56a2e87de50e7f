//! HTTPS without a proxy: a certificate chain and its key from PEM files, served with rustls and
//! reloaded in place ([`Tls::reload`], on SIGHUP), so a renewed certificate is taken without a
//! restart. Connections open at the reload keep the certificate they began with; new handshakes
//! get the new one. A reload that fails (a half-written file, a key that does not match) keeps the
//! certificate in use and says why.

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate file {}: {problem}; give `[tls] cert` a PEM file holding the server's certificate chain", file.display())]
    Certificate { file: PathBuf, problem: String },
    #[error("cannot read the key file {}: {problem}; give `[tls] key` the PEM file of the certificate's private key", file.display())]
    Key { file: PathBuf, problem: String },
    #[error("the key in {} does not fit the certificate in {}: {problem}", key.display(), cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf, problem: String },
}

/// The server's TLS settings, with the certificate currently served.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    current: Arc<Current>,
    acceptor: TlsAcceptor,
}

/// The certificate handed to each new handshake.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Tls {
    /// Reads the certificate chain and key; refuses files that do not hold a usable pair.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let current = Arc::new(Current(RwLock::new(Arc::new(certified_key(cert, key)?))));
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls { cert: cert.to_owned(), key: key.to_owned(), current, acceptor: TlsAcceptor::from(Arc::new(config)) })
    }

    /// Reads the files again; new handshakes get what they hold. On an error the certificate
    /// served so far stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(certified_key(&self.cert, &self.key)?);
        *self.current.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// The certificate file, for messages.
    pub fn cert_file(&self) -> &Path {
        &self.cert
    }

    pub(super) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

fn certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let bad_cert = |problem: String| TlsError::Certificate { file: cert.to_owned(), problem };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|error| bad_cert(error.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| bad_cert(error.to_string()))?;
    if chain.is_empty() {
        return Err(bad_cert("it holds no CERTIFICATE block".to_owned()));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|error| TlsError::Key { file: key.to_owned(), problem: error.to_string() })?;
    CertifiedKey::from_der(chain, private, &provider()).map_err(|error| TlsError::Mismatch {
        cert: cert.to_owned(),
        key: key.to_owned(),
        problem: error.to_string(),
    })
}
