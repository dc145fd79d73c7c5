//! End-to-end: the claim guard. The webhook server runs in this process, registered with a real
//! kube-apiserver as the shipped manifests register it; users with edit-like rights in an enabled
//! namespace try every path to a claim the policy reserves (a home name, a share's or a library's
//! claim, the home marks, static binding, clones, snapshots) and the API server refuses with the
//! webhook's message, while administrators and the webhook's own home creation go through.

use nv_test_support as support;

use std::time::Duration;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use notebook_volumes::keys;
use serde_json::{Value, json};
use support::env::Env;
use support::webhook::*;

/// The name under which the API server reports the claim guard's denials.
const WEBHOOK: &str = "admission webhook \"claims.notebook-volumes.io\" denied the request";

/// The shared test environment, with claim and snapshot rights for everyone and the claim guard
/// in effect.
async fn start() -> Env {
    let env = Env::start_without_claims().await;
    allow_everyone_to_edit_claims(&env.admin, env.ns.name()).await;
    wait_for_claim_guard(&env).await;
    env
}

/// Waits until the API server sends claims to the webhook (registrations and RBAC apply
/// asynchronously): a dry-run claim with a reserved name comes back denied by it.
async fn wait_for_claim_guard(env: &Env) {
    let claims = claims_as(env, "probe");
    wait_until(
        "the API server calls the claim guard",
        Duration::from_secs(30),
        || {
            let claims = claims.clone();
            async move {
                match claims
                    .create(&dry_run(), &claim("home-probe", json!({})))
                    .await
                {
                    Err(e) => e.to_string().contains(WEBHOOK),
                    Ok(_) => false,
                }
            }
        },
    )
    .await;
}

fn claims_as(env: &Env, user: &str) -> Api<PersistentVolumeClaim> {
    Api::namespaced(
        env.cluster.client_as(user, &["notebook-users"]),
        env.ns.name(),
    )
}

/// A 1Gi ReadWriteOnce claim, with `spec` merged in.
fn claim(name: &str, spec: Value) -> PersistentVolumeClaim {
    let mut value = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    });
    if let (Some(target), Value::Object(extra)) = (value["spec"].as_object_mut(), spec) {
        target.extend(extra);
    }
    serde_json::from_value(value).unwrap()
}

fn marked(name: &str, labels: Value, annotations: Value) -> PersistentVolumeClaim {
    let mut c = claim(name, json!({}));
    c.metadata.labels = serde_json::from_value(labels).unwrap();
    c.metadata.annotations = serde_json::from_value(annotations).unwrap();
    c
}

/// The webhook's message of a refused request; panics if it was allowed or refused by someone
/// else (RBAC, validation).
fn denied<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> String {
    match result {
        Ok(o) => panic!("expected the claim guard to deny, got {o:?}"),
        Err(kube::Error::Api(status)) => {
            assert!(
                status.message.starts_with(WEBHOOK),
                "denied by someone else: {}",
                status.message
            );
            assert_eq!(status.code, 403, "{}", status.message);
            status.message
        }
        Err(e) => panic!("expected an API denial, got {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_cannot_create_claims_with_reserved_home_names() {
    let env = start().await;
    let mallory = claims_as(&env, "mallory");
    let message = denied(
        mallory
            .create(&PostParams::default(), &claim("home-carol", json!({})))
            .await,
    );
    assert!(
        message.ends_with("claim name 'home-carol' is reserved for the home of the user whose name slugs to 'carol'; home claims are created by notebook-volumes on first launch (start a notebook), or by an administrator"),
        "{message}"
    );
    // Not even their own: only the webhook creates homes (with the marks it trusts).
    denied(
        mallory
            .create(&PostParams::default(), &claim("home-mallory", json!({})))
            .await,
    );
    assert!(env.claims().get_opt("home-carol").await.unwrap().is_none());
    // A validating webhook sees the generated name, so generateName is no way around it.
    let mut generated = claim("", json!({}));
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("home-".into());
    let message = denied(mallory.create(&PostParams::default(), &generated).await);
    assert!(message.contains("claim name 'home-"), "{message}");
    // Ordinary claims are the user's business; an administrator may create a home claim.
    mallory
        .create(&PostParams::default(), &claim("scratch", json!({})))
        .await
        .expect("an ordinary claim");
    env.claims()
        .create(&PostParams::default(), &claim("home-zed", json!({})))
        .await
        .expect("an administrator may");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_cannot_create_share_or_library_claims() {
    let env = start().await;
    let mallory = claims_as(&env, "mallory");
    let message = denied(
        mallory
            .create(&PostParams::default(), &claim("finance-data", json!({})))
            .await,
    );
    assert!(
        message.contains("claim name 'finance-data' is the claim of private share 'finance'; share and library claims are provisioned by administrators"),
        "{message}"
    );
    let message = denied(
        mallory
            .create(&PostParams::default(), &claim("apps", json!({})))
            .await,
    );
    assert!(message.contains("the claim of library 'apps'"), "{message}");
    env.claims()
        .create(&PostParams::default(), &claim("finance-data", json!({})))
        .await
        .expect("administrators provision share claims");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_cannot_set_change_or_remove_home_marks() {
    let env = start().await;
    let mallory = claims_as(&env, "mallory");
    let pp = PostParams::default();
    let message = denied(
        mallory
            .create(
                &pp,
                &marked(
                    "notes",
                    json!({keys::HOME_LABEL: "true"}),
                    json!({keys::OWNER_ANNOTATION: "dave"}),
                ),
            )
            .await,
    );
    assert!(
        message.contains("sets the label notebook-volumes.io/home"),
        "{message}"
    );
    denied(
        mallory
            .create(
                &pp,
                &marked("notes", json!({}), json!({keys::OWNER_ANNOTATION: "dave"})),
            )
            .await,
    );

    // Marking an existing claim later is the same.
    mallory
        .create(&pp, &claim("notes", json!({})))
        .await
        .expect("plain claim");
    let mark = |owner: &str| {
        Patch::Merge(json!({"metadata": {
            "labels": {keys::HOME_LABEL: "true"},
            "annotations": {keys::OWNER_ANNOTATION: owner}
        }}))
    };
    let message = denied(
        mallory
            .patch("notes", &PatchParams::default(), &mark("dave"))
            .await,
    );
    assert!(
        message.contains("may not set, change or remove the label"),
        "{message}"
    );

    // A home the webhook created: its owner may not hand it over or unmark it either.
    env.claims()
        .patch("notes", &PatchParams::default(), &mark("mallory"))
        .await
        .expect("administrators mark homes");
    denied(
        mallory
            .patch("notes", &PatchParams::default(), &mark("dave"))
            .await,
    );
    let unmark = Patch::Merge(json!({"metadata": {"labels": {keys::HOME_LABEL: null}}}));
    denied(
        mallory
            .patch("notes", &PatchParams::default(), &unmark)
            .await,
    );
    // Other metadata stays the user's.
    let other = Patch::Merge(json!({"metadata": {"labels": {"team": "x"}}}));
    mallory
        .patch("notes", &PatchParams::default(), &other)
        .await
        .expect("other labels are free");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_cannot_clone_share_library_or_other_users_home_claims() {
    let env = start().await;
    let mallory = claims_as(&env, "mallory");
    let pp = PostParams::default();
    let clone = |name: &str, source: &str| {
        claim(
            name,
            json!({"dataSource": {"kind": "PersistentVolumeClaim", "name": source}}),
        )
    };
    let message = denied(mallory.create(&pp, &clone("copy", "mergers-data")).await);
    assert!(
        message.contains("claim 'copy' clones claim 'mergers-data' (spec.dataSource), the claim of secret share 'mergers'"),
        "{message}"
    );
    let by_ref = claim(
        "copy",
        json!({"dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "finance-data"}}),
    );
    let message = denied(mallory.create(&pp, &by_ref).await);
    assert!(message.contains("private share 'finance'"), "{message}");
    denied(mallory.create(&pp, &clone("copy", "apps")).await);

    // carol's home, by its reserved name and as the labelled claim the webhook made.
    let message = denied(mallory.create(&pp, &clone("copy", "home-carol")).await);
    assert!(message.contains("slugs to 'carol'"), "{message}");
    let hub = env.pods_as(HUB);
    hub.create(&pp, &notebook_pod("jupyter-carol", "carol", &[]))
        .await
        .expect("carol's notebook");
    denied(mallory.create(&pp, &clone("copy", "home-carol")).await);

    // Their own home and ordinary claims may be cloned.
    hub.create(&pp, &notebook_pod("jupyter-mallory", "mallory", &[]))
        .await
        .expect("mallory's notebook");
    mallory
        .create(&pp, &clone("my-copy", "home-mallory"))
        .await
        .expect("a clone of one's own home");
    env.claims()
        .create(&pp, &clone("admin-copy", "finance-data"))
        .await
        .expect("administrators may clone shares");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_cannot_bind_claims_to_chosen_volumes() {
    let env = start().await;
    let mallory = claims_as(&env, "mallory");
    let pp = PostParams::default();
    let message = denied(
        mallory
            .create(&pp, &claim("grab", json!({"volumeName": "pv-finance"})))
            .await,
    );
    assert!(
        message.contains("binds to the PersistentVolume 'pv-finance' by name (spec.volumeName); static binding is an administrator's action"),
        "{message}"
    );
    // Nor by setting it once on a pending claim, which the API server still allows.
    mallory
        .create(&pp, &claim("grab", json!({})))
        .await
        .expect("pending claim");
    let bind = Patch::Merge(json!({"spec": {"volumeName": "pv-finance"}}));
    let message = denied(mallory.patch("grab", &PatchParams::default(), &bind).await);
    assert!(
        message.contains("may not set spec.volumeName to 'pv-finance'"),
        "{message}"
    );
    // The persistent volume controller binds claims that way.
    let binder = Api::<PersistentVolumeClaim>::namespaced(
        env.cluster
            .client_as_service_account("kube-system", "persistent-volume-binder"),
        env.ns.name(),
    );
    binder
        .patch("grab", &PatchParams::default(), &bind)
        .await
        .expect("the volume binder binds");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_cannot_snapshot_guarded_claims() {
    let env = start().await;
    let snapshots = volume_snapshot_crd(&env.admin).await;
    let api =
        |client: Client| Api::<DynamicObject>::namespaced_with(client, env.ns.name(), &snapshots);
    let snapshot = |name: &str, source: &str| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": {"name": name},
            "spec": {"source": {"persistentVolumeClaimName": source}}
        }))
        .unwrap()
    };
    let mallory = api(env.cluster.client_as("mallory", &["notebook-users"]));
    let pp = PostParams::default();
    let message = denied(mallory.create(&pp, &snapshot("snap", "finance-data")).await);
    assert!(
        message.contains("volume snapshot 'snap' copies claim 'finance-data' (spec.source.persistentVolumeClaimName), the claim of private share 'finance'"),
        "{message}"
    );
    let message = denied(mallory.create(&pp, &snapshot("snap", "home-carol")).await);
    assert!(message.contains("slugs to 'carol'"), "{message}");
    mallory
        .create(&pp, &snapshot("own", "home-mallory"))
        .await
        .expect("a snapshot of one's own home");
    api(env.admin.clone())
        .create(&pp, &snapshot("backup", "finance-data"))
        .await
        .expect("administrators may snapshot shares");
    // Snapshot CRDs older than external-snapshotter 6.3, without its validation webhook, let the
    // source change after creation (this test's CRD checks nothing either): a snapshot of her own
    // home, held back (a class that does not exist yet), then pointed at a share.
    let source = json!({"spec": {"source": {"persistentVolumeClaimName": "finance-data"}}});
    let message = denied(
        mallory
            .patch("own", &PatchParams::default(), &Patch::Merge(&source))
            .await,
    );
    assert!(
        message.contains("volume snapshot 'own' copies claim 'finance-data'")
            && message.contains("private share 'finance'"),
        "{message}"
    );
    let untouched = json!({"metadata": {"labels": {"purpose": "before-upgrade"}}});
    mallory
        .patch("own", &PatchParams::default(), &Patch::Merge(&untouched))
        .await
        .expect("other changes to her snapshot");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ephemeral_volume_controller_cannot_create_reserved_claims() {
    let env = start().await;
    // What the controller creates for pod `home` with a generic ephemeral volume `carol`, and for
    // a template carrying the home marks.
    let controller = Api::<PersistentVolumeClaim>::namespaced(
        env.cluster
            .client_as_service_account("kube-system", "ephemeral-volume-controller"),
        env.ns.name(),
    );
    let pp = PostParams::default();
    let message = denied(
        controller
            .create(&pp, &claim("home-carol", json!({})))
            .await,
    );
    assert!(message.contains("reserved for the home"), "{message}");
    denied(
        controller
            .create(
                &pp,
                &marked(
                    "nb-scratch",
                    json!({keys::HOME_LABEL: "true"}),
                    json!({keys::OWNER_ANNOTATION: "carol"}),
                ),
            )
            .await,
    );
    let clone = claim(
        "nb-data",
        json!({"dataSource": {"kind": "PersistentVolumeClaim", "name": "finance-data"}}),
    );
    denied(controller.create(&pp, &clone).await);
    controller
        .create(&pp, &claim("nb-scratch", json!({})))
        .await
        .expect("an ordinary ephemeral claim");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_still_creates_homes_on_first_launch() {
    let env = start().await;
    let hub = env.pods_as(HUB);
    hub.create(
        &PostParams::default(),
        &notebook_pod("jupyter-frank", "frank", &[]),
    )
    .await
    .expect("frank's notebook");
    let home = env.claims().get("home-frank").await.expect("home created");
    assert_eq!(home.metadata.labels.unwrap()[keys::HOME_LABEL], "true");
    assert_eq!(
        home.metadata.annotations.unwrap()[keys::OWNER_ANNOTATION],
        "frank"
    );
    env.stop().await;
}

/// A minimal VolumeSnapshot CRD (the external-snapshotter's group, version and names), so the API
/// server serves the resource and calls the webhook for it. Shared by the tests of this binary.
async fn volume_snapshot_crd(admin: &Client) -> ApiResource {
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {
            "name": "volumesnapshots.snapshot.storage.k8s.io",
            // A *.k8s.io group needs it; the external-snapshotter's CRDs carry this one.
            "annotations": {"api-approved.kubernetes.io": "https://github.com/kubernetes-csi/external-snapshotter/pull/814"}
        },
        "spec": {
            "group": "snapshot.storage.k8s.io",
            "names": {"kind": "VolumeSnapshot", "plural": "volumesnapshots", "singular": "volumesnapshot", "listKind": "VolumeSnapshotList"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
            }]
        }
    }))
    .unwrap();
    let crds = Api::<CustomResourceDefinition>::all(admin.clone());
    match crds.create(&PostParams::default(), &crd).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("VolumeSnapshot CRD: {e}"),
    }
    let gvk = GroupVersionKind::gvk("snapshot.storage.k8s.io", "v1", "VolumeSnapshot");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "volumesnapshots");
    let probe = Api::<DynamicObject>::all_with(admin.clone(), &resource);
    wait_until(
        "the VolumeSnapshot CRD is served",
        Duration::from_secs(30),
        || {
            let probe = probe.clone();
            async move { probe.list(&Default::default()).await.is_ok() }
        },
    )
    .await;
    resource
}

/// `Home.secretHome: separate`: the secret-level home is created with its level on the first
/// secret launch, and no path takes it out of the secret level: a pod without secret data, a
/// clone, a snapshot, or removing its level label.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_level_home_stays_at_the_secret_level() {
    let env = start().await;
    let snapshots = volume_snapshot_crd(&env.admin).await;
    let pp = PostParams::default();
    env.pods_as(HUB)
        .create(
            &pp,
            &notebook_pod(
                "jupyter-alice",
                "alice",
                &[(keys::SECRET_SHARES_ANNOTATION, "mergers")],
            ),
        )
        .await
        .expect("alice's secret notebook");
    let level = env
        .claims()
        .get("home-alice--secret")
        .await
        .expect("secret-level home created");
    let labels = level.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels[keys::HOME_LEVEL_LABEL], keys::HOME_LEVEL_SECRET);
    assert_eq!(
        level.metadata.annotations.clone().unwrap_or_default()[keys::OWNER_ANNOTATION],
        "alice"
    );
    assert!(
        env.claims().get_opt("home-alice").await.unwrap().is_none(),
        "the normal home is not created by a secret launch"
    );
    // A plain pod of alice's without a secret share.
    let alice_pods = env.pods_as_user("alice", &["notebook-users"]);
    let refused = support::env::denial(
        alice_pods
            .create(&pp, &support::env::claim_pod("peek", "home-alice--secret"))
            .await,
    );
    assert!(refused.contains("secret-level home"), "{refused}");
    // A clone and a snapshot by alice herself.
    let alice = claims_as(&env, "alice");
    let clone = claim(
        "copy",
        json!({"dataSource": {"kind": "PersistentVolumeClaim", "name": "home-alice--secret"}}),
    );
    let message = denied(alice.create(&pp, &clone).await);
    assert!(message.contains("write-down"), "{message}");
    let snapshot: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
        "metadata": {"name": "snap"},
        "spec": {"source": {"persistentVolumeClaimName": "home-alice--secret"}}
    }))
    .unwrap();
    let alice_snapshots = Api::<DynamicObject>::namespaced_with(
        env.cluster.client_as("alice", &["notebook-users"]),
        env.ns.name(),
        &snapshots,
    );
    denied(alice_snapshots.create(&pp, &snapshot).await);
    // Dropping the level label would make it an ordinary home.
    let unlabel = json!({"metadata": {"labels": {keys::HOME_LEVEL_LABEL: null}}});
    let message = denied(
        alice
            .patch(
                "home-alice--secret",
                &PatchParams::default(),
                &Patch::Merge(&unlabel),
            )
            .await,
    );
    assert!(message.contains(keys::HOME_LEVEL_LABEL), "{message}");
    env.stop().await;
}
