//! Read-only views of the pod that the rules need: notebook detection, notebook containers,
//! claim volumes and their mounts.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Volume, VolumeMount};

use super::patch::ContainerKind;
use crate::keys;
use crate::policy::Settings;

pub fn annotations(pod: &Pod) -> Option<&BTreeMap<String, String>> {
    pod.metadata.annotations.as_ref()
}

pub fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    annotations(pod)?.get(key).map(String::as_str)
}

/// A pod is a notebook when any `notebookSelector` term matches its labels.
pub fn is_notebook(settings: &Settings, pod: &Pod) -> bool {
    let empty = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    settings.notebook_selector.iter().any(|s| s.matches(labels))
}

/// `notebook-volumes.io/inject: "false"` opts a pod out of injection (not out of the guard).
pub fn opted_out(pod: &Pod) -> bool {
    annotation(pod, keys::INJECT_ANNOTATION).is_some_and(|v| v.trim().eq_ignore_ascii_case("false"))
}

/// Secret shares the pod asks for by name, in order, without duplicates.
pub fn requested_secret_shares(pod: &Pod) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in annotation(pod, keys::SECRET_SHARES_ANNOTATION)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

/// Indices of the notebook containers: named `notebook` or after the `notebook-name` label;
/// otherwise the first container. Sidecars such as `oauth-proxy` are never chosen.
pub fn notebook_containers(pod: &Pod) -> Vec<usize> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    let label = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(keys::NOTEBOOK_NAME_LABEL));
    let chosen: Vec<usize> = spec
        .containers
        .iter()
        .enumerate()
        .filter(|(_, c)| c.name == keys::NOTEBOOK_CONTAINER || Some(&c.name) == label)
        .map(|(i, _)| i)
        .collect();
    if chosen.is_empty() && !spec.containers.is_empty() {
        vec![0]
    } else {
        chosen
    }
}

pub fn volumes(pod: &Pod) -> &[Volume] {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or_default()
}

/// The claim a volume uses, if it is a `persistentVolumeClaim` volume.
pub fn claim_of(volume: &Volume) -> Option<&str> {
    volume
        .persistent_volume_claim
        .as_ref()
        .map(|p| p.claim_name.as_str())
}

/// Every mount of every container list: (list, container index, mount index, mount).
pub fn all_mounts(pod: &Pod) -> Vec<(ContainerKind, usize, usize, &VolumeMount)> {
    let mut out = Vec::new();
    let Some(spec) = &pod.spec else {
        return out;
    };
    let lists = spec
        .init_containers
        .iter()
        .flatten()
        .enumerate()
        .map(|(c, x)| (ContainerKind::Init, c, x.volume_mounts.as_ref()))
        .chain(
            spec.containers
                .iter()
                .enumerate()
                .map(|(c, x)| (ContainerKind::Regular, c, x.volume_mounts.as_ref())),
        )
        .chain(
            spec.ephemeral_containers
                .iter()
                .flatten()
                .enumerate()
                .map(|(c, x)| (ContainerKind::Ephemeral, c, x.volume_mounts.as_ref())),
        );
    for (kind, c, mounts) in lists {
        for (m, mount) in mounts.into_iter().flatten().enumerate() {
            out.push((kind, c, m, mount));
        }
    }
    out
}

/// Mounts of a regular container.
pub fn container_mounts(pod: &Pod, container: usize) -> &[VolumeMount] {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.get(container))
        .and_then(|c| c.volume_mounts.as_deref())
        .unwrap_or_default()
}

/// Value of an environment variable a regular container sets, if it sets it.
pub fn container_env<'a>(pod: &'a Pod, container: usize, name: &str) -> Option<Option<&'a str>> {
    pod.spec
        .as_ref()?
        .containers
        .get(container)?
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == name)
        .map(|e| e.value.as_deref())
}

pub fn container_name(pod: &Pod, container: usize) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.get(container))
        .map_or("", |c| c.name.as_str())
}
