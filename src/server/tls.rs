//! Serving certificate with reload: the resolver hands out the current pair from an `ArcSwap`, and
//! a poller re-reads the files every second (kubelet updates Secret volumes by swapping a
//! symlink, so inotify on the file itself is unreliable). A pair that fails to parse or whose key
//! does not match the certificate is logged and ignored: the last good pair keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::client_auth::ReloadingClientVerifier;
use super::metrics::Metrics;

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

/// Parses a certificate chain and its private key into a pair rustls can serve.
pub fn parse_pair(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
) -> Result<CertifiedKey, TlsError> {
    let cert_name = cert_path.display().to_string();
    let key_name = key_path.display().to_string();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Pem {
            path: cert_name.clone(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: cert_name });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|source| match source {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: key_name.clone(),
        },
        source => TlsError::Pem {
            path: key_name.clone(),
            source,
        },
    })?;
    CertifiedKey::from_der(certs, key, &provider()).map_err(|source| TlsError::Key {
        cert: cert_name,
        key: key_name,
        source,
    })
}

/// Hands every handshake the current pair.
#[derive(Debug)]
pub struct ReloadingResolver {
    current: ArcSwap<CertifiedKey>,
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Watches a certificate and key file pair and swaps the resolver's pair when they change.
pub struct CertReloader {
    resolver: Arc<ReloadingResolver>,
    cert_path: PathBuf,
    key_path: PathBuf,
    /// Contents last looked at (good or bad), so a bad pair is reported once.
    seen: (Vec<u8>, Vec<u8>),
}

impl CertReloader {
    /// Loads the initial pair; the server does not start without a valid one.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<CertReloader, TlsError> {
        let cert = read(cert_path)?;
        let key = read(key_path)?;
        let pair = parse_pair(&cert, &key, cert_path, key_path)?;
        Ok(CertReloader {
            resolver: Arc::new(ReloadingResolver {
                current: ArcSwap::from_pointee(pair),
            }),
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            seen: (cert, key),
        })
    }

    pub fn resolver(&self) -> Arc<ReloadingResolver> {
        Arc::clone(&self.resolver)
    }

    /// Re-reads the files: `Ok(true)` when a new pair is now served, `Ok(false)` when nothing
    /// changed, `Err` when the new contents are unusable (the old pair stays).
    pub fn poll(&mut self) -> Result<bool, TlsError> {
        let cert = read(&self.cert_path)?;
        let key = read(&self.key_path)?;
        if (&cert, &key) == (&self.seen.0, &self.seen.1) {
            return Ok(false);
        }
        let parsed = parse_pair(&cert, &key, &self.cert_path, &self.key_path);
        self.seen = (cert, key);
        let pair = parsed?;
        self.resolver.current.store(Arc::new(pair));
        Ok(true)
    }

    /// Polls forever at `interval`.
    pub async fn watch(mut self, interval: Duration, metrics: Arc<Metrics>) {
        let path = self.cert_path.display().to_string();
        watch_file(
            interval,
            "serving certificate",
            &path,
            || self.poll(),
            |ok| metrics.certificate_reload(ok),
        )
        .await
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// TLS 1.2 and 1.3 with rustls' safe defaults, certificates from the resolver. With a client
/// verifier (`--client-ca-file`) a client certificate is required; without, any client may
/// connect (the API server authenticates the webhook, not the other way round).
pub fn server_config(
    resolver: Arc<ReloadingResolver>,
    clients: Option<Arc<ReloadingClientVerifier>>,
) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?;
    let builder = match clients {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    Ok(builder.with_cert_resolver(resolver))
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
