//! End-to-end: callers other than the API server. Anyone who reaches the webhook's TLS port can
//! POST an AdmissionReview; the webhook, connected to a real API server, must not create home
//! claims for namespaces it does not itself see as enabled (kube-system, its own namespace, an
//! unlabelled one), whatever the review says.

use nv_test_support as support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client};
use notebook_volumes::keys;
use notebook_volumes::server::Handle;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::{Value, json};
use support::webhook::*;
use support::{TestCluster, TestNamespace, install_crypto_provider};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A policy whose Home (with `create`) applies in every namespace, so only the webhook's own
/// namespace check stands between a forged review and a new claim.
fn policy_with_home_everywhere() -> BTreeMap<String, String> {
    let settings = "kind: Settings\ntrustedSpawners: [system:serviceaccount:jupyterhub:hub]\nusernameAnnotations: [hub.jupyter.org/username]\nnotebookSelector:\n  - matchLabels: {component: singleuser-server}\n";
    let home = "kind: Home\nclaimNameTemplate: \"home-{user}\"\nmountPath: /home/jovyan\ncreate:\n  size: 1Gi\n  accessModes: [ReadWriteOnce]\n";
    [
        ("settings.yaml".to_string(), settings.to_string()),
        ("storage.yaml".to_string(), home.to_string()),
    ]
    .into()
}

/// A notebook pod CREATE review as the API server would send it for the hub.
fn forged_review(namespace: &str, user: &str) -> Vec<u8> {
    let pod = serde_json::to_value(notebook_pod(&format!("jupyter-{user}"), user, &[]))
        .expect("pod JSON");
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "00000000-0000-0000-0000-00000000f0f0",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": format!("jupyter-{user}"),
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:jupyterhub:hub",
                         "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": pod,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    }))
    .expect("review JSON")
}

/// POSTs a body to the webhook over TLS as an arbitrary client (no client certificate);
/// returns the AdmissionReview answered.
async fn post_review(addr: SocketAddr, ca_pem: &str, body: &[u8]) -> Value {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA into roots");
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_root_certificates(roots)
            .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS handshake");
    let mut request = format!(
        "POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    tls.write_all(&request).await.expect("send");
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let (_, json) = text.split_once("\r\n\r\n").expect("body");
    serde_json::from_str(json).expect("AdmissionReview JSON")
}

async fn home_claims(admin: &Client, namespace: &str, user: &str) -> Vec<String> {
    Api::<PersistentVolumeClaim>::namespaced(admin.clone(), namespace)
        .list(&ListParams::default())
        .await
        .expect("list claims")
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .filter(|n| n.starts_with(&format!("home-{user}")))
        .collect()
}

struct Env {
    admin: Client,
    server: Handle,
    ca_pem: String,
    policy_ns: TestNamespace,
    _certs: tempfile::TempDir,
}

async fn start() -> Env {
    install_crypto_provider();
    let admin = TestCluster::shared().admin_client();
    let policy_ns = TestNamespace::new("nv-policy").await;
    Api::<ConfigMap>::namespaced(admin.clone(), policy_ns.name())
        .create(
            &PostParams::default(),
            &policy_config_map("policy", policy_with_home_everywhere()),
        )
        .await
        .expect("policy ConfigMap");
    let (server, certs, generated) = start_webhook(admin.clone(), policy_ns.name()).await;
    Env {
        admin,
        server,
        ca_pem: generated.ca_cert_pem,
        policy_ns,
        _certs: certs,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_reviews_create_no_claims_outside_enabled_namespaces() {
    let env = start().await;
    let unlabelled = TestNamespace::new("plain").await;
    let user = format!("forged{}", std::process::id());
    for namespace in ["kube-system", unlabelled.name(), env.policy_ns.name()] {
        let answer = post_review(
            env.server.webhook_addr,
            &env.ca_pem,
            &forged_review(namespace, &user),
        )
        .await;
        let response = &answer["response"];
        assert_eq!(response["allowed"], false, "{namespace}: {answer}");
        let message = response["status"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(namespace), "{namespace}: {message}");
        assert_eq!(
            home_claims(&env.admin, namespace, &user).await,
            Vec::<String>::new(),
            "a forged review created a home claim in {namespace}"
        );
    }
    env.server.stop(false).await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_labelled_a_moment_ago_is_in_scope() {
    let env = start().await;
    let ns = TestNamespace::new("fresh").await;
    // The webhook's cache knows the namespace unlabelled...
    let cluster = env.server.state.cluster.clone().expect("cluster view");
    let name = ns.name().to_string();
    wait_until("the namespace is cached", Duration::from_secs(30), || {
        let cached = cluster.namespaces.get(&ObjectRef::<Namespace>::new(&name));
        async move { cached.is_some() }
    })
    .await;
    // ...then it is labelled, and a review arrives before (or after) the cache hears of it.
    Api::<Namespace>::all(env.admin.clone())
        .patch(
            ns.name(),
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {keys::INJECT_LABEL: keys::INJECT_ENABLED}}}),
            ),
        )
        .await
        .expect("label namespace");
    let user = "fresh-user";
    let answer = post_review(
        env.server.webhook_addr,
        &env.ca_pem,
        &forged_review(ns.name(), user),
    )
    .await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert_eq!(home_claims(&env.admin, ns.name(), user).await.len(), 1);
    env.server.stop(false).await.expect("stops");
}
