//! End-to-end: the Events users see, read back from the real API server after the webhook
//! answered: a read-only mount forced on a reader's pod, a denial on a bare pod's name and on a
//! controller's StatefulSet, a home created and write protection on a secret notebook, a skipped
//! mount; dry runs record nothing. And the counters of written and dropped Events.

use nv_test_support as support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{ListParams, PostParams};
use notebook_volumes::admission::notices;
use serde_json::json;
use support::env::{Env, claim_pod};
use support::webhook::*;

/// The Events in the test namespace with `reason` about the object `kind`/`name`.
async fn events_about(env: &Env, reason: &str, kind: &str, name: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(env.admin.clone(), env.ns.name());
    let all = api.list(&ListParams::default()).await.expect("events");
    all.items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some(reason)
                && e.regarding.as_ref().is_some_and(|r| {
                    r.kind.as_deref() == Some(kind) && r.name.as_deref() == Some(name)
                })
        })
        .collect()
}

/// Waits for exactly one such Event (they are written after the answer) and returns it.
async fn one_event(env: &Env, reason: &str, kind: &str, name: &str) -> Event {
    wait_until(
        &format!("a {reason} Event on {kind} {name}"),
        Duration::from_secs(20),
        || async { !events_about(env, reason, kind, name).await.is_empty() },
    )
    .await;
    let mut found = events_about(env, reason, kind, name).await;
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

#[tokio::test]
async fn users_see_events_for_what_the_webhook_did_to_their_pods() {
    let env = Env::start().await;
    let ns = env.ns.name().to_string();

    // bob reads finance: his read-write mount is made read-only, on the pod he created.
    let bob = env.pods_as_user("bob", &[]);
    let created = bob
        .create(
            &PostParams::default(),
            &claim_pod("bob-report", "finance-data"),
        )
        .await
        .expect("bob's pod is allowed");
    let forced = one_event(&env, notices::FORCED_READ_ONLY, "Pod", "bob-report").await;
    assert_eq!(forced.type_.as_deref(), Some("Normal"));
    let regarding = forced.regarding.expect("regarding");
    assert_eq!(
        regarding.uid, created.metadata.uid,
        "attached to the pod itself"
    );
    assert!(
        forced
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("finance"),
        "{:?}",
        forced.note
    );

    // mallory may not: her bare pod is denied, the Event on its name.
    let mallory = env.pods_as_user("mallory", &[]);
    let denied = mallory
        .create(
            &PostParams::default(),
            &claim_pod("mallory-report", "finance-data"),
        )
        .await;
    assert!(denied.is_err());
    let event = one_event(&env, notices::DENIED, "Pod", "mallory-report").await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert!(
        event
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("finance"),
        "{:?}",
        event.note
    );

    // A denied pod with no name yet and no controller: on the namespace.
    let mut unnamed = claim_pod("", "finance-data");
    unnamed.metadata.name = None;
    unnamed.metadata.generate_name = Some("adhoc-".into());
    assert!(
        mallory
            .create(&PostParams::default(), &unnamed)
            .await
            .is_err()
    );
    let event = one_event(&env, notices::DENIED, "Namespace", &ns).await;
    assert!(
        event.note.as_deref().unwrap_or_default().contains("adhoc-"),
        "{:?}",
        event.note
    );

    // A controller's pod that is denied: the Event goes on its StatefulSet.
    let sets: Api<StatefulSet> = Api::namespaced(env.admin.clone(), &ns);
    let set: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "reports"},
        "spec": {
            "selector": {"matchLabels": {"app": "reports"}},
            "serviceName": "reports",
            "template": {"metadata": {"labels": {"app": "reports"}},
                         "spec": {"containers": [{"name": "job", "image": "busybox"}]}}
        }
    }))
    .expect("statefulset");
    let set = sets
        .create(&PostParams::default(), &set)
        .await
        .expect("statefulset created");
    let mut owned = claim_pod("reports-0", "finance-data");
    owned.metadata.owner_references = Some(vec![
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet", "name": "reports",
            "uid": set.metadata.uid, "controller": true
        }))
        .expect("owner"),
    ]);
    assert!(
        mallory
            .create(&PostParams::default(), &owned)
            .await
            .is_err()
    );
    let event = one_event(&env, notices::DENIED, "StatefulSet", "reports").await;
    assert_eq!(
        event.regarding.and_then(|r| r.uid),
        set.metadata.uid,
        "on the StatefulSet"
    );

    // alice's secret notebook: her home is created, and write protection applies.
    let hub = env.pods_as(HUB);
    let secret = notebook_pod(
        "jupyter-alice",
        "alice",
        &[("notebook-volumes.io/secret-shares", "mergers")],
    );
    hub.create(&PostParams::default(), &secret)
        .await
        .expect("alice's notebook");
    let home = one_event(&env, notices::HOME_CREATED, "Pod", "jupyter-alice").await;
    assert!(
        home.note.as_deref().unwrap_or_default().contains("'alice'"),
        "{:?}",
        home.note
    );
    one_event(&env, notices::WRITE_PROTECTED, "Pod", "jupyter-alice").await;

    // bob's notebook already mounts something where the library goes: skipped, with a Warning.
    let mut clash: Pod = notebook_pod("jupyter-bob", "bob", &[]);
    let spec = clash.spec.as_mut().expect("spec");
    spec.volumes = Some(vec![
        serde_json::from_value(json!({"name": "scratch", "emptyDir": {}})).expect("volume"),
    ]);
    spec.containers[0].volume_mounts = Some(vec![
        serde_json::from_value(json!({"name": "scratch", "mountPath": "/opt/apps"}))
            .expect("mount"),
    ]);
    hub.create(&PostParams::default(), &clash)
        .await
        .expect("bob's notebook");
    let skipped = one_event(&env, notices::MOUNT_SKIPPED, "Pod", "jupyter-bob").await;
    assert_eq!(skipped.type_.as_deref(), Some("Warning"));

    // A dry run records nothing.
    let _ = mallory
        .create(&dry_run(), &claim_pod("mallory-dry", "finance-data"))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        events_about(&env, notices::DENIED, "Pod", "mallory-dry")
            .await
            .is_empty()
    );

    let metrics = env.metrics().await;
    let written = metrics
        .lines()
        .find_map(|l| l.strip_prefix("notebook_volumes_events_written_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .expect("events written counter");
    assert!(written >= 6.0, "{written}");
    env.stop().await;
}
