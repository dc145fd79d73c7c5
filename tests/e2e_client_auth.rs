//! End-to-end: the API server authenticates to the webhook with a client certificate, as
//! docs/install.md sets it up: kube-apiserver runs with `--admission-control-config-file`
//! naming a kubeconfig that holds the client certificate for webhook calls, and the webhook
//! runs with `--client-ca-file`. Pods are admitted through the webhook; a webhook trusting
//! another CA refuses the API server (and pod creation fails closed), and so it does a caller
//! without a certificate.

use nv_test_support as support;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::PostParams;
use kube::{Api, Client};
use notebook_volumes::certs::Authority;
use notebook_volumes::keys;
use notebook_volumes::server::{self, Handle, PolicySource};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use support::webhook::*;
use support::{TestCluster, TestNamespace, install_crypto_provider};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A CA for webhook client certificates, from the `certs` library.
fn client_ca(name: &str) -> Authority {
    Authority::generate(name, 1).expect("client CA")
}

/// The API server's configuration for calling webhooks with a client certificate, written once
/// per test binary: the admission configuration file and the kubeconfig it names. Returns the
/// kube-apiserver flag and the CA (PEM) that signed the certificate.
fn apiserver_client_certificate() -> (String, String) {
    let dir = std::env::temp_dir().join(format!("nv-client-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("config dir");
    let ca = client_ca("webhook client CA");
    let ca_pem = ca.cert_pem().to_string();
    let client = ca
        .client("kube-apiserver-webhook-client")
        .expect("client certificate");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    // The user "*" applies to every webhook host; docs/install.md names the Service's host
    // instead (here the webhooks are on 127.0.0.1 with a port only known later).
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nusers:\n  - name: \"*\"\n    user:\n      client-certificate-data: {}\n      client-key-data: {}\n",
        b64(&client.cert_pem),
        b64(&client.key_pem)
    );
    let kubeconfig_path = dir.join("webhook-kubeconfig.yaml");
    std::fs::write(&kubeconfig_path, kubeconfig).expect("kubeconfig");
    let plugin = |name: &str| {
        format!(
            "  - name: {name}\n    configuration:\n      apiVersion: apiserver.config.k8s.io/v1\n      kind: WebhookAdmissionConfiguration\n      kubeConfigFile: {}\n",
            kubeconfig_path.display()
        )
    };
    let admission = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n{}{}",
        plugin("MutatingAdmissionWebhook"),
        plugin("ValidatingAdmissionWebhook")
    );
    let admission_path = dir.join("admission.yaml");
    std::fs::write(&admission_path, admission).expect("admission configuration");
    (
        format!(
            "--admission-control-config-file={}",
            admission_path.display()
        ),
        ca_pem,
    )
}

/// The cluster of this binary, started with the admission configuration; the CA of its client
/// certificate.
fn cluster() -> (&'static TestCluster, String) {
    static CA: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    let (flag, ca) = CA.get_or_init(apiserver_client_certificate);
    (
        TestCluster::shared_with_apiserver_args(std::slice::from_ref(flag)),
        ca.clone(),
    )
}

/// The webhook as `start_webhook` starts it, requiring client certificates from `client_ca_pem`.
async fn start_authenticating_webhook(
    admin: Client,
    policy_namespace: &str,
    client_ca_pem: &str,
) -> (Handle, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let generated = loopback_certificates();
    generated.write_to(dir.path(), true).expect("certificates");
    let ca_file = dir.path().join("client-ca.crt");
    std::fs::write(&ca_file, client_ca_pem).expect("client CA");
    let mut config = support::server_config::local_config(
        dir.path(),
        PolicySource::Cluster {
            client: admin,
            namespace: policy_namespace.into(),
        },
    );
    config.workers = 2;
    config.client_ca = Some(ca_file);
    let server = server::start(config).await.expect("server starts");
    let readiness = server.state.readiness.clone();
    wait_until("the webhook is ready", Duration::from_secs(30), || {
        let readiness = readiness.clone();
        async move { readiness.is_ready() }
    })
    .await;
    (server, dir, generated.ca_cert_pem)
}

struct Webhook {
    server: Handle,
    ns: TestNamespace,
    _policy_ns: TestNamespace,
    _dir: tempfile::TempDir,
    ca_bundle: String,
    _registrations: Vec<support::DeleteOnDrop>,
}

async fn webhook(admin: &Client, client_ca_pem: &str) -> Webhook {
    let ns =
        TestNamespace::with_labels("auth", &[(keys::INJECT_LABEL, keys::INJECT_ENABLED)]).await;
    let policy_ns = TestNamespace::new("nv-policy").await;
    Api::<ConfigMap>::namespaced(admin.clone(), policy_ns.name())
        .create(
            &PostParams::default(),
            &policy_config_map("policy", example_policy(ns.name())),
        )
        .await
        .expect("policy ConfigMap");
    allow_everyone_to_edit(admin, ns.name()).await;
    let (server, dir, ca_bundle) =
        start_authenticating_webhook(admin.clone(), policy_ns.name(), client_ca_pem).await;
    let base = format!("https://127.0.0.1:{}", server.webhook_addr.port());
    let registrations = register_webhooks(
        admin,
        &format!("nv-{}", ns.name()),
        &base,
        &ca_bundle,
        ns.name(),
        policy_ns.name(),
    )
    .await;
    Webhook {
        server,
        ns,
        _policy_ns: policy_ns,
        _dir: dir,
        ca_bundle,
        _registrations: registrations,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_presents_its_client_certificate_and_pods_are_admitted() {
    install_crypto_provider();
    let (cluster, api_ca) = cluster();
    let admin = cluster.admin_client();
    let hook = webhook(&admin, &api_ca).await;
    let hub = Api::<Pod>::namespaced(
        cluster.client_as_service_account(HUB.0, HUB.1),
        hook.ns.name(),
    );
    // Only an authenticated API server gets an answer: injection proves it authenticated.
    wait_for_injection(hub.clone()).await;
    let pod = hub
        .create(
            &PostParams::default(),
            &notebook_pod("jupyter-alice", "alice", &[]),
        )
        .await
        .expect("admitted");
    assert_eq!(
        annotation(&pod, keys::USER_ANNOTATION).as_deref(),
        Some("alice")
    );

    // A caller without a client certificate is refused at the handshake.
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(hook.ca_bundle.as_bytes()) {
        roots.add(cert.expect("CA")).expect("root");
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_root_certificates(roots)
            .with_no_client_auth();
    let attempt = async {
        let tcp = TcpStream::connect(hook.server.webhook_addr).await?;
        let mut tls = TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await?;
        tls.write_all(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
            .await?;
        let mut response = Vec::new();
        tls.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    if let Ok(response) = attempt.await {
        assert!(
            response.is_empty(),
            "answered without a client certificate: {}",
            String::from_utf8_lossy(&response)
        );
    }
    let Webhook { server, .. } = hook;
    server.stop(false).await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_trusting_another_ca_refuses_the_api_server_and_pods_fail_closed() {
    install_crypto_provider();
    let (cluster, _) = cluster();
    let admin = cluster.admin_client();
    let other_ca = client_ca("some other CA").cert_pem().to_string();
    let hook = webhook(&admin, &other_ca).await;
    let hub = Api::<Pod>::namespaced(
        cluster.client_as_service_account(HUB.0, HUB.1),
        hook.ns.name(),
    );
    // Once the registration is in effect, every pod creation fails calling the webhook.
    let last = Arc::new(std::sync::Mutex::new(String::new()));
    wait_until(
        "the API server calls the webhook",
        Duration::from_secs(30),
        || {
            let (hub, last) = (hub.clone(), Arc::clone(&last));
            async move {
                let result = hub
                    .create(&dry_run(), &notebook_pod("probe", "alice", &[]))
                    .await;
                let Err(e) = result else { return false };
                let message = e.to_string();
                let refused = message.contains("failed calling webhook");
                *last.lock().expect("lock") = message;
                refused
            }
        },
    )
    .await;
    let last = last.lock().expect("lock").clone();
    assert!(last.contains("pods.notebook-volumes.io"), "{last}");
    let Webhook { server, .. } = hook;
    server.stop(false).await.expect("stops");
}
