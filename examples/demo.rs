//! `make demo`: the whole job on a real kube-apiserver. Starts the test API server, runs the
//! webhook, loads the example policies as labelled ConfigMaps, opts the `ds-team` namespace in,
//! spawns notebooks for three users the way JupyterHub and the Open Data Hub controller do, and
//! prints who got which volume, read-only or read-write. Then one denied attempt and one
//! server-side dry run.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolumeClaim, Pod, ServiceAccount,
};
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use notebook_volumes::keys;
use support::webhook::*;
use support::{TestCluster, install_crypto_provider};

const NOTEBOOKS: &str = "ds-team";
const POLICY: &str = "notebook-volumes";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    install_crypto_provider();
    step("starting a real kube-apiserver with etcd (the first run builds it; then cached)");
    let cluster = TestCluster::shared();
    let admin = cluster.admin_client();

    step("loading the example policies as labelled ConfigMaps in namespace notebook-volumes");
    create_namespace(&admin, POLICY, &[]).await;
    Api::<ConfigMap>::namespaced(admin.clone(), POLICY)
        .create(
            &PostParams::default(),
            &policy_config_map("examples", example_policy(NOTEBOOKS)),
        )
        .await
        .expect("policy ConfigMap");

    step("starting the webhook (TLS on 127.0.0.1) and registering it with the API server");
    let (server, _certs, ca) = start_webhook(admin.clone(), POLICY).await;
    let base = format!("https://127.0.0.1:{}", server.webhook_addr.port());
    let _registrations = register_webhooks(
        &admin,
        "notebook-volumes",
        &base,
        &ca.ca_cert_pem,
        NOTEBOOKS,
        POLICY,
    )
    .await;

    step(
        "labelling namespace ds-team notebook-volumes.io/inject=enabled; creating the shared claims",
    );
    create_namespace(
        &admin,
        NOTEBOOKS,
        &[(keys::INJECT_LABEL, keys::INJECT_ENABLED)],
    )
    .await;
    allow_everyone_to_edit(&admin, NOTEBOOKS).await;
    for claim in [
        "shared-datasets",
        "team-notebooks",
        "finance-data",
        "mergers-data",
        "apps",
    ] {
        create_rwx_claim(&admin, claim).await;
    }
    wait_for_injection(pods_as(cluster, HUB)).await;

    step("spawning notebooks as JupyterHub (KubeSpawner) and the ODH notebook controller do");
    let hub = pods_as(cluster, HUB);
    let secret = [(keys::SECRET_SHARES_ANNOTATION, "mergers")];
    let spawned = [
        (
            "alice",
            hub.create(
                &PostParams::default(),
                &notebook_pod("jupyter-alice", "alice", &[]),
            )
            .await,
        ),
        (
            "alice",
            hub.create(
                &PostParams::default(),
                &notebook_pod("jupyter-alice-secret", "alice", &secret),
            )
            .await,
        ),
        (
            "carol",
            hub.create(
                &PostParams::default(),
                &notebook_pod("jupyter-carol", "carol", &[]),
            )
            .await,
        ),
        (
            "bob",
            pods_as(cluster, STS)
                .create(&PostParams::default(), &odh_workbench())
                .await,
        ),
    ];
    println!();
    println!(
        "{:<7} {:<22} {:<36} {:<22} MODE",
        "USER", "POD", "MOUNT", "SOURCE"
    );
    for (user, result) in spawned {
        let pod = result.expect("notebook admitted");
        print_mounts(user, &pod);
    }
    let claims = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), NOTEBOOKS)
        .list(&ListParams::default().labels(&format!("{}=true", keys::HOME_LABEL)))
        .await
        .expect("list claims");
    println!();
    for claim in claims {
        let owner = claim
            .metadata
            .annotations
            .unwrap_or_default()
            .remove(keys::OWNER_ANNOTATION);
        println!(
            "home claim created on first launch: {:<12} owner {}",
            claim.metadata.name.unwrap_or_default(),
            owner.unwrap_or_default()
        );
    }

    step("carol creates a pod herself that claims to be bob's notebook");
    let carol = Api::<Pod>::namespaced(cluster.client_as("carol", &[]), NOTEBOOKS);
    match carol
        .create(&PostParams::default(), &notebook_pod("not-bob", "bob", &[]))
        .await
    {
        Err(kube::Error::Api(status)) => println!("denied: {}", status.message),
        other => println!("unexpected: {other:?}"),
    }

    step("server-side dry run of dave's first notebook (kubectl create --dry-run=server)");
    let dry = dry_run();
    let pod = hub
        .create(&dry, &notebook_pod("jupyter-dave", "dave", &[]))
        .await
        .expect("dry run");
    println!(
        "{} = {}",
        keys::MOUNTS_ANNOTATION,
        annotation(&pod, keys::MOUNTS_ANNOTATION).unwrap_or_default()
    );
    let home = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), NOTEBOOKS)
        .get_opt("home-dave")
        .await
        .expect("get claim");
    println!("home-dave exists after the dry run: {}", home.is_some());
    let audit = audit_annotations(NOTEBOOKS, "jupyter-dave").await;
    for (key, value) in audit
        .iter()
        .filter(|(k, _)| k.starts_with("pods.notebook-volumes.io/"))
    {
        println!("API server audit log: {key} = {value}");
    }

    step("done; stopping the webhook and the API server");
    let _ = server.stop(true).await;
}

fn step(what: &str) {
    println!("\n==> {what}");
}

fn pods_as(cluster: &TestCluster, (namespace, name): (&str, &str)) -> Api<Pod> {
    Api::namespaced(
        cluster.client_as_service_account(namespace, name),
        NOTEBOOKS,
    )
}

async fn create_namespace(admin: &Client, name: &str, labels: &[(&str, &str)]) {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
    // No controller-manager runs here to create the default ServiceAccount.
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("default".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<ServiceAccount>::namespaced(admin.clone(), name)
        .create(&PostParams::default(), &account)
        .await
        .expect("service account");
}

async fn create_rwx_claim(admin: &Client, name: &str) {
    let claim: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "10Gi"}}}
    }))
    .expect("claim");
    Api::<PersistentVolumeClaim>::namespaced(admin.clone(), NOTEBOOKS)
        .create(&PostParams::default(), &claim)
        .await
        .expect("claim created");
}

/// The example Open Data Hub workbench pod (notebook container named after the notebook,
/// oauth-proxy sidecar).
fn odh_workbench() -> Pod {
    let text = include_str!("pods/odh-bob.yaml");
    let mut pod: Pod = serde_yaml::from_str(text).expect("example pod");
    pod.metadata.namespace = None;
    pod
}

fn print_mounts(user: &str, pod: &Pod) {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let volumes = spec.volumes.unwrap_or_default();
    for container in &spec.containers {
        for mount in container.volume_mounts.iter().flatten() {
            let Some(volume) = volumes.iter().find(|v| v.name == mount.name) else {
                continue;
            };
            let Some(claim) = &volume.persistent_volume_claim else {
                continue;
            };
            let read_only = mount.read_only.unwrap_or(false) || claim.read_only.unwrap_or(false);
            let source = match mount.name.as_str() {
                keys::HOME_VOLUME => format!("home ({})", claim.claim_name),
                other => other
                    .replace(keys::SHARE_VOLUME_PREFIX, "share ")
                    .replace(keys::LIBRARY_VOLUME_PREFIX, "library "),
            };
            println!(
                "{user:<7} {name:<22} {:<36} {source:<22} {}",
                mount.mount_path,
                if read_only { "ro" } else { "rw" }
            );
        }
    }
}
