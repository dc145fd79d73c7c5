//! Inside the notebook: pods go through the webhook to a real kubelet (containerd, runc) and the
//! controllers, and a command in the running container shows what the user can really do —
//! write (`ok`) or not (`Read-only file system`), read another user's file, `module load` from the
//! library. The policy is the example set (examples/policies); shares and the library are
//! host-path volumes bound by the PV controller, home claims are created by the webhook and
//! provisioned by kube-controller-manager's host-path provisioner.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::{DeleteParams, LogParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::env::*;
use support::webhook::*;
use support::{DeleteOnDrop, TestCluster};

const NOTEBOOK_IMAGE: &str = "notebook-volumes.test/notebook:1";
const BUSYBOX_IMAGE: &str = "notebook-volumes.test/busybox:1";
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
        let env = Env::start().await;
        let data = tempfile::Builder::new()
            .prefix("nv-node-data-")
            .tempdir()
            .expect("data directory");
        install_library(&data.path().join("apps"));
        let ns = env.ns.name().to_owned();
        let pvs = Api::<PersistentVolume>::all(env.admin.clone());
        let mut volumes = Vec::new();
        for claim in CLAIMS {
            let dir = data.path().join(claim);
            std::fs::create_dir_all(&dir).expect("volume directory");
            let pv_name = format!("{ns}-{claim}");
            let pv: PersistentVolume = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": pv_name},
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteMany"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": "",
                    "claimRef": {"namespace": ns, "name": claim},
                    "hostPath": {"path": dir, "type": "Directory"}
                }
            }))
            .expect("PV");
            pvs.create(&PostParams::default(), &pv).await.expect("PV");
            volumes.push(DeleteOnDrop::cluster_scoped::<PersistentVolume>(&pv_name));
            let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim},
                "spec": {
                    "accessModes": ["ReadWriteMany"],
                    "storageClassName": "",
                    "volumeName": pv_name,
                    "resources": {"requests": {"storage": "1Gi"}}
                }
            }))
            .expect("PVC");
            env.claims()
                .create(&PostParams::default(), &pvc)
                .await
                .expect("PVC");
        }
        // The PV controller binds them; the webhook mounts only bound claims.
        for claim in CLAIMS {
            let claims = env.claims();
            wait_until(
                &format!("claim {claim} is bound"),
                Duration::from_secs(60),
                || {
                    let claims = claims.clone();
                    async move {
                        claims.get(claim).await.ok().and_then(|c| c.status?.phase)
                            == Some("Bound".into())
                    }
                },
            )
            .await;
        }
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

    /// Waits until a container of pod `name` (the first one when `container` is `None`) has
    /// printed its checks' end marker, and returns what it printed. Fails with the pod's status
    /// when it cannot run.
    async fn output(&self, name: &str, container: Option<&str>) -> Checks {
        let pods = self.env.pods_as_admin();
        let params = LogParams {
            container: container.map(str::to_owned),
            ..LogParams::default()
        };
        let start = Instant::now();
        loop {
            let pod = pods.get(name).await.expect("pod");
            if let Some(problem) = cannot_run(&pod) {
                panic!("pod {name} cannot run: {problem}");
            }
            if let Ok(log) = pods.logs(name, &params).await
                && log.contains(END)
            {
                return Checks::parse(&log);
            }
            assert!(
                start.elapsed() < POD_TIMEOUT,
                "pod {name} printed no checks within {POD_TIMEOUT:?}; status: {}",
                serde_json::to_string(&pod.status).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
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

/// Lmod for the library's mount path, as a site installs it, and modulefiles `StdEnv` (the
/// policy's default module) and `hello/1.0`.
fn install_library(dir: &Path) {
    let node = TestCluster::shared_with_node();
    let images = node
        .node()
        .map(|n| n.images_dir.clone())
        .expect("this test's cluster runs a node");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cluster/install-lmod.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .arg(images.join("lmod"))
        .arg(dir)
        .arg(LIBRARY)
        .status()
        .expect("run install-lmod.sh");
    assert!(status.success(), "install-lmod.sh failed");
    let core = dir.join("modulefiles/Core");
    std::fs::create_dir_all(core.join("hello")).expect("modulefiles");
    std::fs::write(
        core.join("StdEnv.lua"),
        "whatis(\"The default environment\")\nsetenv(\"STDENV_LOADED\", \"yes\")\n",
    )
    .expect("StdEnv");
    std::fs::write(
        core.join("hello/1.0.lua"),
        "whatis(\"A greeting from the library\")\nsetenv(\"HELLO_LIBRARY\", \"hello from the library\")\nprepend_path(\"PATH\", \"/opt/apps/hello/1.0/bin\")\n",
    )
    .expect("hello modulefile");
}

/// Why a pod cannot get to running its checks, if it cannot.
fn cannot_run(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() == Some("Failed") {
        return Some(format!("phase Failed: {:?}", status.message));
    }
    let all = status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.ephemeral_container_statuses.iter().flatten());
    for c in all {
        if let Some(waiting) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            let reason = waiting.reason.as_deref().unwrap_or_default();
            if [
                "ErrImageNeverPull",
                "CreateContainerConfigError",
                "CreateContainerError",
                "RunContainerError",
                "CrashLoopBackOff",
                "InvalidImageName",
            ]
            .contains(&reason)
            {
                return Some(format!(
                    "container {}: {reason}: {:?}",
                    c.name, waiting.message
                ));
            }
        }
    }
    None
}

/// The last line every check script prints.
const END: &str = "CHECKS-END";

/// A shell script (busybox sh or bash) that tries to write to each of `writable?` paths and
/// reads `files`, printing `WRITE <dir> ok` or `WRITE <dir> <error>` and `READ <file> <content>`,
/// then `extra`, then the end marker; then it stays up (notebooks restart containers that end).
fn script(writes: &[&str], reads: &[&str], extra: &str) -> String {
    let mut s = String::from(
        "check() { if touch \"$1/.probe-$HOSTNAME\" 2>/tmp/err; then echo \"WRITE $1 ok\"; rm -f \"$1/.probe-$HOSTNAME\"; else echo \"WRITE $1 $(cat /tmp/err)\"; fi; }\n",
    );
    for w in writes {
        s.push_str(&format!("check {w}\n"));
    }
    for r in reads {
        s.push_str(&format!("echo \"READ {r} $(cat {r} 2>&1)\"\n"));
    }
    s.push_str(extra);
    s.push_str(&format!("\necho {END}\nexec sleep 3600\n"));
    s
}

/// What a check script printed.
#[derive(Debug)]
struct Checks {
    writes: BTreeMap<String, String>,
    reads: BTreeMap<String, String>,
    log: String,
}

impl Checks {
    fn parse(log: &str) -> Checks {
        let mut writes = BTreeMap::new();
        let mut reads = BTreeMap::new();
        for line in log.lines() {
            let mut parts = line.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("WRITE"), Some(path), Some(result)) => {
                    writes.insert(path.to_owned(), result.to_owned());
                }
                (Some("READ"), Some(path), rest) => {
                    reads.insert(path.to_owned(), rest.unwrap_or_default().to_owned());
                }
                _ => {}
            }
        }
        Checks {
            writes,
            reads,
            log: log.to_owned(),
        }
    }

    fn write(&self, path: &str) -> &str {
        self.writes
            .get(path)
            .unwrap_or_else(|| panic!("no write check of {path} in:\n{}", self.log))
    }

    fn assert_writable(&self, path: &str) {
        assert_eq!(
            self.write(path),
            "ok",
            "{path} should be writable:\n{}",
            self.log
        );
    }

    fn assert_read_only(&self, path: &str) {
        let result = self.write(path);
        assert!(
            result.contains("Read-only file system"),
            "a write to {path} should fail with 'Read-only file system', got {result:?}:\n{}",
            self.log
        );
    }

    fn read(&self, path: &str) -> &str {
        self.reads
            .get(path)
            .unwrap_or_else(|| panic!("no read of {path} in:\n{}", self.log))
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

async fn add_debug(pods: &Api<Pod>, pod: &str, container: Value) {
    pods.patch_subresource(
        "ephemeralcontainers",
        pod,
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"ephemeralContainers": [container]}})),
    )
    .await
    .unwrap_or_else(|e| panic!("debug container added to {pod}: {e}"));
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
    // alice (a writer of finance) runs a job with the share mounted read-write.
    let job = t
        .run(
            &alice,
            plain_pod(
                "report",
                &[("data", "finance-data", false)],
                &script(&["/data"], &[], ""),
            ),
        )
        .await;
    job.assert_writable("/data");
    // bob (a reader) debugs it: his container's mount is read-only.
    let bob = t.env.pods_as_user("bob", &[]);
    add_debug(
        &bob,
        "report",
        debug_container("bob-debug", "data", &script(&["/data"], &[], "")),
    )
    .await;
    t.output("report", Some("bob-debug"))
        .await
        .assert_read_only("/data");
    // alice debugs her own job: she writes.
    add_debug(
        &alice,
        "report",
        debug_container("alice-debug", "data", &script(&["/data"], &[], "")),
    )
    .await;
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
    Api::<StatefulSet>::namespaced(t.env.admin.clone(), t.env.ns.name())
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
