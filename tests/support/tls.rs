//! TLS material for HTTPS endpoints that the API server calls during tests
//! (admission webhooks on `https://127.0.0.1:<port>/...`).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A fresh CA and a serving certificate it signed for `127.0.0.1`, `::1`
/// and `localhost`.
pub struct TestTls {
    /// The CA certificate (PEM): what goes into a webhook's `caBundle`.
    pub ca_pem: String,
    /// The serving certificate (PEM).
    pub cert_pem: String,
    /// The serving certificate's PKCS#8 private key (PEM).
    pub key_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl TestTls {
    pub fn generate() -> TestTls {
        let ca_key = KeyPair::generate().expect("generate CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "notebook-volumes test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate().expect("generate serving key");
        let mut params = CertificateParams::new(vec![
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
            "localhost".to_owned(),
        ])
        .expect("serving certificate params");
        params
            .distinguished_name
            .push(DnType::CommonName, "notebook-volumes test endpoint");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &issuer)
            .expect("sign serving certificate");

        TestTls {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    /// A rustls server configuration serving the certificate, for
    /// `actix_web::HttpServer::bind_rustls_0_23`.
    pub fn server_config(&self) -> rustls::ServerConfig {
        install_crypto_provider();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![self.cert_der.clone()], key)
            .expect("serving certificate and key match")
    }

    /// The CA as raw bytes, for `caBundle` fields (`ByteString`).
    pub fn ca_bundle(&self) -> Vec<u8> {
        self.ca_pem.as_bytes().to_vec()
    }
}

/// Installs ring as rustls' process-wide crypto provider; a no-op when
/// one is already installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
