//! Availability attacks on the webhook port (any TLS client can reach it). Each test asserts what
//! the server should do, so it FAILS while the hole is open.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use notebook_volumes::server::{self, Config, PolicySource};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

#[allow(dead_code)]
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

fn ca() -> (CertificateDer<'static>, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "notebook-volumes test CA");
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("CA cert");
    (cert.der().clone(), Issuer::new(params, key))
}

fn leaf(issuer: &Issuer<'static, KeyPair>, name: &str) -> Leaf {
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().expect("leaf key");
    let cert = params.signed_by(&key, issuer).expect("leaf cert");
    Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

/// Writes a new version directory and swaps the `..data` symlink to it, as kubelet does.
fn publish(dir: &Path, version: u32, cert: &str, key: &str) {
    let versioned = dir.join(format!("..v{version}"));
    std::fs::create_dir(&versioned).expect("version dir");
    std::fs::write(versioned.join("tls.crt"), cert).expect("write cert");
    std::fs::write(versioned.join("tls.key"), key).expect("write key");
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..v{version}"), &tmp).expect("symlink");
    std::fs::rename(&tmp, dir.join("..data")).expect("swap ..data");
    for file in ["tls.crt", "tls.key"] {
        let link = dir.join(file);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{file}"), &link).expect("file link");
        }
    }
}

fn client_config(ca: &CertificateDer<'static>, tls12_only: bool) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).expect("CA into root store");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider);
    let builder = if tls12_only {
        builder.with_protocol_versions(&[&rustls::version::TLS12])
    } else {
        builder.with_safe_default_protocol_versions()
    }
    .expect("protocol versions");
    let mut config = builder.with_root_certificates(roots).with_no_client_auth();
    // A resumed session shows the certificate of the first handshake: always do a full one.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// One HTTPS request; returns the served leaf certificate and the raw HTTP response.

/// issue 8 item 10: a client that sends the headers and then trickles the body is never timed
/// out; hundreds of such connections hold file descriptors and workers' connection slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_slow_body_is_never_timed_out() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let (ca_der, issuer) = ca();
    let first = leaf(&issuer, "first");
    publish(dir.path(), 1, &first.cert_pem, &first.key_pem);
    let mut config = Config::new(
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
        PolicySource::Files {
            paths: vec!["examples/policies".into()],
            namespace: "notebook-volumes".into(),
        },
    );
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.probe_listen = "127.0.0.1:0".parse().expect("addr");
    config.shutdown_timeout = Duration::from_secs(1);
    config.workers = 1;
    let handle = server::start(config).await.expect("server starts");
    let addr: SocketAddr = handle.webhook_addr;
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("server name");
    let mut tls = TlsConnector::from(client_config(&ca_der, false))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    tls.write_all(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 3000000\r\n\r\n{")
        .await
        .expect("headers");
    tls.flush().await.expect("flush");
    // One byte every few seconds would do; here nothing more at all. After 20 s (longer than any
    // webhook timeout the API server may use), the server should have given up on the body.
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(20), tls.read(&mut buf)).await;
    let still_open = read.is_err();
    let _ = handle.stop(false).await;
    assert!(
        !still_open,
        "the server still waits for the body after {:?}: no body read timeout",
        started.elapsed()
    );
}
