//! Read-only views of the pod that the rules need: notebook detection, notebook containers,
//! claim volumes and their mounts.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Pod, Volume, VolumeDevice, VolumeMount};

use super::denial::Denial;
use crate::keys;
use crate::policy::Settings;

/// The three container lists of a pod spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContainerKind {
    Init,
    Regular,
    Ephemeral,
}

impl ContainerKind {
    pub fn field(self) -> &'static str {
        match self {
            ContainerKind::Init => "initContainers",
            ContainerKind::Regular => "containers",
            ContainerKind::Ephemeral => "ephemeralContainers",
        }
    }
}

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

/// `notebook-volumes.io/inject: "false"` (or `nb-volumes.io/inject`, which the notebook
/// controller copies from a Notebook) opts a pod out of injection (not out of the guard).
pub fn opted_out(pod: &Pod) -> bool {
    [keys::INJECT_ANNOTATION, keys::RELAYED_INJECT_ANNOTATION]
        .iter()
        .filter_map(|key| annotation(pod, key))
        .any(|v| v.trim().eq_ignore_ascii_case("false"))
}

/// Most secret shares one pod may ask for; a longer list is denied rather than scanned.
pub const MAX_SECRET_SHARES: usize = 64;

/// Secret shares the pod asks for by name, in order, without duplicates; `Err` carries the count
/// when the pod asks for more than `MAX_SECRET_SHARES`.
pub fn requested_secret_shares(pod: &Pod) -> Result<Vec<String>, usize> {
    let mut seen = std::collections::HashSet::new();
    let mut names: Vec<String> = Vec::new();
    // Both keys ask; the relayed one is the only one a Notebook's pods receive.
    for name in [
        keys::SECRET_SHARES_ANNOTATION,
        keys::RELAYED_SECRET_SHARES_ANNOTATION,
    ]
    .iter()
    .filter_map(|key| annotation(pod, key))
    .flat_map(|v| v.split(','))
    .map(str::trim)
    .filter(|n| !n.is_empty())
    {
        if seen.insert(name) {
            if names.len() == MAX_SECRET_SHARES {
                return Err(MAX_SECRET_SHARES + 1);
            }
            names.push(name.to_string());
        }
    }
    Ok(names)
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

/// Every container of the pod, init, regular then ephemeral: (list, index in it, its mounts,
/// its raw block devices).
type ContainerVolumes<'a> = (ContainerKind, usize, &'a [VolumeMount], &'a [VolumeDevice]);

fn each_container(pod: &Pod) -> Vec<ContainerVolumes<'_>> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    let init = spec.init_containers.iter().flatten();
    let init = init.map(|x| volumes_of(&x.volume_mounts, &x.volume_devices));
    let regular = spec.containers.iter();
    let regular = regular.map(|x| volumes_of(&x.volume_mounts, &x.volume_devices));
    let ephemeral = spec.ephemeral_containers.iter().flatten();
    let ephemeral = ephemeral.map(|x| volumes_of(&x.volume_mounts, &x.volume_devices));
    init.enumerate()
        .map(tagged(ContainerKind::Init))
        .chain(regular.enumerate().map(tagged(ContainerKind::Regular)))
        .chain(ephemeral.enumerate().map(tagged(ContainerKind::Ephemeral)))
        .collect()
}

type Volumes<'a> = (&'a [VolumeMount], &'a [VolumeDevice]);

fn volumes_of<'a>(
    mounts: &'a Option<Vec<VolumeMount>>,
    devices: &'a Option<Vec<VolumeDevice>>,
) -> Volumes<'a> {
    (
        mounts.as_deref().unwrap_or_default(),
        devices.as_deref().unwrap_or_default(),
    )
}

fn tagged<'a>(kind: ContainerKind) -> impl Fn((usize, Volumes<'a>)) -> ContainerVolumes<'a> {
    move |(c, (mounts, devices))| (kind, c, mounts, devices)
}

/// Every mount of every container list: (list, container, mount index, mount).
pub fn all_mounts(pod: &Pod) -> Vec<(ContainerKind, usize, usize, &VolumeMount)> {
    each_container(pod)
        .into_iter()
        .flat_map(|(kind, c, mounts, _)| {
            mounts
                .iter()
                .enumerate()
                .map(move |(m, mount)| (kind, c, m, mount))
        })
        .collect()
}

/// Mount indices by volume name, built once so per-volume lookups stay linear in the pod's size.
pub fn mounts_by_volume<'a>(
    mounts: &[(ContainerKind, usize, usize, &'a VolumeMount)],
) -> HashMap<&'a str, Vec<usize>> {
    let mut map: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, (_, _, _, m)) in mounts.iter().enumerate() {
        map.entry(m.name.as_str()).or_default().push(i);
    }
    map
}

/// The type of a volume as the pod API names it (`persistentVolumeClaim`, `nfs`, ...); `None` for
/// a volume with no source this webhook knows (a newer API field it cannot check).
pub fn volume_type(v: &Volume) -> Option<&'static str> {
    let kinds: [(bool, &'static str); 31] = [
        (v.persistent_volume_claim.is_some(), "persistentVolumeClaim"),
        (v.ephemeral.is_some(), "ephemeral"),
        (v.config_map.is_some(), "configMap"),
        (v.secret.is_some(), "secret"),
        (v.downward_api.is_some(), "downwardAPI"),
        (v.empty_dir.is_some(), "emptyDir"),
        (v.projected.is_some(), "projected"),
        (v.image.is_some(), "image"),
        (v.csi.is_some(), "csi"),
        (v.aws_elastic_block_store.is_some(), "awsElasticBlockStore"),
        (v.azure_disk.is_some(), "azureDisk"),
        (v.azure_file.is_some(), "azureFile"),
        (v.cephfs.is_some(), "cephfs"),
        (v.cinder.is_some(), "cinder"),
        (v.fc.is_some(), "fc"),
        (v.flex_volume.is_some(), "flexVolume"),
        (v.flocker.is_some(), "flocker"),
        (v.gce_persistent_disk.is_some(), "gcePersistentDisk"),
        (v.git_repo.is_some(), "gitRepo"),
        (v.glusterfs.is_some(), "glusterfs"),
        (v.host_path.is_some(), "hostPath"),
        (v.iscsi.is_some(), "iscsi"),
        (v.nfs.is_some(), "nfs"),
        (v.photon_persistent_disk.is_some(), "photonPersistentDisk"),
        (v.portworx_volume.is_some(), "portworxVolume"),
        (v.quobyte.is_some(), "quobyte"),
        (v.rbd.is_some(), "rbd"),
        (v.scale_io.is_some(), "scaleIO"),
        (v.storageos.is_some(), "storageos"),
        (v.vsphere_volume.is_some(), "vsphereVolume"),
        (false, ""),
    ];
    kinds.iter().find(|(set, _)| *set).map(|(_, name)| *name)
}

/// Every `volumeDevices` entry (raw block access) of every container list: (list, container, volume).
pub fn all_devices(pod: &Pod) -> Vec<(ContainerKind, usize, &str)> {
    each_container(pod)
        .into_iter()
        .flat_map(|(kind, c, _, devices)| devices.iter().map(move |d| (kind, c, d.name.as_str())))
        .collect()
}

/// Names of the ephemeral containers of a pod.
pub fn ephemeral_names(pod: &Pod) -> std::collections::HashSet<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.ephemeral_containers.as_ref())
        .into_iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect()
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

/// Most containers (of all three lists) and volumes a pod may have here. Far above any notebook
/// or job, and low enough that the patch (mounts x notebook containers) stays small.
pub const MAX_CONTAINERS: usize = 128;
pub const MAX_VOLUMES: usize = 512;

/// Refuses pods the API server would refuse anyway, before they cost anything: duplicate
/// container names (every container named `notebook` would get every injected mount) and more
/// containers or volumes than any real pod has.
pub fn check_shape(pod: &Pod) -> Result<(), Denial> {
    let Some(spec) = &pod.spec else {
        return Ok(());
    };
    let names: Vec<&str> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .chain(spec.containers.iter().map(|c| c.name.as_str()))
        .chain(
            spec.ephemeral_containers
                .iter()
                .flatten()
                .map(|c| c.name.as_str()),
        )
        .collect();
    if names.len() > MAX_CONTAINERS {
        return Err(Denial::TooManyContainers {
            count: names.len(),
            max: MAX_CONTAINERS,
        });
    }
    let volumes = volumes(pod).len();
    if volumes > MAX_VOLUMES {
        return Err(Denial::TooManyVolumes {
            count: volumes,
            max: MAX_VOLUMES,
        });
    }
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    if let Some(dup) = names.iter().find(|n| !seen.insert(**n)) {
        return Err(Denial::DuplicateContainer {
            name: dup.to_string(),
        });
    }
    Ok(())
}

/// Names of the containers (regular and init) whose image differs between two versions of a pod.
pub fn changed_images<'a>(before: &Pod, after: &'a Pod) -> Vec<&'a str> {
    let images = |pod: &Pod| -> HashMap<String, Option<String>> {
        pod.spec
            .iter()
            .flat_map(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
            })
            .map(|c| (c.name.clone(), c.image.clone()))
            .collect()
    };
    let old = images(before);
    after
        .spec
        .iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .filter(|c| old.get(&c.name).is_some_and(|image| *image != c.image))
        .map(|c| c.name.as_str())
        .collect()
}
