//! `make demo`: the whole job on a real cluster. Starts the test API server with a real node
//! (containerd, kubelet, controllers), runs the webhook, loads the example policies as labelled
//! ConfigMaps, opts the `ds-team` namespace in, spawns notebooks for three users the way
//! JupyterHub and the Open Data Hub controller do, and prints who got which volume, read-only or
//! read-write, and what a write from inside each running notebook gave; then `module load` from
//! the library in one of them, one denied attempt and one server-side dry run.

use nv_test_support as support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolumeClaim, Pod, ServiceAccount,
};
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use notebook_volumes::keys;
use serde_json::json;
use support::node::*;
use support::webhook::*;
use support::{TestCluster, install_crypto_provider};

const NOTEBOOKS: &str = "ds-team";
const POLICY: &str = "notebook-volumes";
/// Every place the example policy mounts something: each notebook tries to write to each.
const MOUNT_PATHS: &[&str] = &[
    "/opt/app-root/src",
    "/opt/app-root/src/shares/datasets",
    "/opt/app-root/src/shares/notebooks",
    "/opt/app-root/src/shares/finance",
    "/opt/app-root/src/shares/mergers",
    "/opt/apps",
];
/// What alice's notebook runs from the library, with only the environment the webhook injected.
const MODULE_LOAD: &str =
    "bash -lc 'module load hello && module list && echo \"HELLO_LIBRARY=$HELLO_LIBRARY\"'";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    install_crypto_provider();
    step(
        "starting a real kube-apiserver with etcd, a node (containerd + kubelet) and the controllers (the first run builds them; then cached)",
    );
    let cluster = TestCluster::shared_with_node();
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
    allow_everyone_to_edit_workloads(&admin, NOTEBOOKS).await;
    // The shares' and the library's data live in directories of this machine (host-path volumes);
    // Lmod is installed on the library for its mount path, as a site would.
    let data = tempfile::Builder::new()
        .prefix("notebook-volumes-demo-")
        .tempdir()
        .expect("data directory");
    install_library(&data.path().join("apps"), "/opt/apps");
    let _volumes = bind_claims(
        &admin,
        NOTEBOOKS,
        data.path(),
        &[
            "shared-datasets",
            "team-notebooks",
            "finance-data",
            "mergers-data",
            "apps",
        ],
    )
    .await;
    wait_for_injection(pods_as(cluster, HUB)).await;

    step(
        "spawning notebooks as JupyterHub (KubeSpawner) does, and a workbench StatefulSet whose pod the StatefulSet controller creates, as with Open Data Hub",
    );
    let hub = pods_as(cluster, HUB);
    let secret = [(keys::SECRET_SHARES_ANNOTATION, "mergers")];
    let checks = script(MOUNT_PATHS, &[], "");
    for (name, user, annotations, extra) in [
        ("jupyter-alice", "alice", &[][..], MODULE_LOAD),
        ("jupyter-alice-secret", "alice", &secret[..], ""),
        ("jupyter-carol", "carol", &[][..], ""),
    ] {
        let pod = runnable(
            notebook_pod(name, user, annotations),
            &script(MOUNT_PATHS, &[], extra),
        );
        hub.create(&PostParams::default(), &pod)
            .await
            .expect("notebook admitted");
    }
    // bob creates it (the webhook stamps it for him); the StatefulSet controller makes the pod.
    Api::<StatefulSet>::namespaced(cluster.client_as("bob", &[]), NOTEBOOKS)
        .create(&PostParams::default(), &odh_workbench(&checks))
        .await
        .expect("workbench StatefulSet");
    step("waiting for the notebooks to run; each tries to write to every mount");
    let admin_pods = Api::<Pod>::namespaced(admin.clone(), NOTEBOOKS);
    let mut outputs = Vec::new();
    for (user, name) in [
        ("alice", "jupyter-alice"),
        ("alice", "jupyter-alice-secret"),
        ("carol", "jupyter-carol"),
        ("bob", "bob-workbench-0"),
    ] {
        wait_until(
            &format!("pod {name} exists"),
            Duration::from_secs(60),
            || {
                let pods = admin_pods.clone();
                async move { pods.get_opt(name).await.ok().flatten().is_some() }
            },
        )
        .await;
        let output = wait_for_checks(&admin_pods, name, None, Duration::from_secs(120)).await;
        let pod = admin_pods.get(name).await.expect("pod");
        outputs.push((user, pod, output));
    }
    println!();
    println!(
        "{:<7} {:<22} {:<36} {:<22} {:<4} WRITE FROM INSIDE",
        "USER", "POD", "MOUNT", "SOURCE", "MODE"
    );
    for (user, pod, output) in &outputs {
        print_mounts(user, pod, output);
    }
    if let Some((_, _, output)) = outputs.first() {
        println!("\nin jupyter-alice: {MODULE_LOAD}");
        for line in output.log.lines().filter(|l| {
            !l.starts_with("WRITE ") && !l.starts_with("READ ") && *l != END && !l.trim().is_empty()
        }) {
            println!("    {line}");
        }
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
    // The controller-manager creates the default ServiceAccount too; whoever is first.
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("default".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    match Api::<ServiceAccount>::namespaced(admin.clone(), name)
        .create(&PostParams::default(), &account)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.is_already_exists() => {}
        Err(e) => panic!("service account: {e}"),
    }
}

/// `pod` with its first container running `script` in the notebook image (no registry here).
fn runnable(mut pod: Pod, script: &str) -> Pod {
    let spec = pod.spec.as_mut().expect("spec");
    spec.termination_grace_period_seconds = Some(0);
    for (i, c) in spec.containers.iter_mut().enumerate() {
        c.image_pull_policy = Some("Never".into());
        if i == 0 {
            c.image = Some(NOTEBOOK_IMAGE.into());
            c.command = Some(vec!["bash".into(), "-c".into(), script.into()]);
        } else {
            c.image = Some(BUSYBOX_IMAGE.into());
            c.command = Some(vec!["sleep".into(), "3600".into()]);
            c.args = None;
        }
    }
    pod
}

/// A StatefulSet whose pod is the example Open Data Hub workbench pod (notebook container named
/// after the notebook, oauth-proxy sidecar), running `script`.
fn odh_workbench(script: &str) -> StatefulSet {
    let text = include_str!("pods/odh-bob.yaml");
    let mut pod: Pod = serde_saphyr::from_str(text).expect("example pod");
    pod.metadata.namespace = None;
    pod.metadata.name = None;
    if let Some(labels) = pod.metadata.labels.as_mut() {
        labels.remove("statefulset.kubernetes.io/pod-name"); // the controller sets it
    }
    let pod = runnable(pod, script);
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "bob-workbench"},
        "spec": {
            "replicas": 1,
            "serviceName": "bob-workbench",
            "selector": {"matchLabels": {"statefulset": "bob-workbench"}},
            "template": {"metadata": pod.metadata, "spec": pod.spec}
        }
    }))
    .expect("StatefulSet")
}

fn print_mounts(user: &str, pod: &Pod, output: &Checks) {
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
            let write = output
                .writes
                .get(&mount.mount_path)
                .map(String::as_str)
                .unwrap_or("(not checked)");
            // busybox says "touch: <path>: Read-only file system"; keep the reason.
            let write = write.rsplit(": ").next().unwrap_or(write);
            println!(
                "{user:<7} {name:<22} {:<36} {source:<22} {:<4} {write}",
                mount.mount_path,
                if read_only { "ro" } else { "rw" }
            );
        }
    }
}
