//! End-to-end: the pod webhook registered with the shipped `matchConditions` on the real API
//! server. While the webhook runs, notebooks still reach it; once it is stopped (failurePolicy
//! Fail), a pod that cannot touch guarded data is still created, and every risky shape (each
//! storage volume kind, notebook labels, the webhook's annotations, updates) is still sent to
//! it and therefore refused.

use nv_test_support as support;

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::env::Env;
use support::webhook::*;

/// The pods webhook's `matchConditions` in the base manifest, as JSON.
fn shipped_match_conditions() -> Value {
    let path = support::repo("manifests/base/mutatingwebhookconfiguration.yaml");
    let text = std::fs::read_to_string(&path).expect("manifest");
    let doc: Value = serde_saphyr::from_str(&text).expect("yaml");
    let hook = doc["webhooks"]
        .as_array()
        .expect("webhooks")
        .iter()
        .find(|w| w["name"] == "pods.notebook-volumes.io")
        .expect("pods webhook")
        .clone();
    hook["matchConditions"].clone()
}

/// A pod with one container mounting `volumes`, with `labels` and `annotations`.
fn pod(name: &str, volumes: Value, labels: Value, annotations: Value) -> Pod {
    let mounts: Vec<Value> = volumes
        .as_array()
        .expect("volumes")
        .iter()
        .map(|v| json!({"name": v["name"], "mountPath": format!("/mnt/{}", v["name"].as_str().unwrap_or("x"))}))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {
            "containers": [{"name": "job", "image": "busybox", "volumeMounts": mounts}],
            "volumes": volumes
        }
    }))
    .expect("pod")
}

fn unrelated(name: &str) -> Pod {
    pod(
        name,
        json!([
            {"name": "config", "configMap": {"name": "settings"}},
            {"name": "scratch", "emptyDir": {}},
            {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}
        ]),
        json!({"app": "nightly-report"}),
        json!({"example.com/team": "finance"}),
    )
}

/// The webhook could not be called: the API server's answer under failurePolicy Fail.
fn webhook_unreachable(result: Result<Pod, kube::Error>, what: &str) {
    match result {
        Ok(_) => panic!("{what}: created without the webhook"),
        Err(kube::Error::Api(status)) => assert!(
            status.message.contains("pods.notebook-volumes.io"),
            "{what}: {}",
            status.message
        ),
        Err(e) => panic!("{what}: {e}"),
    }
}

#[tokio::test]
async fn unrelated_pods_start_without_the_webhook_and_risky_ones_do_not() {
    let mut env = Env::start().await;
    let name = format!("nv-{}", env.ns.name());
    let configs = Api::<MutatingWebhookConfiguration>::all(env.admin.clone());
    let patch = json!([{"op": "add", "path": "/webhooks/0/matchConditions", "value": shipped_match_conditions()}]);
    let stored = configs
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::<()>::Json(serde_json::from_value(patch).expect("patch")),
        )
        .await
        .expect("the API server accepts the shipped matchConditions");
    let hooks = stored.webhooks.expect("webhooks");
    assert_eq!(hooks[0].name, "pods.notebook-volumes.io");
    assert_eq!(hooks[0].match_conditions.as_ref().map(Vec::len), Some(1));

    // Notebooks still reach the running webhook.
    wait_for_injection(env.pods_as(HUB)).await;

    let server = env.server.take().expect("running");
    server.stop(false).await.expect("stopped");

    let user = env.pods_as_user("mallory", &[]);
    // The API server applies registrations asynchronously: retry until the skip shows.
    let mut created = None;
    for attempt in 0..100 {
        match user
            .create(
                &PostParams::default(),
                &unrelated(&format!("report-{attempt}")),
            )
            .await
        {
            Ok(pod) => {
                created = Some(pod);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let created = created.expect("an unrelated pod is created while the webhook is down");
    assert!(
        created
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| !a.keys().any(|k| k.starts_with("notebook-volumes.io/"))),
        "untouched by any webhook"
    );

    let risky: Vec<(&str, Pod)> = vec![
        (
            "claim",
            pod(
                "claim",
                json!([{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]),
                json!({}),
                json!({}),
            ),
        ),
        (
            "ephemeral",
            pod(
                "ephemeral",
                json!([{"name": "d", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}}]),
                json!({}),
                json!({}),
            ),
        ),
        (
            "nfs",
            pod(
                "nfs",
                json!([{"name": "d", "nfs": {"server": "nfs.example", "path": "/export"}}]),
                json!({}),
                json!({}),
            ),
        ),
        (
            "hostPath",
            pod(
                "hostpath",
                json!([{"name": "d", "hostPath": {"path": "/srv"}}]),
                json!({}),
                json!({}),
            ),
        ),
        (
            "csi",
            pod(
                "csi",
                json!([{"name": "d", "csi": {"driver": "nfs.csi.k8s.io"}}]),
                json!({}),
                json!({}),
            ),
        ),
        (
            "iscsi",
            pod(
                "iscsi",
                json!([{"name": "d", "iscsi": {"targetPortal": "10.0.0.1:3260", "iqn": "iqn.2001-04.com.example:storage", "lun": 0}}]),
                json!({}),
                json!({}),
            ),
        ),
        (
            "KubeSpawner label",
            pod(
                "spawned",
                json!([]),
                json!({"component": "singleuser-server"}),
                json!({}),
            ),
        ),
        (
            "Kubeflow label",
            pod(
                "kubeflow",
                json!([]),
                json!({"notebook-name": "nb"}),
                json!({}),
            ),
        ),
        (
            "username annotation",
            pod(
                "named",
                json!([]),
                json!({}),
                json!({"hub.jupyter.org/username": "alice"}),
            ),
        ),
        (
            "forged decision",
            pod(
                "forged",
                json!([]),
                json!({}),
                json!({"notebook-volumes.io/user": "alice"}),
            ),
        ),
        (
            "stamp",
            pod(
                "stamped",
                json!([]),
                json!({}),
                json!({"nb-volumes.io/stamp": "alice:x"}),
            ),
        ),
    ];
    for (what, pod) in risky {
        webhook_unreachable(user.create(&PostParams::default(), &pod).await, what);
    }
    // Every UPDATE is sent too.
    let relabel = json!({"metadata": {"labels": {"app": "other"}}});
    let updated = user
        .patch(
            created.metadata.name.as_deref().expect("name"),
            &PatchParams::default(),
            &Patch::Merge(relabel),
        )
        .await;
    webhook_unreachable(updated, "update");
}
