//! The guard. Every volume of every pod in an enabled namespace is checked against the subject's
//! rights, whether or not the pod is a notebook: claim volumes by what the policy reserves them
//! for, generic ephemeral volumes by the claim they would create, inline volumes by type.

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::{Pod, Volume};

use super::access::{Access, effective_access, share_access};
use super::claims::ClaimLookup;
use super::context::Context;
use super::denial::Denial;
use super::identity::Subject;
use super::patch::PatchBuilder;
use super::pod::{self, ContainerKind};
use super::reserved::{Reservation, reservation};
use super::storage_reach::provisioned_reach;
use crate::keys;
use crate::policy::rules::SAFE_VOLUME_TYPES;
use crate::policy::{Level, Library, NamespaceInfo, PolicySnapshot, Share};

/// What a claim volume of the pod turned out to be.
#[derive(Debug, Clone)]
pub enum ClaimUse<'p> {
    /// Claim of one or more shares in scope (several shares may use one claim with subPaths).
    /// `exact` is the share whose injected volume this is (`nv-share-<name>`, every mount at the
    /// share's subPath): only then does that share's access apply rather than the least of all.
    Share {
        shares: Vec<&'p Share>,
        exact: Option<&'p Share>,
    },
    Library(&'p Library),
    /// The subject's own home claim (by template name). Read-only in a pod with secret data.
    Home,
    /// The subject's own secret-level home: only in a pod that asks for secret data, and secret
    /// data itself (every other claim of the pod is read-only).
    SecretHome,
    /// A claim the policy knows nothing about (scratch space, data the namespace owns).
    Other,
}

#[derive(Debug, Clone)]
pub struct ClaimVolume<'p> {
    pub index: usize,
    pub name: String,
    pub claim: String,
    pub read_only: bool,
    pub use_: ClaimUse<'p>,
    /// Storage that is not a `persistentVolumeClaim` volume: a generic ephemeral volume (its
    /// claim is made from the pod's template) or an inline volume the Settings allow (`nfs`,
    /// a CSI driver). It has no `persistentVolumeClaim.readOnly` to set, and is forced read-only
    /// on its mounts like any other claim (no write-down in a secret pod).
    pub mount_level_only: bool,
}

impl ClaimVolume<'_> {
    /// Access the subject gets through this volume: the least over the shares on the claim. In a
    /// pod with secret data, every claim but the home is read-only (no write-down).
    pub fn access(&self, subject: &Subject, secret_in_pod: bool) -> Access {
        match &self.use_ {
            ClaimUse::Share { exact: Some(s), .. } => effective_access(s, subject, secret_in_pod),
            ClaimUse::Share { shares, .. } => shares
                .iter()
                .map(|s| effective_access(s, subject, secret_in_pod))
                .min()
                .unwrap_or(Access::None),
            ClaimUse::Library(_) => Access::Ro,
            ClaimUse::Home if secret_in_pod => Access::Ro,
            ClaimUse::Home | ClaimUse::SecretHome => Access::Rw,
            ClaimUse::Other if secret_in_pod => Access::Ro,
            ClaimUse::Other => Access::Rw,
        }
    }

    pub fn is_secret(&self) -> bool {
        match &self.use_ {
            ClaimUse::Share { exact: Some(s), .. } => s.level == Level::Secret,
            ClaimUse::Share { shares, .. } => shares.iter().any(|s| s.level == Level::Secret),
            ClaimUse::SecretHome => true,
            _ => false,
        }
    }
}

/// The subject's own home claims, and whether the pod asks for secret data.
#[derive(Debug, Clone, Copy, Default)]
pub struct OwnHomes<'a> {
    /// The claim the subject's home template names in this namespace, if any.
    pub normal: Option<&'a str>,
    /// The subject's secret-level home claim beside it.
    pub secret: Option<&'a str>,
    /// The pod mounts or asks for a secret share the subject may read.
    pub secret_pod: bool,
}

/// What the guard reads besides the pod.
#[derive(Clone, Copy)]
pub struct Guard<'a, 'p> {
    pub policy: &'p PolicySnapshot,
    pub ns: &'a NamespaceInfo,
    pub claims: &'a dyn ClaimLookup,
    pub subject: &'a Subject,
    pub homes: OwnHomes<'a>,
}

impl<'a, 'p> Guard<'a, 'p> {
    /// The guard of `subject` in the context's namespace, with the subject's own home claims.
    pub fn new(ctx: Context<'p>, subject: &'a Subject, homes: OwnHomes<'a>) -> Self
    where
        'p: 'a,
    {
        Guard {
            policy: ctx.policy,
            ns: ctx.namespace,
            claims: ctx.claims,
            subject,
            homes,
        }
    }

    /// Checks every volume (or those named in `only`) and classifies the claim volumes; `Err` is
    /// the denial.
    pub fn scan(
        &self,
        pod: &Pod,
        only: Option<&HashSet<&str>>,
    ) -> Result<Vec<ClaimVolume<'p>>, Denial> {
        let mounts = pod::all_mounts(pod);
        let by_volume = pod::mounts_by_volume(&mounts);
        let mut out = Vec::new();
        for (index, volume) in pod::volumes(pod).iter().enumerate() {
            if only.is_some_and(|names| !names.contains(volume.name.as_str())) {
                continue;
            }
            match pod::volume_type(volume) {
                Some("persistentVolumeClaim") => {}
                Some("ephemeral") => {
                    self.ephemeral(pod, volume)?;
                    out.push(ClaimVolume {
                        index,
                        name: volume.name.clone(),
                        claim: format!(
                            "{}-{}",
                            pod.metadata
                                .name
                                .as_deref()
                                .or(pod.metadata.generate_name.as_deref())
                                .unwrap_or_default(),
                            volume.name
                        ),
                        read_only: false,
                        use_: ClaimUse::Other,
                        mount_level_only: true,
                    });
                    continue;
                }
                Some(kind) => {
                    self.inline(volume, kind)?;
                    // Storage a pod could keep data in beyond its life (not emptyDir, configMap...).
                    if !SAFE_VOLUME_TYPES.contains(&kind) {
                        out.push(ClaimVolume {
                            index,
                            name: volume.name.clone(),
                            claim: format!("{kind} volume {}", volume.name),
                            read_only: false,
                            use_: ClaimUse::Other,
                            mount_level_only: true,
                        });
                    }
                    continue;
                }
                None => {
                    return Err(Denial::UnknownVolumeType {
                        volume: volume.name.clone(),
                    });
                }
            }
            let Some(claim) = pod::claim_of(volume) else {
                continue;
            };
            let subpaths_of = |share: &Share| {
                by_volume
                    .get(volume.name.as_str())
                    .into_iter()
                    .flatten()
                    .all(|&i| {
                        let m = mounts[i].3;
                        m.sub_path.as_deref().filter(|p| !p.is_empty()) == share.sub_path.as_deref()
                    })
            };
            let use_ = self.classify(&volume.name, claim, subpaths_of)?;
            let read_only = volume
                .persistent_volume_claim
                .as_ref()
                .and_then(|p| p.read_only)
                .unwrap_or(false);
            out.push(ClaimVolume {
                index,
                name: volume.name.clone(),
                claim: claim.to_string(),
                read_only,
                use_,
                mount_level_only: false,
            });
        }
        Ok(out)
    }

    /// What a claim the pod references is to this subject, or why it may not have it.
    fn classify(
        &self,
        volume: &str,
        claim: &str,
        mounted_at_subpath_of: impl Fn(&Share) -> bool,
    ) -> Result<ClaimUse<'p>, Denial> {
        let user = || self.subject.user.clone();
        if let Some(unit) = self.policy.protected_claim(claim) {
            return Err(Denial::ProtectedClaim {
                volume: volume.into(),
                claim: claim.into(),
                unit: unit.into(),
            });
        }
        if let Some(unit) = self.policy.protected_home(claim) {
            return Err(Denial::ProtectedHome {
                volume: volume.into(),
                claim: claim.into(),
                unit: unit.into(),
            });
        }
        let shares: Vec<&'p Share> = self.policy.shares_for_claim(self.ns, claim);
        if !shares.is_empty() {
            let exact = shares
                .iter()
                .copied()
                .find(|s| volume == keys::share_volume(&s.name) && mounted_at_subpath_of(s));
            let applicable: Vec<&Share> = match exact {
                Some(s) => vec![s],
                None => shares.clone(),
            };
            if let Some(denied) = applicable
                .iter()
                .find(|s| share_access(s, self.subject) == Access::None)
            {
                return Err(Denial::ShareAccess {
                    volume: volume.into(),
                    claim: claim.into(),
                    level: denied.level,
                    share: denied.name.clone(),
                    user: user(),
                });
            }
            return Ok(ClaimUse::Share { shares, exact });
        }
        if let Some(lib) = self
            .policy
            .libraries_in_scope(self.ns)
            .into_iter()
            .find(|l| l.claim_name == claim)
        {
            return Ok(ClaimUse::Library(lib));
        }
        if self.homes.normal == Some(claim) {
            own_home_state(self.claims, &self.ns.name, claim, self.subject)?;
            return Ok(ClaimUse::Home);
        }
        if self.homes.secret == Some(claim) {
            self.secret_pod_only(volume, claim)?;
            own_home_state(self.claims, &self.ns.name, claim, self.subject)?;
            return Ok(ClaimUse::SecretHome);
        }
        match reservation(self.policy, self.ns, self.claims, claim) {
            // A home made for this user under an earlier template or in another setup.
            Some(Reservation::MarkedHome {
                owner: Some(owner),
                secret,
            }) if Some(owner.as_str()) == self.subject.user.as_deref()
                && self
                    .claims
                    .claim(&self.ns.name, claim)
                    .is_some_and(|i| i.home) =>
            {
                if secret {
                    self.secret_pod_only(volume, claim)?;
                    return Ok(ClaimUse::SecretHome);
                }
                Ok(ClaimUse::Home)
            }
            Some(
                reserved @ (Reservation::Home { .. }
                | Reservation::SecretHome { .. }
                | Reservation::MarkedHome { .. }),
            ) => Err(Denial::OthersHome {
                volume: volume.into(),
                claim: claim.into(),
                reserved: reserved.to_string(),
                user: user(),
            }),
            Some(reserved) => Err(Denial::ReservedClaim {
                volume: volume.into(),
                claim: claim.into(),
                reserved: reserved.to_string(),
                user: user(),
            }),
            None => Ok(ClaimUse::Other),
        }
    }

    /// The subject's secret-level home, in a pod that does not ask for secret data: a normal
    /// notebook could read secret data there and write it anywhere (write-down).
    fn secret_pod_only(&self, volume: &str, claim: &str) -> Result<(), Denial> {
        if self.homes.secret_pod {
            return Ok(());
        }
        Err(Denial::SecretHomeOutsideSecret {
            volume: volume.into(),
            claim: claim.into(),
            user: self.subject.user.clone(),
        })
    }

    /// A generic ephemeral volume makes a claim from its template: it may not carry the home
    /// marks, bind a chosen volume, clone a reserved claim, or be generated under a reserved name.
    fn ephemeral(&self, pod: &Pod, volume: &Volume) -> Result<(), Denial> {
        let name = &volume.name;
        let Some(template) = volume
            .ephemeral
            .as_ref()
            .and_then(|e| e.volume_claim_template.as_ref())
        else {
            return Ok(());
        };
        if let Some(meta) = &template.metadata {
            let labelled = meta.labels.as_ref().is_some_and(|l| {
                l.contains_key(keys::HOME_LABEL) || l.contains_key(keys::HOME_LEVEL_LABEL)
            });
            let owned = meta
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(keys::OWNER_ANNOTATION));
            if labelled || owned {
                return Err(Denial::EphemeralHomeMarks {
                    volume: name.clone(),
                });
            }
        }
        let spec = &template.spec;
        if spec.volume_name.is_some() {
            return Err(Denial::EphemeralBinding {
                volume: name.clone(),
            });
        }
        let sources = [
            spec.data_source.as_ref().map(|d| {
                (
                    d.api_group.as_deref(),
                    d.kind.as_str(),
                    d.name.as_str(),
                    None,
                )
            }),
            spec.data_source_ref.as_ref().map(|d| {
                (
                    d.api_group.as_deref(),
                    d.kind.as_str(),
                    d.name.as_str(),
                    d.namespace.as_deref(),
                )
            }),
        ];
        for (group, kind, source, namespace) in sources.into_iter().flatten() {
            if let Some(namespace) = namespace.filter(|n| *n != self.ns.name) {
                return Err(Denial::EphemeralCrossNamespace {
                    volume: name.clone(),
                    namespace: namespace.into(),
                });
            }
            if group.unwrap_or_default().is_empty()
                && kind == "PersistentVolumeClaim"
                && let Some(reserved) = reservation(self.policy, self.ns, self.claims, source)
            {
                return Err(Denial::EphemeralClone {
                    volume: name.clone(),
                    source_claim: source.into(),
                    reserved: reserved.to_string(),
                });
            }
        }
        let pod_name = pod.metadata.name.as_deref().filter(|n| !n.is_empty());
        if let Some(generated) = pod_name.map(|p| format!("{p}-{name}"))
            && let Some(reserved) = reservation(self.policy, self.ns, self.claims, &generated)
        {
            return Err(Denial::EphemeralReservedName {
                volume: name.clone(),
                claim: generated,
                reserved: reserved.to_string(),
            });
        }
        Ok(())
    }

    /// Inline volumes can reach a share's storage without its claim: only the safe kinds, and
    /// those the policy allows, are admitted, and never on storage a share or library has
    /// provisioned (`storage_reach`).
    fn inline(&self, volume: &Volume, kind: &str) -> Result<(), Denial> {
        let settings = self.policy.settings();
        if SAFE_VOLUME_TYPES.contains(&kind) {
            return Ok(());
        }
        if kind == "csi" {
            let driver = volume.csi.as_ref().map_or("", |c| c.driver.as_str());
            if !settings.allowed_csi_drivers.contains(driver) {
                return Err(Denial::InlineCsi {
                    volume: volume.name.clone(),
                    driver: driver.into(),
                });
            }
        } else if !settings.allowed_volume_types.contains(kind) {
            return Err(Denial::InlineVolume {
                volume: volume.name.clone(),
                kind: kind.into(),
            });
        }
        match provisioned_reach(self.policy, volume) {
            None => Ok(()),
            Some((owner, claim)) => Err(Denial::InlineProvisioned {
                volume: volume.name.clone(),
                kind: kind.into(),
                owner,
                claim,
            }),
        }
    }
}

/// Whether the pod mounts a secret share's claim or a secret-level home, whoever looks at it (no
/// write-down applies to debug containers and connections as it does to the pod).
pub fn has_secret_claim(
    policy: &PolicySnapshot,
    ns: &NamespaceInfo,
    claims: &dyn ClaimLookup,
    pod: &Pod,
) -> bool {
    has_secret_share_claim(policy, ns, pod)
        || pod::volumes(pod)
            .iter()
            .filter_map(pod::claim_of)
            .any(|claim| {
                matches!(
                    reservation(policy, ns, claims, claim),
                    Some(
                        Reservation::SecretHome { .. }
                            | Reservation::MarkedHome { secret: true, .. }
                    )
                )
            })
}

/// Whether the pod mounts a secret share's claim.
pub fn has_secret_share_claim(policy: &PolicySnapshot, ns: &NamespaceInfo, pod: &Pod) -> bool {
    pod::volumes(pod)
        .iter()
        .filter_map(pod::claim_of)
        .any(|claim| {
            policy
                .shares_for_claim(ns, claim)
                .iter()
                .any(|s| s.level == Level::Secret)
        })
}

/// The subject's own home claim may be mounted when it does not exist yet (it is created on first
/// launch) or when notebook-volumes created it for this user; a claim someone else made under
/// that name is never trusted.
pub fn own_home_state(
    claims: &dyn ClaimLookup,
    ns: &str,
    claim: &str,
    subject: &Subject,
) -> Result<bool, Denial> {
    let user = subject.user.as_deref().unwrap_or_default();
    let Some(info) = claims.claim(ns, claim) else {
        return Ok(false);
    };
    match info.owner.as_deref() {
        Some(owner) if owner != user => Err(Denial::HomeOwnedByOther {
            claim: claim.into(),
            namespace: ns.into(),
            owner: owner.into(),
            user: user.into(),
        }),
        Some(_) if info.home => Ok(true),
        _ => Err(Denial::HomeNotMarked {
            claim: claim.into(),
            namespace: ns.into(),
            user: user.into(),
        }),
    }
}

/// Raw block devices (`volumeDevices`) cannot be made read-only per container: a claim volume
/// used as a device needs read-write access. `containers` limits the check to some containers.
pub fn check_devices(
    pod: &Pod,
    volumes: &[ClaimVolume<'_>],
    subject: &Subject,
    secret_in_pod: bool,
    containers: Option<&HashSet<(ContainerKind, usize)>>,
) -> Result<(), Denial> {
    let by_name: HashMap<&str, &ClaimVolume<'_>> =
        volumes.iter().map(|v| (v.name.as_str(), v)).collect();
    for (kind, c, name) in pod::all_devices(pod) {
        if containers.is_some_and(|set| !set.contains(&(kind, c))) {
            continue;
        }
        let Some(v) = by_name.get(name) else {
            continue;
        };
        let access = v.access(subject, secret_in_pod);
        if access != Access::Rw {
            return Err(Denial::RawDevice {
                volume: name.into(),
                claim: v.claim.clone(),
                access,
            });
        }
    }
    Ok(())
}

/// Forces read-only, on the volume and on each of its mounts, where access is `ro`.
pub fn force_read_only(
    pod: &Pod,
    volumes: &[ClaimVolume<'_>],
    subject: &Subject,
    secret_in_pod: bool,
    kinds: &[ContainerKind],
    patch: &mut PatchBuilder,
) {
    let mounts = pod::all_mounts(pod);
    let by_volume = pod::mounts_by_volume(&mounts);
    for v in volumes {
        let volume_ro = v.read_only;
        let force = v.access(subject, secret_in_pod) == Access::Ro;
        if force && !volume_ro && !v.mount_level_only && kinds.contains(&ContainerKind::Regular) {
            patch.read_only_volume(v.index);
        }
        if !(force || volume_ro) {
            continue;
        }
        for &i in by_volume.get(v.name.as_str()).into_iter().flatten() {
            let (kind, c, m, mount) = mounts[i];
            if mount.read_only != Some(true) && kinds.contains(&kind) {
                patch.read_only_mount(kind, c, m);
            }
        }
    }
}
