//! `certs`: a private CA and a webhook serving certificate signed by it.
//!
//! The API server calls the webhook over TLS and checks the serving certificate against the
//! `caBundle` of the webhook configuration, so a cluster without cert-manager or OpenShift's
//! service CA needs both. [`generate`] is also what test harnesses call to make serving
//! certificates; [`run`] is the `notebook-volumes certs` subcommand.
//!
//! Keys are ECDSA P-256. The CA key is returned by [`generate`] but the subcommand never writes
//! it: nothing else can be signed with that CA, and rotating means generating a new pair and a new
//! `caBundle`.

pub mod expiry;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// DNS names of the default serving certificate: the in-cluster Service of the base manifests
/// (`notebook-volumes` in namespace `notebook-volumes`) and `localhost` for local runs.
pub const DEFAULT_DNS_NAMES: [&str; 3] = [
    "notebook-volumes.notebook-volumes.svc",
    "notebook-volumes.notebook-volumes.svc.cluster.local",
    "localhost",
];

/// Default lifetime of both certificates, in days.
pub const DEFAULT_DAYS: u32 = 365;

/// Longest lifetime accepted, in days (ten years).
pub const MAX_DAYS: u32 = 3650;

/// File names written by [`GeneratedCerts::write_to`], as in a `kubernetes.io/tls` Secret plus
/// the CA certificate.
pub const CA_CERT_FILE: &str = "ca.crt";
pub const TLS_CERT_FILE: &str = "tls.crt";
pub const TLS_KEY_FILE: &str = "tls.key";

/// How long before "now" certificates become valid, to tolerate clock skew between nodes.
const BACKDATE: Duration = Duration::hours(1);

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("lifetime must be between 1 and {MAX_DAYS} days, got {0}")]
    Lifetime(u32),
    #[error("the serving certificate needs at least one DNS name or IP address")]
    NoNames,
    #[error("'{name}' is not a valid DNS name for a certificate: {source}")]
    DnsName {
        name: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("cannot generate the {what}: {source}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("{path} already exists; pass --force to overwrite it")]
    Exists { path: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What to put in the serving certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRequest {
    /// DNS subject alternative names; the first one is also the subject common name.
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ip_addresses: Vec<IpAddr>,
    /// Lifetime of the CA and of the serving certificate, in days (1..=[`MAX_DAYS`]).
    pub days: u32,
}

impl Default for CertRequest {
    /// [`DEFAULT_DNS_NAMES`], `127.0.0.1`, [`DEFAULT_DAYS`].
    fn default() -> Self {
        CertRequest {
            dns_names: DEFAULT_DNS_NAMES.iter().map(|s| s.to_string()).collect(),
            ip_addresses: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            days: DEFAULT_DAYS,
        }
    }
}

/// PEM texts of a freshly generated CA and serving certificate.
#[derive(Clone)]
pub struct GeneratedCerts {
    /// The CA certificate (`ca.crt`; base64 of it is the webhook `caBundle`).
    pub ca_cert_pem: String,
    /// The CA private key, PKCS#8. Not written by the subcommand; kept for harnesses that sign more.
    pub ca_key_pem: String,
    /// The serving certificate (`tls.crt`), signed by the CA.
    pub cert_pem: String,
    /// The serving private key (`tls.key`), PKCS#8.
    pub key_pem: String,
}

/// Debug output of certificates with their private keys left out (`None` fields).
fn debug_redacted(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    fields: &[(&str, Option<&str>)],
) -> std::fmt::Result {
    let mut out = f.debug_struct(name);
    for (field, value) in fields {
        match value {
            Some(text) => out.field(field, text),
            None => out.field(field, &"<redacted>"),
        };
    }
    out.finish()
}

impl std::fmt::Debug for GeneratedCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_redacted(
            f,
            "GeneratedCerts",
            &[
                ("ca_cert_pem", Some(&self.ca_cert_pem)),
                ("ca_key_pem", None),
                ("cert_pem", Some(&self.cert_pem)),
                ("key_pem", None),
            ],
        )
    }
}

impl GeneratedCerts {
    /// The `caBundle` of a webhook configuration: base64 of the CA certificate PEM.
    pub fn ca_bundle(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.ca_cert_pem.as_bytes())
    }

    /// Writes `ca.crt`, `tls.crt` and `tls.key` (mode 0600 on Unix) into `dir`, creating it.
    /// Refuses to replace existing files unless `overwrite`. Returns the paths written.
    pub fn write_to(&self, dir: &Path, overwrite: bool) -> Result<Vec<PathBuf>, CertError> {
        std::fs::create_dir_all(dir).map_err(|source| CertError::Write {
            path: dir.display().to_string(),
            source,
        })?;
        let files = [
            (CA_CERT_FILE, &self.ca_cert_pem, false),
            (TLS_CERT_FILE, &self.cert_pem, false),
            (TLS_KEY_FILE, &self.key_pem, true),
        ];
        let paths: Vec<PathBuf> = files.iter().map(|(name, _, _)| dir.join(name)).collect();
        if let Some(path) = paths.iter().find(|p| !overwrite && p.exists()) {
            return Err(CertError::Exists {
                path: path.display().to_string(),
            });
        }
        for ((_, text, secret), path) in files.iter().zip(&paths) {
            write_file(path, text, *secret)?;
        }
        Ok(paths)
    }
}

fn write_file(path: &Path, text: &str, secret: bool) -> Result<(), CertError> {
    let err = |source| CertError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let mode = if secret { 0o600 } else { 0o644 };
        options.mode(mode);
        let mut file = options.open(path).map_err(err)?;
        // `mode` only applies to new files; an overwritten key must not keep looser permissions.
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(err)?;
        file.write_all(text.as_bytes()).map_err(err)
    }
    #[cfg(not(unix))]
    {
        let _ = secret;
        let mut file = options.open(path).map_err(err)?;
        file.write_all(text.as_bytes()).map_err(err)
    }
}

/// A certificate and its private key (PKCS#8), PEM.
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_redacted(
            f,
            "Issued",
            &[("cert_pem", Some(&self.cert_pem)), ("key_pem", None)],
        )
    }
}

/// A private CA that signs serving certificates (for the webhook) and client certificates (for
/// the API server's webhook kubeconfig, checked with `serve --client-ca-file`).
pub struct Authority {
    params: CertificateParams,
    key: KeyPair,
    cert_pem: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl Authority {
    /// A new CA named `common_name`, valid from one hour ago for `days` days; what it signs has
    /// the same lifetime.
    pub fn generate(common_name: &str, days: u32) -> Result<Authority, CertError> {
        if days == 0 || days > MAX_DAYS {
            return Err(CertError::Lifetime(days));
        }
        let not_before = OffsetDateTime::now_utc() - BACKDATE;
        let not_after = not_before + BACKDATE + Duration::days(i64::from(days));
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate().map_err(generate_error("CA key"))?;
        let cert = params
            .self_signed(&key)
            .map_err(generate_error("CA certificate"))?;
        Ok(Authority {
            params,
            cert_pem: cert.pem(),
            key,
            not_before,
            not_after,
        })
    }

    /// The CA certificate, PEM (what clients trust).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A serving certificate (`serverAuth`) for the DNS names and IP addresses of `request`;
    /// the first name is its common name.
    pub fn serving(&self, request: &CertRequest) -> Result<Issued, CertError> {
        if request.dns_names.is_empty() && request.ip_addresses.is_empty() {
            return Err(CertError::NoNames);
        }
        let mut sans = Vec::with_capacity(request.dns_names.len() + request.ip_addresses.len());
        for dns in &request.dns_names {
            let ia5 = dns
                .clone()
                .try_into()
                .map_err(|source| CertError::DnsName {
                    name: dns.clone(),
                    source,
                })?;
            sans.push(SanType::DnsName(ia5));
        }
        sans.extend(
            request
                .ip_addresses
                .iter()
                .map(|ip| SanType::IpAddress(*ip)),
        );
        let common_name = request
            .dns_names
            .first()
            .cloned()
            .or_else(|| request.ip_addresses.first().map(IpAddr::to_string))
            .unwrap_or_default();
        self.sign(
            &common_name,
            sans,
            ExtendedKeyUsagePurpose::ServerAuth,
            ("serving key", "serving certificate"),
        )
    }

    /// A client certificate (`clientAuth`) for `common_name`, e.g. the API server's identity
    /// when it calls webhooks.
    pub fn client(&self, common_name: &str) -> Result<Issued, CertError> {
        self.sign(
            common_name,
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
            ("client key", "client certificate"),
        )
    }

    fn sign(
        &self,
        common_name: &str,
        sans: Vec<SanType>,
        usage: ExtendedKeyUsagePurpose,
        (what_key, what_cert): (&'static str, &'static str),
    ) -> Result<Issued, CertError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name);
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        params.not_before = self.not_before;
        params.not_after = self.not_after;
        let key = KeyPair::generate().map_err(generate_error(what_key))?;
        let issuer = Issuer::new(self.params.clone(), &self.key);
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(generate_error(what_cert))?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn generate_error(what: &'static str) -> impl Fn(rcgen::Error) -> CertError {
    move |source| CertError::Generate { what, source }
}

/// Generates a CA and a serving certificate for `request`, both valid from one hour ago for
/// `request.days` days. The serving certificate has the DNS and IP SANs of the request, extended
/// key usage `serverAuth`, and is signed by the CA (path length 0).
pub fn generate(request: &CertRequest) -> Result<GeneratedCerts, CertError> {
    if request.dns_names.is_empty() && request.ip_addresses.is_empty() {
        return Err(CertError::NoNames);
    }
    let ca = Authority::generate("notebook-volumes CA", request.days)?;
    let serving = ca.serving(request)?;
    Ok(GeneratedCerts {
        ca_cert_pem: ca.cert_pem().to_string(),
        ca_key_pem: ca.key_pem(),
        cert_pem: serving.cert_pem,
        key_pem: serving.key_pem,
    })
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "notebook-volumes");
    dn.push(DnType::CommonName, common_name);
    dn
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use webpki::{EndEntityCert, KeyUsage, anchor_from_trusted_cert};

    const ALGS: &[&dyn rustls::pki_types::SignatureVerificationAlgorithm] =
        &[webpki::ring::ECDSA_P256_SHA256];

    fn der(pem: &str) -> CertificateDer<'static> {
        let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .expect("PEM certificates");
        assert_eq!(certs.len(), 1, "exactly one certificate in {pem}");
        certs.into_iter().next().expect("one certificate")
    }

    fn verify(ca_pem: &str, cert_pem: &str, name: &str) -> Result<(), webpki::Error> {
        let ca = der(ca_pem);
        let anchor = anchor_from_trusted_cert(&ca)?;
        let cert = der(cert_pem);
        let ee = EndEntityCert::try_from(&cert)?;
        ee.verify_for_usage(
            ALGS,
            &[anchor],
            &[],
            UnixTime::now(),
            KeyUsage::server_auth(),
            None,
            None,
        )?;
        let server_name = ServerName::try_from(name.to_string()).expect("server name");
        ee.verify_is_valid_for_subject_name(&server_name)
    }

    #[test]
    fn serving_cert_chains_to_ca_for_every_default_san() {
        let certs = generate(&CertRequest::default()).expect("generate");
        for name in DEFAULT_DNS_NAMES.iter().copied().chain(["127.0.0.1"]) {
            verify(&certs.ca_cert_pem, &certs.cert_pem, name)
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
    }

    #[test]
    fn serving_cert_rejects_names_it_was_not_issued_for() {
        let certs = generate(&CertRequest::default()).expect("generate");
        for name in ["notebook-volumes.default.svc", "example.com", "10.0.0.1"] {
            assert!(
                verify(&certs.ca_cert_pem, &certs.cert_pem, name).is_err(),
                "{name} must not verify"
            );
        }
    }

    #[test]
    fn serving_cert_does_not_chain_to_another_ca() {
        let a = generate(&CertRequest::default()).expect("generate");
        let b = generate(&CertRequest::default()).expect("generate");
        assert!(verify(&b.ca_cert_pem, &a.cert_pem, "localhost").is_err());
    }

    #[test]
    fn custom_sans_are_used() {
        let request = CertRequest {
            dns_names: vec!["webhook.test.svc".into()],
            ip_addresses: vec![
                "10.96.0.10".parse().expect("ip"),
                "::1".parse().expect("ip"),
            ],
            days: 1,
        };
        let certs = generate(&request).expect("generate");
        for name in ["webhook.test.svc", "10.96.0.10", "::1"] {
            verify(&certs.ca_cert_pem, &certs.cert_pem, name)
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
        assert!(verify(&certs.ca_cert_pem, &certs.cert_pem, "localhost").is_err());
    }

    #[test]
    fn key_matches_serving_cert() {
        let certs = generate(&CertRequest::default()).expect("generate");
        let key = KeyPair::from_pem(&certs.key_pem).expect("key PEM");
        let message = b"admission review";
        let signature = rcgen::SigningKey::sign(&key, message).expect("sign");
        let cert = der(&certs.cert_pem);
        let ee = EndEntityCert::try_from(&cert).expect("parse");
        ee.verify_signature(webpki::ring::ECDSA_P256_SHA256, message, &signature)
            .expect("the serving key signs for the serving certificate");
        // And the CA key does not.
        let ca_key = KeyPair::from_pem(&certs.ca_key_pem).expect("CA key PEM");
        let other = rcgen::SigningKey::sign(&ca_key, message).expect("sign");
        assert!(
            ee.verify_signature(webpki::ring::ECDSA_P256_SHA256, message, &other)
                .is_err()
        );
    }

    #[test]
    fn pems_load_into_a_rustls_server_config() {
        let certs = generate(&CertRequest::default()).expect("generate");
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(certs.key_pem.as_bytes())
            .expect("a private key");
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![der(&certs.cert_pem)], key)
            .expect("rustls accepts the pair");
    }

    #[test]
    fn ca_bundle_is_base64_of_ca_pem() {
        let certs = generate(&CertRequest::default()).expect("generate");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(certs.ca_bundle())
            .expect("base64");
        assert_eq!(decoded, certs.ca_cert_pem.as_bytes());
        assert!(certs.ca_cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn lifetime_and_names_are_checked() {
        let zero = CertRequest {
            days: 0,
            ..CertRequest::default()
        };
        assert!(matches!(generate(&zero), Err(CertError::Lifetime(0))));
        let long = CertRequest {
            days: MAX_DAYS + 1,
            ..CertRequest::default()
        };
        assert!(matches!(generate(&long), Err(CertError::Lifetime(_))));
        let none = CertRequest {
            dns_names: vec![],
            ip_addresses: vec![],
            days: 1,
        };
        assert!(matches!(generate(&none), Err(CertError::NoNames)));
        let bad = CertRequest {
            dns_names: vec!["é.example".into()],
            ..CertRequest::default()
        };
        assert!(matches!(generate(&bad), Err(CertError::DnsName { .. })));
    }

    #[test]
    fn write_to_writes_three_files_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("certs");
        let certs = generate(&CertRequest::default()).expect("generate");
        let paths = certs.write_to(&out, false).expect("write");
        assert_eq!(paths.len(), 3);
        assert_eq!(
            std::fs::read_to_string(out.join(TLS_KEY_FILE)).expect("read"),
            certs.key_pem
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(out.join(TLS_KEY_FILE))
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = generate(&CertRequest::default()).expect("generate");
        assert!(matches!(
            again.write_to(&out, false),
            Err(CertError::Exists { .. })
        ));
        again.write_to(&out, true).expect("overwrite with force");
        assert_eq!(
            std::fs::read_to_string(out.join(CA_CERT_FILE)).expect("read"),
            again.ca_cert_pem
        );
    }

    #[test]
    fn debug_output_hides_private_keys() {
        let certs = generate(&CertRequest::default()).expect("generate");
        let text = format!("{certs:?}");
        assert!(!text.contains("PRIVATE KEY"));
    }
}
