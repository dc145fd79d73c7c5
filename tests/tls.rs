//! The real server over TLS: certificates from disk in the layout kubelet uses for Secret volumes
//! (files behind a `..data` symlink swapped atomically), reloaded without restart; a broken new
//! pair keeps the old one serving.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use notebook_volumes::certs::{Authority, CertRequest};
use notebook_volumes::server::{self, Config};
use nv_test_support::server_config::{example_policies, local_config};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

fn der_of(pem: &str) -> CertificateDer<'static> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .expect("a certificate")
        .expect("PEM certificate")
}

/// A CA from the `certs` library and the DER of its certificate (what clients trust).
fn ca() -> (CertificateDer<'static>, Authority) {
    let ca = Authority::generate("notebook-volumes test CA", 1).expect("CA");
    (der_of(ca.cert_pem()), ca)
}

/// A serving certificate for `localhost` signed by `ca`.
fn leaf(ca: &Authority) -> Leaf {
    let request = CertRequest {
        dns_names: vec!["localhost".into()],
        ip_addresses: Vec::new(),
        days: 1,
    };
    let issued = ca.serving(&request).expect("serving certificate");
    Leaf {
        der: der_of(&issued.cert_pem).to_vec(),
        cert_pem: issued.cert_pem,
        key_pem: issued.key_pem,
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
async fn https(addr: SocketAddr, config: Arc<ClientConfig>, request: &[u8]) -> (Vec<u8>, String) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("server name");
    let mut tls = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    let served = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .expect("server certificate")
        .to_vec();
    tls.write_all(request).await.expect("send");
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await.expect("read response");
    (served, String::from_utf8_lossy(&response).into_owned())
}

fn post(path: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

async fn served_cert(addr: SocketAddr, config: Arc<ClientConfig>) -> Vec<u8> {
    https(addr, config, &post("/validate", b"{}")).await.0
}

async fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.expect("connect probe port");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).await.expect("read");
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_over_tls_and_reloads_certificates_from_disk() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let (ca_der, issuer) = ca();
    let first = leaf(&issuer);
    publish(dir.path(), 1, &first.cert_pem, &first.key_pem);

    let mut config = local_config(dir.path(), example_policies());
    config.cert_poll = Duration::from_millis(100);
    let handle = server::start(config).await.expect("server starts");
    let addr = handle.webhook_addr;
    let client = client_config(&ca_der, false);

    // A real admission over TLS.
    let body = std::fs::read("tests/fixtures/kubespawner-alice.json").expect("fixture");
    let (served, response) = https(addr, client.clone(), &post("/mutate", &body)).await;
    assert_eq!(served, first.der);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"allowed\":true"), "{response}");
    assert!(
        response.contains("\"patchType\":\"JSONPatch\""),
        "{response}"
    );

    // TLS 1.2 clients are served too.
    assert_eq!(
        served_cert(addr, client_config(&ca_der, true)).await,
        first.der
    );

    // The probe port is plain HTTP.
    assert!(
        http_get(handle.probe_addr, "/healthz")
            .await
            .starts_with("HTTP/1.1 200")
    );
    assert!(
        http_get(handle.probe_addr, "/readyz")
            .await
            .starts_with("HTTP/1.1 200")
    );

    // kubelet swaps in a new pair: it is served without restart.
    let second = leaf(&issuer);
    publish(dir.path(), 2, &second.cert_pem, &second.key_pem);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if served_cert(addr, client.clone()).await == second.der {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "new certificate not served within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A broken pair, then a key that does not match its certificate: the last good pair stays.
    publish(
        dir.path(),
        3,
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
        "garbage",
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(served_cert(addr, client.clone()).await, second.der);
    let third = leaf(&issuer);
    publish(dir.path(), 4, &third.cert_pem, &second.key_pem);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(served_cert(addr, client.clone()).await, second.der);

    let metrics = handle.state.metrics.render();
    assert!(
        metrics.contains(r#"notebook_volumes_certificate_reloads_total{result="ok"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"notebook_volumes_certificate_reloads_total{result="error"} 2"#),
        "{metrics}"
    );

    // Fixed again: served.
    publish(dir.path(), 5, &third.cert_pem, &third.key_pem);
    let deadline = Instant::now() + Duration::from_secs(10);
    while served_cert(addr, client.clone()).await != third.der {
        assert!(
            Instant::now() < deadline,
            "fixed certificate not served within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    handle.stop(true).await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_start_without_a_valid_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("tls.crt"), "nothing").expect("write");
    std::fs::write(dir.path().join("tls.key"), "nothing").expect("write");
    let config = Config::new(
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
        example_policies(),
    );
    let error = server::start(config).await.err().expect("start fails");
    assert!(
        error.to_string().contains("holds no PEM certificate"),
        "{error}"
    );
}

/// A client certificate (`clientAuth`) signed by `ca`, as rustls presents it.
fn client_leaf(
    ca: &Authority,
    name: &str,
) -> (
    Vec<CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let issued = ca.client(name).expect("client certificate");
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())
        .expect("a client key");
    (vec![der_of(&issued.cert_pem)], key)
}

/// Trusts `ca`; presents `identity` when given.
fn client_with_identity(
    ca: &CertificateDer<'static>,
    identity: Option<(
        Vec<CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    )>,
    tls12_only: bool,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).expect("CA into root store");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider);
    let builder = if tls12_only {
        builder.with_protocol_versions(&[&rustls::version::TLS12])
    } else {
        builder.with_safe_default_protocol_versions()
    }
    .expect("protocol versions")
    .with_root_certificates(roots);
    let mut config = match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .expect("client identity"),
        None => builder.with_no_client_auth(),
    };
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// One request; `Err` when the server refused the handshake (seen by the client at the
/// handshake with TLS 1.2, at the first read with TLS 1.3) or sent nothing back.
async fn try_https(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    request: &[u8],
) -> Result<String, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").expect("server name");
    let mut tls = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(request).await.map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    tls.read_to_end(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    if response.is_empty() {
        return Err("connection closed without an answer".into());
    }
    Ok(String::from_utf8_lossy(&response).into_owned())
}

fn pem(der: &CertificateDer<'_>) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// Replaces a file atomically (as a kubelet Secret update appears to the reader).
fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_client_ca_only_clients_with_its_certificates_are_answered() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let (server_ca, server_issuer) = ca();
    let serving = leaf(&server_issuer);
    publish(dir.path(), 1, &serving.cert_pem, &serving.key_pem);
    let (api_ca, api_issuer) = ca();
    let (other_ca, other_issuer) = ca();
    let ca_file = dir.path().join("client-ca.crt");
    std::fs::write(&ca_file, pem(&api_ca)).expect("client CA");

    let mut config = local_config(dir.path(), example_policies());
    config.cert_poll = Duration::from_millis(100);
    config.client_ca = Some(ca_file.clone());
    let handle = server::start(config).await.expect("server starts");
    let addr = handle.webhook_addr;
    let body = std::fs::read("tests/fixtures/kubespawner-alice.json").expect("fixture");
    let request = post("/mutate", &body);

    for tls12 in [false, true] {
        // No client certificate: refused.
        let none = try_https(
            addr,
            client_with_identity(&server_ca, None, tls12),
            &request,
        )
        .await;
        assert!(
            none.is_err(),
            "answered without a client certificate: {none:?}"
        );
        // A certificate from another CA: refused.
        let wrong = client_with_identity(
            &server_ca,
            Some(client_leaf(&other_issuer, "intruder")),
            tls12,
        );
        let wrong = try_https(addr, wrong, &request).await;
        assert!(wrong.is_err(), "answered a foreign certificate: {wrong:?}");
        // The API server's certificate: answered.
        let right = client_with_identity(
            &server_ca,
            Some(client_leaf(&api_issuer, "kube-apiserver")),
            tls12,
        );
        let answer = try_https(addr, right, &request)
            .await
            .expect("the API server's client certificate is accepted");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("\"allowed\":true"), "{answer}");
    }

    // The CA file is replaced (rotation): the new CA's clients get in, the old one's no longer.
    replace(&ca_file, &pem(&other_ca));
    let deadline = Instant::now() + Duration::from_secs(10);
    let rotated = client_with_identity(
        &server_ca,
        Some(client_leaf(&other_issuer, "kube-apiserver")),
        false,
    );
    while try_https(addr, rotated.clone(), &request).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "new client CA not used within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let old = client_with_identity(
        &server_ca,
        Some(client_leaf(&api_issuer, "kube-apiserver")),
        false,
    );
    assert!(try_https(addr, old, &request).await.is_err());

    // A broken CA file keeps the last good CA.
    replace(&ca_file, "not a certificate");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(try_https(addr, rotated.clone(), &request).await.is_ok());
    let metrics = handle.state.metrics.render();
    assert!(
        metrics.contains(r#"notebook_volumes_client_ca_reloads_total{result="ok"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"notebook_volumes_client_ca_reloads_total{result="error"} 1"#),
        "{metrics}"
    );
    handle.stop(true).await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_start_with_an_unusable_client_ca() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, issuer) = ca();
    let serving = leaf(&issuer);
    publish(dir.path(), 1, &serving.cert_pem, &serving.key_pem);
    std::fs::write(dir.path().join("ca.crt"), "nothing").expect("write");
    let mut config = Config::new(
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
        example_policies(),
    );
    config.client_ca = Some(dir.path().join("ca.crt"));
    let error = server::start(config).await.err().expect("start fails");
    assert!(
        error.to_string().contains("holds no PEM certificate"),
        "{error}"
    );
}
