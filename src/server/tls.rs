//! Serving certificate with reload: the resolver hands out the current pair from an `ArcSwap`, and
//! a poller re-reads the files every second (kubelet updates Secret volumes by swapping a
//! symlink, so inotify on the file itself is unreliable). A pair that fails to parse or whose key
//! does not match the certificate is logged and ignored: the last good pair keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::{self, PemObject};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::tls_files::{TlsError, pem_certificates, provider, read, watch_file};
use crate::certs::expiry::not_after;
use crate::metrics::Metrics;

/// Parses a certificate chain and its private key into a pair rustls can serve.
pub fn parse_pair(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
) -> Result<CertifiedKey, TlsError> {
    let cert_name = cert_path.display().to_string();
    let key_name = key_path.display().to_string();
    let certs = pem_certificates(cert_pem, &cert_name)?;
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

    /// Polls forever at `interval`; the expiry metric follows the pair being served.
    pub async fn watch(mut self, interval: Duration, metrics: Arc<Metrics>) {
        let path = self.cert_path.display().to_string();
        let resolver = self.resolver();
        record_expiry(&resolver, &metrics);
        watch_file(
            interval,
            "serving certificate",
            &path,
            || self.poll(),
            |ok| {
                metrics.certificate_reload(ok);
                record_expiry(&resolver, &metrics);
            },
        )
        .await
    }
}

/// Sets the expiry metric from the leaf certificate being served.
fn record_expiry(resolver: &ReloadingResolver, metrics: &Metrics) {
    let pair = resolver.current.load();
    if let Some(expiry) = pair.cert.first().and_then(|leaf| not_after(leaf)) {
        metrics.certificate_expires(expiry);
    }
}
