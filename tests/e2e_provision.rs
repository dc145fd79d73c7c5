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

fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
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
    Api::<Namespace>::all(env.admin.clone())
        .patch(
            later.name(),
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {keys::INJECT_LABEL: keys::INJECT_ENABLED}}}),
            ),
        )
        .await
        .expect("namespace labelled");
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
        counter(
            &metrics,
            "notebook_volumes_provisioned_total{object=\"claim\"} "
        ) >= 4
            && counter(
                &metrics,
                "notebook_volumes_provisioned_total{object=\"volume\"} "
            ) >= 2,
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
    let metrics = env.metrics().await;
    assert!(
        counter(&metrics, "notebook_volumes_provision_conflicts ") >= 1,
        "{metrics}"
    );
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
