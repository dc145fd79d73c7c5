//! End-to-end: a webhook with `openshiftGroups: auto` that cannot list the Groups the API server
//! serves is not ready, whatever its other caches, and becomes ready once it can: no pod is
//! decided with a partial group list. The Groups are made unlistable the way a broken CRD
//! conversion does it (stored as v1beta1, read as v1 through a conversion webhook nobody
//! serves). A binary of its own: its Group API is broken on purpose.

use nv_test_support as support;

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use notebook_volumes::server::{self, PolicySource};
use serde_json::json;
use support::openshift::example_with;
use support::openshift::{group_crd, group_version};
use support::webhook::*;
use support::{TestCluster, TestNamespace, install_crypto_provider};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_cannot_list_the_groups_is_not_ready() {
    install_crypto_provider();
    let cluster = TestCluster::shared();
    let admin = cluster.admin_client();
    let versions = json!([
        group_version("v1", false, json!({})),
        group_version("v1beta1", true, json!({})),
    ]);
    let conversion = json!({"strategy": "Webhook", "webhook": {
        "conversionReviewVersions": ["v1"],
        "clientConfig": {"url": "https://127.0.0.1:9/convert"}
    }});
    let crd = group_crd("Cluster", versions, Some(conversion));
    let crds = Api::<CustomResourceDefinition>::all(admin.clone());
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("Group CRD");
    let gvk = GroupVersionKind::gvk("user.openshift.io", "v1beta1", "Group");
    let stored: Api<DynamicObject> = Api::all_with(
        admin.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, "groups"),
    );
    let group = json!({"apiVersion": "user.openshift.io/v1beta1", "kind": "Group",
        "metadata": {"name": "lab-writers"}, "users": ["alice"]});
    wait_until("a Group is stored", Duration::from_secs(30), || async {
        stored
            .patch(
                "lab-writers",
                &PatchParams::apply("notebook-volumes-tests").force(),
                &Patch::Apply(&group),
            )
            .await
            .is_ok()
    })
    .await;

    let ns = TestNamespace::new("nb").await;
    let policy_ns = TestNamespace::new("nv-policy").await;
    Api::<ConfigMap>::namespaced(admin.clone(), policy_ns.name())
        .create(
            &PostParams::default(),
            &policy_config_map("policy", example_with(ns.name(), "auto")),
        )
        .await
        .expect("policy ConfigMap");
    let certs = tempfile::tempdir().expect("temp dir");
    loopback_certificates()
        .write_to(certs.path(), true)
        .expect("certificates");
    let config = support::server_config::local_config(
        certs.path(),
        PolicySource::Cluster {
            client: admin.clone(),
            namespace: policy_ns.name().into(),
        },
    );
    let server = server::start(config).await.expect("server starts");
    let readiness = server.state.readiness.clone();
    wait_until(
        "every other cache is listed",
        Duration::from_secs(30),
        || async {
            readiness
                .pending()
                .iter()
                .all(|cache| *cache == "OpenShift Groups")
        },
    )
    .await;
    // Listing the Groups keeps failing (the conversion webhook is unreachable): not ready.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        readiness.pending(),
        ["OpenShift Groups"],
        "ready without the Groups"
    );
    let (status, body) = http_get(server.probe_addr, "/readyz").await;
    assert_eq!(
        (status, body.as_str()),
        (503, "waiting for the first list of: OpenShift Groups\n")
    );

    // With no object left to convert, the Groups list (empty): ready.
    stored
        .delete("lab-writers", &DeleteParams::default())
        .await
        .expect("delete Group");
    wait_until(
        "ready once the Groups list",
        Duration::from_secs(90),
        || async { readiness.is_ready() },
    )
    .await;
    let _ = server.stop(false).await;
    let _ = crds
        .delete("groups.user.openshift.io", &DeleteParams::default())
        .await;
}
