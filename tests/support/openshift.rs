//! OpenShift's `Group` API served by the test API server (a CustomResourceDefinition of
//! `groups.user.openshift.io`, cluster-scoped, `users: [string]`), Groups, and a webhook that
//! starts with chosen policy ConfigMaps.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, Client};
use notebook_volumes::server::Handle;
use serde_json::json;

use super::env::{EXAMPLE_CLAIMS, Env};
use super::webhook::*;

/// A CustomResourceDefinition of `user.openshift.io` `groups` (kind `Group`) with this scope
/// (`Cluster` as in OpenShift, or `Namespaced`), these versions and, when given, a conversion.
pub fn group_crd(
    scope: &str,
    versions: serde_json::Value,
    conversion: Option<serde_json::Value>,
) -> CustomResourceDefinition {
    let mut spec = json!({
        "group": "user.openshift.io",
        "scope": scope,
        "names": {"plural": "groups", "singular": "group", "kind": "Group"},
        "versions": versions,
    });
    if let Some(conversion) = conversion {
        spec["conversion"] = conversion;
    }
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "groups.user.openshift.io"},
        "spec": spec,
    }))
    .expect("CRD")
}

/// One served version of the Group CRD, keeping unknown fields, with these `properties`.
pub fn group_version(
    name: &str,
    storage: bool,
    properties: serde_json::Value,
) -> serde_json::Value {
    json!({
        "name": name, "served": true, "storage": storage,
        "schema": {"openAPIV3Schema": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "properties": properties,
        }}
    })
}

/// Installs the Group CRD (shared by the tests of a binary) and waits until it is served.
pub async fn install_group_api(admin: &Client) {
    let users = json!({"users": {"type": "array", "nullable": true, "items": {"type": "string"}}});
    let crd = group_crd("Cluster", json!([group_version("v1", true, users)]), None);
    let crds = Api::<CustomResourceDefinition>::all(admin.clone());
    crds.patch(
        "groups.user.openshift.io",
        &PatchParams::apply("notebook-volumes-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("Group CRD");
    let groups = groups_api(admin);
    wait_until("the Group API is served", Duration::from_secs(30), || {
        let groups = groups.clone();
        async move { groups.list(&Default::default()).await.is_ok() }
    })
    .await;
}

pub fn groups_api(admin: &Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("user.openshift.io", "v1", "Group");
    Api::all_with(
        admin.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, "groups"),
    )
}

/// Creates or replaces the Group `name` listing `users`.
pub async fn set_group(admin: &Client, name: &str, users: &[&str]) {
    let group = json!({
        "apiVersion": "user.openshift.io/v1", "kind": "Group",
        "metadata": {"name": name}, "users": users
    });
    groups_api(admin)
        .patch(
            name,
            &PatchParams::apply("notebook-volumes-tests").force(),
            &Patch::Apply(&group),
        )
        .await
        .expect("Group");
}

/// The example policy with its Settings' `openshiftGroups` set to `mode`.
pub fn example_with(ns: &str, mode: &str) -> BTreeMap<String, String> {
    let mut policy = example_policy(ns);
    if let Some(settings) = policy.get_mut("settings.yaml") {
        *settings = settings.replacen(
            "kind: Settings\n",
            &format!("kind: Settings\nopenshiftGroups: {mode}\n"),
            1,
        );
    }
    policy
}

/// `Env::start_with_policies` with the example claims and `claims` Bound.
pub async fn start_with_policies(
    policies: impl Fn(&str) -> Vec<(String, BTreeMap<String, String>)>,
    claims: &[&str],
    when_ready: impl FnOnce(&Handle),
) -> Env {
    let all: Vec<&str> = EXAMPLE_CLAIMS.iter().chain(claims).copied().collect();
    Env::start_with_policies(policies, &all, when_ready).await
}
