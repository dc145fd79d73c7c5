//! Client-certificate authentication of the API server (`serve --client-ca-file`): the TLS port
//! then completes a handshake only with a client presenting a certificate chained to that CA.
//! The CA file is re-read like the serving pair (a bad new file is logged and ignored).
//!
//! No CA names are hinted to clients (the hints cannot follow a swapped CA): a client with one
//! certificate, like the API server with its webhook kubeconfig, always presents it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use super::tls_files::{TlsError, pem_certificates, provider, read, watch_file};
use crate::metrics::Metrics;

/// Builds a verifier accepting client certificates chained to the CAs in `pem`.
pub fn verifier_from_pem(pem: &[u8], path: &Path) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let name = path.display().to_string();
    let certs = pem_certificates(pem, &name)?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|source| TlsError::ClientCa {
            path: name.clone(),
            reason: source.to_string(),
        })?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|source| TlsError::ClientCa {
            path: name,
            reason: source.to_string(),
        })
}

/// Delegates every handshake to the current verifier.
#[derive(Debug)]
pub struct ReloadingClientVerifier {
    current: ArcSwap<Arc<dyn ClientCertVerifier>>,
}

impl ClientCertVerifier for ReloadingClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current
            .load()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current
            .load()
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current
            .load()
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current.load().supported_verify_schemes()
    }
}

/// Watches the client CA file and swaps the verifier when it changes.
pub struct ClientCaReloader {
    verifier: Arc<ReloadingClientVerifier>,
    path: PathBuf,
    /// Contents last looked at (good or bad), so a bad file is reported once.
    seen: Vec<u8>,
}

impl ClientCaReloader {
    /// Loads the initial CA; the server does not start without a valid one.
    pub fn load(path: &Path) -> Result<ClientCaReloader, TlsError> {
        let pem = read(path)?;
        let verifier = verifier_from_pem(&pem, path)?;
        Ok(ClientCaReloader {
            verifier: Arc::new(ReloadingClientVerifier {
                current: ArcSwap::from_pointee(verifier),
            }),
            path: path.to_path_buf(),
            seen: pem,
        })
    }

    pub fn verifier(&self) -> Arc<ReloadingClientVerifier> {
        Arc::clone(&self.verifier)
    }

    /// Re-reads the file: `Ok(true)` when a new CA is now used, `Ok(false)` when nothing
    /// changed, `Err` when the new contents are unusable (the old CA stays).
    pub fn poll(&mut self) -> Result<bool, TlsError> {
        let pem = read(&self.path)?;
        if pem == self.seen {
            return Ok(false);
        }
        let parsed = verifier_from_pem(&pem, &self.path);
        self.seen = pem;
        self.verifier.current.store(Arc::new(parsed?));
        Ok(true)
    }

    /// Polls forever at `interval`.
    pub async fn watch(mut self, interval: Duration, metrics: Arc<Metrics>) {
        let path = self.path.display().to_string();
        watch_file(
            interval,
            "client CA",
            &path,
            || self.poll(),
            |ok| metrics.client_ca_reload(ok),
        )
        .await
    }
}
