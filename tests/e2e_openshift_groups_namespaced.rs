//! End-to-end: a `groups.user.openshift.io` resource that is namespaced (a CustomResourceDefinition
//! someone installed under OpenShift's name, writable by namespace roles) is not OpenShift's
//! cluster-scoped Group API: with `openshiftGroups: auto` the webhook reads nothing from it, so
//! a namespace member who writes a `Group` in their own namespace gets no group from it. A binary
//! of its own: its Group API has the wrong scope on purpose.

use nv_test_support as support;

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::json;
use support::TestCluster;
use support::openshift::*;
use support::webhook::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_in_a_namespace_grants_nothing() {
    let admin = TestCluster::shared().admin_client();
    let crd = group_crd(
        "Namespaced",
        json!([group_version("v1", true, json!({}))]),
        None,
    );
    let crds = Api::<CustomResourceDefinition>::all(admin.clone());
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("Group CRD");
    let gvk = GroupVersionKind::gvk("user.openshift.io", "v1", "Group");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "groups");
    let all: Api<DynamicObject> = Api::all_with(admin.clone(), &resource);
    wait_until("the Group API is served", Duration::from_secs(30), || {
        let all = all.clone();
        async move { all.list(&Default::default()).await.is_ok() }
    })
    .await;

    let policies = |ns: &str| vec![("policy".to_string(), example_with(ns, "auto"))];
    let env = start_with_policies(policies, &[], |_| {}).await;
    let ns = env.ns.name();
    // The namespace's members may write its Groups, as an aggregated edit role would let them.
    grant_everyone(
        &env.admin,
        ns,
        "groups-edit",
        vec![allow(
            "user.openshift.io",
            &["groups"],
            &["create", "patch"],
        )],
    )
    .await;
    let mallory = env.cluster.client_as("mallory", &[]);
    let group = json!({
        "apiVersion": "user.openshift.io/v1", "kind": "Group",
        "metadata": {"name": "finance-team", "namespace": ns}, "users": ["mallory"]
    });
    Api::<DynamicObject>::namespaced_with(mallory, ns, &resource)
        .patch(
            "finance-team",
            &PatchParams::apply("mallory").force(),
            &Patch::Apply(&group),
        )
        .await
        .expect("mallory writes a Group in her namespace");
    // A watch of it would index the Group within a second (changes coalesce every 0.5 s).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let groups = env
        .server()
        .state
        .policy
        .load()
        .snapshot
        .groups_of("mallory");
    assert!(
        groups.is_empty(),
        "mallory got {groups:?} from a namespaced Group"
    );
    env.stop().await;
    let _ = crds
        .delete("groups.user.openshift.io", &DeleteParams::default())
        .await;
}
