//! End-to-end: a policy ConfigMap that gets in although it is invalid (the validating webhook was
//! not registered yet, or was deleted as the documented break-glass) never opens access: the
//! claims it names stay protected until it is fixed.

use nv_test_support as support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use notebook_volumes::keys;
use notebook_volumes::server::Handle;
use serde_json::json;
use support::webhook::*;
use support::{DeleteOnDrop, TestCluster, TestNamespace, install_crypto_provider};

/// A user with no access to any share.
const MALLORY: &str = "mallory";

/// A plain pod mounting `claim` read-write, as a user would write it.
fn claim_pod(name: &str, claim: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [{"name": "job", "image": "busybox", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
        }
    }))
    .expect("pod")
}

/// The example policy in two ConfigMaps: `settings` (Settings, Groups, Home, Library) and
/// `shares`, so that breaking the shares leaves the spawner's trust in place.
fn split_policy(ns: &str) -> (BTreeMap<String, String>, String) {
    let mut policy = example_policy(ns);
    let shares = policy.remove("shares.yaml").expect("shares.yaml");
    (policy, shares)
}

struct Env {
    cluster: &'static TestCluster,
    admin: Client,
    ns: TestNamespace,
    policy_ns: TestNamespace,
    server: Option<Handle>,
    _certs: tempfile::TempDir,
    registration: String,
    _registrations: Vec<DeleteOnDrop>,
}

impl Env {
    /// Namespaces and the `settings` ConfigMap; `shares` as given, created before the webhook
    /// starts (and before any validating webhook is registered).
    async fn start(shares: impl FnOnce(&str) -> String) -> Env {
        install_crypto_provider();
        let cluster = TestCluster::shared();
        let admin = cluster.admin_client();
        let ns =
            TestNamespace::with_labels("nb", &[(keys::INJECT_LABEL, keys::INJECT_ENABLED)]).await;
        let policy_ns = TestNamespace::new("nv-policy").await;
        allow_everyone_to_edit(&admin, ns.name()).await;
        let (settings, _) = split_policy(ns.name());
        let config_maps = Api::<ConfigMap>::namespaced(admin.clone(), policy_ns.name());
        config_maps
            .create(
                &PostParams::default(),
                &policy_config_map("settings", settings),
            )
            .await
            .expect("settings ConfigMap");
        config_maps
            .create(
                &PostParams::default(),
                &policy_config_map(
                    "shares",
                    [("shares.yaml".to_string(), shares(ns.name()))].into(),
                ),
            )
            .await
            .expect("shares ConfigMap");
        let (server, certs, generated) = start_webhook(admin.clone(), policy_ns.name()).await;
        let base = format!("https://127.0.0.1:{}", server.webhook_addr.port());
        let registration = format!("nv-{}", ns.name());
        let registrations = register_webhooks(
            &admin,
            &registration,
            &base,
            &generated.ca_cert_pem,
            ns.name(),
            policy_ns.name(),
        )
        .await;
        let hub = cluster.client_as_service_account(HUB.0, HUB.1);
        wait_for_injection(Api::namespaced(hub, ns.name())).await;
        Env {
            cluster,
            admin,
            ns,
            policy_ns,
            server: Some(server),
            _certs: certs,
            registration,
            _registrations: registrations,
        }
    }

    fn unit(&self) -> String {
        format!("ConfigMap {}/shares", self.policy_ns.name())
    }

    /// Break-glass step 3 of docs/operating.md: the validating webhook is deleted to edit policy.
    async fn delete_validating_webhook(&self) {
        Api::<ValidatingWebhookConfiguration>::all(self.admin.clone())
            .delete(&self.registration, &DeleteParams::default())
            .await
            .expect("validating webhook deleted");
    }

    /// Replaces the shares text and waits until the webhook has compiled it.
    async fn replace_shares(&self, text: &str) {
        let patch = json!({"data": {"shares.yaml": text}});
        Api::<ConfigMap>::namespaced(self.admin.clone(), self.policy_ns.name())
            .patch("shares", &PatchParams::default(), &Patch::Merge(patch))
            .await
            .expect("the API server takes the broken ConfigMap");
        let policy = self.server.as_ref().expect("running").state.policy.clone();
        wait_until(
            "the webhook compiles the new version",
            Duration::from_secs(30),
            || {
                let seen = policy.load().units.iter().any(|u| {
                    u.sources
                        .iter()
                        .any(|s| s.text == text && s.origin.unit.ends_with("/shares"))
                });
                std::future::ready(seen)
            },
        )
        .await;
    }

    /// Creates a pod mounting `claim` as mallory and returns the denial message.
    async fn denial_for(&self, pod: &str, claim: &str) -> String {
        let pods: Api<Pod> = Api::namespaced(self.cluster.client_as(MALLORY, &[]), self.ns.name());
        match pods.create(&dry_run(), &claim_pod(pod, claim)).await {
            Ok(_) => panic!("a pod mounting '{claim}' as {MALLORY} was admitted"),
            Err(kube::Error::Api(status)) => status.message,
            Err(e) => panic!("expected a denial, got {e}"),
        }
    }

    async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            self._registrations.clear();
            let _ = server.stop(false).await;
        }
    }
}

fn assert_protected(message: &str, claim: &str, unit: &str) {
    assert!(
        message.contains(&format!("claim '{claim}'")) && message.contains(unit),
        "the denial should name the claim '{claim}' and {unit}: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_config_map_broken_after_acceptance_keeps_its_claims_protected() {
    let env = Env::start(|ns| split_policy(ns).1).await;
    let shares = split_policy(env.ns.name()).1;
    let denied = env.denial_for("valid", "finance-data").await;
    assert!(denied.contains("finance-data"), "{denied}");

    env.delete_validating_webhook().await;
    // `kind: share`: a misspelled kind rejects the unit; the scan still finds its claims.
    env.replace_shares(&shares.replace("kind: Share", "kind: share"))
        .await;
    let denied = env.denial_for("misspelled", "finance-data").await;
    assert_protected(&denied, "finance-data", &env.unit());

    // A YAML syntax error that leaves no claim name to find: the last accepted version protects.
    env.replace_shares("kind: Share\n  name: [finance\n").await;
    let denied = env.denial_for("unparsable", "finance-data").await;
    assert_protected(&denied, "finance-data", &env.unit());
    let denied = env.denial_for("secret", "mergers-data").await;
    assert_protected(&denied, "mergers-data", &env.unit());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_config_map_broken_before_the_webhook_starts_is_protected_by_a_scan() {
    // A YAML syntax error: an unclosed flow mapping in the finance share.
    let env = Env::start(|ns| {
        split_policy(ns).1.replace(
            "readers: {groups: [analysts]}",
            "readers: {groups: [analysts]",
        )
    })
    .await;
    let policy = env.server.as_ref().expect("running").state.policy.load();
    assert!(
        policy
            .snapshot
            .rejected_units()
            .any(|r| r.unit == env.unit()),
        "the broken ConfigMap is rejected"
    );
    for (pod, claim) in [("finance", "finance-data"), ("mergers", "mergers-data")] {
        let denied = env.denial_for(pod, claim).await;
        assert_protected(&denied, claim, &env.unit());
    }
    env.stop().await;
}
