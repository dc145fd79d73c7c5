//! Server-side apply of rendered manifests (kustomize or Helm output), as `kubectl apply
//! --server-side --force-conflicts` does: each object's resource found by discovery.

use kube::api::{DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{self, Scope};
use kube::{Api, Client, ResourceExt};

/// The group, version and kind of a rendered object.
pub fn gvk(obj: &DynamicObject) -> GroupVersionKind {
    let (api_version, kind) = obj
        .types
        .as_ref()
        .map(|t| (t.api_version.as_str(), t.kind.as_str()))
        .unwrap_or_default();
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    GroupVersionKind::gvk(group, version, kind)
}

/// `Kind namespace/name` (or `Kind name`), for messages.
pub fn describe(obj: &DynamicObject) -> String {
    let gvk = gvk(obj);
    match &obj.metadata.namespace {
        Some(ns) => format!("{} {ns}/{}", gvk.kind, obj.name_any()),
        None => format!("{} {}", gvk.kind, obj.name_any()),
    }
}

/// Server-side applies one object as field manager `manager`, forcing conflicts.
pub async fn apply(
    client: &Client,
    manager: &str,
    obj: &DynamicObject,
) -> Result<DynamicObject, String> {
    let gvk = gvk(obj);
    let (resource, caps) = discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| format!("{}: not served: {e}", describe(obj)))?;
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => {
            let ns =
                obj.metadata.namespace.as_deref().ok_or_else(|| {
                    format!("{}: namespaced kind without a namespace", describe(obj))
                })?;
            Api::namespaced_with(client.clone(), ns, &resource)
        }
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    let name = obj
        .metadata
        .name
        .as_deref()
        .ok_or_else(|| format!("{}: no name", describe(obj)))?;
    api.patch(
        name,
        &PatchParams::apply(manager).force(),
        &Patch::Apply(obj),
    )
    .await
    .map_err(|e| format!("{}: {e}", describe(obj)))
}

/// Applies Namespaces first, then the rest in the given order; every failure, one per line.
pub async fn apply_all(
    client: &Client,
    manager: &str,
    objects: &[DynamicObject],
) -> Result<(), String> {
    let (namespaces, rest): (Vec<&DynamicObject>, Vec<&DynamicObject>) =
        objects.iter().partition(|o| gvk(o).kind == "Namespace");
    let mut errors = Vec::new();
    for obj in namespaces.into_iter().chain(rest) {
        if let Err(e) = apply(client, manager, obj).await {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}
