//! Inside the notebook: pods go through the webhook to a real kubelet (containerd, runc) and the
//! controllers, and a command in the running container shows what the user can really do —
//! write (`ok`) or not (`Read-only file system`), read another user's file, `module load` from the
//! library. The policy is the example set (examples/policies); shares and the library are
//! host-path volumes bound by the PV controller, home claims are created by the webhook and
//! provisioned by kube-controller-manager's host-path provisioner.

use nv_test_support as support;

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};
use support::env::*;
use support::node::*;
use support::webhook::*;
use support::{DeleteOnDrop, TestCluster};
/// Where the example policy mounts things in a notebook.
const HOME: &str = "/opt/app-root/src";
const DATASETS: &str = "/opt/app-root/src/shares/datasets";
const TEAM: &str = "/opt/app-root/src/shares/notebooks";
const FINANCE: &str = "/opt/app-root/src/shares/finance";
const MERGERS: &str = "/opt/app-root/src/shares/mergers";
const LIBRARY: &str = "/opt/apps";
/// A claim outside the policy, for write-down checks.
const SCRATCH_CLAIM: &str = "scratch";
/// How long a pod may take from create to its checks' output.
const POD_TIMEOUT: Duration = Duration::from_secs(120);

/// Claims the example policy refers to (shares and the library), plus a scratch claim.
const CLAIMS: &[&str] = &[
    "shared-datasets",
    "team-notebooks",
    "finance-data",
    "mergers-data",
    "apps",
    SCRATCH_CLAIM,
];

/// The webhook with the example policy, and the policy's claims bound to host-path volumes
/// whose data lives in a directory of this test; Lmod and two modulefiles on the library.
struct NodeEnv {
    env: Env,
    data: tempfile::TempDir,
    _volumes: Vec<DeleteOnDrop>,
}

impl NodeEnv {
    async fn start() -> NodeEnv {
        TestCluster::shared_with_node();
        let env = Env::start_without_claims().await;
        let data = tempfile::Builder::new()
            .prefix("nv-node-data-")
            .tempdir()
            .expect("data directory");
        install_library(&data.path().join("apps"), LIBRARY);
        let volumes = bind_claims(&env.admin, env.ns.name(), data.path(), CLAIMS).await;
        NodeEnv {
            env,
            data,
            _volumes: volumes,
        }
    }

    /// The directory on this machine holding a claim's data.
    fn volume_dir(&self, claim: &str) -> PathBuf {
        self.data.path().join(claim)
    }

    /// Creates `pod` through `pods` and returns the output of its checks.
    async fn run(&self, pods: &Api<Pod>, pod: Pod) -> Checks {
        let name = pod.metadata.name.clone().expect("name");
        pods.create(&PostParams::default(), &pod)
            .await
            .unwrap_or_else(|e| panic!("pod {name} is admitted: {e}"));
        self.output(&name, None).await
    }

    /// The output of the checks in pod `name` (its first container, or `container`).
    async fn output(&self, name: &str, container: Option<&str>) -> Checks {
        wait_for_checks(&self.env.pods_as_admin(), name, container, POD_TIMEOUT).await
    }

    /// Deletes a pod and waits until it is gone (its volumes unmounted by the kubelet).
    async fn delete(&self, name: &str) {
        let pods = self.env.pods_as_admin();
        let _ = pods
            .delete(
                name,
                &DeleteParams {
                    grace_period_seconds: Some(0),
                    ..DeleteParams::default()
                },
            )
            .await;
        wait_until(
            &format!("pod {name} is gone"),
            Duration::from_secs(60),
            || {
                let pods = pods.clone();
                async move { pods.get_opt(name).await.ok().flatten().is_none() }
            },
        )
        .await;
    }

    async fn stop(self) {
        self.env.stop().await;
    }
}

/// A KubeSpawner-style notebook for `user` running `script` in the notebook image.
fn notebook(name: &str, user: &str, annotations: &[(&str, &str)], script: &str) -> Pod {
    let mut pod = notebook_pod(name, user, annotations);
    let spec = pod.spec.as_mut().expect("spec");
    spec.termination_grace_period_seconds = Some(0);
    let c = &mut spec.containers[0];
    c.image = Some(NOTEBOOK_IMAGE.into());
    c.image_pull_policy = Some("Never".into());
    c.command = Some(vec!["bash".into(), "-c".into(), script.into()]);
    pod
}

/// A notebook with an extra volume of its own (`claim` at `path`).
fn notebook_with_claim(
    name: &str,
    user: &str,
    annotations: &[(&str, &str)],
    claim: &str,
    path: &str,
    script: &str,
) -> Pod {
    let mut value = serde_json::to_value(notebook(name, user, annotations, script)).expect("pod");
    value["spec"]["volumes"] =
        json!([{"name": "extra", "persistentVolumeClaim": {"claimName": claim}}]);
    value["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "extra", "mountPath": path}]);
    serde_json::from_value(value).expect("pod")
}

/// A plain pod (not a notebook) with `volumes` (each `(name, claim, claim-level readOnly)`)
/// mounted at `/<name>`, running `script` in busybox.
fn plain_pod(name: &str, volumes: &[(&str, &str, bool)], script: &str) -> Pod {
    let vols: Vec<Value> = volumes
        .iter()
        .map(|(v, claim, ro)| {
            let mut pvc = json!({"claimName": claim});
            if *ro {
                pvc["readOnly"] = json!(true);
            }
            json!({"name": v, "persistentVolumeClaim": pvc})
        })
        .collect();
    let mounts: Vec<Value> = volumes
        .iter()
        .map(|(v, _, _)| json!({"name": v, "mountPath": format!("/{v}")}))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "job", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
                "command": ["sh", "-c", script], "volumeMounts": mounts
            }],
            "volumes": vols
        }
    }))
    .expect("pod")
}

/// A debug container (busybox) mounting pod volume `volume` at /data and running `script`.
fn debug_container(name: &str, volume: &str, script: &str) -> Value {
    json!({
        "name": name, "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
        "command": ["sh", "-c", script],
        "volumeMounts": [{"name": volume, "mountPath": "/data"}]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_is_writable_and_keeps_its_data_on_the_next_launch() {
    let t = NodeEnv::start().await;
    let hub = t.env.pods_as(HUB);
    let notes = format!("{HOME}/notes.txt");
    let first = t
        .run(
            &hub,
            notebook(
                "jupyter-alice",
                "alice",
                &[],
                &script(
                    &[HOME],
                    &[],
                    &format!("echo 'written on the first launch' > {notes}"),
                ),
            ),
        )
        .await;
    first.assert_writable(HOME);
    let claim = t
        .env
        .claims()
        .get("home-alice")
        .await
        .expect("home created");
    let volume = claim.spec.and_then(|s| s.volume_name);
    assert!(volume.is_some(), "the home claim is provisioned");
    t.delete("jupyter-alice").await;

    let second = t
        .run(
            &hub,
            notebook(
                "jupyter-alice",
                "alice",
                &[],
                &script(&[HOME], &[&notes], ""),
            ),
        )
        .await;
    second.assert_writable(HOME);
    assert_eq!(second.read(&notes), "written on the first launch");
    let again = t.env.claims().get("home-alice").await.expect("home");
    assert_eq!(
        again.spec.and_then(|s| s.volume_name),
        volume,
        "same volume"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_share_is_read_only_for_readers_and_writable_for_its_writers() {
    let t = NodeEnv::start().await;
    let hub = t.env.pods_as(HUB);
    let file = format!("{DATASETS}/iris.csv");
    // erin is a data steward: a writer of the datasets share.
    let erin = t
        .run(
            &hub,
            notebook(
                "jupyter-erin",
                "erin",
                &[],
                &script(&[DATASETS], &[], &format!("echo 'sepal,petal' > {file}")),
            ),
        )
        .await;
    erin.assert_writable(DATASETS);
    // bob reads it, and cannot write.
    let bob = t
        .run(
            &hub,
            notebook(
                "jupyter-bob",
                "bob",
                &[],
                &script(&[DATASETS], &[&file], ""),
            ),
        )
        .await;
    assert_eq!(bob.read(&file), "sepal,petal");
    bob.assert_read_only(DATASETS);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_share_is_read_write_for_writers_and_read_only_for_readers() {
    let t = NodeEnv::start().await;
    let hub = t.env.pods_as(HUB);
    let file = format!("{FINANCE}/q3.txt");
    let alice = t
        .run(
            &hub,
            notebook(
                "jupyter-alice",
                "alice",
                &[],
                &script(&[FINANCE], &[], &format!("echo 'q3 figures' > {file}")),
            ),
        )
        .await;
    alice.assert_writable(FINANCE);
    assert_eq!(
        std::fs::read_to_string(t.volume_dir("finance-data").join("q3.txt"))
            .expect("on the volume"),
        "q3 figures\n"
    );
    // bob (analysts) is a reader: he sees alice's file and cannot change it.
    let bob = t
        .run(
            &hub,
            notebook(
                "jupyter-bob",
                "bob",
                &[],
                &script(
                    &[FINANCE],
                    &[&file],
                    &format!("echo \"OVERWRITE $( (echo changed > {file}) 2>&1)\""),
                ),
            ),
        )
        .await;
    assert_eq!(bob.read(&file), "q3 figures");
    bob.assert_read_only(FINANCE);
    assert!(bob.log.contains("Read-only file system"), "{}", bob.log);
    // erin has no access to the private share: nothing is mounted there.
    let erin = t
        .run(
            &hub,
            notebook("jupyter-erin", "erin", &[], &script(&[], &[&file], "")),
        )
        .await;
    assert!(
        erin.read(&file).contains("No such file or directory"),
        "{}",
        erin.log
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_notebook_writes_its_secret_share_and_nothing_else_it_shares() {
    let t = NodeEnv::start().await;
    let hub = t.env.pods_as(HUB);
    let shares = [MERGERS, FINANCE, TEAM, DATASETS, "/scratch", HOME];
    // Without the secret share, alice writes finance, the team notebooks and her scratch claim.
    let plain = t
        .run(
            &hub,
            notebook_with_claim(
                "jupyter-alice",
                "alice",
                &[],
                SCRATCH_CLAIM,
                "/scratch",
                &script(&[FINANCE, TEAM, "/scratch", HOME], &[], ""),
            ),
        )
        .await;
    for path in [FINANCE, TEAM, "/scratch", HOME] {
        plain.assert_writable(path);
    }
    t.delete("jupyter-alice").await;
    // With it, only the secret share and her home are writable: no write-down.
    let secret = t
        .run(
            &hub,
            notebook_with_claim(
                "jupyter-alice",
                "alice",
                &[(notebook_volumes::keys::SECRET_SHARES_ANNOTATION, "mergers")],
                SCRATCH_CLAIM,
                "/scratch",
                &script(&shares, &[], ""),
            ),
        )
        .await;
    secret.assert_writable(MERGERS);
    secret.assert_writable(HOME);
    for path in [FINANCE, TEAM, DATASETS, "/scratch"] {
        secret.assert_read_only(path);
    }
    t.stop().await;
}

/// `Home.secretHome: separate` (the default) in running containers: what a secret notebook writes
/// in its home is in the secret-level home, which the same user's normal notebook neither sees nor
/// can mount.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_in_a_secret_notebooks_home_never_reaches_the_users_normal_notebook() {
    let t = NodeEnv::start().await;
    let hub = t.env.pods_as(HUB);
    let secret_file = format!("{HOME}/from-secret.txt");
    let secret = t
        .run(
            &hub,
            notebook(
                "jupyter-alice",
                "alice",
                &[(notebook_volumes::keys::SECRET_SHARES_ANNOTATION, "mergers")],
                &script(
                    &[HOME, MERGERS],
                    &[],
                    &format!("echo 'secret data' > {secret_file}"),
                ),
            ),
        )
        .await;
    secret.assert_writable(HOME);
    secret.assert_writable(MERGERS);
    let level = t
        .env
        .claims()
        .get("home-alice--secret")
        .await
        .expect("the secret-level home is created on the first secret launch");
    let labels = level.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels
            .get(notebook_volumes::keys::HOME_LEVEL_LABEL)
            .map(String::as_str),
        Some("secret")
    );
    t.delete("jupyter-alice").await;

    let normal = t
        .run(
            &hub,
            notebook(
                "jupyter-alice",
                "alice",
                &[],
                &script(&[HOME], &[&secret_file], ""),
            ),
        )
        .await;
    normal.assert_writable(HOME);
    assert!(
        normal.read(&secret_file).contains("No such file"),
        "alice's normal notebook sees the file her secret notebook wrote: {}",
        normal.read(&secret_file)
    );
    t.delete("jupyter-alice").await;

    // Nor can a pod of hers without secret data mount the secret-level home to write into it.
    let alice = t.env.pods_as_user("alice", &[]);
    let refused = denial(
        alice
            .create(
                &PostParams::default(),
                &plain_pod(
                    "peek",
                    &[("h", "home-alice--secret", false)],
                    &script(&["/h"], &[], ""),
                ),
            )
            .await,
    );
    assert!(refused.contains("secret-level home"), "{refused}");
    // The secret notebook's file is still where it was written.
    let again = t
        .run(
            &hub,
            notebook(
                "jupyter-alice",
                "alice",
                &[(notebook_volumes::keys::SECRET_SHARES_ANNOTATION, "mergers")],
                &script(&[HOME], &[&secret_file], ""),
            ),
        )
        .await;
    assert_eq!(again.read(&secret_file), "secret data");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readers_plain_pod_that_mounts_a_share_read_write_runs_and_cannot_write() {
    let t = NodeEnv::start().await;
    let bob = t.env.pods_as_user("bob", &[]);
    let checks = t
        .run(
            &bob,
            plain_pod(
                "bobs-job",
                &[("finance", "finance-data", false)],
                &script(&["/finance"], &[], ""),
            ),
        )
        .await;
    checks.assert_read_only("/finance");
    // A writer's identical pod writes.
    let alice = t.env.pods_as_user("alice", &[]);
    let checks = t
        .run(
            &alice,
            plain_pod(
                "alices-job",
                &[("finance", "finance-data", false)],
                &script(&["/finance"], &[], ""),
            ),
        )
        .await;
    checks.assert_writable("/finance");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debug_container_gets_the_rights_of_whoever_adds_it() {
    let t = NodeEnv::start().await;
    let alice = t.env.pods_as_user("alice", &[]);
    // alice (a writer of finance) runs a job that only reads the share (its mount is read-only,
    // the volume is not), so a reader may enter it: entering a pod that writes a share would
    // need write access (tests/e2e_guard.rs).
    let mut report = plain_pod(
        "report",
        &[("data", "finance-data", false)],
        &script(&["/data"], &[], ""),
    );
    if let Some(spec) = report.spec.as_mut() {
        for m in spec.containers[0].volume_mounts.iter_mut().flatten() {
            m.read_only = Some(true);
        }
    }
    let job = t.run(&alice, report).await;
    job.assert_read_only("/data");
    // bob (a reader) debugs it: his container's mount is read-only.
    let bob = t.env.pods_as_user("bob", &[]);
    add_debug(
        &bob,
        "report",
        debug_container("bob-debug", "data", &script(&["/data"], &[], "")),
    )
    .await
    .expect("bob's debug container");
    t.output("report", Some("bob-debug"))
        .await
        .assert_read_only("/data");
    // alice debugs her own job: she writes.
    add_debug(
        &alice,
        "report",
        debug_container("alice-debug", "data", &script(&["/data"], &[], "")),
    )
    .await
    .expect("alice's debug container");
    t.output("report", Some("alice-debug"))
        .await
        .assert_writable("/data");
    t.stop().await;
}

/// The kubelet mounts a claim referenced by two volumes according to the volume listed last
/// (see tests/cluster/README.md); the mount-level `readOnly` the webhook sets must hold anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_through_two_volumes_keeps_the_users_access_in_either_order() {
    let t = NodeEnv::start().await;
    let bob = t.env.pods_as_user("bob", &[]);
    let alice = t.env.pods_as_user("alice", &[]);
    for (i, order) in [[false, true], [true, false]].iter().enumerate() {
        // bob reads finance: both of his volumes are read-only, whichever comes first.
        let volumes = [
            ("first", "finance-data", order[0]),
            ("second", "finance-data", order[1]),
        ];
        let checks = t
            .run(
                &bob,
                plain_pod(
                    &format!("bob-{i}"),
                    &volumes,
                    &script(&["/first", "/second"], &[], ""),
                ),
            )
            .await;
        checks.assert_read_only("/first");
        checks.assert_read_only("/second");
        // alice writes finance. The volume she asked to be read-only stays read-only in either
        // order: the webhook put readOnly on its mount too. The other one follows the kubelet:
        // writable when the read-only volume comes first, read-only when it comes last (the
        // kubelet applies the last volume's flag to every mount of the claim).
        let checks = t
            .run(
                &alice,
                plain_pod(
                    &format!("alice-{i}"),
                    &volumes,
                    &script(&["/first", "/second"], &[], ""),
                ),
            )
            .await;
        let (read_only, other) = if order[0] {
            ("/first", "/second")
        } else {
            ("/second", "/first")
        };
        checks.assert_read_only(read_only);
        if order[0] {
            checks.assert_writable(other);
        } else {
            checks.assert_read_only(other);
        }
    }
    // A reader's notebook that mounts the share's claim itself (the webhook then does not inject
    // the share a second time): read-only too.
    let checks = t
        .run(
            &t.env.pods_as(HUB),
            notebook_with_claim(
                "jupyter-bob",
                "bob",
                &[],
                "finance-data",
                "/extra",
                &script(&["/extra"], &[], ""),
            ),
        )
        .await;
    checks.assert_read_only("/extra");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_is_read_only_and_module_load_works_with_the_injected_environment() {
    let t = NodeEnv::start().await;
    let checks = t
        .run(
            &t.env.pods_as(HUB),
            notebook(
                "jupyter-bob",
                "bob",
                &[],
                &script(
                    &[LIBRARY],
                    &[],
                    "bash -lc 'module avail; module load hello; module list; echo \"HELLO=$HELLO_LIBRARY\"' 2>&1",
                ),
            ),
        )
        .await;
    checks.assert_read_only(LIBRARY);
    assert!(
        checks.log.contains("hello/1.0"),
        "module avail:\n{}",
        checks.log
    );
    assert!(
        checks.log.contains("HELLO=hello from the library"),
        "module load:\n{}",
        checks.log
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_odh_notebook_pod_made_by_the_statefulset_controller_gets_its_users_mounts() {
    let t = NodeEnv::start().await;
    let sts: StatefulSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "bobs-notebook"},
        "spec": {
            "replicas": 1,
            "serviceName": "bobs-notebook",
            "selector": {"matchLabels": {"notebook-name": "bobs-notebook"}},
            "template": {
                "metadata": {
                    "labels": {"notebook-name": "bobs-notebook"},
                    "annotations": {"opendatahub.io/username": "bob"}
                },
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{
                        "name": "notebook", "image": NOTEBOOK_IMAGE, "imagePullPolicy": "Never",
                        "command": ["bash", "-c", script(&[HOME, FINANCE, TEAM], &[], "")]
                    }]
                }
            }
        }
    }))
    .expect("StatefulSet");
    // bob creates it (the webhook stamps it for him): the username annotation alone names nobody
    // on a pod the StatefulSet controller creates.
    allow_everyone_to_edit_workloads(&t.env.admin, t.env.ns.name()).await;
    Api::<StatefulSet>::namespaced(t.env.cluster.client_as("bob", &[]), t.env.ns.name())
        .create(&PostParams::default(), &sts)
        .await
        .expect("StatefulSet created");
    let pods = t.env.pods_as_admin();
    wait_until(
        "the StatefulSet controller creates the pod",
        Duration::from_secs(60),
        || {
            let pods = pods.clone();
            async move {
                pods.get_opt("bobs-notebook-0")
                    .await
                    .ok()
                    .flatten()
                    .is_some()
            }
        },
    )
    .await;
    let pod = pods.get("bobs-notebook-0").await.expect("pod");
    assert_eq!(
        annotation(&pod, notebook_volumes::keys::USER_ANNOTATION).as_deref(),
        Some("bob")
    );
    let checks = t.output("bobs-notebook-0", None).await;
    checks.assert_writable(HOME);
    checks.assert_read_only(FINANCE);
    checks.assert_writable(TEAM);
    t.stop().await;
}

/// Provisioned shares on the real node: a static share (a directory of this machine, as a
/// hostPath source; NFS cannot be served here) reaches two namespaces, each through its own
/// claim and a PersistentVolume the PV controller binds to that claim only, and notebooks in
/// both see the same files; a share from the node's StorageClass is provisioned by the host-path
/// provisioner. A claim in the second namespace that asks for the first namespace's volume (by
/// name, or by its labels) is refused by the PV controller: the volume's claimRef reserves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_namespaces_notebooks_share_files_through_a_provisioned_static_volume() {
    use k8s_openapi::api::core::v1::{ConfigMap, Event, PersistentVolume, PersistentVolumeClaim};
    use kube::api::ListParams;
    use notebook_volumes::keys;
    use notebook_volumes::policy::provision::volume_name;
    use support::TestNamespace;

    const COMMON: &str = "/opt/app-root/src/shares/common";
    const SCRATCHPAD: &str = "/opt/app-root/src/shares/scratchpad";
    let t = NodeEnv::start().await;
    let admin = t.env.admin.clone();
    let ns = t.env.ns.name().to_string();
    let other =
        TestNamespace::with_labels("nb-two", &[(keys::INJECT_LABEL, keys::INJECT_ENABLED)]).await;
    allow_everyone_to_edit(&admin, other.name()).await;
    let base = format!("https://127.0.0.1:{}", t.env.server().webhook_addr.port());
    let _registrations = register_webhooks(
        &admin,
        &format!("nv-{}", other.name()),
        &base,
        &t.env.ca_bundle,
        other.name(),
        t.env.policy_ns.name(),
    )
    .await;
    wait_for_injection(Api::namespaced(
        t.env.cluster.client_as_service_account(HUB.0, HUB.1),
        other.name(),
    ))
    .await;
    let export = t.data.path().join("common-export");
    std::fs::create_dir_all(&export).expect("export directory");
    let class = TestCluster::shared_with_node()
        .node()
        .map(|n| n.storage_class.clone())
        .expect("node");
    let policy = format!(
        "kind: Share\nname: common\nnamespaces: [{ns}, {other}]\nclaimName: common-data\nmountPath: {COMMON}\nlevel: public\nwriters: {{users: [alice]}}\nstorage: {{hostPath: {{path: {export}}}}}\n---\nkind: Share\nname: scratchpad\nnamespaces: [{ns}]\nclaimName: scratchpad\nmountPath: {SCRATCHPAD}\nlevel: public\nwriters: {{users: [alice]}}\nstorage: {{storageClassName: {class}, size: 1Gi}}\n",
        other = other.name(),
        export = export.display(),
    );
    Api::<ConfigMap>::namespaced(admin.clone(), t.env.policy_ns.name())
        .create(
            &PostParams::default(),
            &policy_config_map("provisioned", [("p.yaml".to_string(), policy)].into()),
        )
        .await
        .expect("policy");
    let _volumes = [
        DeleteOnDrop::cluster_scoped::<PersistentVolume>(&volume_name(&ns, "common-data")),
        DeleteOnDrop::cluster_scoped::<PersistentVolume>(&volume_name(other.name(), "common-data")),
    ];
    for (namespace, claim) in [
        (ns.as_str(), "common-data"),
        (other.name(), "common-data"),
        (ns.as_str(), "scratchpad"),
    ] {
        let claims = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), namespace);
        wait_until(
            &format!("the provisioned claim {namespace}/{claim} is Bound"),
            Duration::from_secs(60),
            || {
                let claims = claims.clone();
                async move {
                    claims
                        .get_opt(claim)
                        .await
                        .ok()
                        .flatten()
                        .and_then(|c| c.status?.phase)
                        == Some("Bound".into())
                }
            },
        )
        .await;
    }
    let first_volume = volume_name(&ns, "common-data");
    let bound = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), &ns)
        .get("common-data")
        .await
        .expect("claim");
    assert_eq!(
        bound.spec.and_then(|s| s.volume_name).as_deref(),
        Some(first_volume.as_str())
    );

    // alice writes in the first namespace; bob reads it in the second.
    let file = format!("{COMMON}/from-alice.txt");
    let alice = t
        .run(
            &t.env.pods_as(HUB),
            notebook(
                "jupyter-alice",
                "alice",
                &[],
                &script(
                    &[COMMON, SCRATCHPAD],
                    &[],
                    &format!("echo 'shared across projects' > {file}"),
                ),
            ),
        )
        .await;
    alice.assert_writable(COMMON);
    alice.assert_writable(SCRATCHPAD);
    assert_eq!(
        std::fs::read_to_string(export.join("from-alice.txt")).expect("the file on the export"),
        "shared across projects\n"
    );
    let hub_other = Api::<Pod>::namespaced(
        t.env.cluster.client_as_service_account(HUB.0, HUB.1),
        other.name(),
    );
    hub_other
        .create(
            &PostParams::default(),
            &notebook("jupyter-bob", "bob", &[], &script(&[COMMON], &[&file], "")),
        )
        .await
        .expect("bob's notebook admitted");
    let bob = wait_for_checks(
        &Api::namespaced(admin.clone(), other.name()),
        "jupyter-bob",
        None,
        POD_TIMEOUT,
    )
    .await;
    assert_eq!(bob.read(&file), "shared across projects");
    bob.assert_read_only(COMMON);

    // The first namespace's volume cannot be taken from the second: asked for by name (an
    // administrator's claim: users may not set volumeName at all) or by its labels.
    let claims = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), other.name());
    let by_name: PersistentVolumeClaim = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "by-name"},
        "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "", "volumeName": first_volume,
                 "resources": {"requests": {"storage": "1Gi"}}}
    }))
    .expect("claim");
    let by_label: PersistentVolumeClaim = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "by-label"},
        "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "",
                 "selector": {"matchLabels": {(keys::SHARE_LABEL): "common"}},
                 "resources": {"requests": {"storage": "1Gi"}}}
    }))
    .expect("claim");
    for claim in [&by_name, &by_label] {
        claims
            .create(&PostParams::default(), claim)
            .await
            .expect("claim created");
    }
    let events = Api::<Event>::namespaced(admin.clone(), other.name());
    for (claim, words) in [
        ("by-name", "already bound to a different claim"),
        ("by-label", "no persistent volumes available"),
    ] {
        wait_until(
            &format!("the PV controller refuses claim {claim}"),
            Duration::from_secs(60),
            || {
                let events = events.clone();
                async move {
                    events
                        .list(&ListParams::default())
                        .await
                        .map(|l| {
                            l.items.iter().any(|e| {
                                e.involved_object.name.as_deref() == Some(claim)
                                    && e.message.as_deref().is_some_and(|m| m.contains(words))
                            })
                        })
                        .unwrap_or(false)
                }
            },
        )
        .await;
        let phase = claims
            .get(claim)
            .await
            .expect("claim")
            .status
            .and_then(|s| s.phase);
        assert_eq!(phase.as_deref(), Some("Pending"), "{claim}");
    }
    let pv = Api::<PersistentVolume>::all(admin.clone())
        .get(&first_volume)
        .await
        .expect("volume");
    let reference = pv.spec.and_then(|s| s.claim_ref).expect("claimRef");
    assert_eq!(
        (reference.namespace.as_deref(), reference.name.as_deref()),
        (Some(ns.as_str()), Some("common-data"))
    );
    t.delete("jupyter-alice").await;
    let _ = hub_other
        .delete(
            "jupyter-bob",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
        )
        .await;
    t.stop().await;
}
