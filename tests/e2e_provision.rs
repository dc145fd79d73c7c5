//! End-to-end against the real API server: shares with `storage` get their claim provisioned by
//! the reconciler in each enabled namespace in scope (a StorageClass claim; a static claim with a
//! PersistentVolume pre-bound to it), on a policy change and when a namespace is enabled later;
//! notebooks there get the mount once the claim is Bound. A claim of that name made by someone
//! else is never adopted: it is reported with an Event on the policy ConfigMap and a gauge. The
//! managed label is the webhook's and administrators' only. (The PV controller's binding and two
//! namespaces sharing files through a static volume are in tests/e2e_node.rs.)

use nv_test_support as support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use notebook_volumes::keys;
use notebook_volumes::policy::provision::volume_name;
use serde_json::json;
use support::env::*;
use support::webhook::*;
use support::{DeleteOnDrop, TestNamespace};

const LAKE: &str = "/opt/app-root/src/shares/lake";
const ARCHIVE: &str = "/opt/app-root/src/shares/archive";

/// Two provisioned shares reaching `namespaces`: `lake` from a StorageClass, `archive` from an
/// NFS export (a static volume per namespace).
fn provisioned_policy(namespaces: &[&str]) -> BTreeMap<String, String> {
    let scope = namespaces.join(", ");
    let text = format!(
        "kind: Share\nname: lake\nnamespaces: [{scope}]\nclaimName: lake-data\nmountPath: {LAKE}\nlevel: public\nstorage: {{storageClassName: standard, size: 5Gi}}\n---\nkind: Share\nname: archive\nnamespaces: [{scope}]\nclaimName: archive-data\nmountPath: {ARCHIVE}\nlevel: public\nstorage: {{nfs: {{server: nfs.example.org, path: /exports/archive}}, size: 100Gi}}\n"
    );
    [("provisioned.yaml".to_string(), text)].into()
}

async fn add_policy(env: &Env, namespaces: &[&str]) {
    Api::<ConfigMap>::namespaced(env.admin.clone(), env.policy_ns.name())
        .create(
            &PostParams::default(),
            &policy_config_map("provisioned", provisioned_policy(namespaces)),
        )
        .await
        .expect("policy ConfigMap");
}

async fn claim(admin: &Client, ns: &str, name: &str) -> Option<PersistentVolumeClaim> {
    Api::<PersistentVolumeClaim>::namespaced(admin.clone(), ns)
        .get_opt(name)
        .await
        .expect("read claim")
}

async fn wait_for_claim(admin: &Client, ns: &str, name: &str) -> PersistentVolumeClaim {
    wait_until(
        &format!("claim {name} is provisioned in {ns}"),
        Duration::from_secs(30),
        || async { claim(admin, ns, name).await.is_some() },
    )
    .await;
    claim(admin, ns, name).await.expect("claim")
}

/// Labels namespace `name` for notebook-volumes, as a platform team enables a project.
async fn enable(admin: &Client, name: &str) {
    Api::<Namespace>::all(admin.clone())
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {keys::INJECT_LABEL: keys::INJECT_ENABLED}}}),
            ),
        )
        .await
        .expect("namespace labelled");
}

fn label<'a>(labels: &'a Option<BTreeMap<String, String>>, key: &str) -> Option<&'a str> {
    labels.as_ref()?.get(key).map(String::as_str)
}

/// The claim and the volume of `archive` in `ns`, checked: pre-bound to each other, managed.
async fn check_static(admin: &Client, ns: &str) {
    let pvc = wait_for_claim(admin, ns, "archive-data").await;
    let pv_name = volume_name(ns, "archive-data");
    let spec = pvc.spec.clone().expect("spec");
    assert_eq!(spec.volume_name.as_deref(), Some(pv_name.as_str()));
    assert_eq!(spec.storage_class_name.as_deref(), Some(""));
    assert_eq!(
        label(&pvc.metadata.labels, keys::SHARE_LABEL),
        Some("archive")
    );
    let pv = Api::<PersistentVolume>::all(admin.clone())
        .get(&pv_name)
        .await
        .expect("the static volume exists");
    let pv_spec = pv.spec.expect("spec");
    let reference = pv_spec.claim_ref.expect("claimRef");
    assert_eq!(
        (reference.namespace.as_deref(), reference.name.as_deref()),
        (Some(ns), Some("archive-data"))
    );
    assert_eq!(
        pv_spec.persistent_volume_reclaim_policy.as_deref(),
        Some("Retain")
    );
    let nfs = pv_spec.nfs.expect("nfs");
    assert_eq!(
        (nfs.server.as_str(), nfs.path.as_str()),
        ("nfs.example.org", "/exports/archive")
    );
    assert_eq!(
        label(&pv.metadata.labels, keys::MANAGED_BY_LABEL),
        Some(keys::MANAGED_BY)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_enabled_later_gets_the_share_claims_and_its_notebooks_the_mounts() {
    let env = Env::start_without_claims().await;
    let ns = env.ns.name();
    let later = TestNamespace::new("nb-later").await;
    add_policy(&env, &[ns, later.name()]).await;

    // The policy change provisions the enabled namespace.
    let lake = wait_for_claim(&env.admin, ns, "lake-data").await;
    let spec = lake.spec.clone().expect("spec");
    assert_eq!(spec.storage_class_name.as_deref(), Some("standard"));
    assert_eq!(
        spec.access_modes.as_deref(),
        Some(&["ReadWriteMany".to_string()][..])
    );
    assert_eq!(spec.volume_name, None);
    assert_eq!(
        label(&lake.metadata.labels, keys::MANAGED_BY_LABEL),
        Some(keys::MANAGED_BY)
    );
    assert_eq!(
        label(&lake.metadata.labels, keys::SHARE_LABEL),
        Some("lake")
    );
    check_static(&env.admin, ns).await;
    // The other namespace is in scope but not enabled: nothing there, also after any pass
    // still queued has run (so that only the label below can bring its claims).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(claim(&env.admin, later.name(), "lake-data").await.is_none());
    assert!(
        claim(&env.admin, later.name(), "archive-data")
            .await
            .is_none()
    );

    // Enabling it is enough: the namespace watch nudges the reconciler.
    enable(&env.admin, later.name()).await;
    wait_for_claim(&env.admin, later.name(), "lake-data").await;
    check_static(&env.admin, later.name()).await;
    let _volumes = [
        DeleteOnDrop::cluster_scoped::<PersistentVolume>(&volume_name(ns, "archive-data")),
        DeleteOnDrop::cluster_scoped::<PersistentVolume>(&volume_name(
            later.name(),
            "archive-data",
        )),
    ];
    assert_ne!(
        volume_name(ns, "archive-data"),
        volume_name(later.name(), "archive-data"),
        "a volume per namespace"
    );

    // No controller runs on this API server: bind the claims as the PV controller would; the
    // next notebook gets both shares.
    set_claim_status(&env.admin, ns, "lake-data", "Bound", "ReadWriteMany").await;
    set_claim_status(&env.admin, ns, "archive-data", "Bound", "ReadWriteMany").await;
    let hub = env.cluster.client_as_service_account(HUB.0, HUB.1);
    wait_until(
        "a notebook gets the provisioned shares",
        Duration::from_secs(10),
        || {
            let hub = hub.clone();
            async move {
                let pod = notebook_pod("jupyter-bob", "bob", &[]);
                let (pod, _) = create_with_warnings(&hub, ns, &pod, true)
                    .await
                    .expect("admitted");
                let paths: Vec<String> = mounts(&pod, "notebook")
                    .into_iter()
                    .map(|(p, _)| p)
                    .collect();
                paths.contains(&LAKE.to_string()) && paths.contains(&ARCHIVE.to_string())
            }
        },
    )
    .await;

    let metrics = env.metrics().await;
    assert!(
        sample(
            &metrics,
            "notebook_volumes_provisioned_total{object=\"claim\"}"
        ) >= 4.0
            && sample(
                &metrics,
                "notebook_volumes_provisioned_total{object=\"volume\"}"
            ) >= 2.0,
        "{metrics}"
    );

    // The share leaves the policy: nothing provisioned is deleted (the webhook has no delete
    // right on claims or volumes at all; the claims and volumes are still there).
    Api::<ConfigMap>::namespaced(env.admin.clone(), env.policy_ns.name())
        .delete("provisioned", &Default::default())
        .await
        .expect("policy removed");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(claim(&env.admin, ns, "lake-data").await.is_some());
    check_static(&env.admin, ns).await;
    env.stop().await;
}

/// The Events on the policy ConfigMap `provisioned` with `reason`.
async fn policy_events(env: &Env, reason: &str) -> Vec<Event> {
    Api::<Event>::namespaced(env.admin.clone(), env.policy_ns.name())
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some(reason)
                && e.regarding.as_ref().is_some_and(|r| {
                    r.kind.as_deref() == Some("ConfigMap")
                        && r.name.as_deref() == Some("provisioned")
                })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_made_by_someone_else_is_never_adopted_and_is_reported() {
    let env = Env::start_without_claims().await;
    let ns = env.ns.name();
    // Made before the share was defined (when its name was not reserved yet).
    ready_claims(&env.admin, ns, &["lake-data"], "ReadWriteOnce").await;
    add_policy(&env, &[ns]).await;
    check_static(&env.admin, ns).await;
    let _volume =
        DeleteOnDrop::cluster_scoped::<PersistentVolume>(&volume_name(ns, "archive-data"));

    wait_until(
        "a ProvisionConflict Event on the policy ConfigMap",
        Duration::from_secs(30),
        || async { !policy_events(&env, "ProvisionConflict").await.is_empty() },
    )
    .await;
    let events = policy_events(&env, "ProvisionConflict").await;
    let note = events[0].note.clone().unwrap_or_default();
    assert!(
        note.contains("share 'lake'")
            && note.contains(&format!(
                "claim 'lake-data' in namespace '{ns}' is not provisioned"
            ))
            && note.contains("never adopts"),
        "{note}"
    );
    // The gauge is set when the pass that wrote the Event ends.
    env.wait_for_sample("notebook_volumes_provision_conflicts", 1.0)
        .await;
    let untouched = claim(&env.admin, ns, "lake-data").await.expect("claim");
    assert_eq!(
        label(&untouched.metadata.labels, keys::MANAGED_BY_LABEL),
        None
    );
    assert_eq!(
        untouched.spec.and_then(|s| s.storage_class_name),
        None,
        "the claim is left exactly as it was"
    );

    // A project member cannot make a claim look managed, under a share's name or any other.
    allow_everyone_to_edit_claims(&env.admin, ns).await;
    let mallory =
        Api::<PersistentVolumeClaim>::namespaced(env.cluster.client_as("mallory", &[]), ns);
    let marked = |name: &str| -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "labels": {keys::MANAGED_BY_LABEL: keys::MANAGED_BY}},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}
        }))
        .expect("claim")
    };
    let denied = |r: Result<PersistentVolumeClaim, kube::Error>| match r {
        Err(kube::Error::Api(s)) => s.message,
        other => panic!("expected a denial, got {other:?}"),
    };
    let message = denied(
        mallory
            .create(&PostParams::default(), &marked("scratch"))
            .await,
    );
    assert!(
        message.contains("sets the label notebook-volumes.io/managed-by"),
        "{message}"
    );
    let plain = {
        let mut c = marked("mine");
        c.metadata.labels = None;
        c
    };
    mallory
        .create(&PostParams::default(), &plain)
        .await
        .expect("an ordinary claim");
    let message = denied(
        mallory
            .patch(
                "mine",
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"metadata": {"labels": {keys::MANAGED_BY_LABEL: keys::MANAGED_BY}}}),
                ),
            )
            .await,
    );
    assert!(
        message.contains("may not set, change or remove the label"),
        "{message}"
    );
    env.stop().await;
}

/// The example Settings with inline `nfs` volumes allowed (an administrator's choice for other
/// exports): the Settings document is one in the whole policy, so the example's is extended.
async fn allow_inline_nfs(env: &Env) {
    let config_maps = Api::<ConfigMap>::namespaced(env.admin.clone(), env.policy_ns.name());
    let mut policy = config_maps.get("policy").await.expect("example policy");
    let data = policy.data.as_mut().expect("data");
    let settings = data.get_mut("settings.yaml").expect("settings");
    *settings = settings.replacen(
        "kind: Settings\n",
        "kind: Settings\nallowedVolumeTypes: [nfs]\n",
        1,
    );
    config_maps
        .replace("policy", &PostParams::default(), &policy)
        .await
        .expect("settings changed");
}

fn nfs_pod(name: &str, path: &str) -> k8s_openapi::api::core::v1::Pod {
    nfs_pod_on(name, "NFS.example.org", path)
}

fn nfs_pod_on(name: &str, server: &str, path: &str) -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {
            "containers": [{"name": "c", "image": "busybox", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
            "volumes": [{"name": "v", "nfs": {"server": server, "path": path}}]
        }
    }))
    .expect("pod")
}

fn plain_claim(
    name: &str,
    labels: serde_json::Value,
    spec: serde_json::Value,
) -> PersistentVolumeClaim {
    let mut spec = spec;
    spec["accessModes"] = json!(["ReadWriteMany"]);
    spec["resources"] = json!({"requests": {"storage": "1Gi"}});
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "labels": labels}, "spec": spec
    }))
    .expect("claim")
}

fn refusal<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(s)) if s.code == 403 => s.message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A project member (pods, claims and ConfigMaps of `edit` in the namespace) against a
/// provisioned share: the export mounted inline although the Settings allow `nfs`, the static
/// volume bound by name, clones of the claims (also by the StatefulSet controller, which makes
/// the claims of `volumeClaimTemplates`), the claim deleted and made again with their own spec, a
/// claim labelled as the share's, and a policy ConfigMap of their own with a `hostPath: /` share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_member_cannot_take_copy_rebind_or_go_around_a_provisioned_share() {
    let env = Env::start_without_claims().await;
    let ns = env.ns.name();
    add_policy(&env, &[ns]).await;
    wait_for_claim(&env.admin, ns, "lake-data").await;
    check_static(&env.admin, ns).await;
    let _volume =
        DeleteOnDrop::cluster_scoped::<PersistentVolume>(&volume_name(ns, "archive-data"));
    allow_everyone_to_edit_claims(&env.admin, ns).await;
    grant_everyone(
        &env.admin,
        ns,
        "config-users",
        vec![allow(
            "",
            &["configmaps"],
            &["create", "get", "list", "update"],
        )],
    )
    .await;
    let mallory = env.cluster.client_as("mallory", &[]);
    let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(mallory.clone(), ns);
    let claims = Api::<PersistentVolumeClaim>::namespaced(mallory.clone(), ns);
    let pp = PostParams::default();

    // Inline NFS allowed by the Settings: another export mounts, the share's export does not,
    // nor a directory inside it or above it.
    allow_inline_nfs(&env).await;
    let mut n = 0;
    wait_until(
        "inline nfs volumes are allowed",
        Duration::from_secs(20),
        || {
            n += 1;
            let pods = pods.clone();
            async move {
                pods.create(
                    &PostParams::default(),
                    &nfs_pod(&format!("other-{n}"), "/exports/other"),
                )
                .await
                .is_ok()
            }
        },
    )
    .await;
    for (name, path) in [
        ("export", "/exports/archive"),
        ("inside", "/exports/archive/2024/"),
        ("above", "/exports"),
        ("dotted", "//exports/./x/../archive"),
    ] {
        let message = refusal(pods.create(&pp, &nfs_pod(name, path)).await);
        assert!(
            message.contains("on the storage notebook-volumes provisions for share 'archive'")
                && message.contains("mount the claim 'archive-data' instead"),
            "{path}: {message}"
        );
    }
    // The API server takes any server string: the export named the ways a mount reads it
    // (the first of a comma list, a short name) or climbing out of a link is refused too.
    for (name, server, path) in [
        (
            "comma",
            "nfs.example.org,decoy.example.org",
            "/exports/archive",
        ),
        ("short", "nfs", "/exports/archive"),
        ("climb", "nfs.example.org", "/srv/link/../exports/archive"),
    ] {
        let message = refusal(pods.create(&pp, &nfs_pod_on(name, server, path)).await);
        assert!(
            message.contains("for share 'archive'"),
            "{server}:{path}: {message}"
        );
    }

    // The static volume by name, and clones of either claim.
    let pv = volume_name(ns, "archive-data");
    let message = refusal(
        claims
            .create(
                &pp,
                &plain_claim(
                    "grab",
                    json!({}),
                    json!({"storageClassName": "", "volumeName": pv}),
                ),
            )
            .await,
    );
    assert!(message.contains("spec.volumeName"), "{message}");
    for (field, source) in [
        ("dataSource", "archive-data"),
        ("dataSourceRef", "lake-data"),
    ] {
        let spec = json!({field: {"kind": "PersistentVolumeClaim", "name": source}});
        let message = refusal(
            claims
                .create(&pp, &plain_claim("copy", json!({}), spec))
                .await,
        );
        assert!(
            message.contains(&format!("clones claim '{source}'")),
            "{message}"
        );
    }
    let sts_controller = Api::<PersistentVolumeClaim>::namespaced(
        env.cluster.client_as_service_account(STS.0, STS.1),
        ns,
    );
    let spec = json!({"dataSource": {"kind": "PersistentVolumeClaim", "name": "archive-data"}});
    let message = refusal(
        sts_controller
            .create(&pp, &plain_claim("data-nb-0", json!({}), spec))
            .await,
    );
    assert!(message.contains("clones claim 'archive-data'"), "{message}");

    // Deleting is not guarded (docs/security.md), but the name stays the share's: the member
    // cannot make it again, and the reconciler does, managed.
    claims
        .delete("lake-data", &Default::default())
        .await
        .expect("deleted");
    // No controller-manager runs here: release the pvc-protection finalizer as it would.
    Api::<PersistentVolumeClaim>::namespaced(env.admin.clone(), ns)
        .patch(
            "lake-data",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("finalizer released");
    wait_until("lake-data is gone", Duration::from_secs(10), || async {
        claim(&env.admin, ns, "lake-data")
            .await
            .is_none_or(|c| c.metadata.deletion_timestamp.is_some())
    })
    .await;
    let message = refusal(
        claims
            .create(
                &pp,
                &plain_claim("lake-data", json!({}), json!({"storageClassName": "mine"})),
            )
            .await,
    );
    assert!(
        message.contains("the claim of public share 'lake'"),
        "{message}"
    );
    wait_until(
        "lake-data is provisioned again",
        Duration::from_secs(30),
        || async {
            claim(&env.admin, ns, "lake-data").await.is_some_and(|c| {
                c.metadata.deletion_timestamp.is_none()
                    && label(&c.metadata.labels, keys::MANAGED_BY_LABEL) == Some(keys::MANAGED_BY)
                    && c.spec.and_then(|s| s.storage_class_name).as_deref() == Some("standard")
            })
        },
    )
    .await;

    // A claim of their own labelled as the share's (what administrators select when cleaning up).
    let message = refusal(
        claims
            .create(
                &pp,
                &plain_claim("decoy", json!({keys::SHARE_LABEL: "archive"}), json!({})),
            )
            .await,
    );
    assert!(
        message.contains("sets the label notebook-volumes.io/share"),
        "{message}"
    );

    // Policy is read from the webhook's namespace only: a labelled ConfigMap here provisions
    // nothing, not even with the whole node's file system as its source.
    let own = "kind: Share\nname: root\nclaimName: root-data\nmountPath: /opt/app-root/src/shares/root\nlevel: public\nstorage: {hostPath: {path: /}}\n";
    Api::<ConfigMap>::namespaced(mallory.clone(), ns)
        .create(
            &pp,
            &policy_config_map("mine", [("root.yaml".to_string(), own.to_string())].into()),
        )
        .await
        .expect("a ConfigMap in her namespace");
    Api::<ConfigMap>::namespaced(env.admin.clone(), env.policy_ns.name())
        .patch(
            "provisioned",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"nudge": "1"}}})),
        )
        .await
        .expect("a policy change runs a pass");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(claim(&env.admin, ns, "root-data").await.is_none());
    assert!(
        Api::<PersistentVolume>::all(env.admin.clone())
            .get_opt(&volume_name(ns, "root-data"))
            .await
            .expect("read")
            .is_none()
    );
    env.stop().await;
}

/// The claim guard sees enabled namespaces only. A member of a namespace in a share's scope that
/// is not enabled yet makes the share's claim with the managed label and a class of their own
/// (which they could fill before anyone looks); once the namespace is enabled, the reconciler
/// reports it instead of taking it for provisioned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_label_set_before_the_namespace_was_enabled_is_reported() {
    let env = Env::start_without_claims().await;
    let later = TestNamespace::new("nb-later").await;
    allow_everyone_to_edit_claims(&env.admin, later.name()).await;
    let forged = plain_claim(
        "lake-data",
        json!({keys::MANAGED_BY_LABEL: keys::MANAGED_BY, keys::SHARE_LABEL: "lake"}),
        json!({"storageClassName": "mine"}),
    );
    Api::<PersistentVolumeClaim>::namespaced(env.cluster.client_as("mallory", &[]), later.name())
        .create(&PostParams::default(), &forged)
        .await
        .expect("no guard before the namespace is enabled");
    add_policy(&env, &[env.ns.name(), later.name()]).await;
    enable(&env.admin, later.name()).await;
    let _volumes = [
        DeleteOnDrop::cluster_scoped::<PersistentVolume>(&volume_name(
            env.ns.name(),
            "archive-data",
        )),
        DeleteOnDrop::cluster_scoped::<PersistentVolume>(&volume_name(
            later.name(),
            "archive-data",
        )),
    ];
    check_static(&env.admin, later.name()).await;
    let expected = format!("claim 'lake-data' in namespace '{}'", later.name());
    wait_until(
        "a ProvisionConflict Event for the forged claim",
        Duration::from_secs(30),
        || async {
            policy_events(&env, "ProvisionConflict")
                .await
                .iter()
                .any(|e| {
                    e.note.as_deref().is_some_and(|n| {
                        n.contains(&expected)
                            && n.contains("is not the claim notebook-volumes provisions")
                            && n.contains("its storageClassName is 'mine', not 'standard'")
                    })
                })
        },
    )
    .await;
    // The gauge is set when the pass that wrote the Event ends.
    env.wait_for_sample("notebook_volumes_provision_conflicts", 1.0)
        .await;
    let untouched = claim(&env.admin, later.name(), "lake-data")
        .await
        .expect("left as it is");
    assert_eq!(
        untouched.spec.and_then(|s| s.storage_class_name).as_deref(),
        Some("mine")
    );
    env.stop().await;
}
