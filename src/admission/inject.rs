//! What a notebook pod receives (docs/design.md, "The decision, in order") — home, entitled shares, libraries with Lmod — added only
//! where nothing is in the way, so a second pass over the patched pod changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, Pod, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::access::{Access, effective_access, share_access};
use super::claim_ready;
use super::claims::NoClaims;
use super::context::Context;
use super::denial::Denial;
use super::guard::{ClaimVolume, own_home_state};
use super::home_level::HomeChoice;
use super::identity::Subject;
use super::outcome::{Effect, MountRecord, MountSource};
use super::patch::PatchBuilder;
use super::pod;
use super::reserved::{Reservation, reservation};
use crate::keys;
use crate::policy::{Home, Level, UnusableClaims};

/// What the injection adds: the patch, the mounts, the effects and the warnings.
#[derive(Debug, Default)]
pub struct Plan {
    pub patch: PatchBuilder,
    pub warnings: Vec<String>,
    pub mounts: Vec<MountRecord>,
    pub effects: Vec<Effect>,
    pub secret_in_pod: bool,
    pub home_would_create: bool,
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

/// The injection's inputs: who the notebook is for, where, and whether this is a dry run.
#[derive(Clone, Copy)]
pub struct Notebook<'a> {
    pub ctx: Context<'a>,
    pub subject: &'a Subject,
    pub pod: &'a Pod,
    pub dry_run: bool,
}

/// Plans the injection for a notebook pod: its home, its shares, its libraries, in that order
/// (an earlier one keeps a mount path a later one wants). `existing` are the claim volumes the
/// pod brought (the guard's scan).
pub fn plan(
    notebook: Notebook<'_>,
    home: Option<&HomeChoice<'_>>,
    existing: &[ClaimVolume<'_>],
) -> Result<Plan, Denial> {
    let mut planner = Planner {
        notebook,
        targets: Targets::new(notebook.pod),
        plan: Plan::default(),
    };
    if planner.targets.containers.is_empty() {
        planner
            .plan
            .warnings
            .push("pod has no containers; nothing mounted".into());
        return Ok(planner.plan);
    }
    if let Some(choice) = home {
        planner.home(choice)?;
    }
    let requested = planner.secret_shares()?;
    planner.plan.secret_in_pod |= existing.iter().any(|v| v.is_secret());
    planner.shares(&requested)?;
    planner.libraries()?;
    Ok(planner.plan)
}

/// The plan being built, with what the notebook containers already hold.
struct Planner<'a> {
    notebook: Notebook<'a>,
    targets: Targets<'a>,
    plan: Plan,
}

impl Planner<'_> {
    fn user(&self) -> &str {
        self.notebook.subject.user.as_deref().unwrap_or_default()
    }

    /// Adds a volume and its mounts, recording it; `false` when its mount path was taken.
    fn add(&mut self, record: MountRecord, sub_path: Option<&str>) -> bool {
        let added = self.targets.add(
            &mut self.plan.patch,
            &mut self.plan.warnings,
            record,
            sub_path,
        );
        let mounted = added.is_some();
        self.plan.mounts.extend(added);
        mounted
    }

    /// The user's home (in a secret notebook, the secret-level home or the normal one
    /// read-only): mounted unless the spawner mounts it or a volume has its name; created on
    /// first launch when the Home policy says so.
    fn home(&mut self, choice: &HomeChoice<'_>) -> Result<(), Denial> {
        let ctx = self.notebook.ctx;
        let (home, claim) = (choice.home, choice.claim.clone());
        if self.targets.claims.contains(&claim) {
            // The spawner mounts the home claim itself (KubeSpawner does); the guard checked it.
            return Ok(());
        }
        if choice.is_secret_level() && self.targets.claims.contains(&choice.normal) {
            // The spawner mounts the normal home: the guard makes it read-only, and the
            // secret-level home would be a second home the user does not expect.
            self.plan.warnings.push(format!(
                "secret-level home '{claim}' not mounted: the pod mounts the normal home '{}' itself, which is read-only in a notebook with secret data",
                choice.normal
            ));
            return Ok(());
        }
        if self.targets.volume_names.contains(keys::HOME_VOLUME) {
            self.plan.warnings.push(format!(
                "home not mounted: the pod already has a volume named {}",
                keys::HOME_VOLUME
            ));
            return Ok(());
        }
        if let Some(reserved) = reserved_for_policy(ctx, &claim) {
            return Err(Denial::HomeIsReserved {
                claim,
                user: self.user().into(),
                reserved: reserved.to_string(),
            });
        }
        let ns = &ctx.namespace.name;
        let exists = own_home_state(ctx.claims, ns, &claim, self.notebook.subject)?;
        if exists && !choice.read_only {
            self.growth(home, ns, &claim);
        }
        if !exists && choice.read_only {
            self.plan.warnings.push(format!(
                "home not mounted: claim '{claim}' does not exist yet, and a notebook with secret data gets it read-only (Home secretHome: readOnly); start a normal notebook first to create it"
            ));
            return Ok(());
        }
        if !exists {
            match &home.create {
                Some(_) if self.notebook.dry_run => self.plan.home_would_create = true,
                Some(_) => self
                    .plan
                    .effects
                    .push(Effect::CreateClaim(Box::new(home_pvc(
                        home,
                        ns,
                        &claim,
                        self.user(),
                        choice.is_secret_level(),
                        &self.notebook.subject.groups,
                    )))),
                None => {
                    self.plan.warnings.push(format!(
                        "home not mounted: claim '{claim}' does not exist and the Home policy does not create claims"
                    ));
                    return Ok(());
                }
            }
        }
        let record = MountRecord {
            volume: keys::HOME_VOLUME.into(),
            claim_name: claim,
            mount_path: home.mount_path.clone(),
            read_only: choice.read_only,
            source: MountSource::Home,
        };
        if !self.add(record, None) {
            self.plan.effects.clear();
            self.plan.home_would_create = false;
            return Ok(());
        }
        if choice.is_secret_level() {
            // The secret-level home holds secret data: no write-down elsewhere in the pod.
            self.plan.secret_in_pod = true;
        }
        Ok(())
    }

    /// An existing home the policy now gives more space: growth is queued (never a shrink), or
    /// the reason it was refused before is a warning.
    fn growth(&mut self, home: &Home, ns: &str, claim: &str) {
        let ctx = self.notebook.ctx;
        let Some(wanted) = home.size_for(&self.notebook.subject.groups) else {
            return;
        };
        let Some(info) = ctx.claims.claim(ns, claim) else {
            return;
        };
        let Some(have) = info.requested.as_deref() else {
            return;
        };
        if !crate::policy::quantity::larger(wanted, have) {
            return;
        }
        match info.growth_refused.as_deref() {
            Some(refused) if refused.split(':').next() == Some(wanted) => {
                self.plan.warnings.push(format!(
                    "home claim '{claim}' requests {have} and the policy gives {wanted}, but it cannot be grown: {}",
                    refused.split_once(": ").map_or(refused, |(_, why)| why)
                ));
            }
            _ => {
                self.plan.warnings.push(format!(
                    "home claim '{claim}' requests {have} and the policy gives {wanted}: growing it in the background (if its StorageClass allows expansion; a claim is never shrunk)"
                ));
                if !self.notebook.dry_run {
                    self.plan.effects.push(Effect::GrowClaim {
                        namespace: ns.to_string(),
                        claim: claim.to_string(),
                        size: wanted.to_string(),
                    });
                }
            }
        }
    }

    /// The secret shares the pod asks for (they must be available to the user); a secret one
    /// puts the pod under no write-down.
    fn secret_shares(&mut self) -> Result<Vec<String>, Denial> {
        let Notebook {
            ctx, subject, pod, ..
        } = self.notebook;
        let requested = pod::requested_secret_shares(pod)
            .map_err(|limit| Denial::TooManySecretShares { max: limit - 1 })?;
        let in_scope = ctx.policy.shares_in_scope(ctx.namespace);
        for name in &requested {
            let unavailable = || Denial::SecretShareUnavailable {
                share: name.clone(),
                user: self.user().into(),
                namespace: ctx.namespace.name.clone(),
            };
            match in_scope.iter().find(|s| &s.name == name) {
                None => return Err(unavailable()),
                Some(s) if s.level != Level::Secret => self.plan.warnings.push(format!(
                    "share '{name}' is {}, not secret; it is mounted by its usual rules",
                    s.level.as_str()
                )),
                Some(s) if share_access(s, subject) == Access::None => return Err(unavailable()),
                Some(_) => self.plan.secret_in_pod = true,
            }
        }
        Ok(requested)
    }

    /// Whether a rejected unit also names the claim (then it is not mounted, with a warning).
    fn protected(&mut self, source: &MountSource, claim: &str) -> bool {
        let Some(unit) = self.notebook.ctx.policy.protected_claim(claim) else {
            return false;
        };
        self.plan
            .warnings
            .push(protected_warning(source, claim, unit));
        true
    }

    /// Whether the claim can be mounted here (`claim_ready`): `Ok(false)` skips it with a
    /// warning, `Err` denies the pod when the Settings say so.
    fn ready(
        &mut self,
        source: &MountSource,
        claim: &str,
        read_only: bool,
    ) -> Result<bool, Denial> {
        let ctx = self.notebook.ctx;
        let ns = &ctx.namespace.name;
        let Err(problem) = claim_ready::usable(ctx.claims, ns, claim, read_only) else {
            return Ok(true);
        };
        let message = claim_ready::unusable_message(&source.to_string(), ns, claim, &problem);
        match ctx.policy.settings().unusable_claims {
            UnusableClaims::Skip => {
                self.plan.warnings.push(message);
                Ok(false)
            }
            UnusableClaims::Deny => Err(Denial::UnusableClaim { message }),
        }
    }

    /// Every public or private share the user may read, and the secret ones requested.
    fn shares(&mut self, requested: &[String]) -> Result<(), Denial> {
        let Notebook { ctx, subject, .. } = self.notebook;
        for share in ctx.policy.shares_in_scope(ctx.namespace) {
            let wanted = match share.level {
                Level::Public | Level::Private => share_access(share, subject) != Access::None,
                Level::Secret => requested.contains(&share.name),
            };
            let volume = keys::share_volume(&share.name);
            if !wanted || self.targets.present(&volume, &share.claim_name) {
                continue;
            }
            let source = MountSource::Share(share.name.clone());
            if self.protected(&source, &share.claim_name) {
                continue;
            }
            let access = effective_access(share, subject, self.plan.secret_in_pod);
            if !self.ready(&source, &share.claim_name, access != Access::Rw)? {
                continue;
            }
            let record = MountRecord {
                volume,
                claim_name: share.claim_name.clone(),
                mount_path: share.mount_path.clone(),
                read_only: access != Access::Rw,
                source,
            };
            self.add(record, share.sub_path.as_deref());
        }
        Ok(())
    }

    /// Every library in scope, read-only, with the environment it sets (Lmod's module path).
    fn libraries(&mut self) -> Result<(), Denial> {
        let ctx = self.notebook.ctx;
        for lib in ctx.policy.libraries_in_scope(ctx.namespace) {
            let volume = keys::library_volume(&lib.name);
            let source = MountSource::Library(lib.name.clone());
            if self.protected(&source, &lib.claim_name) {
                continue;
            }
            if !self.targets.present(&volume, &lib.claim_name) {
                // Without its volume, the library's environment would point nowhere.
                if !self.ready(&source, &lib.claim_name, true)? {
                    continue;
                }
                let record = MountRecord {
                    volume,
                    claim_name: lib.claim_name.clone(),
                    mount_path: lib.mount_path.clone(),
                    read_only: true,
                    source,
                };
                if !self.add(record, None) {
                    continue;
                }
            }
            for (name, value) in &lib.env {
                self.targets
                    .set_env(&mut self.plan.patch, &mut self.plan.warnings, name, value);
            }
        }
        Ok(())
    }
}

/// Why a share or library of an accepted policy is not mounted: another, rejected, unit names its
/// claim, and rejected units fail closed.
fn protected_warning(source: &MountSource, claim: &str, unit: &str) -> String {
    format!(
        "{source} not mounted: its claim '{claim}' is also named in {unit}, which failed validation; it is protected until that policy is fixed"
    )
}

/// The claim created on first launch, labelled and annotated so the guard knows its owner (and,
/// for the secret-level home, its level).
fn home_pvc(
    home: &Home,
    namespace: &str,
    claim: &str,
    user: &str,
    secret: bool,
    groups: &BTreeSet<String>,
) -> PersistentVolumeClaim {
    let create = home
        .create
        .clone()
        .unwrap_or_else(|| crate::policy::HomeCreate {
            size: "1Gi".into(),
            storage_class_name: None,
            access_modes: vec!["ReadWriteOnce".into()],
        });
    let size = home.size_for(groups).unwrap_or(&create.size).to_string();
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(claim.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(home_labels(secret)),
            annotations: Some([(keys::OWNER_ANNOTATION.to_string(), user.to_string())].into()),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(create.access_modes),
            storage_class_name: create.storage_class_name,
            resources: Some(VolumeResourceRequirements {
                requests: Some([("storage".to_string(), Quantity(size))].into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The labels of a home claim the webhook creates.
fn home_labels(secret: bool) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> =
        [(keys::HOME_LABEL.to_string(), "true".to_string())].into();
    if secret {
        labels.insert(
            keys::HOME_LEVEL_LABEL.to_string(),
            keys::HOME_LEVEL_SECRET.to_string(),
        );
    }
    labels
}
