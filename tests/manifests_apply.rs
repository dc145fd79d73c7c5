//! The shipped manifests, rendered by kustomize and applied to a real API server.
//!
//! `manifests/base`, each overlay and `manifests/examples` are rendered with
//! `testcluster kustomize DIR` (the kustomize library kubectl embeds) and every object is
//! server-side applied (`PatchParams::apply(..).force()`), so the API server's own validation,
//! defaulting and admission judge them. Then the objects *as stored* are checked against the
//! design (docs and `tests/manifests.rs` check the files; this checks what a cluster keeps).
//!
//! Everything is applied for real, none of it as a dry run: no kind in the manifests needs a
//! node or a controller to be stored. The Deployment is stored and simply never gets pods here
//! (no controller-manager runs), which is all an apply needs.
//!
//! One sequential test, on purpose: the overlays share object names, so they are applied one
//! after another on the same cluster (base, cert-manager, openshift, dev), each checked right
//! after its apply. With one field manager, each apply also removes what the previous overlay
//! set and this one does not (for example the previous overlay's annotations), so the checks see
//! exactly one overlay at a time.
//!
//! This is its own test binary, so its own API server: the real webhook configurations it
//! registers (failurePolicy Fail, no replica serving) cannot intercept other test binaries' pods
//! or ConfigMaps.

use nv_test_support as support;

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery;
use kube::{Api, Client};
use notebook_volumes::policy::{PolicySnapshot, unit_from_config_map};
use serde_json::json;
use support::apply::{describe, gvk};
use support::{DeleteOnDrop, TestCluster};

const MANAGER: &str = "notebook-volumes-test";
const NAME: &str = "notebook-volumes";
const NAMESPACE: &str = "notebook-volumes";
const POLICY_LABEL: &str = "notebook-volumes.io/policy";
const OPENSHIFT_INJECT: &str = "service.beta.openshift.io/inject-cabundle";
const CERT_MANAGER_INJECT: &str = "cert-manager.io/inject-ca-from";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The objects of a kustomization, rendered as `kubectl kustomize` would.
fn render(dir: &str) -> Vec<DynamicObject> {
    let yaml = support::kustomize(&root().join(dir)).unwrap_or_else(|e| panic!("{e}"));
    let objects: Vec<DynamicObject> =
        serde_saphyr::from_multiple(&yaml).unwrap_or_else(|e| panic!("{dir}: a document: {e}"));
    assert!(!objects.is_empty(), "{dir} renders no objects");
    objects
}

/// Applies Namespaces first, then the rest in rendered order; panics listing every failure.
async fn apply_all(client: &Client, what: &str, objects: &[DynamicObject]) {
    if let Err(errors) = support::apply::apply_all(client, MANAGER, objects).await {
        panic!("applying {what}:\n{errors}");
    }
}

/// Removes what the test created, for runs against a long-lived cluster
/// (`NOTEBOOK_VOLUMES_TEST_KUBECONFIG`): webhook configurations with failurePolicy Fail must not
/// stay behind. With the per-binary API server this is moot; it stops with the test.
fn cleanup() -> Vec<DeleteOnDrop> {
    vec![
        DeleteOnDrop::cluster_scoped::<MutatingWebhookConfiguration>(NAME),
        DeleteOnDrop::cluster_scoped::<ValidatingWebhookConfiguration>(NAME),
        DeleteOnDrop::cluster_scoped::<ClusterRole>(NAME),
        DeleteOnDrop::cluster_scoped::<ClusterRoleBinding>(NAME),
        DeleteOnDrop::cluster_scoped::<Namespace>(NAMESPACE),
    ]
}

fn annotations(meta: &kube::api::ObjectMeta) -> BTreeMap<String, String> {
    meta.annotations.clone().unwrap_or_default()
}

/// The stored webhook configurations say what the design requires; returns their annotations
/// (mutating, validating) for the overlay checks.
async fn check_webhook_configurations(
    client: &Client,
    overlay: &str,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mutating = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get(NAME)
        .await
        .unwrap_or_else(|e| panic!("{overlay}: MutatingWebhookConfiguration: {e}"));
    let hooks = mutating.webhooks.clone().expect("webhooks");
    assert_eq!(hooks.len(), 2, "{overlay}: pods and workloads");
    let workloads = hooks
        .iter()
        .find(|h| h.name == "workloads.notebook-volumes.io")
        .unwrap_or_else(|| panic!("{overlay}: workloads webhook"));
    assert_eq!(
        workloads.namespace_selector, hooks[0].namespace_selector,
        "{overlay}"
    );
    assert_eq!(
        workloads.failure_policy.as_deref(),
        Some("Fail"),
        "{overlay}"
    );
    let h = &hooks[0];
    let ops: Vec<(String, String)> = h
        .rules
        .iter()
        .flatten()
        .flat_map(|r| {
            let ops = r.operations.clone().unwrap_or_default();
            let res = r.resources.clone().unwrap_or_default();
            ops.into_iter()
                .flat_map(move |o| res.clone().into_iter().map(move |x| (o.clone(), x)))
        })
        .collect();
    assert!(
        ops.contains(&("CREATE".into(), "pods".into())),
        "{overlay}: {ops:?}"
    );
    assert!(
        ops.contains(&("UPDATE".into(), "pods/ephemeralcontainers".into())),
        "{overlay}: {ops:?}"
    );
    assert!(
        ops.contains(&("UPDATE".into(), "pods".into())),
        "{overlay}: {ops:?}"
    );
    assert_eq!(ops.len(), 3, "{overlay}: only these rules: {ops:?}");
    let sel = h.namespace_selector.as_ref().expect("namespaceSelector");
    assert_eq!(
        sel.match_labels
            .as_ref()
            .and_then(|l| l.get("notebook-volumes.io/inject"))
            .map(String::as_str),
        Some("enabled"),
        "{overlay}: opt-in label"
    );
    let excluded = sel
        .match_expressions
        .iter()
        .flatten()
        .find(|e| e.key == "kubernetes.io/metadata.name" && e.operator == "NotIn")
        .and_then(|e| e.values.clone())
        .unwrap_or_else(|| panic!("{overlay}: NotIn on kubernetes.io/metadata.name"));
    assert!(excluded.contains(&"kube-system".to_owned()), "{overlay}");
    assert!(excluded.contains(&NAMESPACE.to_owned()), "{overlay}");
    assert_eq!(h.side_effects, "NoneOnDryRun", "{overlay}");
    assert_eq!(
        h.reinvocation_policy.as_deref(),
        Some("IfNeeded"),
        "{overlay}"
    );
    assert_eq!(h.failure_policy.as_deref(), Some("Fail"), "{overlay}");
    let timeout = h.timeout_seconds.expect("timeoutSeconds");
    assert!(timeout >= 10, "{overlay}: timeoutSeconds {timeout}");
    assert!(
        h.admission_review_versions.contains(&"v1".to_owned()),
        "{overlay}"
    );

    let validating = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .get(NAME)
        .await
        .unwrap_or_else(|e| panic!("{overlay}: ValidatingWebhookConfiguration: {e}"));
    let hooks = validating.webhooks.clone().expect("webhooks");
    let v = hooks
        .iter()
        .find(|h| h.name == "policies.notebook-volumes.io")
        .unwrap_or_else(|| panic!("{overlay}: the policies webhook"));
    assert!(
        hooks.iter().any(|h| h.name == "connect.notebook-volumes.io"
            && h.failure_policy.as_deref() == Some("Fail")),
        "{overlay}: the connect webhook"
    );
    let claims = hooks
        .iter()
        .find(|h| h.name == "claims.notebook-volumes.io")
        .unwrap_or_else(|| panic!("{overlay}: the claims webhook"));
    assert_eq!(claims.failure_policy.as_deref(), Some("Fail"), "{overlay}");
    assert_eq!(claims.side_effects, "None", "{overlay}");
    assert_eq!(
        claims.namespace_selector, h.namespace_selector,
        "{overlay}: claims are guarded where pods are"
    );
    let rules = v.rules.clone().unwrap_or_default();
    assert!(
        rules.iter().any(|r| {
            let ops = r.operations.clone().unwrap_or_default();
            r.resources.clone().unwrap_or_default() == ["configmaps"]
                && ops.contains(&"CREATE".to_owned())
                && ops.contains(&"UPDATE".to_owned())
        }),
        "{overlay}: configmaps CREATE/UPDATE: {rules:?}"
    );
    assert_eq!(
        v.object_selector
            .as_ref()
            .and_then(|s| s.match_labels.as_ref())
            .and_then(|l| l.get(POLICY_LABEL))
            .map(String::as_str),
        Some("true"),
        "{overlay}: objectSelector"
    );
    assert_eq!(v.failure_policy.as_deref(), Some("Fail"), "{overlay}");
    assert!(
        v.admission_review_versions.contains(&"v1".to_owned()),
        "{overlay}"
    );
    (
        annotations(&mutating.metadata),
        annotations(&validating.metadata),
    )
}

/// The stored Deployment: at least `min_replicas`, probes on the plain HTTP port (not the TLS
/// webhook port), non-root, read-only root filesystem.
async fn check_deployment(client: &Client, overlay: &str, min_replicas: i32) -> Deployment {
    let d = Api::<Deployment>::namespaced(client.clone(), NAMESPACE)
        .get(NAME)
        .await
        .unwrap_or_else(|e| panic!("{overlay}: Deployment: {e}"));
    let spec = d.spec.clone().expect("spec");
    let replicas = spec.replicas.unwrap_or(1);
    assert!(
        replicas >= min_replicas,
        "{overlay}: replicas {replicas} < {min_replicas}"
    );
    let pod = spec.template.spec.expect("pod spec");
    let c = &pod.containers[0];
    let ports = c.ports.clone().unwrap_or_default();
    let plain = ports
        .iter()
        .find(|p| p.name.as_deref() == Some("http"))
        .expect("port http");
    let tls = ports
        .iter()
        .find(|p| p.name.as_deref() == Some("webhook"))
        .expect("port webhook");
    assert_ne!(plain.container_port, tls.container_port);
    for (probe, p) in [
        ("startupProbe", &c.startup_probe),
        ("livenessProbe", &c.liveness_probe),
        ("readinessProbe", &c.readiness_probe),
    ] {
        let get = p
            .as_ref()
            .and_then(|p| p.http_get.clone())
            .unwrap_or_else(|| panic!("{overlay}: {probe} httpGet"));
        let on_plain = match &get.port {
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s == "http",
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => {
                *n == plain.container_port
            }
        };
        assert!(on_plain, "{overlay}: {probe} on {:?}", get.port);
        assert_ne!(get.scheme.as_deref(), Some("HTTPS"), "{overlay}: {probe}");
    }
    let sc = c.security_context.as_ref().expect("securityContext");
    let pod_non_root = pod
        .security_context
        .as_ref()
        .and_then(|s| s.run_as_non_root);
    assert_eq!(
        sc.run_as_non_root.or(pod_non_root),
        Some(true),
        "{overlay}: runAsNonRoot"
    );
    assert_eq!(sc.read_only_root_filesystem, Some(true), "{overlay}");
    // The namespace enforces Pod Security `restricted`: a replica made from this template must be
    // admitted (dry run: there is no node to run it).
    let template = d.spec.clone().expect("spec").template;
    let replica = Pod {
        metadata: kube::api::ObjectMeta {
            name: Some(format!("{NAME}-pod-security-check")),
            labels: template.metadata.and_then(|m| m.labels),
            ..Default::default()
        },
        spec: template.spec,
        ..Default::default()
    };
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    Api::<Pod>::namespaced(client.clone(), NAMESPACE)
        .create(&dry_run, &replica)
        .await
        .unwrap_or_else(|e| panic!("{overlay}: a replica of the Deployment would be refused: {e}"));
    // ... and the check is real: the same replica running as root is refused.
    let mut root = replica;
    if let Some(spec) = root.spec.as_mut() {
        spec.security_context = None;
        for c in &mut spec.containers {
            c.security_context = None;
        }
    }
    let refused = Api::<Pod>::namespaced(client.clone(), NAMESPACE)
        .create(&dry_run, &root)
        .await
        .expect_err("Pod Security restricted is enforced in the webhook's namespace");
    assert!(
        refused.to_string().contains("PodSecurity"),
        "{overlay}: {refused}"
    );
    d
}

#[tokio::test]
async fn manifests_render_and_apply_to_a_real_api_server() {
    let client = TestCluster::shared().admin_client();
    let _cleanup = cleanup();

    // The policy namespace first, then the example policy ConfigMaps, before the
    // ValidatingWebhookConfiguration exists: once it does, with failurePolicy Fail and no
    // replica serving, the API server refuses policy ConfigMaps (checked at the end).
    let base = render("manifests/base");
    let namespaces: Vec<DynamicObject> = base
        .iter()
        .filter(|o| gvk(o).kind == "Namespace")
        .cloned()
        .collect();
    assert_eq!(namespaces.len(), 1);
    apply_all(&client, "the base's Namespace", &namespaces).await;

    let examples = render("manifests/examples");
    assert!(examples.iter().all(|o| gvk(o).kind == "ConfigMap"));
    apply_all(&client, "manifests/examples", &examples).await;
    // The stored policy ConfigMaps pass the webhook's own validation (the path /validate runs).
    let stored = Api::<ConfigMap>::namespaced(client.clone(), NAMESPACE)
        .list(&ListParams::default().labels(&format!("{POLICY_LABEL}=true")))
        .await
        .expect("list policy ConfigMaps");
    assert_eq!(stored.items.len(), examples.len(), "all examples stored");
    let units: Vec<_> = stored.items.iter().map(unit_from_config_map).collect();
    let policy = PolicySnapshot::compile(&units);
    let rejected: Vec<_> = policy.rejected_units().collect();
    assert!(
        rejected.is_empty(),
        "rejected example policies: {rejected:#?}"
    );

    // The base alone.
    apply_all(&client, "manifests/base", &base).await;
    let (m, v) = check_webhook_configurations(&client, "base").await;
    assert!(m.is_empty() && v.is_empty(), "base: no annotations");
    check_deployment(&client, "base", 2).await;

    // cert-manager: its Issuers and Certificates (cert-manager.io) need cert-manager's CRDs,
    // which the test API server does not have; everything else is applied.
    let rendered = render("manifests/overlays/cert-manager");
    let (cert_manager, rest): (Vec<DynamicObject>, Vec<DynamicObject>) = rendered
        .into_iter()
        .partition(|o| gvk(o).group == "cert-manager.io");
    let mut skipped: Vec<String> = cert_manager.iter().map(describe).collect();
    skipped.sort();
    assert_eq!(
        skipped,
        [
            "Certificate notebook-volumes/notebook-volumes-ca",
            "Certificate notebook-volumes/notebook-volumes-tls",
            "Issuer notebook-volumes/notebook-volumes-ca",
            "Issuer notebook-volumes/notebook-volumes-selfsigned",
        ]
    );
    assert!(
        discovery::pinned_kind(&client, &gvk(&cert_manager[0]))
            .await
            .is_err(),
        "cert-manager.io is served after all: apply those objects too"
    );
    apply_all(&client, "manifests/overlays/cert-manager", &rest).await;
    let (m, v) = check_webhook_configurations(&client, "cert-manager").await;
    for a in [&m, &v] {
        assert_eq!(
            a.get(CERT_MANAGER_INJECT).map(String::as_str),
            Some("notebook-volumes/notebook-volumes-tls"),
            "cert-manager: {a:?}"
        );
    }
    check_deployment(&client, "cert-manager", 2).await;

    // OpenShift: the service CA operator's annotations; the UID is left to the SCC.
    apply_all(
        &client,
        "manifests/overlays/openshift",
        &render("manifests/overlays/openshift"),
    )
    .await;
    let (m, v) = check_webhook_configurations(&client, "openshift").await;
    for a in [&m, &v] {
        assert_eq!(
            a.get(OPENSHIFT_INJECT).map(String::as_str),
            Some("true"),
            "openshift: {a:?}"
        );
        assert!(
            !a.contains_key(CERT_MANAGER_INJECT),
            "openshift: the cert-manager overlay's annotation was not removed: {a:?}"
        );
    }
    let service = Api::<Service>::namespaced(client.clone(), NAMESPACE)
        .get(NAME)
        .await
        .expect("Service");
    assert_eq!(
        annotations(&service.metadata)
            .get("service.beta.openshift.io/serving-cert-secret-name")
            .map(String::as_str),
        Some("notebook-volumes-tls")
    );
    let d = check_deployment(&client, "openshift", 2).await;
    let pod_sc = d
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.security_context)
        .expect("pod securityContext");
    assert_eq!(
        pod_sc.run_as_user, None,
        "openshift: the SCC assigns the UID"
    );

    // dev: one replica of a locally built image (on purpose, for a one-node cluster).
    apply_all(
        &client,
        "manifests/overlays/dev",
        &render("manifests/overlays/dev"),
    )
    .await;
    let (m, v) = check_webhook_configurations(&client, "dev").await;
    assert!(
        !m.contains_key(OPENSHIFT_INJECT) && !v.contains_key(OPENSHIFT_INJECT),
        "dev: {m:?} {v:?}"
    );
    let d = check_deployment(&client, "dev", 1).await;
    let image = d
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.containers[0].image.clone());
    assert_eq!(image.as_deref(), Some("notebook-volumes:dev"));

    // The stored ValidatingWebhookConfiguration is live: with no replica serving, failurePolicy
    // Fail refuses a new policy ConfigMap (dry run), while an unlabelled ConfigMap in the same
    // namespace is not sent to the webhook.
    let api = Api::<ConfigMap>::namespaced(client.clone(), NAMESPACE);
    let params = PatchParams {
        dry_run: true,
        ..PatchParams::apply(MANAGER).force()
    };
    let config_map = |labels: serde_json::Value| {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "dry-run-probe", "namespace": NAMESPACE, "labels": labels},
            "data": {"x.yaml": "kind: Groups\n"}
        })
    };
    let refused = api
        .patch(
            "dry-run-probe",
            &params,
            &Patch::Apply(config_map(json!({POLICY_LABEL: "true"}))),
        )
        .await
        .expect_err("a policy ConfigMap while no webhook replica serves");
    assert!(
        refused.to_string().contains("policies.notebook-volumes.io"),
        "{refused}"
    );
    api.patch(
        "dry-run-probe",
        &params,
        &Patch::Apply(config_map(json!({}))),
    )
    .await
    .expect("an unlabelled ConfigMap is not validated");
}
