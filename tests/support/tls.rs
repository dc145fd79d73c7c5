//! TLS material for HTTPS endpoints that the API server calls during tests
//! (admission webhooks on `https://127.0.0.1:<port>/...`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use notebook_volumes::certs::{CertRequest, generate};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A fresh CA and a serving certificate it signed for `127.0.0.1`, `::1`
/// and `localhost`, made by the `certs` library.
pub struct TestTls {
    /// The CA certificate (PEM): what goes into a webhook's `caBundle`.
    pub ca_pem: String,
    /// The serving certificate (PEM).
    pub cert_pem: String,
    /// The serving certificate's PKCS#8 private key (PEM).
    pub key_pem: String,
}

impl TestTls {
    pub fn generate() -> TestTls {
        let request = CertRequest {
            dns_names: vec!["localhost".into()],
            ip_addresses: vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
            days: 1,
        };
        let certs = generate(&request).expect("generate test certificates");
        TestTls {
            ca_pem: certs.ca_cert_pem,
            cert_pem: certs.cert_pem,
            key_pem: certs.key_pem,
        }
    }

    /// A rustls server configuration serving the certificate, for
    /// `actix_web::HttpServer::bind_rustls_0_23`.
    pub fn server_config(&self) -> rustls::ServerConfig {
        install_crypto_provider();
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .expect("serving certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("a serving key");
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
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
