//! One webhook server in this process, registered with the test API server the way the shipped
//! manifests register it, scoped to one test's namespaces; shared by the end-to-end tests.

use std::collections::BTreeMap;

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

/// The share and library claims of the example policy.
pub const EXAMPLE_CLAIMS: &[&str] = &[
    "shared-datasets",
    "team-notebooks",
    "finance-data",
    "mergers-data",
    "apps",
];

impl Env {
    /// The webhook with the example policy, whose share and library claims exist and are Bound
    /// (`ready_claims`), so notebooks get them.
    pub async fn start() -> Env {
        Env::start_with(true).await
    }

    /// The same without the example claims (a test that binds them itself).
    pub async fn start_without_claims() -> Env {
        Env::start_with(false).await
    }

    async fn start_with(claims: bool) -> Env {
        let policies = |ns: &str| vec![("policy".to_string(), example_policy(ns))];
        let claims = if claims { EXAMPLE_CLAIMS } else { &[] };
        Env::start_with_policies(policies, claims, |_| {}).await
    }

    /// A webhook started (and registered) once `policies(notebook namespace)` (ConfigMap name,
    /// data) are in the policy namespace and `claims` are Bound, so the policy is in force from
    /// the first list. `when_ready` sees the server the moment it is ready, before the
    /// registration takes its time.
    pub async fn start_with_policies(
        policies: impl Fn(&str) -> Vec<(String, BTreeMap<String, String>)>,
        claims: &[&str],
        when_ready: impl FnOnce(&Handle),
    ) -> Env {
        install_crypto_provider();
        let cluster = TestCluster::shared();
        let admin = cluster.admin_client();
        let ns =
            TestNamespace::with_labels("nb", &[(keys::INJECT_LABEL, keys::INJECT_ENABLED)]).await;
        let policy_ns = TestNamespace::new("nv-policy").await;
        let config_maps = Api::<ConfigMap>::namespaced(admin.clone(), policy_ns.name());
        for (name, data) in policies(ns.name()) {
            config_maps
                .create(&PostParams::default(), &policy_config_map(&name, data))
                .await
                .expect("policy ConfigMap");
        }
        allow_everyone_to_edit(&admin, ns.name()).await;
        if !claims.is_empty() {
            ready_claims(&admin, ns.name(), claims, "ReadWriteMany").await;
        }
        let (server, certs, generated) = start_webhook(admin.clone(), policy_ns.name()).await;
        when_ready(&server);
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

    /// The value of one sample of this server's /metrics (see [`sample`]).
    pub async fn sample(&self, series: &str) -> f64 {
        sample(&self.metrics().await, series)
    }

    /// Waits until the sample `series` is at least `at_least`: counters move after an answer is
    /// sent, gauges when the pass that found what they count ends.
    pub async fn wait_for_sample(&self, series: &str, at_least: f64) {
        wait_until(
            &format!("{series} reaches {at_least}"),
            std::time::Duration::from_secs(30),
            || async { self.sample(series).await >= at_least },
        )
        .await;
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            self._registrations.clear();
            let _ = server.stop(false).await;
        }
    }
}

/// Creates claims `names` in `namespace` and sets their status to Bound with `mode`, as the PV
/// controller would once it bound them (the shared test cluster runs no controllers).
pub async fn ready_claims(admin: &Client, namespace: &str, names: &[&str], mode: &str) {
    let claims = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), namespace);
    for name in names {
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name},
            "spec": {"accessModes": [mode], "resources": {"requests": {"storage": "1Gi"}}}
        }))
        .expect("PVC");
        claims
            .create(&PostParams::default(), &pvc)
            .await
            .expect("create claim");
        set_claim_status(admin, namespace, name, "Bound", mode).await;
    }
}

/// Sets a claim's status phase and access modes (`claims/status`).
pub async fn set_claim_status(
    admin: &Client,
    namespace: &str,
    name: &str,
    phase: &str,
    mode: &str,
) {
    let claims = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), namespace);
    let status = json!({"status": {"phase": phase, "accessModes": [mode]}});
    claims
        .patch_status(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(status),
        )
        .await
        .expect("claim status");
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

/// Creates `pod` in `namespace` as `client` sees fit and returns it with the warnings the API
/// server relayed (the webhook's, from the `Warning` headers); `Err` is the failure's message.
/// With `dry_run`, as `kubectl create --dry-run=server`.
pub async fn create_with_warnings(
    client: &Client,
    namespace: &str,
    pod: &Pod,
    dry_run: bool,
) -> Result<(Pod, Vec<String>), String> {
    let body = serde_json::to_vec(pod).expect("pod JSON");
    let query = if dry_run { "?dryRun=All" } else { "" };
    let request = http::Request::post(format!("/api/v1/namespaces/{namespace}/pods{query}"))
        .header("content-type", "application/json")
        .body(kube::client::Body::from(body))
        .expect("request");
    let response = client.send(request).await.map_err(|e| e.to_string())?;
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| {
            v.trim_start_matches("299 - ")
                .trim_matches('"')
                .replace("\\\"", "\"")
        })
        .collect();
    let ok = response.status().is_success();
    let bytes = response
        .into_body()
        .collect_bytes()
        .await
        .map_err(|e| e.to_string())?;
    if !ok {
        let status: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        return Err(status["message"].as_str().unwrap_or_default().to_string());
    }
    let pod = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    Ok((pod, warnings))
}

/// The value of the sample `series` (its name and labels as exported, e.g.
/// `notebook_volumes_provisioned_total{object="claim"}`) in a /metrics text; 0 when absent.
pub fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}
