//! One webhook server in this process, registered with the test API server the way the shipped
//! manifests register it, scoped to one test's namespaces; shared by the end-to-end tests.

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod};
use kube::api::PostParams;
use kube::{Api, Client};
use notebook_volumes::keys;
use notebook_volumes::server::Handle;
use serde_json::json;

use super::webhook::*;
use super::{DeleteOnDrop, TestCluster, TestNamespace, install_crypto_provider};

/// One webhook server and its registrations, for one test.
pub struct Env {
    pub cluster: &'static TestCluster,
    pub admin: Client,
    pub ns: TestNamespace,
    pub policy_ns: TestNamespace,
    pub server: Option<Handle>,
    pub certs: tempfile::TempDir,
    pub ca_bundle: String,
    pub _registrations: Vec<DeleteOnDrop>,
}

impl Env {
    pub async fn start() -> Env {
        install_crypto_provider();
        let cluster = TestCluster::shared();
        let admin = cluster.admin_client();
        let ns =
            TestNamespace::with_labels("nb", &[(keys::INJECT_LABEL, keys::INJECT_ENABLED)]).await;
        let policy_ns = TestNamespace::new("nv-policy").await;
        Api::<ConfigMap>::namespaced(admin.clone(), policy_ns.name())
            .create(
                &PostParams::default(),
                &policy_config_map("policy", example_policy(ns.name())),
            )
            .await
            .expect("policy ConfigMap");
        allow_everyone_to_edit(&admin, ns.name()).await;

        let (server, certs, generated) = start_webhook(admin.clone(), policy_ns.name()).await;
        let mut env = Env {
            cluster,
            admin,
            ns,
            policy_ns,
            server: Some(server),
            certs,
            ca_bundle: generated.ca_cert_pem.clone(),
            _registrations: Vec::new(),
        };
        env.register().await;
        env
    }

    pub fn server(&self) -> &Handle {
        self.server.as_ref().expect("running")
    }

    /// The registrations of the shipped manifests, pointed at this server and scoped to this
    /// test's namespaces so parallel tests never call each other's webhooks.
    pub async fn register(&mut self) {
        let base = format!("https://127.0.0.1:{}", self.server().webhook_addr.port());
        let name = format!("nv-{}", self.ns.name());
        self._registrations = register_webhooks(
            &self.admin,
            &name,
            &base,
            &self.ca_bundle,
            self.ns.name(),
            self.policy_ns.name(),
        )
        .await;
        wait_for_injection(self.pods_as(HUB)).await;
    }

    pub fn pods_as_admin(&self) -> Api<Pod> {
        Api::namespaced(self.admin.clone(), self.ns.name())
    }

    pub fn pods_as(&self, (namespace, name): (&str, &str)) -> Api<Pod> {
        Api::namespaced(
            self.cluster.client_as_service_account(namespace, name),
            self.ns.name(),
        )
    }

    pub fn pods_as_user(&self, user: &str, groups: &[&str]) -> Api<Pod> {
        Api::namespaced(self.cluster.client_as(user, groups), self.ns.name())
    }

    pub fn claims(&self) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.admin.clone(), self.ns.name())
    }

    pub async fn metrics(&self) -> String {
        http_get(self.server().probe_addr, "/metrics").await.1
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            self._registrations.clear();
            let _ = server.stop(false).await;
        }
    }
}

/// A plain (non-notebook) pod mounting `claim` read-write at /data.
pub fn claim_pod(name: &str, claim: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [{"name": "job", "image": "busybox", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
        }
    }))
    .unwrap()
}

/// The message of an API denial (the webhook's reason).
pub fn denial(result: Result<Pod, kube::Error>) -> String {
    match result {
        Ok(p) => panic!("expected a denial, got pod {:?}", p.metadata.name),
        Err(kube::Error::Api(status)) => status.message,
        Err(e) => panic!("expected an API denial, got {e}"),
    }
}

/// Adds a debug container to `pod` as `kubectl debug` does (`pods/ephemeralcontainers`).
pub async fn add_debug(
    pods: &Api<Pod>,
    pod: &str,
    container: serde_json::Value,
) -> Result<Pod, kube::Error> {
    let patch = json!({"spec": {"ephemeralContainers": [container]}});
    pods.patch_subresource(
        "ephemeralcontainers",
        pod,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Strategic(patch),
    )
    .await
}
