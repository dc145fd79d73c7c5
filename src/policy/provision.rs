//! What the reconciler provisions (docs/design.md, "Provisioned share claims"): for each share or
//! library with `storage` and each enabled namespace in its scope, the claim the policy names and,
//! for a static source, a PersistentVolume pre-bound to it. Pure: the caller says which namespaces
//! are enabled and which claims exist; the answer is objects to create, or conflicts to report.
//! Nothing is ever deleted or changed: a claim that exists is left as it is.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, HostPathVolumeSource, NFSVolumeSource, ObjectReference,
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeSpec,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};

use super::model::{ClaimHolder, NamespaceInfo, Scope, Storage, StorageSource};
use super::snapshot::PolicySnapshot;
use crate::keys;

/// What exists under a planned claim's name in its namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    Absent,
    /// Labelled `notebook-volumes.io/managed-by=notebook-volumes`: provisioned earlier, if its
    /// source is the one the plan gives it.
    Managed(Shape),
    /// Someone else's claim: never adopted, never changed; reported.
    Unmanaged,
}

/// Where a claim takes its volume from: what the plan compares on a claim that carries the
/// managed label. The claim guard keeps that label to the webhook and administrators, but only in
/// enabled namespaces: a claim made before its namespace was enabled may carry it with a source of
/// its maker's choosing (a class they filled, a clone), and must not pass for provisioned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    pub storage_class_name: Option<String>,
    pub volume_name: Option<String>,
    /// `dataSource`, `dataSourceRef` or `selector` set: provisioned claims have none.
    pub filled: bool,
}

impl Shape {
    pub fn of(pvc: &PersistentVolumeClaim) -> Shape {
        let spec = pvc.spec.as_ref();
        Shape {
            storage_class_name: spec.and_then(|s| s.storage_class_name.clone()),
            volume_name: spec.and_then(|s| s.volume_name.clone()),
            filled: spec.is_some_and(|s| {
                s.data_source.is_some() || s.data_source_ref.is_some() || s.selector.is_some()
            }),
        }
    }

    /// How this claim differs from the one the plan makes for `storage` (`None`: it does not).
    /// A class claim's `volumeName` is the PV controller's once bound, so it is not compared.
    fn differs(&self, storage: &Storage, namespace: &str, claim: &str) -> Option<String> {
        if self.filled {
            return Some("it sets a dataSource, dataSourceRef or selector".into());
        }
        let class = self.storage_class_name.as_deref();
        match &storage.source {
            StorageSource::Class(want) if class != Some(want.as_str()) => Some(format!(
                "its storageClassName is {}, not '{want}'",
                quoted(class)
            )),
            StorageSource::Class(_) => None,
            _ => {
                let want = volume_name(namespace, claim);
                if self.volume_name.as_deref() != Some(want.as_str()) {
                    Some(format!(
                        "its volumeName is {}, not '{want}'",
                        quoted(self.volume_name.as_deref())
                    ))
                } else if class.is_some_and(|c| !c.is_empty()) {
                    Some(format!("its storageClassName is {}, not ''", quoted(class)))
                } else {
                    None
                }
            }
        }
    }
}

fn quoted(value: Option<&str>) -> String {
    value.map_or("unset".into(), |v| format!("'{v}'"))
}

/// Why a claim name is reported rather than provisioned.
pub const UNMANAGED: &str =
    "a claim of that name exists without the label notebook-volumes.io/managed-by=notebook-volumes";

/// The share or library a claim is provisioned for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// `share` or `library`.
    pub kind: &'static str,
    pub name: String,
    /// The policy unit defining it (`ConfigMap <ns>/<name>` or a file).
    pub unit: String,
}

/// One thing the reconciler does.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Create `volume` (static sources) first, then `claim`; either may already exist.
    Create {
        owner: Owner,
        claim: Box<PersistentVolumeClaim>,
        volume: Option<Box<PersistentVolume>>,
    },
    /// The claim exists without the managed label, or with it and another source: left alone,
    /// reported with `reason`.
    Conflict {
        owner: Owner,
        namespace: String,
        claim: String,
        reason: String,
    },
}

/// The holders that carry a `storage` source: `((kind, name, unit), scope, claim, storage)`.
fn with_storage<T: ClaimHolder>(
    holders: &[T],
) -> impl Iterator<Item = ((&'static str, &str, &str), &Scope, &str, &Storage)> {
    holders.iter().filter_map(|h| {
        let storage = h.storage()?;
        let owner = (T::KIND, h.name(), h.origin().unit.as_str());
        Some((owner, h.scope(), h.claim_name(), storage))
    })
}

/// The steps for `namespaces` (the enabled ones, already filtered): one per namespace and
/// provisioned claim in scope that is absent or someone else's. Linear in namespaces × shares
/// with storage; shares of one claim (distinct subPaths, equal storage by `check`) give one step.
pub fn plan(
    snapshot: &PolicySnapshot,
    namespaces: &[NamespaceInfo],
    existing: impl Fn(&str, &str) -> Existing,
) -> Vec<Step> {
    let shares = with_storage(snapshot.shares());
    let libraries = with_storage(snapshot.libraries());
    let provisioned: Vec<_> = shares.chain(libraries).collect();
    let mut steps = Vec::new();
    if provisioned.is_empty() {
        return steps;
    }
    for ns in namespaces {
        let mut seen: HashSet<&str> = HashSet::new();
        for ((kind, name, unit), scope, claim, storage) in &provisioned {
            if !scope.includes(ns) || !seen.insert(claim) {
                continue;
            }
            let owner = Owner {
                kind,
                name: name.to_string(),
                unit: unit.to_string(),
            };
            match existing(&ns.name, claim) {
                Existing::Managed(shape) => {
                    if let Some(difference) = shape.differs(storage, &ns.name, claim) {
                        steps.push(Step::Conflict {
                            owner,
                            namespace: ns.name.clone(),
                            claim: claim.to_string(),
                            reason: format!(
                                "a claim of that name carries the label {}={} but is not the claim notebook-volumes provisions ({difference}): it was made or changed where the claim guard did not see it (before the namespace was enabled, or with the guard removed)",
                                keys::MANAGED_BY_LABEL,
                                keys::MANAGED_BY
                            ),
                        });
                    }
                }
                Existing::Unmanaged => steps.push(Step::Conflict {
                    owner,
                    namespace: ns.name.clone(),
                    claim: claim.to_string(),
                    reason: UNMANAGED.into(),
                }),
                Existing::Absent => {
                    let volume = storage
                        .source
                        .is_static()
                        .then(|| Box::new(volume(&owner, &ns.name, claim, storage)));
                    steps.push(Step::Create {
                        claim: Box::new(claim_object(&owner, &ns.name, claim, storage)),
                        volume,
                        owner,
                    });
                }
            }
        }
    }
    steps
}

/// The PersistentVolume name for `namespace`'s claim `claim`: `nv-` and 40 hex digits of a
/// SHA-256, the same on every replica and every pass, 43 characters whatever the input.
pub fn volume_name(namespace: &str, claim: &str) -> String {
    let digest = Sha256::digest(format!("{namespace}/{claim}").as_bytes());
    let hex: String = digest[..20].iter().map(|b| format!("{b:02x}")).collect();
    format!("nv-{hex}")
}

fn labels(owner: &Owner) -> BTreeMap<String, String> {
    let key = if owner.kind == "library" {
        keys::LIBRARY_LABEL
    } else {
        keys::SHARE_LABEL
    };
    [
        (
            keys::MANAGED_BY_LABEL.to_string(),
            keys::MANAGED_BY.to_string(),
        ),
        (key.to_string(), owner.name.clone()),
    ]
    .into()
}

fn claim_object(
    owner: &Owner,
    namespace: &str,
    claim: &str,
    storage: &Storage,
) -> PersistentVolumeClaim {
    let (class, volume_name) = match &storage.source {
        StorageSource::Class(class) => (class.clone(), None),
        _ => (String::new(), Some(volume_name(namespace, claim))),
    };
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(claim.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels(owner)),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec![storage.access_mode.clone()]),
            storage_class_name: Some(class),
            volume_name,
            resources: Some(VolumeResourceRequirements {
                requests: Some([("storage".to_string(), Quantity(storage.size.clone()))].into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    }
}

/// A static volume reserved for exactly one claim: `claimRef` names its namespace and name, so
/// the PV controller binds it to no other claim, and a claim elsewhere that asks for it by
/// name or by selector stays Pending. Retained: deleting the claim never deletes the data.
fn volume(owner: &Owner, namespace: &str, claim: &str, storage: &Storage) -> PersistentVolume {
    let mut spec = PersistentVolumeSpec {
        capacity: Some([("storage".to_string(), Quantity(storage.size.clone()))].into()),
        access_modes: Some(vec![storage.access_mode.clone()]),
        persistent_volume_reclaim_policy: Some("Retain".into()),
        storage_class_name: Some(String::new()),
        claim_ref: Some(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("PersistentVolumeClaim".into()),
            namespace: Some(namespace.to_string()),
            name: Some(claim.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    };
    match &storage.source {
        StorageSource::Class(_) => {}
        StorageSource::Nfs { server, path } => {
            spec.nfs = Some(NFSVolumeSource {
                server: server.clone(),
                path: path.clone(),
                read_only: None,
            })
        }
        StorageSource::Csi {
            driver,
            volume_handle,
            volume_attributes,
        } => {
            spec.csi = Some(CSIPersistentVolumeSource {
                driver: driver.clone(),
                volume_handle: volume_handle.clone(),
                volume_attributes: (!volume_attributes.is_empty())
                    .then(|| volume_attributes.clone()),
                ..Default::default()
            })
        }
        StorageSource::HostPath(path) => {
            spec.host_path = Some(HostPathVolumeSource {
                path: path.clone(),
                type_: Some("Directory".into()),
            })
        }
    }
    PersistentVolume {
        metadata: ObjectMeta {
            name: Some(volume_name(namespace, claim)),
            labels: Some(labels(owner)),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// Whether an existing PersistentVolume is the one `plan` made for `namespace`/`claim` (a
/// replica or an earlier pass created it): managed, and reserved for that claim.
pub fn is_planned_volume(pv: &PersistentVolume, namespace: &str, claim: &str) -> bool {
    let managed = pv
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(keys::MANAGED_BY_LABEL))
        .is_some_and(|v| v == keys::MANAGED_BY);
    let reference = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    managed
        && reference.is_some_and(|r| {
            r.namespace.as_deref() == Some(namespace) && r.name.as_deref() == Some(claim)
        })
}

/// Whether an existing claim carries the managed label.
pub fn is_managed(pvc: &PersistentVolumeClaim) -> bool {
    pvc.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(keys::MANAGED_BY_LABEL))
        .is_some_and(|v| v == keys::MANAGED_BY)
}

/// What a claim object says about itself, for `plan`.
pub fn existing_of(pvc: Option<&PersistentVolumeClaim>) -> Existing {
    match pvc {
        None => Existing::Absent,
        Some(pvc) if is_managed(pvc) => Existing::Managed(Shape::of(pvc)),
        Some(_) => Existing::Unmanaged,
    }
}

/// A claim the reconciler provisioned for a share or library that no longer has it here (gone
/// from the policy, out of scope, another claim, no `storage`): left with its data, reported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Orphan {
    pub namespace: String,
    pub claim: String,
    /// `share <name>` or `library <name>`, from the claim's labels.
    pub owner: String,
}

/// The managed claims among `claims` in `ns` that the policy no longer provisions there.
pub fn orphaned<'c>(
    snapshot: &PolicySnapshot,
    ns: &NamespaceInfo,
    claims: impl IntoIterator<Item = &'c PersistentVolumeClaim>,
) -> Vec<Orphan> {
    let mut out = Vec::new();
    for pvc in claims {
        let in_ns = pvc
            .metadata
            .namespace
            .as_deref()
            .is_none_or(|n| n == ns.name);
        if !in_ns || !is_managed(pvc) {
            continue;
        }
        let claim = pvc.metadata.name.clone().unwrap_or_default();
        let label = |key: &str| pvc.metadata.labels.as_ref()?.get(key).cloned();
        let provisions = |scope: &super::model::Scope, claim_name: &str, storage: bool| {
            storage && scope.includes(ns) && claim_name == claim
        };
        let (owner, kept) = if let Some(name) = label(keys::SHARE_LABEL) {
            let kept = snapshot.shares().iter().any(|s| {
                s.name == name && provisions(&s.scope, &s.claim_name, s.storage.is_some())
            });
            (format!("share {name}"), kept)
        } else if let Some(name) = label(keys::LIBRARY_LABEL) {
            let kept = snapshot.libraries().iter().any(|l| {
                l.name == name && provisions(&l.scope, &l.claim_name, l.storage.is_some())
            });
            (format!("library {name}"), kept)
        } else {
            ("(no share or library label)".to_string(), false)
        };
        if !kept {
            out.push(Orphan {
                namespace: ns.name.clone(),
                claim,
                owner,
            });
        }
    }
    out
}
