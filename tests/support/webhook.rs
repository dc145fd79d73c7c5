//! The webhook under test, wired to the real API server the way the shipped manifests wire it:
//! policy ConfigMaps, a serving certificate, Mutating/ValidatingWebhookConfigurations with a
//! `caBundle` and a URL on 127.0.0.1, and notebook pods as spawners create them.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MatchCondition, MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations,
    ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use notebook_volumes::admission::stamp::StampKey;
use notebook_volumes::certs::{CertRequest, GeneratedCerts, generate};
use notebook_volumes::keys;
use notebook_volumes::server::{self, Handle, PolicySource};
use serde_json::json;

use super::{DeleteOnDrop, TestCluster};

/// The JupyterHub hub's service account (KubeSpawner), a trusted spawner of the examples.
pub const HUB: (&str, &str) = ("jupyterhub", "hub");
/// The StatefulSet controller, which creates Kubeflow / Open Data Hub notebook pods.
pub const STS: (&str, &str) = ("kube-system", "statefulset-controller");

/// The example policy set (which trusts the StatefulSet controller through stamps), scoped to the
/// test's notebook namespace.
pub fn example_policy(ns: &str) -> BTreeMap<String, String> {
    let dir = crate::repo("examples/policies");
    ["settings.yaml", "storage.yaml", "shares.yaml"]
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(dir.join(f)).expect("example policy");
            (f.to_string(), text.replace("ds-team", ns))
        })
        .collect()
}

pub fn policy_config_map(name: &str, data: BTreeMap<String, String>) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([(keys::POLICY_LABEL.to_string(), "true".to_string())].into()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    }
}

/// `kubectl create --dry-run=server`.
pub fn dry_run() -> PostParams {
    PostParams {
        dry_run: true,
        ..Default::default()
    }
}

/// A serving certificate for 127.0.0.1 and localhost, and its CA.
pub fn loopback_certificates() -> GeneratedCerts {
    generate(&CertRequest {
        dns_names: vec!["localhost".into()],
        ip_addresses: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        days: 1,
    })
    .expect("certificates")
}

/// Starts the webhook server in this process on loopback ports, reading policy from
/// `policy_namespace`, and waits until it is ready. Returns the server, the directory holding its
/// certificate files, and the CA to trust.
pub async fn start_webhook(
    admin: Client,
    policy_namespace: &str,
) -> (Handle, tempfile::TempDir, GeneratedCerts) {
    let certs = tempfile::tempdir().expect("temp dir");
    let generated = loopback_certificates();
    generated
        .write_to(certs.path(), true)
        .expect("write certificates");
    let mut config = crate::server_config::local_config(
        certs.path(),
        PolicySource::Cluster {
            client: admin,
            namespace: policy_namespace.into(),
        },
    );
    config.cert_poll = Duration::from_millis(200);
    config.workers = 2;
    let server = server::start(config).await.expect("server starts");
    let readiness = server.state.readiness.clone();
    wait_until("the webhook is ready", Duration::from_secs(30), || {
        let readiness = readiness.clone();
        async move { readiness.is_ready() }
    })
    .await;
    (server, certs, generated)
}

/// Registers the webhook at `base_url` (trusted through `ca_bundle`, PEM) as the shipped
/// manifests do: pods CREATE, pods/ephemeralcontainers UPDATE, StatefulSets and Notebooks
/// CREATE/UPDATE (stamps), connections into pods, and the
/// claim guard (claims CREATE/UPDATE, volume snapshots CREATE) in `notebook_namespace` while it is
/// labelled, and policy ConfigMaps in `policy_namespace`. Deleted when the guards drop.
pub async fn register_webhooks(
    admin: &Client,
    name: &str,
    base_url: &str,
    ca_bundle: &str,
    notebook_namespace: &str,
    policy_namespace: &str,
) -> Vec<DeleteOnDrop> {
    let client_config = |path: &str| WebhookClientConfig {
        url: Some(format!("{base_url}{path}")),
        ca_bundle: Some(ByteString(ca_bundle.as_bytes().to_vec())),
        service: None,
    };
    let labels = selector;
    // Both mutating webhooks act in the labelled notebook namespace.
    let mutating_webhook = |name: &str, path: &str, rules, side_effects: &str| MutatingWebhook {
        name: name.into(),
        client_config: client_config(path),
        rules: Some(rules),
        namespace_selector: Some(labels(&[
            (keys::INJECT_LABEL, keys::INJECT_ENABLED),
            ("kubernetes.io/metadata.name", notebook_namespace),
        ])),
        side_effects: side_effects.into(),
        reinvocation_policy: Some("IfNeeded".into()),
        failure_policy: Some("Fail".into()),
        timeout_seconds: Some(15),
        admission_review_versions: vec!["v1".into()],
        ..Default::default()
    };
    let mutating = MutatingWebhookConfiguration {
        metadata: named(name),
        webhooks: Some(vec![
            mutating_webhook(
                "pods.notebook-volumes.io",
                "/mutate",
                vec![
                    rule("", "pods", &["CREATE"]),
                    rule("", "pods/ephemeralcontainers", &["UPDATE"]),
                    rule("", "pods", &["UPDATE"]),
                ],
                "NoneOnDryRun",
            ),
            mutating_webhook(
                "workloads.notebook-volumes.io",
                "/workloads",
                vec![
                    rule("apps", "statefulsets", &["CREATE", "UPDATE"]),
                    RuleWithOperations {
                        api_versions: Some(vec!["v1".into(), "v1beta1".into(), "v1alpha1".into()]),
                        ..rule("kubeflow.org", "notebooks", &["CREATE", "UPDATE"])
                    },
                ],
                "None",
            ),
        ]),
    };
    Api::<MutatingWebhookConfiguration>::all(admin.clone())
        .create(&PostParams::default(), &mutating)
        .await
        .expect("MutatingWebhookConfiguration accepted");
    let validating = ValidatingWebhookConfiguration {
        metadata: named(name),
        webhooks: Some(vec![
            ValidatingWebhook {
                name: "policies.notebook-volumes.io".into(),
                client_config: client_config("/validate"),
                rules: Some(vec![rule("", "configmaps", &["CREATE", "UPDATE"])]),
                namespace_selector: Some(labels(&[(
                    "kubernetes.io/metadata.name",
                    policy_namespace,
                )])),
                object_selector: Some(labels(&[(keys::POLICY_LABEL, "true")])),
                side_effects: "None".into(),
                failure_policy: Some("Fail".into()),
                timeout_seconds: Some(15),
                admission_review_versions: vec!["v1".into()],
                ..Default::default()
            },
            guard_webhook(
                "connect.notebook-volumes.io",
                client_config("/connect"),
                ["pods/exec", "pods/attach", "pods/portforward", "pods/proxy"]
                    .iter()
                    .map(|r| rule("", r, &["CONNECT"]))
                    .collect(),
                notebook_namespace,
            ),
            ValidatingWebhook {
                match_conditions: Some(claim_conditions(admin).await),
                ..guard_webhook(
                    "claims.notebook-volumes.io",
                    client_config("/claims"),
                    vec![
                        rule("", "persistentvolumeclaims", &["CREATE", "UPDATE"]),
                        rule(
                            "snapshot.storage.k8s.io",
                            "volumesnapshots",
                            &["CREATE", "UPDATE"],
                        ),
                    ],
                    notebook_namespace,
                )
            },
        ]),
    };
    Api::<ValidatingWebhookConfiguration>::all(admin.clone())
        .create(&PostParams::default(), &validating)
        .await
        .expect("ValidatingWebhookConfiguration accepted");
    vec![
        DeleteOnDrop::cluster_scoped::<MutatingWebhookConfiguration>(name),
        DeleteOnDrop::cluster_scoped::<ValidatingWebhookConfiguration>(name),
    ]
}

/// The API server picks registrations up asynchronously: waits until a dry-run notebook pod
/// created through `pods` (as a trusted spawner) comes back mutated.
pub async fn wait_for_injection(pods: Api<Pod>) {
    let probe = notebook_pod("probe", "alice", &[]);
    wait_until(
        "the API server calls the webhook",
        Duration::from_secs(30),
        || {
            let pods = pods.clone();
            let probe = probe.clone();
            async move {
                let dry = dry_run();
                match pods.create(&dry, &probe).await {
                    Ok(p) => annotation(&p, keys::USER_ANNOTATION).is_some(),
                    Err(e) => {
                        eprintln!("webhook not in effect yet: {e}");
                        false
                    }
                }
            }
        },
    )
    .await;
}

fn selector(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

/// The claims webhook's `matchConditions` as shipped, naming the identity the test webhook runs
/// as (the `admin` client's) instead of the shipped service account.
async fn claim_conditions(admin: &Client) -> Vec<MatchCondition> {
    let text = std::fs::read_to_string(crate::repo(
        "manifests/base/validatingwebhookconfiguration.yaml",
    ))
    .expect("manifest");
    let shipped: ValidatingWebhookConfiguration = serde_saphyr::from_str(&text).expect("yaml");
    let review = Api::<SelfSubjectReview>::all(admin.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .expect("SelfSubjectReview");
    let me = review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .expect("the test webhook's identity");
    let mut conditions = shipped
        .webhooks
        .into_iter()
        .flatten()
        .find(|w| w.name == "claims.notebook-volumes.io")
        .and_then(|w| w.match_conditions)
        .expect("the claims webhook's matchConditions");
    for c in &mut conditions {
        c.expression = c.expression.replace(
            "system:serviceaccount:notebook-volumes:notebook-volumes",
            &me,
        );
    }
    conditions
}

/// A validating webhook of the guard (connections, claims) for the notebook namespace.
fn guard_webhook(
    name: &str,
    client_config: WebhookClientConfig,
    rules: Vec<RuleWithOperations>,
    notebook_namespace: &str,
) -> ValidatingWebhook {
    ValidatingWebhook {
        name: name.into(),
        client_config,
        rules: Some(rules),
        namespace_selector: Some(selector(&[
            (keys::INJECT_LABEL, keys::INJECT_ENABLED),
            ("kubernetes.io/metadata.name", notebook_namespace),
        ])),
        side_effects: "None".into(),
        failure_policy: Some("Fail".into()),
        timeout_seconds: Some(15),
        admission_review_versions: vec!["v1".into()],
        ..Default::default()
    }
}

pub fn rule(group: &str, resource: &str, operations: &[&str]) -> RuleWithOperations {
    RuleWithOperations {
        api_groups: Some(vec![group.into()]),
        api_versions: Some(vec!["v1".into()]),
        resources: Some(vec![resource.into()]),
        operations: Some(operations.iter().map(|o| o.to_string()).collect()),
        scope: Some("Namespaced".into()),
    }
}

/// The verbs of the aggregated `edit` role on a resource.
const EDIT_VERBS: [&str; 7] = [
    "create", "get", "list", "watch", "update", "patch", "delete",
];

/// Every authenticated user (the impersonated users and service accounts) may work with pods in
/// this namespace. (The aggregated `edit` role is empty here: no controller-manager aggregates it.)
pub async fn allow_everyone_to_edit(admin: &Client, ns: &str) {
    let all = EDIT_VERBS;
    grant_everyone(
        admin,
        ns,
        "notebook-users",
        vec![
            allow("", &["pods"], &all),
            allow("", &["pods/ephemeralcontainers"], &["update", "patch"]),
        ],
    )
    .await;
}

/// The StatefulSet and Notebook rights of `edit`, for every authenticated user.
pub async fn allow_everyone_to_edit_workloads(admin: &Client, ns: &str) {
    let resources = [("apps", "statefulsets"), ("kubeflow.org", "notebooks")];
    grant_everyone(admin, ns, "workload-users", edit_rules(&resources)).await;
}

/// The claim and snapshot rights of `edit`, for every authenticated user.
pub async fn allow_everyone_to_edit_claims(admin: &Client, ns: &str) {
    let resources = [
        ("", "persistentvolumeclaims"),
        ("snapshot.storage.k8s.io", "volumesnapshots"),
    ];
    grant_everyone(admin, ns, "claim-users", edit_rules(&resources)).await;
}

/// One rule a `(API group, resource)` with the verbs of `edit`.
fn edit_rules(resources: &[(&str, &str)]) -> Vec<PolicyRule> {
    resources
        .iter()
        .map(|(group, resource)| allow(group, &[resource], &EDIT_VERBS))
        .collect()
}

/// Lets every authenticated user open connections into pods of the namespace, as `edit` does.
pub async fn allow_connections(admin: &Client, ns: &str) {
    let rules = vec![allow(
        "",
        &["pods/exec", "pods/attach", "pods/portforward", "pods/proxy"],
        &["get", "create"],
    )];
    grant_everyone(admin, ns, "connect", rules).await;
}

/// One RBAC rule.
pub fn allow(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..Default::default()
    }
}

/// A Role named `name` with `rules` in `ns`, bound to every authenticated user.
pub async fn grant_everyone(admin: &Client, ns: &str, name: &str, rules: Vec<PolicyRule>) {
    let role = Role {
        metadata: named(name),
        rules: Some(rules.clone()),
    };
    Api::<Role>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .expect("Role");
    let binding = RoleBinding {
        metadata: named(name),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: name.into(),
        },
        subjects: Some(vec![Subject {
            kind: "Group".into(),
            name: "system:authenticated".into(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            namespace: None,
        }]),
    };
    Api::<RoleBinding>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .expect("RoleBinding");
    // The API server's RBAC authorizer reads roles from its informers: wait until it grants
    // the first rule, or a request made right away may still be forbidden.
    let first = rules.first().cloned().unwrap_or_default();
    let attributes = json!({
        "namespace": ns,
        "group": first.api_groups.unwrap_or_default().first().cloned().unwrap_or_default(),
        "resource": first.resources.unwrap_or_default().first().cloned().unwrap_or_default(),
        "verb": first.verbs.first().cloned().unwrap_or_default(),
    });
    wait_until(
        &format!("RBAC grants the Role {name}"),
        Duration::from_secs(20),
        || {
            let (admin, attributes) = (admin.clone(), attributes.clone());
            async move { granted(&admin, attributes).await }
        },
    )
    .await;
}

/// Whether an authenticated user may do what `attributes` (a SubjectAccessReview's
/// resourceAttributes) says.
async fn granted(admin: &Client, attributes: serde_json::Value) -> bool {
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "rbac-probe", "groups": ["system:authenticated"], "resourceAttributes": attributes}
    }))
    .expect("SubjectAccessReview");
    Api::<SubjectAccessReview>::all(admin.clone())
        .create(&PostParams::default(), &review)
        .await
        .ok()
        .and_then(|r| r.status)
        .is_some_and(|s| s.allowed)
}

pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A KubeSpawner-style notebook pod for `user`.
pub fn notebook_pod(name: &str, user: &str, extra_annotations: &[(&str, &str)]) -> Pod {
    let mut annotations = serde_json::Map::new();
    annotations.insert("hub.jupyter.org/username".into(), user.into());
    for (k, v) in extra_annotations {
        annotations.insert(k.to_string(), (*v).into());
    }
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"component": "singleuser-server", "hub.jupyter.org/username": user},
                     "annotations": annotations},
        "spec": {"containers": [{"name": "notebook", "image": "quay.io/jupyter/scipy-notebook"}]}
    }))
    .unwrap()
}

pub use crate::pod::{annotation, mounts};

/// A plain HTTP/1.1 GET on the probe port: (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("probe port");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Annotations of the API server's audit event for the creation of pod `name` in `namespace`
/// (the webhook's audit annotations arrive prefixed with its name).
pub async fn audit_annotations(namespace: &str, name: &str) -> BTreeMap<String, String> {
    let Some(path) = TestCluster::shared().audit_log() else {
        panic!(
            "this test reads the audit log of the API server it starts; unset NOTEBOOK_VOLUMES_TEST_KUBECONFIG"
        );
    };
    let mut found = None;
    wait_until(
        "the audit event is written",
        Duration::from_secs(10),
        || {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            found = text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .rfind(|e| {
                    e["verb"] == "create"
                        && e["stage"] == "ResponseComplete"
                        && e["objectRef"]["namespace"] == namespace
                        && e["objectRef"]["name"] == name
                })
                .map(|e| serde_json::from_value(e["annotations"].clone()).unwrap_or_default());
            std::future::ready(found.is_some())
        },
    )
    .await;
    found.unwrap_or_default()
}

/// The webhook's stamp key, read from its Secret in the policy namespace (only the webhook and
/// administrators can read it).
pub async fn cluster_stamp_key(admin: &Client, policy_namespace: &str) -> StampKey {
    use notebook_volumes::cluster::stamp_key::{DATA_KEY, SECRET_NAME};
    let secret =
        Api::<k8s_openapi::api::core::v1::Secret>::namespaced(admin.clone(), policy_namespace)
            .get(SECRET_NAME)
            .await
            .expect("the webhook created its stamp key Secret");
    StampKey::new(&secret.data.expect("data")[DATA_KEY].0).expect("key")
}

/// `pod` as the StatefulSet controller makes it from StatefulSet `owner` whose template the
/// webhook stamped for `user`.
pub fn stamped_by(mut pod: Pod, key: &StampKey, namespace: &str, owner: &str, user: &str) -> Pod {
    pod.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "apps/v1".into(),
            kind: "StatefulSet".into(),
            name: owner.into(),
            uid: "00000000-0000-0000-0000-000000000001".into(),
            controller: Some(true),
            block_owner_deletion: None,
        },
    ]);
    pod.metadata.annotations.get_or_insert_default().insert(
        keys::STAMP_ANNOTATION.into(),
        key.sign(namespace, owner, user),
    );
    pod
}

/// Metadata with only a name: the cluster-scoped and namespaced objects the support creates.
fn named(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    }
}
