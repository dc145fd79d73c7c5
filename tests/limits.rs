//! The real server over TLS against slow and numerous callers: a body that trickles in is cut
//! off after the body deadline while other requests keep being answered, and connections beyond
//! the cap wait in the accept queue until others close. Real sockets; the only time bounds are
//! generous ones (what must happen does so within 30 s; what must not happen does not within 2 s).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use notebook_volumes::certs::{CertRequest, GeneratedCerts, generate};
use notebook_volumes::server::{self, Handle};
use nv_test_support::server_config::{example_policies, local_config};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const GENEROUS: Duration = Duration::from_secs(30);

async fn start(
    body_timeout: Duration,
    max_connections: usize,
) -> (Handle, Arc<ClientConfig>, tempfile::TempDir) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let certs: GeneratedCerts = generate(&CertRequest {
        dns_names: vec!["localhost".into()],
        ip_addresses: vec![],
        days: 1,
    })
    .expect("certificates");
    certs
        .write_to(dir.path(), true)
        .expect("write certificates");
    let mut config = local_config(dir.path(), example_policies());
    config.body_timeout = body_timeout;
    config.max_connections = max_connections;
    let handle = server::start(config).await.expect("server starts");

    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(certs.ca_cert_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA into roots");
    }
    let client =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_root_certificates(roots)
            .with_no_client_auth();
    (handle, Arc::new(client), dir)
}

async fn connect(addr: SocketAddr, client: Arc<ClientConfig>) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    TlsConnector::from(client)
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS handshake")
}

/// Headers announcing a body of `length` bytes, and the first `sent` of them.
fn stalled_request(length: usize, sent: usize) -> Vec<u8> {
    let mut request = format!(
        "POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
    .into_bytes();
    request.extend(std::iter::repeat_n(b' ', sent));
    request
}

/// A complete admission on a fresh connection; returns the raw response.
async fn admission(addr: SocketAddr, client: Arc<ClientConfig>) -> String {
    let body = std::fs::read("tests/fixtures/kubespawner-alice.json").expect("fixture");
    let mut tls = connect(addr, client).await;
    let mut request = format!(
        "POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    tls.write_all(&request).await.expect("send");
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await.expect("read");
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_is_cut_off_while_other_requests_are_answered() {
    let (handle, client, _dir) = start(Duration::from_secs(2), 64).await;
    let addr = handle.webhook_addr;

    let mut slow = connect(addr, client.clone()).await;
    slow.write_all(&stalled_request(1000, 10))
        .await
        .expect("headers");
    // The body trickles in, a byte every 200 ms (never idle, never complete), until the server
    // closes the connection.
    let (mut slow_read, mut slow_write) = tokio::io::split(slow);
    let trickle = tokio::spawn(async move {
        for _ in 0..900 {
            if slow_write.write_all(b" ").await.is_err() || slow_write.flush().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    // Meanwhile other callers are answered.
    let answer = admission(addr, client.clone()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // The slow request gets a 408 and its connection is closed.
    let mut response = Vec::new();
    let read = tokio::time::timeout(GENEROUS, slow_read.read_to_end(&mut response)).await;
    trickle.abort();
    assert!(
        read.is_ok(),
        "the slow connection was still open after {GENEROUS:?}"
    );
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("request body not received"), "{response}");

    assert!(
        admission(addr, client.clone())
            .await
            .starts_with("HTTP/1.1 200")
    );
    let metrics = handle.state.metrics.render();
    assert!(
        metrics.contains(r#"notebook_volumes_requests_rejected_total{reason="body_timeout"} 1"#),
        "{metrics}"
    );
    handle.stop(false).await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_until_others_close() {
    let (handle, client, _dir) = start(Duration::from_secs(120), 2).await;
    let addr = handle.webhook_addr;

    // Two connections hold the cap, each in the middle of a request body.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut tls = connect(addr, client.clone()).await;
        tls.write_all(&stalled_request(1000, 1))
            .await
            .expect("headers");
        held.push(tls);
    }

    // A third caller: the kernel completes its TCP handshake, but the server does not take the
    // connection, so TLS does not complete.
    let third = tokio::spawn(admission(addr, client.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !third.is_finished(),
        "a connection beyond the cap was served"
    );

    // One held connection goes away: the third is accepted and answered.
    drop(held.pop());
    let answer = tokio::time::timeout(GENEROUS, third)
        .await
        .expect("the waiting connection was served once another closed")
        .expect("task");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(held);
    handle.stop(false).await.expect("stops");
}
