//! End-to-end: the webhook server in this process, registered with a real kube-apiserver through
//! real Mutating/ValidatingWebhookConfigurations (url to 127.0.0.1 with a caBundle), and pods
//! created as the hub's service account, the StatefulSet controller and impersonated users.

mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ValidatingWebhook,
    ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Pod};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use notebook_volumes::certs::{CertRequest, generate};
use notebook_volumes::keys;
use notebook_volumes::server::{self, Config, Handle, PolicySource};
use serde_json::json;
use support::{DeleteOnDrop, TestCluster, TestNamespace, install_crypto_provider};

const HUB: (&str, &str) = ("jupyterhub", "hub");
const STS: (&str, &str) = ("kube-system", "statefulset-controller");

/// The example policy set, scoped to the test's notebook namespace.
fn example_policy(ns: &str) -> BTreeMap<String, String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    ["settings.yaml", "storage.yaml", "shares.yaml"]
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(dir.join(f)).expect("example policy");
            (f.to_string(), text.replace("ds-team", ns))
        })
        .collect()
}

fn policy_config_map(name: &str, data: BTreeMap<String, String>) -> ConfigMap {
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

/// One webhook server and its registrations, for one test.
struct Env {
    cluster: &'static TestCluster,
    admin: Client,
    ns: TestNamespace,
    policy_ns: TestNamespace,
    server: Option<Handle>,
    certs: tempfile::TempDir,
    ca_bundle: String,
    _registrations: Vec<DeleteOnDrop>,
}

impl Env {
    async fn start() -> Env {
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

        let certs = tempfile::tempdir().unwrap();
        let generated = generate(&CertRequest {
            dns_names: vec!["localhost".into()],
            ip_addresses: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            days: 1,
        })
        .expect("certificates");
        generated
            .write_to(certs.path(), true)
            .expect("write certificates");
        let mut config = Config::new(
            certs.path().join("tls.crt"),
            certs.path().join("tls.key"),
            PolicySource::Cluster {
                client: admin.clone(),
                namespace: policy_ns.name().into(),
            },
        );
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.probe_listen = "127.0.0.1:0".parse().unwrap();
        config.cert_poll = Duration::from_millis(200);
        config.workers = 2;
        config.shutdown_timeout = Duration::from_secs(1);
        let server = server::start(config).await.expect("server starts");
        wait_until("the webhook is ready", Duration::from_secs(30), || async {
            server.state.readiness.is_ready()
        })
        .await;
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

    fn server(&self) -> &Handle {
        self.server.as_ref().expect("running")
    }

    fn url(&self, path: &str) -> String {
        format!(
            "https://127.0.0.1:{}{path}",
            self.server().webhook_addr.port()
        )
    }

    fn client_config(&self, path: &str) -> WebhookClientConfig {
        WebhookClientConfig {
            url: Some(self.url(path)),
            ca_bundle: Some(ByteString(self.ca_bundle.clone().into_bytes())),
            service: None,
        }
    }

    /// The registrations of the shipped manifests, pointed at this server and scoped to this
    /// test's namespaces so parallel tests never call each other's webhooks.
    async fn register(&mut self) {
        let name = format!("nv-{}", self.ns.name());
        let mutating = MutatingWebhookConfiguration {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            webhooks: Some(vec![MutatingWebhook {
                name: "pods.notebook-volumes.io".into(),
                client_config: self.client_config("/mutate"),
                rules: Some(vec![
                    rule("", "pods", &["CREATE"]),
                    rule("", "pods/ephemeralcontainers", &["UPDATE"]),
                ]),
                namespace_selector: Some(LabelSelector {
                    match_labels: Some(
                        [
                            (
                                keys::INJECT_LABEL.to_string(),
                                keys::INJECT_ENABLED.to_string(),
                            ),
                            (
                                "kubernetes.io/metadata.name".to_string(),
                                self.ns.name().to_string(),
                            ),
                        ]
                        .into(),
                    ),
                    ..Default::default()
                }),
                side_effects: "NoneOnDryRun".into(),
                reinvocation_policy: Some("IfNeeded".into()),
                failure_policy: Some("Fail".into()),
                timeout_seconds: Some(15),
                admission_review_versions: vec!["v1".into()],
                ..Default::default()
            }]),
        };
        Api::<MutatingWebhookConfiguration>::all(self.admin.clone())
            .create(&PostParams::default(), &mutating)
            .await
            .expect("MutatingWebhookConfiguration accepted");
        self._registrations
            .push(DeleteOnDrop::cluster_scoped::<MutatingWebhookConfiguration>(&name));
        let validating = ValidatingWebhookConfiguration {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            webhooks: Some(vec![ValidatingWebhook {
                name: "policies.notebook-volumes.io".into(),
                client_config: self.client_config("/validate"),
                rules: Some(vec![rule("", "configmaps", &["CREATE", "UPDATE"])]),
                namespace_selector: Some(LabelSelector {
                    match_labels: Some(
                        [(
                            "kubernetes.io/metadata.name".to_string(),
                            self.policy_ns.name().to_string(),
                        )]
                        .into(),
                    ),
                    ..Default::default()
                }),
                object_selector: Some(LabelSelector {
                    match_labels: Some(
                        [(keys::POLICY_LABEL.to_string(), "true".to_string())].into(),
                    ),
                    ..Default::default()
                }),
                side_effects: "None".into(),
                failure_policy: Some("Fail".into()),
                timeout_seconds: Some(15),
                admission_review_versions: vec!["v1".into()],
                ..Default::default()
            }]),
        };
        Api::<ValidatingWebhookConfiguration>::all(self.admin.clone())
            .create(&PostParams::default(), &validating)
            .await
            .expect("ValidatingWebhookConfiguration accepted");
        self._registrations
            .push(DeleteOnDrop::cluster_scoped::<ValidatingWebhookConfiguration>(&name));
        // The API server picks registrations up asynchronously: wait until pods are mutated.
        let probe = notebook_pod("probe", "alice", &[]);
        let pods = self.pods_as(HUB);
        wait_until(
            "the API server calls the webhook",
            Duration::from_secs(30),
            || {
                let pods = pods.clone();
                let probe = probe.clone();
                async move {
                    let dry = PostParams {
                        dry_run: true,
                        ..Default::default()
                    };
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

    fn pods_as_admin(&self) -> Api<Pod> {
        Api::namespaced(self.admin.clone(), self.ns.name())
    }

    fn pods_as(&self, (namespace, name): (&str, &str)) -> Api<Pod> {
        Api::namespaced(
            self.cluster.client_as_service_account(namespace, name),
            self.ns.name(),
        )
    }

    fn pods_as_user(&self, user: &str, groups: &[&str]) -> Api<Pod> {
        Api::namespaced(self.cluster.client_as(user, groups), self.ns.name())
    }

    fn claims(&self) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.admin.clone(), self.ns.name())
    }

    async fn metrics(&self) -> String {
        http_get(self.server().probe_addr, "/metrics").await.1
    }

    async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            self._registrations.clear();
            let _ = server.stop(false).await;
        }
    }
}

fn rule(group: &str, resource: &str, operations: &[&str]) -> RuleWithOperations {
    RuleWithOperations {
        api_groups: Some(vec![group.into()]),
        api_versions: Some(vec!["v1".into()]),
        resources: Some(vec![resource.into()]),
        operations: Some(operations.iter().map(|o| o.to_string()).collect()),
        scope: Some("Namespaced".into()),
    }
}

/// Every authenticated user (the impersonated users and service accounts) may work with pods in
/// this namespace. (The aggregated `edit` role is empty here: no controller-manager aggregates it.)
async fn allow_everyone_to_edit(admin: &Client, ns: &str) {
    let verbs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let role = Role {
        metadata: ObjectMeta {
            name: Some("notebook-users".into()),
            ..Default::default()
        },
        rules: Some(vec![
            PolicyRule {
                api_groups: Some(vec!["".into()]),
                resources: Some(vec!["pods".into()]),
                verbs: verbs(&[
                    "create", "get", "list", "watch", "update", "patch", "delete",
                ]),
                ..Default::default()
            },
            PolicyRule {
                api_groups: Some(vec!["".into()]),
                resources: Some(vec!["pods/ephemeralcontainers".into()]),
                verbs: verbs(&["update", "patch"]),
                ..Default::default()
            },
        ]),
    };
    Api::<Role>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .expect("Role");
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("notebook-users".into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "notebook-users".into(),
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
}

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
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
fn notebook_pod(name: &str, user: &str, extra_annotations: &[(&str, &str)]) -> Pod {
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

/// A plain (non-notebook) pod mounting `claim` read-write at /data.
fn claim_pod(name: &str, claim: &str) -> Pod {
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

fn annotation(pod: &Pod, key: &str) -> Option<String> {
    pod.metadata.annotations.as_ref()?.get(key).cloned()
}

/// (mountPath, readOnly) of a container's mounts, without the service account token the API
/// server's ServiceAccount admission adds.
fn mounts(pod: &Pod, container: &str) -> Vec<(String, bool)> {
    let spec = pod.spec.as_ref().unwrap();
    let c = spec
        .containers
        .iter()
        .find(|c| c.name == container)
        .unwrap();
    c.volume_mounts
        .iter()
        .flatten()
        .filter(|m| !m.mount_path.starts_with("/var/run/secrets/"))
        .map(|m| (m.mount_path.clone(), m.read_only.unwrap_or(false)))
        .collect()
}

fn volume_read_only(pod: &Pod, volume: &str) -> bool {
    let v = pod
        .spec
        .as_ref()
        .unwrap()
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == volume)
        .unwrap();
    v.persistent_volume_claim
        .as_ref()
        .unwrap()
        .read_only
        .unwrap_or(false)
}

fn env_var(pod: &Pod, container: &str, name: &str) -> Option<String> {
    let c = pod
        .spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == container)?;
    c.env
        .iter()
        .flatten()
        .find(|e| e.name == name)?
        .value
        .clone()
}

fn denial(result: Result<Pod, kube::Error>) -> String {
    match result {
        Ok(p) => panic!("expected a denial, got pod {:?}", p.metadata.name),
        Err(kube::Error::Api(status)) => status.message,
        Err(e) => panic!("expected an API denial, got {e}"),
    }
}

/// A plain HTTP/1.1 GET on the probe port: (status, body).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
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

const HOME: &str = "/opt/app-root/src";
fn share(name: &str) -> String {
    format!("{HOME}/shares/{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubespawner_and_odh_pods_get_home_shares_and_library() {
    let env = Env::start().await;
    let pod = env
        .pods_as(HUB)
        .create(
            &PostParams::default(),
            &notebook_pod("jupyter-alice", "alice", &[]),
        )
        .await
        .expect("created");
    assert_eq!(
        annotation(&pod, keys::USER_ANNOTATION).as_deref(),
        Some("alice")
    );
    assert_eq!(
        mounts(&pod, "notebook"),
        vec![
            (HOME.into(), false),
            (share("datasets"), true),
            (share("notebooks"), false),
            (share("finance"), false),
            ("/opt/apps".into(), true),
        ]
    );
    assert!(volume_read_only(&pod, "nv-lib-apps") && volume_read_only(&pod, "nv-share-datasets"));
    assert_eq!(
        env_var(&pod, "notebook", "LMOD_CMD").as_deref(),
        Some("/opt/apps/lmod/lmod/libexec/lmod")
    );
    assert_eq!(
        env_var(&pod, "notebook", "MODULEPATH").as_deref(),
        Some("/opt/apps/modulefiles/Core:/opt/apps/modulefiles/Linux")
    );
    let home = env
        .claims()
        .get("home-alice")
        .await
        .expect("home claim created on first launch");
    assert_eq!(
        home.metadata.annotations.unwrap()[keys::OWNER_ANNOTATION],
        "alice"
    );
    assert_eq!(home.metadata.labels.unwrap()[keys::HOME_LABEL], "true");

    // An Open Data Hub workbench, created by the StatefulSet controller.
    let odh: Pod = serde_yaml::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/pods/odh-bob.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut odh = odh;
    odh.metadata.namespace = None;
    let pod = env
        .pods_as(STS)
        .create(&PostParams::default(), &odh)
        .await
        .expect("created");
    assert_eq!(
        annotation(&pod, keys::USER_ANNOTATION).as_deref(),
        Some("bob")
    );
    assert!(mounts(&pod, "bob-workbench").contains(&(share("finance"), true)));
    assert!(mounts(&pod, "oauth-proxy").is_empty());
    assert!(env_var(&pod, "oauth-proxy", "MODULEPATH").is_none());
    assert_eq!(
        odh.spec.as_ref().unwrap().containers[1].image,
        pod.spec.as_ref().unwrap().containers[1].image
    );
    assert!(env.claims().get("home-bob").await.is_ok());

    // A pod that already carries everything is not changed (reinvocation is a no-op).
    let mut again = env.pods_as_admin().get("jupyter-alice").await.unwrap();
    again.metadata = ObjectMeta {
        name: Some("jupyter-alice-2".into()),
        labels: again.metadata.labels.clone(),
        annotations: again.metadata.annotations.clone(),
        ..Default::default()
    };
    again.status = None;
    let created = env
        .pods_as(HUB)
        .create(&PostParams::default(), &again)
        .await
        .unwrap();
    assert_eq!(
        created.spec.as_ref().unwrap().volumes,
        again.spec.as_ref().unwrap().volumes
    );
    assert_eq!(mounts(&created, "notebook"), mounts(&again, "notebook"));

    // What happened is counted.
    let metrics = env.metrics().await;
    assert!(
        metrics.contains("notebook_volumes_home_claims_created_total 2"),
        "{metrics}"
    );
    assert!(metrics.contains("decision=\"allowed\""), "{metrics}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_get_their_own_rights_and_cannot_claim_someone_else() {
    let env = Env::start().await;
    // carol is an analyst by policy; her identity provider also says finance-admins.
    let carol = env.pods_as_user("carol", &["finance-admins"]);
    let pod = carol
        .create(
            &PostParams::default(),
            &notebook_pod("carol-nb", "carol", &[]),
        )
        .await
        .expect("created");
    assert_eq!(
        annotation(&pod, keys::USER_ANNOTATION).as_deref(),
        Some("carol")
    );
    assert!(mounts(&pod, "notebook").contains(&(share("finance"), false)));
    let message = denial(
        carol
            .create(
                &PostParams::default(),
                &notebook_pod("fake-bob", "bob", &[]),
            )
            .await,
    );
    assert!(
        message.contains("pod claims user 'bob' but was created by 'carol'; only trusted spawners may create notebooks for other users"),
        "{message}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_share_only_on_request_and_everything_else_read_only() {
    let env = Env::start().await;
    let hub = env.pods_as(HUB);
    let secret = [(keys::SECRET_SHARES_ANNOTATION, "mergers")];
    let pod = hub
        .create(
            &PostParams::default(),
            &notebook_pod("alice-secret", "alice", &secret),
        )
        .await
        .expect("created");
    let m = mounts(&pod, "notebook");
    assert!(m.contains(&(share("mergers"), false)), "{m:?}");
    assert!(
        m.contains(&(share("finance"), true)) && m.contains(&(share("notebooks"), true)),
        "{m:?}"
    );
    assert!(m.contains(&(HOME.into(), false)), "home stays writable");
    let message = denial(
        hub.create(
            &PostParams::default(),
            &notebook_pod("bob-secret", "bob", &secret),
        )
        .await,
    );
    assert!(message.contains("secret share 'mergers'"), "{message}");
    let pod = hub
        .create(&PostParams::default(), &notebook_pod("bob-nb", "bob", &[]))
        .await
        .unwrap();
    assert!(
        !mounts(&pod, "notebook")
            .iter()
            .any(|(p, _)| p.ends_with("mergers"))
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_denies_or_forces_read_only_on_every_pod() {
    let env = Env::start().await;
    let message = denial(
        env.pods_as_user("erin", &[])
            .create(&PostParams::default(), &claim_pod("report", "finance-data"))
            .await,
    );
    assert!(
        message.contains("claim 'finance-data'") && message.contains("user 'erin'"),
        "{message}"
    );

    let bob = env.pods_as_user("bob", &[]);
    let pod = bob
        .create(&PostParams::default(), &claim_pod("report", "finance-data"))
        .await
        .expect("reader allowed");
    assert_eq!(mounts(&pod, "job"), vec![("/data".to_string(), true)]);
    assert!(volume_read_only(&pod, "data"));

    // Another user's home claim.
    env.pods_as(HUB)
        .create(
            &PostParams::default(),
            &notebook_pod("jupyter-alice", "alice", &[]),
        )
        .await
        .unwrap();
    let message = denial(
        bob.create(&PostParams::default(), &claim_pod("steal", "home-alice"))
            .await,
    );
    assert!(
        message.contains("home claim 'home-alice' of user 'alice'"),
        "{message}"
    );

    // A debug container added to bob's pod cannot write to the read-only share.
    let debug = json!({"spec": {"ephemeralContainers": [{
        "name": "debug", "image": "busybox", "volumeMounts": [{"name": "data", "mountPath": "/data"}]
    }]}});
    let pod = bob
        .patch_subresource(
            "ephemeralcontainers",
            "report",
            &PatchParams::default(),
            &Patch::Strategic(debug),
        )
        .await
        .expect("debug container added");
    let ephemeral = &pod.spec.unwrap().ephemeral_containers.unwrap()[0];
    assert_eq!(
        ephemeral.volume_mounts.as_ref().unwrap()[0].read_only,
        Some(true)
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_dry_run_shows_the_mutation_and_creates_nothing() {
    let env = Env::start().await;
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let pod = env
        .pods_as(HUB)
        .create(&dry, &notebook_pod("jupyter-dave", "dave", &[]))
        .await
        .expect("dry run");
    assert_eq!(
        annotation(&pod, keys::USER_ANNOTATION).as_deref(),
        Some("dave")
    );
    assert!(mounts(&pod, "notebook").contains(&(HOME.into(), false)));
    assert!(
        env.claims().get_opt("home-dave").await.unwrap().is_none(),
        "dry run must not create the home claim"
    );
    assert!(
        env.pods_as_admin()
            .get_opt("jupyter-dave")
            .await
            .unwrap()
            .is_none()
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_labelled_namespaces_are_touched() {
    let env = Env::start().await;
    let namespaces = Api::<Namespace>::all(env.admin.clone());
    let remove = json!({"metadata": {"labels": {keys::INJECT_LABEL: null}}});
    namespaces
        .patch(
            env.ns.name(),
            &PatchParams::default(),
            &Patch::Merge(remove),
        )
        .await
        .unwrap();
    let pods = env.pods_as(HUB);
    wait_until(
        "injection stops without the label",
        Duration::from_secs(20),
        || {
            let pods = pods.clone();
            async move {
                let dry = PostParams {
                    dry_run: true,
                    ..Default::default()
                };
                let pod = pods
                    .create(&dry, &notebook_pod("unlabelled", "alice", &[]))
                    .await
                    .unwrap();
                annotation(&pod, keys::USER_ANNOTATION).is_none()
            }
        },
    )
    .await;
    let pod = pods
        .create(&PostParams::default(), &notebook_pod("plain", "alice", &[]))
        .await
        .unwrap();
    assert!(
        pod.spec
            .unwrap()
            .volumes
            .unwrap_or_default()
            .iter()
            .all(|v| !v.name.starts_with("nv-"))
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_changes_apply_to_the_next_pod_and_invalid_policy_is_refused() {
    let env = Env::start().await;
    let config_maps = Api::<ConfigMap>::namespaced(env.admin.clone(), env.policy_ns.name());
    let extra = format!(
        "kind: Share\nname: scratch\nnamespaces: [{}]\nclaimName: scratch\nmountPath: /scratch\nlevel: public\n",
        env.ns.name()
    );
    config_maps
        .create(
            &PostParams::default(),
            &policy_config_map("extra", [("scratch.yaml".to_string(), extra)].into()),
        )
        .await
        .expect("valid policy accepted");
    let changed = Instant::now();
    let pods = env.pods_as(HUB);
    let mut seen = None;
    while changed.elapsed() < Duration::from_secs(1) {
        let dry = PostParams {
            dry_run: true,
            ..Default::default()
        };
        let pod = pods
            .create(&dry, &notebook_pod("next", "alice", &[]))
            .await
            .unwrap();
        if mounts(&pod, "notebook").contains(&("/scratch".to_string(), true)) {
            seen = Some(changed.elapsed());
            break;
        }
    }
    assert!(
        seen.is_some(),
        "the new share was not mounted within one second of the change"
    );

    let bad =
        "kind: Share\nname: broken\nclaimName: broken\nmountPath: relative/path\nlevel: public\n";
    let err = config_maps
        .create(
            &PostParams::default(),
            &policy_config_map("bad", [("bad.yaml".to_string(), bad.to_string())].into()),
        )
        .await
        .expect_err("invalid policy refused");
    let message = err.to_string();
    assert!(
        message.contains("key bad.yaml, line 4") && message.contains("field 'mountPath'"),
        "{message}"
    );
    // An update that breaks a valid ConfigMap is refused too.
    let broken = json!({"data": {"scratch.yaml": "kind: Share\nname: scratch\nclaimName: scratch\nmountPath: /scratch\nlevel: public\nreaders: {users: [x]}\n"}});
    let err = config_maps
        .patch("extra", &PatchParams::default(), &Patch::Merge(broken))
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("field 'readers'"), "{err}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_replaced_on_disk_while_pods_are_created() {
    let env = Env::start().await;
    // Rotation as a platform would do it: trust the new CA first, then swap the serving pair.
    let next = generate(&CertRequest {
        dns_names: vec!["localhost".into()],
        ip_addresses: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        days: 1,
    })
    .unwrap();
    let bundle = format!("{}{}", env.ca_bundle, next.ca_cert_pem);
    let name = format!("nv-{}", env.ns.name());
    let patch = json!({"webhooks": [{"name": "pods.notebook-volumes.io", "clientConfig": {"caBundle": base64(&bundle)}}]});
    Api::<MutatingWebhookConfiguration>::all(env.admin.clone())
        .patch(&name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pods = env.pods_as(HUB);
    let creating = tokio::spawn(async move {
        let mut allowed = 0;
        for i in 0..30 {
            let dry = PostParams {
                dry_run: true,
                ..Default::default()
            };
            let pod = pods
                .create(&dry, &notebook_pod(&format!("rotate-{i}"), "alice", &[]))
                .await
                .expect("admission during rotation");
            allowed += usize::from(annotation(&pod, keys::USER_ANNOTATION).is_some());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        allowed
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dir = env.certs.path();
    std::fs::write(dir.join("tls.key.new"), &next.key_pem).unwrap();
    std::fs::write(dir.join("tls.crt.new"), &next.cert_pem).unwrap();
    std::fs::rename(dir.join("tls.key.new"), dir.join("tls.key")).unwrap();
    std::fs::rename(dir.join("tls.crt.new"), dir.join("tls.crt")).unwrap();
    assert_eq!(
        creating.await.unwrap(),
        30,
        "every admission during the rotation succeeded"
    );
    let metrics = env.metrics().await;
    assert!(
        metrics.contains("notebook_volumes_certificate_reloads_total{result=\"ok\"}"),
        "{metrics}"
    );
    // The new certificate is what the API server now verifies against.
    let only_new = json!({"webhooks": [{"name": "pods.notebook-volumes.io", "clientConfig": {"caBundle": base64(&next.ca_cert_pem)}}]});
    Api::<MutatingWebhookConfiguration>::all(env.admin.clone())
        .patch(&name, &PatchParams::default(), &Patch::Strategic(only_new))
        .await
        .unwrap();
    let pods = env.pods_as(HUB);
    wait_until(
        "pods are admitted with only the new CA trusted",
        Duration::from_secs(20),
        || {
            let pods = pods.clone();
            async move {
                let dry = PostParams {
                    dry_run: true,
                    ..Default::default()
                };
                pods.create(&dry, &notebook_pod("after", "alice", &[]))
                    .await
                    .is_ok_and(|p| annotation(&p, keys::USER_ANNOTATION).is_some())
            }
        },
    )
    .await;
    env.stop().await;
}

fn base64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_waits_for_the_first_sync() {
    install_crypto_provider();
    let cluster = TestCluster::shared();
    let admin = cluster.admin_client();
    let policy_ns = TestNamespace::new("nv-ready").await;
    // The webhook's own identity, with no rights yet: its caches cannot list anything.
    let account = format!("nv-ready-{}", policy_ns.name());
    let client = cluster.client_as(
        &format!("system:serviceaccount:{}:{account}", policy_ns.name()),
        &[],
    );
    let certs = tempfile::tempdir().unwrap();
    generate(&CertRequest {
        dns_names: vec!["localhost".into()],
        ip_addresses: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        days: 1,
    })
    .unwrap()
    .write_to(certs.path(), true)
    .unwrap();
    let mut config = Config::new(
        certs.path().join("tls.crt"),
        certs.path().join("tls.key"),
        PolicySource::Cluster {
            client,
            namespace: policy_ns.name().into(),
        },
    );
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.probe_listen = "127.0.0.1:0".parse().unwrap();
    config.workers = 1;
    let server = server::start(config).await.unwrap();
    assert_eq!(http_get(server.probe_addr, "/healthz").await.0, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) = http_get(server.probe_addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");

    // Grant what the shipped RBAC grants; the caches sync and the webhook becomes ready.
    let role = ClusterRole {
        metadata: ObjectMeta {
            name: Some(account.clone()),
            ..Default::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec!["".into()]),
            resources: Some(vec![
                "configmaps".into(),
                "namespaces".into(),
                "persistentvolumeclaims".into(),
            ]),
            verbs: vec!["get".into(), "list".into(), "watch".into()],
            ..Default::default()
        }]),
        ..Default::default()
    };
    Api::<ClusterRole>::all(admin.clone())
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let _role = DeleteOnDrop::cluster_scoped::<ClusterRole>(&account);
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(account.clone()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: account.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: account.clone(),
            namespace: Some(policy_ns.name().into()),
            api_group: None,
        }]),
    };
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let _binding = DeleteOnDrop::cluster_scoped::<ClusterRoleBinding>(&account);
    let probe = server.probe_addr;
    wait_until(
        "/readyz turns 200 after the first sync",
        Duration::from_secs(60),
        || async move { http_get(probe, "/readyz").await.0 == 200 },
    )
    .await;
    server.stop(false).await.unwrap();
}
