//! The test API server behaves like a real cluster for what the webhook's
//! end-to-end tests rely on: objects, RBAC, dry-run and admission webhooks
//! on loopback URLs.

use nv_test_support as support;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, PersistentVolumeClaim, PersistentVolumeClaimSpec, Pod, PodSpec,
    VolumeResourceRequirements,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Api;
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

use support::{
    DeleteOnDrop, RecordingWebhook, TestCluster, TestNamespace, TestTls, WEBHOOK_ANNOTATION,
};

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        ..ObjectMeta::default()
    }
}

fn notebook_pod(name: &str) -> Pod {
    Pod {
        metadata: meta(name),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "notebook".to_owned(),
                image: Some("quay.io/jupyter/base-notebook:latest".to_owned()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

/// Retries `attempt` until it returns `Some`, for effects the API server
/// applies asynchronously (RBAC and webhook configuration caches).
async fn eventually<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after 30s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn stores_configmap_pvc_and_pending_pod() {
    let client = TestCluster::shared().admin_client();
    let ns = TestNamespace::new("smoke-objects").await;
    let pp = PostParams::default();

    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), ns.name());
    let configmap = ConfigMap {
        metadata: meta("settings"),
        data: Some(BTreeMap::from([(
            "home".to_owned(),
            "/home/jovyan".to_owned(),
        )])),
        ..ConfigMap::default()
    };
    configmaps
        .create(&pp, &configmap)
        .await
        .expect("create ConfigMap");
    let stored = configmaps.get("settings").await.expect("get ConfigMap");
    assert_eq!(stored.data, configmap.data);

    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns.name());
    let claim = PersistentVolumeClaim {
        metadata: meta("home"),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity("1Gi".to_owned()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    };
    claims.create(&pp, &claim).await.expect("create PVC");
    let stored = claims.get("home").await.expect("get PVC");
    assert!(stored.metadata.uid.is_some());

    let pods: Api<Pod> = Api::namespaced(client.clone(), ns.name());
    let created = pods
        .create(&pp, &notebook_pod("notebook"))
        .await
        .expect("create Pod");
    // No scheduler or kubelet: the pod stays unscheduled.
    assert_eq!(
        created.spec.as_ref().and_then(|s| s.node_name.clone()),
        None
    );
    let phase = pods
        .get("notebook")
        .await
        .expect("get Pod")
        .status
        .and_then(|s| s.phase);
    assert_eq!(phase.as_deref(), Some("Pending"));
    // The ServiceAccount admission plugin ran, as in a real cluster: it
    // mounted the API token volume that a webhook will find in the pod.
    let volumes = created.spec.and_then(|s| s.volumes).unwrap_or_default();
    assert!(
        volumes
            .iter()
            .any(|v| v.name.starts_with("kube-api-access-")),
        "expected the ServiceAccount token volume, got {volumes:?}"
    );

    // pods/ephemeralcontainers is served (kubectl debug uses it).
    let debug = json!({"spec": {"ephemeralContainers": [
        {"name": "debugger", "image": "busybox:stable", "targetContainerName": "notebook"}
    ]}});
    let patched = pods
        .patch_subresource(
            "ephemeralcontainers",
            "notebook",
            &PatchParams::default(),
            &Patch::Strategic(debug),
        )
        .await
        .expect("patch pods/ephemeralcontainers");
    let ephemeral = patched
        .spec
        .and_then(|s| s.ephemeral_containers)
        .unwrap_or_default();
    assert_eq!(ephemeral.len(), 1);
    assert_eq!(ephemeral[0].name, "debugger");
}

#[tokio::test]
async fn rbac_refuses_impersonated_user_until_role_binding() {
    let cluster = TestCluster::shared();
    let admin = cluster.admin_client();
    let ns = TestNamespace::new("smoke-rbac").await;

    let as_alice: Api<ConfigMap> =
        Api::namespaced(cluster.client_as("alice", &["data-scientists"]), ns.name());
    match as_alice.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "{status:?}");
            assert!(status.message.contains("alice"), "{}", status.message);
        }
        other => panic!("alice listed ConfigMaps without a RoleBinding: {other:?}"),
    }
    let as_account: Api<Pod> = Api::namespaced(
        cluster.client_as_service_account(ns.name(), "default"),
        ns.name(),
    );
    match as_account.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("the default ServiceAccount listed pods without a RoleBinding: {other:?}"),
    }

    let pp = PostParams::default();
    let role = Role {
        metadata: meta("configmap-reader"),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".to_owned()]),
            verbs: vec!["get".to_owned(), "list".to_owned()],
            ..PolicyRule::default()
        }]),
    };
    Api::<Role>::namespaced(admin.clone(), ns.name())
        .create(&pp, &role)
        .await
        .expect("create Role");
    let binding = RoleBinding {
        metadata: meta("alice-reads-configmaps"),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: "configmap-reader".to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "User".to_owned(),
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            name: "alice".to_owned(),
            ..Subject::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(admin.clone(), ns.name())
        .create(&pp, &binding)
        .await
        .expect("create RoleBinding");

    let listed = eventually("the RoleBinding to let alice list ConfigMaps", || async {
        as_alice.list(&ListParams::default()).await.ok()
    })
    .await;
    assert!(listed.items.is_empty());
    // The binding grants reading only.
    match as_alice
        .create(
            &pp,
            &ConfigMap {
                metadata: meta("x"),
                ..ConfigMap::default()
            },
        )
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("alice created a ConfigMap with a read-only Role: {other:?}"),
    }
}

#[tokio::test]
async fn server_side_dry_run_returns_object_and_stores_nothing() {
    let client = TestCluster::shared().admin_client();
    let ns = TestNamespace::new("smoke-dry-run").await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), ns.name());
    let configmap = ConfigMap {
        metadata: meta("dry"),
        data: Some(BTreeMap::from([("k".to_owned(), "v".to_owned())])),
        ..ConfigMap::default()
    };

    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let returned = configmaps
        .create(&dry_run, &configmap)
        .await
        .expect("dry-run create");
    assert_eq!(returned.metadata.name.as_deref(), Some("dry"));
    assert_eq!(returned.metadata.namespace.as_deref(), Some(ns.name()));
    assert_eq!(returned.data, configmap.data);
    assert!(
        returned.metadata.creation_timestamp.is_some(),
        "defaults were applied"
    );

    match configmaps.get("dry").await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 404, "{status:?}"),
        other => panic!("a dry-run create stored the ConfigMap: {other:?}"),
    }
    let names: Vec<_> = configmaps
        .list(&ListParams::default())
        .await
        .expect("list ConfigMaps")
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert!(!names.contains(&"dry".to_owned()), "{names:?}");
}

#[tokio::test]
async fn api_server_calls_https_webhook_on_loopback() {
    let cluster = TestCluster::shared();
    let client = cluster.admin_client();
    let tls = TestTls::generate();
    let webhook = RecordingWebhook::start(&tls);

    // Only this test's namespace carries the label value the webhook
    // selects, so the webhook never sees other tests' pods.
    let selector_label = "notebook-volumes.test/smoke-webhook";
    let selector_value = format!("{}-{}", std::process::id(), webhook.port());
    let ns =
        TestNamespace::with_labels("smoke-webhook", &[(selector_label, &selector_value)]).await;

    let config_name = format!("{}.smoke.notebook-volumes.test", ns.name());
    let configuration = MutatingWebhookConfiguration {
        metadata: meta(&config_name),
        webhooks: Some(vec![MutatingWebhook {
            name: "recorder.smoke.notebook-volumes.test".to_owned(),
            client_config: WebhookClientConfig {
                url: Some(webhook.url()),
                ca_bundle: Some(ByteString(tls.ca_bundle())),
                service: None,
            },
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(vec![String::new()]),
                api_versions: Some(vec!["v1".to_owned()]),
                operations: Some(vec!["CREATE".to_owned()]),
                resources: Some(vec!["pods".to_owned()]),
                scope: Some("Namespaced".to_owned()),
            }]),
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    selector_label.to_owned(),
                    selector_value.clone(),
                )])),
                ..LabelSelector::default()
            }),
            failure_policy: Some("Fail".to_owned()),
            side_effects: "None".to_owned(),
            admission_review_versions: vec!["v1".to_owned()],
            timeout_seconds: Some(10),
            ..MutatingWebhook::default()
        }]),
    };
    let configurations: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let _delete_configuration =
        DeleteOnDrop::cluster_scoped::<MutatingWebhookConfiguration>(&config_name);
    let stored = configurations
        .create(&PostParams::default(), &configuration)
        .await
        .expect("the API server accepts a webhook on https://127.0.0.1 with a caBundle");
    let stored_url = stored.webhooks.unwrap_or_default()[0]
        .client_config
        .url
        .clone();
    assert_eq!(stored_url, Some(webhook.url()));

    // The API server picks up new configurations asynchronously: probe with
    // dry-run creates (the webhook declares no side effects) until mutated.
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns.name());
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    eventually("the API server to call the webhook", || async {
        let pod = pods
            .create(&dry_run, &notebook_pod("probe"))
            .await
            .expect("dry-run create pod");
        pod.metadata
            .annotations?
            .get(WEBHOOK_ANNOTATION)
            .map(|_| ())
    })
    .await;

    let created = pods
        .create(&PostParams::default(), &notebook_pod("notebook"))
        .await
        .expect("create pod through the webhook");
    let annotation = created
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(WEBHOOK_ANNOTATION))
        .cloned()
        .expect("the API server applied the webhook's patch");

    let calls = webhook.calls();
    let call = calls
        .iter()
        .find(|c| c.uid == annotation)
        .unwrap_or_else(|| panic!("no recorded call with uid {annotation}: {calls:?}"));
    assert_eq!(call.operation, "CREATE");
    assert_eq!(call.kind, "Pod");
    assert_eq!(call.namespace.as_deref(), Some(ns.name()));
    assert_eq!(call.name, "notebook");
    assert!(!call.dry_run);
    assert!(
        calls
            .iter()
            .all(|c| c.namespace.as_deref() == Some(ns.name())),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .filter(|c| c.name == "probe")
            .all(|c| c.dry_run)
    );

    configurations
        .delete(&config_name, &Default::default())
        .await
        .expect("delete the webhook configuration");
}
