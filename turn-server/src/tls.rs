//! The TLS acceptor of the TURNS listener, from PEM files.
//!
//! rustls with the ring provider (the one already in the dependency tree; no aws-lc build),
//! certificates and keys parsed by `rustls-pki-types`' PEM support. Errors name the file.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring::default_provider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::TurnError;

/// Builds the acceptor from a PEM certificate chain and a PEM private key.
pub(crate) fn acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, TurnError> {
    let tls_err = |what: &'static str, path: &Path, reason: String| TurnError::Tls {
        what,
        path: path.to_owned(),
        reason,
    };
    let cert_pem =
        std::fs::read(cert_file).map_err(|e| tls_err("certificate", cert_file, e.to_string()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| tls_err("certificate", cert_file, e.to_string()))?;
    if certs.is_empty() {
        return Err(tls_err(
            "certificate",
            cert_file,
            "no CERTIFICATE block".into(),
        ));
    }
    let key_pem =
        std::fs::read(key_file).map_err(|e| tls_err("private key", key_file, e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| tls_err("private key", key_file, e.to_string()))?;
    let config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("configuration", cert_file, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls_err("configuration", cert_file, e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
