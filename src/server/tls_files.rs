//! What the serving pair and the client CA share: their errors, the crypto provider, reading
//! PEM certificates, and the one loop that re-reads a file-backed setting.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid PEM: {source}")]
    Pem {
        path: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)")]
    NoCertificate { path: String },
    #[error("{path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { path: String },
    #[error("the key in {key} cannot serve the certificate in {cert}: {source}")]
    Key {
        cert: String,
        key: String,
        #[source]
        source: rustls::Error,
    },
    #[error(
        "{path} is not a usable client CA: {reason}; pass the PEM certificate of the CA that signs the API server's webhook client certificate"
    )]
    ClientCa { path: String, reason: String },
    #[error("cannot build the TLS configuration: {0}")]
    Config(#[source] rustls::Error),
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// The certificates of a PEM file; at least one.
pub(crate) fn pem_certificates(
    pem: &[u8],
    path: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.to_string(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_string(),
        });
    }
    Ok(certs)
}

/// Re-reads a file-backed TLS setting every `interval` with `poll` (true: a new version is in
/// use), keeping the last good one when a new one fails to parse; `record` counts each reload.
pub async fn watch_file(
    interval: Duration,
    what: &str,
    path: &str,
    mut poll: impl FnMut() -> Result<bool, TlsError>,
    record: impl Fn(bool),
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match poll() {
            Ok(true) => {
                record(true);
                tracing::info!(file = %path, "{what} reloaded");
            }
            Ok(false) => {}
            Err(TlsError::Read { path, source }) => {
                // Mid-swap, or a file being rewritten: try again next tick without noise.
                tracing::debug!(%path, error = %source, "{what} file not readable yet");
            }
            Err(error) => {
                record(false);
                tracing::error!(%error, "new {what} rejected; keeping the previous one");
            }
        }
    }
}
