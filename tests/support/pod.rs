//! Reading a pod back in assertions: its annotations, mounts, environment and volumes.

use k8s_openapi::api::core::v1::Pod;

pub fn annotation(pod: &Pod, key: &str) -> Option<String> {
    pod.metadata.annotations.as_ref()?.get(key).cloned()
}

/// (mountPath, readOnly) of a container's mounts, by container name, without the service
/// account token the API server's ServiceAccount admission adds.
pub fn mounts(pod: &Pod, container: &str) -> Vec<(String, bool)> {
    let spec = pod.spec.as_ref().expect("pod spec");
    let c = spec
        .containers
        .iter()
        .find(|c| c.name == container)
        .expect("container");
    c.volume_mounts
        .iter()
        .flatten()
        .filter(|m| !m.mount_path.starts_with("/var/run/secrets/"))
        .map(|m| (m.mount_path.clone(), m.read_only.unwrap_or(false)))
        .collect()
}

/// The value a container sets for an environment variable.
pub fn env_of(pod: &Pod, container: &str, name: &str) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let c = spec.containers.iter().find(|c| c.name == container)?;
    c.env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
}

/// `readOnly` of the claim volume with this name; `None` when there is no such claim volume.
pub fn volume_read_only(pod: &Pod, volume: &str) -> Option<bool> {
    let spec = pod.spec.as_ref()?;
    let v = spec.volumes.iter().flatten().find(|v| v.name == volume)?;
    Some(
        v.persistent_volume_claim
            .as_ref()?
            .read_only
            .unwrap_or(false),
    )
}
