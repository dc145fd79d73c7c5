//! §7: what a notebook pod receives — home, entitled shares, libraries with Lmod — added only
//! where nothing is in the way, so a second pass over the patched pod changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, Pod, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::access::{Access, effective_access, share_access};
use super::claims::NoClaims;
use super::guard::{ClaimVolume, own_home_state};
use super::identity::{Subject, slug};
use super::patch::PatchBuilder;
use super::pod;
use super::reserved::{Reservation, reservation};
use super::review::{Context, Effect, MountRecord};
use crate::keys;
use crate::policy::home_template::claim_for;
use crate::policy::{Home, Level, Share};

/// What the injection adds, besides the patch operations it records.
#[derive(Debug, Default)]
pub struct Plan {
    pub mounts: Vec<MountRecord>,
    pub effects: Vec<Effect>,
    pub secret_in_pod: bool,
    pub home_would_create: bool,
}

/// The home claim name of a user under a `Home` document.
pub fn home_claim(home: &Home, user: &str) -> String {
    claim_for(&home.claim_name_template, &slug(user))
}

/// A share's, a library's or a protected claim, which no home may be.
fn reserved_for_policy<'p>(ctx: Context<'p>, claim: &str) -> Option<Reservation<'p>> {
    reservation(ctx.policy, ctx.namespace, &NoClaims, claim).filter(|r| {
        matches!(
            r,
            Reservation::Protected { .. } | Reservation::Share(_) | Reservation::Library(_)
        )
    })
}

/// Tracks what is already in the notebook containers, to skip collisions instead of overwriting.
struct Targets<'a> {
    pod: &'a Pod,
    containers: Vec<usize>,
    paths: BTreeSet<String>,
    volume_names: BTreeSet<String>,
    claims: BTreeSet<String>,
    env: BTreeMap<usize, BTreeSet<String>>,
}

impl<'a> Targets<'a> {
    fn new(pod: &'a Pod) -> Self {
        let containers = pod::notebook_containers(pod);
        let paths = containers
            .iter()
            .flat_map(|&c| {
                pod::container_mounts(pod, c)
                    .iter()
                    .map(|m| m.mount_path.clone())
            })
            .collect();
        let volumes = pod::volumes(pod);
        Targets {
            pod,
            containers,
            paths,
            volume_names: volumes.iter().map(|v| v.name.clone()).collect(),
            claims: volumes
                .iter()
                .filter_map(pod::claim_of)
                .map(str::to_string)
                .collect(),
            env: BTreeMap::new(),
        }
    }

    /// Whether the volume is already there, by our name or by its claim.
    fn present(&self, volume: &str, claim: &str) -> bool {
        self.volume_names.contains(volume) || self.claims.contains(claim)
    }

    /// Adds the volume and its mounts unless the mount path is taken; the warning says why not.
    fn add(
        &mut self,
        patch: &mut PatchBuilder,
        warnings: &mut Vec<String>,
        record: MountRecord,
        sub_path: Option<&str>,
    ) -> Option<MountRecord> {
        if self.containers.is_empty() {
            return None;
        }
        if self.paths.contains(&record.mount_path) {
            warnings.push(format!(
                "{} not mounted: '{}' is already a mount path in the notebook container",
                record.source, record.mount_path
            ));
            return None;
        }
        patch.add_claim_volume(&record.volume, &record.claim_name, record.read_only);
        for &c in &self.containers {
            patch.add_mount(
                c,
                &record.volume,
                &record.mount_path,
                sub_path,
                record.read_only,
            );
        }
        self.paths.insert(record.mount_path.clone());
        self.volume_names.insert(record.volume.clone());
        Some(record)
    }

    /// Sets a variable unless the container (or an earlier library) already sets it.
    fn set_env(
        &mut self,
        patch: &mut PatchBuilder,
        warnings: &mut Vec<String>,
        name: &str,
        value: &str,
    ) {
        for &c in &self.containers {
            let planned = self.env.entry(c).or_default();
            match pod::container_env(self.pod, c, name) {
                Some(Some(v)) if v == value => {}
                Some(_) => warnings.push(format!(
                    "container '{}' already sets {name}; left as it is",
                    pod::container_name(self.pod, c)
                )),
                None if planned.contains(name) => warnings.push(format!(
                    "{name} is set by two libraries; the first one's value is kept"
                )),
                None => {
                    planned.insert(name.to_string());
                    patch.add_env(c, name, value);
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
/// Plans the injection for a notebook pod; `Err` is a denial reason.
pub fn plan(
    ctx: Context<'_>,
    dry_run: bool,
    subject: &Subject,
    home: Option<(&Home, String)>,
    pod: &Pod,
    existing: &[ClaimVolume<'_>],
    patch: &mut PatchBuilder,
    warnings: &mut Vec<String>,
) -> Result<Plan, String> {
    let user = subject.user.as_deref().unwrap_or_default();
    let ns = &ctx.namespace.name;
    let mut plan = Plan::default();
    let mut targets = Targets::new(pod);
    if targets.containers.is_empty() {
        warnings.push("pod has no containers; nothing mounted".into());
        return Ok(plan);
    }

    if let Some((home, claim)) = home {
        let record = MountRecord {
            volume: keys::HOME_VOLUME.into(),
            claim_name: claim.clone(),
            mount_path: home.mount_path.clone(),
            read_only: false,
            source: "home".into(),
        };
        if targets.claims.contains(&claim) {
            // The spawner mounts the home claim itself (KubeSpawner does); the guard checked it.
        } else if targets.volume_names.contains(keys::HOME_VOLUME) {
            warnings.push(format!(
                "home not mounted: the pod already has a volume named {}",
                keys::HOME_VOLUME
            ));
        } else {
            if let Some(reserved) = reserved_for_policy(ctx, &claim) {
                return Err(format!(
                    "home claim '{claim}' of user '{user}' is {reserved}; a share's or library's claim is never anyone's home (fix the Home claimNameTemplate)"
                ));
            }
            let mut mount = true;
            let exists = own_home_state(ctx.claims, ns, &claim, subject)?;
            if !exists {
                match &home.create {
                    Some(_) if dry_run => plan.home_would_create = true,
                    Some(_) => plan.effects.push(Effect::CreateClaim(Box::new(home_pvc(
                        home, ns, &claim, user,
                    )))),
                    None => {
                        warnings.push(format!(
                            "home not mounted: claim '{claim}' does not exist and the Home policy does not create claims"
                        ));
                        mount = false;
                    }
                }
            }
            if mount {
                let added = targets.add(patch, warnings, record, None);
                if added.is_none() {
                    plan.effects.clear();
                    plan.home_would_create = false;
                }
                plan.mounts.extend(added);
            }
        }
    }

    let in_scope: Vec<&Share> = ctx.policy.shares_in_scope(ctx.namespace);
    let requested = pod::requested_secret_shares(pod).map_err(|limit| {
        format!(
            "the pod asks for more than {} secret shares ({}); ask only for the ones this notebook needs",
            limit - 1,
            keys::SECRET_SHARES_ANNOTATION
        )
    })?;
    for name in &requested {
        let unavailable = || {
            format!(
                "secret share '{name}' was requested ({}) but is not available to user '{user}' in namespace '{ns}'",
                keys::SECRET_SHARES_ANNOTATION
            )
        };
        match in_scope.iter().find(|s| &s.name == name) {
            None => return Err(unavailable()),
            Some(s) if s.level != Level::Secret => warnings.push(format!(
                "share '{name}' is {}, not secret; it is mounted by its usual rules",
                s.level.as_str()
            )),
            Some(s) if share_access(s, subject) == Access::None => return Err(unavailable()),
            Some(_) => plan.secret_in_pod = true,
        }
    }
    plan.secret_in_pod |= existing.iter().any(|v| v.is_secret());

    for share in in_scope {
        let wanted = match share.level {
            Level::Public | Level::Private => share_access(share, subject) != Access::None,
            Level::Secret => requested.contains(&share.name),
        };
        let volume = keys::share_volume(&share.name);
        if !wanted || targets.present(&volume, &share.claim_name) {
            continue;
        }
        if let Some(unit) = ctx.policy.protected_claim(&share.claim_name) {
            warnings.push(protected_warning(
                &format!("share:{}", share.name),
                &share.claim_name,
                unit,
            ));
            continue;
        }
        let access = effective_access(share, subject, plan.secret_in_pod);
        let record = MountRecord {
            volume,
            claim_name: share.claim_name.clone(),
            mount_path: share.mount_path.clone(),
            read_only: access != Access::Rw,
            source: format!("share:{}", share.name),
        };
        plan.mounts
            .extend(targets.add(patch, warnings, record, share.sub_path.as_deref()));
    }

    for lib in ctx.policy.libraries_in_scope(ctx.namespace) {
        let volume = keys::library_volume(&lib.name);
        if let Some(unit) = ctx.policy.protected_claim(&lib.claim_name) {
            warnings.push(protected_warning(
                &format!("library:{}", lib.name),
                &lib.claim_name,
                unit,
            ));
            continue;
        }
        if !targets.present(&volume, &lib.claim_name) {
            let record = MountRecord {
                volume,
                claim_name: lib.claim_name.clone(),
                mount_path: lib.mount_path.clone(),
                read_only: true,
                source: format!("library:{}", lib.name),
            };
            match targets.add(patch, warnings, record, None) {
                Some(r) => plan.mounts.push(r),
                None => continue,
            }
        }
        for (name, value) in &lib.env {
            targets.set_env(patch, warnings, name, value);
        }
    }
    Ok(plan)
}

/// Why a share or library of an accepted policy is not mounted: another, rejected, unit names its
/// claim, and rejected units fail closed.
fn protected_warning(source: &str, claim: &str, unit: &str) -> String {
    format!(
        "{source} not mounted: its claim '{claim}' is also named in {unit}, which failed validation; it is protected until that policy is fixed"
    )
}

/// The claim created on first launch, labelled and annotated so the guard knows its owner.
fn home_pvc(home: &Home, namespace: &str, claim: &str, user: &str) -> PersistentVolumeClaim {
    let create = home
        .create
        .clone()
        .unwrap_or_else(|| crate::policy::HomeCreate {
            size: "1Gi".into(),
            storage_class_name: None,
            access_modes: vec!["ReadWriteOnce".into()],
        });
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(claim.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some([(keys::HOME_LABEL.to_string(), "true".to_string())].into()),
            annotations: Some([(keys::OWNER_ANNOTATION.to_string(), user.to_string())].into()),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(create.access_modes),
            storage_class_name: create.storage_class_name,
            resources: Some(VolumeResourceRequirements {
                requests: Some([("storage".to_string(), Quantity(create.size))].into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
