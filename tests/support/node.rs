//! Pods on the real node (`TestCluster::shared_with_node`): the registry-less images, volumes
//! bound to directories of this machine, Lmod on a library volume, and scripts whose output says
//! what a container could really do.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{LogParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use super::webhook::wait_until;
use super::{DeleteOnDrop, TestCluster};

/// The notebook-like image: busybox, bash, lua and the modules Lmod needs.
pub const NOTEBOOK_IMAGE: &str = "notebook-volumes.test/notebook:1";
/// A shell and coreutils.
pub const BUSYBOX_IMAGE: &str = "notebook-volumes.test/busybox:1";

/// Creates claims `names` in `namespace`, each bound to a host-path PersistentVolume on
/// `data_dir/<name>` (named `<namespace>-<name>`), and waits until the PV controller has bound
/// them. The volumes are deleted when the returned guards drop.
pub async fn bind_claims(
    admin: &Client,
    namespace: &str,
    data_dir: &Path,
    names: &[&str],
) -> Vec<DeleteOnDrop> {
    let pvs = Api::<PersistentVolume>::all(admin.clone());
    let claims = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), namespace);
    let mut guards = Vec::new();
    for claim in names {
        let dir = data_dir.join(claim);
        std::fs::create_dir_all(&dir).expect("volume directory");
        let pv_name = format!("{namespace}-{claim}");
        let pv: PersistentVolume = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": pv_name},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteMany"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "claimRef": {"namespace": namespace, "name": claim},
                "hostPath": {"path": dir, "type": "Directory"}
            }
        }))
        .expect("PV");
        pvs.create(&PostParams::default(), &pv).await.expect("PV");
        guards.push(DeleteOnDrop::cluster_scoped::<PersistentVolume>(&pv_name));
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
        claims
            .create(&PostParams::default(), &pvc)
            .await
            .expect("PVC");
    }
    for claim in names {
        let claims = claims.clone();
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
    guards
}

/// Waits until a container of pod `name` (the first one when `container` is `None`) has printed
/// its checks' end marker, and returns what it printed. Panics with the pod's status when it
/// cannot run or prints nothing within `limit`.
pub async fn wait_for_checks(
    pods: &Api<Pod>,
    name: &str,
    container: Option<&str>,
    limit: Duration,
) -> Checks {
    let start = Instant::now();
    loop {
        let pod = pods.get(name).await.expect("pod");
        let first = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .map(|c| c.name.clone());
        let params = LogParams {
            container: container.map(str::to_owned).or(first),
            ..LogParams::default()
        };
        if let Some(problem) = cannot_run(&pod) {
            panic!("pod {name} cannot run: {problem}");
        }
        if let Ok(log) = pods.logs(name, &params).await
            && log.contains(END)
        {
            return Checks::parse(&log);
        }
        assert!(
            start.elapsed() < limit,
            "pod {name} printed no checks within {limit:?}; status: {}",
            serde_json::to_string(&pod.status).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Lmod installed in `dir` (a library volume's directory) for the library's `mount_path`, as a
/// site installs it, and modulefiles `StdEnv` (the example policy's default module) and
/// `hello/1.0` in `modulefiles/Core`.
pub fn install_library(dir: &Path, mount_path: &str) {
    let images = TestCluster::shared_with_node()
        .node()
        .map(|n| n.images_dir.clone())
        .expect("this cluster runs a node");
    let script = crate::repo("tests/cluster/install-lmod.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .arg(images.join("lmod"))
        .arg(dir)
        .arg(mount_path)
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
pub fn cannot_run(pod: &Pod) -> Option<String> {
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
pub const END: &str = "CHECKS-END";

/// A shell script (busybox sh or bash) that tries to write to each of `writes` and
/// reads `files`, printing `WRITE <dir> ok` or `WRITE <dir> <error>` and `READ <file> <content>`,
/// then `extra`, then the end marker; then it stays up (notebooks restart containers that end).
pub fn script(writes: &[&str], reads: &[&str], extra: &str) -> String {
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
pub struct Checks {
    pub writes: BTreeMap<String, String>,
    pub reads: BTreeMap<String, String>,
    pub log: String,
}

impl Checks {
    pub fn parse(log: &str) -> Checks {
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

    pub fn write(&self, path: &str) -> &str {
        self.writes
            .get(path)
            .unwrap_or_else(|| panic!("no write check of {path} in:\n{}", self.log))
    }

    pub fn assert_writable(&self, path: &str) {
        assert_eq!(
            self.write(path),
            "ok",
            "{path} should be writable:\n{}",
            self.log
        );
    }

    pub fn assert_read_only(&self, path: &str) {
        let result = self.write(path);
        assert!(
            result.contains("Read-only file system"),
            "a write to {path} should fail with 'Read-only file system', got {result:?}:\n{}",
            self.log
        );
    }

    pub fn read(&self, path: &str) -> &str {
        self.reads
            .get(path)
            .unwrap_or_else(|| panic!("no read of {path} in:\n{}", self.log))
    }
}
