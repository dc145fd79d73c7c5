//! The one decision both the server and `audit` call: an AdmissionRequest for a pod in, a
//! `Review` (patch, warnings, audit annotations or a `Denial`, and the effects to perform) out.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::Pod;
use kube::core::admission::{AdmissionRequest, Operation};

use super::administrators;
use super::context::Context;
use super::denial::Denial;
use super::exposure;
use super::guard::{self, ClaimUse, ClaimVolume, Guard};
use super::home_level::{self, HomeChoice};
use super::identity::{self, Identity, IdentitySource, Subject};
use super::inject::{self, Notebook};
use super::outcome::{MountRecord, MountSource, Review, sort_records, summary};
use super::patch::PatchBuilder;
use super::pod::{self, ContainerKind};
use super::stamp;
use crate::keys;

/// Decides one pod admission. Pure: existing claims come from `ctx.claims`.
pub fn review(ctx: Context<'_>, req: &AdmissionRequest<Pod>) -> Review {
    let Some(pod) = req.object.as_ref() else {
        return Review::default();
    };
    let outcome = match (&req.operation, req.sub_resource.as_deref()) {
        (Operation::Create, None) => create(ctx, req, pod),
        (Operation::Update, Some("ephemeralcontainers")) => ephemeral(ctx, req, pod),
        (Operation::Update, None) => pod_update(ctx, req, pod).map(|()| Review::default()),
        _ => Ok(Review::default()),
    };
    outcome.unwrap_or_else(|denied| *denied)
}

/// A finished denial, returned early by the steps of a decision (boxed: the error path is rare).
type Refused = Box<Review>;

/// The home claim `review` will look up for this request and the user it must belong to, so a
/// caller can fetch it first.
pub fn expected_home(ctx: Context<'_>, req: &AdmissionRequest<Pod>) -> Option<HomeClaim> {
    let pod = req.object.as_ref()?;
    if req.operation != Operation::Create || req.sub_resource.is_some() {
        return None;
    }
    let identity = identify(ctx, req, pod, true).ok()?;
    let secret_pod = home_level::asks_for_secret(ctx, &identity.subject, pod);
    let name = home_level::choose(ctx, identity.subject.user.as_deref(), secret_pod)?.claim;
    let user = identity.subject.user?;
    Some(HomeClaim { user, name })
}

/// A user's home claim in the request's namespace, by name (in a secret notebook, the
/// secret-level home under `Home.secretHome: separate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeClaim {
    pub user: String,
    pub name: String,
}

/// The identity rules with stamps: a trusted controller's pod belongs to the user its stamp names.
fn identify(
    ctx: Context<'_>,
    req: &AdmissionRequest<Pod>,
    pod: &Pod,
    strict: bool,
) -> Result<Identity, identity::ImpersonationDenied> {
    stamp::identify_pod(
        ctx.policy,
        ctx.stamp_key,
        &ctx.namespace.name,
        &req.user_info,
        pod,
        strict,
    )
}

/// What every pod decision learns first: whose rights apply, their home claim here, and what
/// the guard makes of the pod's volumes (those named in `only`, or all).
struct Judged<'p> {
    identity: Identity,
    home: Option<HomeChoice<'p>>,
    volumes: Vec<ClaimVolume<'p>>,
}

impl Judged<'_> {
    fn subject(&self) -> &Subject {
        &self.identity.subject
    }

    fn user(&self) -> Option<String> {
        self.identity.subject.user.clone()
    }

    /// A denial on behalf of this user.
    fn deny(&self, denial: Denial) -> Refused {
        Box::new(Review::denied(denial, self.user()))
    }
}

/// Identifies the requester (`strict`: a pod naming another user needs a trusted spawner),
/// finds their home claim and scans the volumes; `Err` is the finished denial.
fn judge<'p>(
    ctx: Context<'p>,
    req: &AdmissionRequest<Pod>,
    pod: &Pod,
    strict: bool,
    only: Option<&HashSet<&str>>,
) -> Result<Judged<'p>, Refused> {
    let identity =
        identify(ctx, req, pod, strict).map_err(|e| Box::new(Review::denied(e.into(), None)))?;
    let secret_pod = home_level::asks_for_secret(ctx, &identity.subject, pod);
    let home = home_level::choose(ctx, identity.subject.user.as_deref(), secret_pod);
    let own = home.as_ref().map(|h| h.own()).unwrap_or_default();
    let volumes = Guard::new(ctx, &identity.subject, own)
        .scan(pod, only)
        .map_err(|denial| Box::new(Review::denied(denial, identity.subject.user.clone())))?;
    Ok(Judged {
        identity,
        home,
        volumes,
    })
}

/// A new pod: the guard over all its volumes, then, for a notebook, the injection; whatever the
/// subject may only read is forced read-only.
fn create(ctx: Context<'_>, req: &AdmissionRequest<Pod>, pod: &Pod) -> Result<Review, Refused> {
    pod::check_shape(pod).map_err(|denial| Box::new(Review::denied(denial, None)))?;
    let judged = judge(ctx, req, pod, true, None)?;
    let user = judged.user();
    let selected = pod::is_notebook(ctx.policy.settings(), pod) && !pod::opted_out(pod);
    let mut warnings = Vec::new();
    // A controller or another system identity that is not a trusted spawner creates pods for
    // whoever can make it do so: treated as a user, all its pods would share one home.
    let by_system = judged.identity.source == IdentitySource::Requester
        && user.as_deref().is_some_and(|u| u.starts_with("system:"));
    if selected && by_system {
        warnings.push(format!(
            "nothing injected: the pod was created by '{}', a system identity that is not a trusted spawner (list it under trustedSpawners in the Settings policy document if it creates notebooks for users)",
            user.as_deref().unwrap_or_default()
        ));
    }
    if selected
        && stamp::unstamped(
            ctx.policy,
            ctx.stamp_key,
            &ctx.namespace.name,
            &req.user_info,
            pod,
        )
    {
        warnings.push(format!(
            "nothing injected: the pod was created by the trusted controller '{}' from an object that carries no stamp notebook-volumes wrote for it ({}); the StatefulSet or Notebook gets one when its owner creates or edits it with the webhook in place",
            req.user_info.username.as_deref().unwrap_or_default(),
            keys::STAMP_ANNOTATION
        ));
    }
    if selected && let Some(key) = &judged.identity.ignored_groups {
        warnings.push(format!(
            "annotation {key} ignored: groups are believed only from a trusted spawner naming the user (and at most {} groups in {} bytes); the pod gets the groups of the policy and of its creator",
            identity::MAX_HUB_GROUPS,
            identity::MAX_HUB_GROUPS_BYTES
        ));
    }
    let notebook = user.is_some() && selected && !by_system;
    let mut plan = inject::Plan::default();
    if notebook {
        let inputs = Notebook {
            ctx,
            subject: judged.subject(),
            pod,
            dry_run: req.dry_run,
        };
        plan = inject::plan(inputs, judged.home.as_ref(), &judged.volumes)
            .map_err(|denial| judged.deny(denial))?;
    }
    let existing = &judged.volumes;
    let subject = judged.subject();
    let secret_in_pod = plan.secret_in_pod || existing.iter().any(|v| v.is_secret());
    guard::check_devices(pod, existing, subject, secret_in_pod, None)
        .map_err(|denial| judged.deny(denial))?;
    let all_kinds = [
        ContainerKind::Init,
        ContainerKind::Regular,
        ContainerKind::Ephemeral,
    ];
    let mut patch = std::mem::take(&mut plan.patch);
    guard::force_read_only(
        pod,
        existing,
        subject,
        secret_in_pod,
        &all_kinds,
        &mut patch,
    );

    let mut mounts = std::mem::take(&mut plan.mounts);
    mounts.extend(existing_records(pod, existing, subject, secret_in_pod));
    sort_records(&mut mounts);
    warnings.append(&mut plan.warnings);
    warnings.extend(write_down_warnings(existing, &mounts, secret_in_pod));
    if notebook {
        if let Some(u) = &user {
            patch.annotate(keys::USER_ANNOTATION, u);
        }
        patch.annotate(keys::MOUNTS_ANNOTATION, &summary(&mounts, false));
    } else {
        // Only the webhook writes these, and only on notebooks: a copy on another pod is forged.
        patch.remove_annotation(keys::USER_ANNOTATION);
        patch.remove_annotation(keys::MOUNTS_ANNOTATION);
    }
    let hub_groups = &judged.identity.hub_groups;
    if notebook && !hub_groups.is_empty() {
        let joined = hub_groups.iter().cloned().collect::<Vec<_>>().join(",");
        patch.annotate(keys::GROUPS_ANNOTATION, &joined);
    } else {
        patch.remove_annotation(keys::GROUPS_ANNOTATION);
    }
    let mut outcome = Review::default().with_user(user);
    if notebook && !hub_groups.is_empty() {
        outcome.audit_annotations.insert(
            keys::AUDIT_HUB_GROUPS.into(),
            hub_groups.iter().cloned().collect::<Vec<_>>().join(","),
        );
    }
    if !mounts.is_empty() {
        let audit = summary(&mounts, plan.home_would_create);
        outcome
            .audit_annotations
            .insert(keys::AUDIT_MOUNTS.into(), audit);
    }
    outcome.patch = patch.build(pod);
    outcome.warnings = warnings;
    outcome.mounts = mounts;
    outcome.effects = plan.effects;
    Ok(outcome)
}

/// What the requester is told when a secret share puts the pod under no write-down.
fn write_down_warnings(
    existing: &[ClaimVolume<'_>],
    mounts: &[MountRecord],
    secret_in_pod: bool,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if !secret_in_pod {
        return warnings;
    }
    if mounts
        .iter()
        .any(|m| matches!(m.source, MountSource::Share(_)))
    {
        warnings.push(
            "a secret share is mounted: public and private shares are read-only in this pod (no write-down)".into(),
        );
    }
    if let Some(other) = existing
        .iter()
        .find(|v| matches!(v.use_, ClaimUse::Other) && !v.read_only)
    {
        warnings.push(format!(
            "a secret share is mounted: claim '{}' and every other claim outside the policy are read-only in this pod (no write-down)",
            other.claim
        ));
    }
    warnings
}

/// A debug container added to a running pod: only the containers being added are judged, with
/// the requester's rights (an administrator debugging a notebook is not its owner). Their mounts
/// and devices are checked like a new pod's, and one that targets a container (sharing its
/// process namespace, hence its files through /proc) needs the rights that container has.
fn ephemeral(ctx: Context<'_>, req: &AdmissionRequest<Pod>, pod: &Pod) -> Result<Review, Refused> {
    let added = added_debug_containers(req, pod);
    let used = volumes_of(pod, &added);
    let judged = judge(ctx, req, pod, false, Some(&used))?;
    let subject = judged.subject();
    let secret_in_pod = guard::has_secret_claim(ctx.policy, ctx.namespace, ctx.claims, pod);
    guard::check_devices(pod, &judged.volumes, subject, secret_in_pod, Some(&added))
        .map_err(|denial| judged.deny(denial))?;
    let administrator =
        administrators::is_administrator(ctx.policy.settings(), &req.user_info, ctx.webhook_user);
    if !administrator && !added.is_empty() {
        let what = debug_what(pod, &added);
        if let Some(denial) = exposure::enter(ctx, &req.user_info, pod, &what, &added) {
            return Err(judged.deny(denial));
        }
    }
    let mut patch = PatchBuilder::default();
    guard::force_read_only(
        pod,
        &judged.volumes,
        subject,
        secret_in_pod,
        &[ContainerKind::Ephemeral],
        &mut patch,
    );
    let mut outcome = Review::default().with_user(judged.user());
    outcome.patch = patch.build(pod);
    Ok(outcome)
}

/// The ephemeral containers of `pod` that the old version of it did not have.
fn added_debug_containers(
    req: &AdmissionRequest<Pod>,
    pod: &Pod,
) -> HashSet<(ContainerKind, usize)> {
    let before = req
        .old_object
        .as_ref()
        .map(pod::ephemeral_names)
        .unwrap_or_default();
    pod.spec
        .as_ref()
        .and_then(|s| s.ephemeral_containers.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, c)| !before.contains(c.name.as_str()))
        .map(|(i, _)| (ContainerKind::Ephemeral, i))
        .collect()
}

/// Names of the volumes the given containers mount or use as devices.
fn volumes_of<'a>(pod: &'a Pod, containers: &HashSet<(ContainerKind, usize)>) -> HashSet<&'a str> {
    let mut used: HashSet<&str> = pod::all_mounts(pod)
        .into_iter()
        .filter(|(kind, c, ..)| containers.contains(&(*kind, *c)))
        .map(|(_, _, _, m)| m.name.as_str())
        .collect();
    used.extend(
        pod::all_devices(pod)
            .into_iter()
            .filter(|(kind, c, _)| containers.contains(&(*kind, *c)))
            .map(|(_, _, name)| name),
    );
    used
}

/// A running pod changed by a non-administrator. The annotations that record whose notebook it
/// is (and what it mounts) were written by the webhook at creation: changing them would let
/// another user pass as the owner. A new container image runs new code with the container's
/// mounts and environment: the same rule as entering the pod.
fn pod_update(ctx: Context<'_>, req: &AdmissionRequest<Pod>, pod: &Pod) -> Result<(), Refused> {
    let Some(before) = req.old_object.as_ref() else {
        return Ok(());
    };
    if administrators::is_administrator(ctx.policy.settings(), &req.user_info, ctx.webhook_user) {
        return Ok(());
    }
    let changed = [
        keys::USER_ANNOTATION,
        keys::MOUNTS_ANNOTATION,
        keys::GROUPS_ANNOTATION,
    ]
    .into_iter()
    .find(|key| pod::annotation(before, key) != pod::annotation(pod, key));
    if let Some(key) = changed {
        return Err(Box::new(Review::denied(
            Denial::DecisionAnnotation { key },
            None,
        )));
    }
    // A new image runs new code with every mount and the environment of the container.
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    if let Some(container) = pod::changed_images(before, pod).first()
        && let Some(reason) = exposure::enter(
            ctx,
            &req.user_info,
            before,
            &format!("changing the image of container '{container}' in pod '{name}'"),
            &HashSet::new(),
        )
    {
        return Err(Box::new(Review::denied(reason, None)));
    }
    Ok(())
}

/// How a debug container being added is named in a denial.
fn debug_what(pod: &Pod, added: &HashSet<(ContainerKind, usize)>) -> String {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let debug = pod
        .spec
        .as_ref()
        .and_then(|s| s.ephemeral_containers.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
        .find(|(i, _)| added.contains(&(ContainerKind::Ephemeral, *i)))
        .map(|(_, c)| c);
    match debug {
        Some(c) => match c.target_container_name.as_deref() {
            Some(target) => format!(
                "debug container '{}' in pod '{name}' targets container '{target}' (sharing its processes and files)",
                c.name
            ),
            None => format!(
                "debug container '{}' in pod '{name}' (it shares the pod's network and volumes)",
                c.name
            ),
        },
        None => format!("a debug container in pod '{name}'"),
    }
}

/// Records of the claim volumes the pod brought itself (home, shares, libraries).
fn existing_records(
    pod: &Pod,
    volumes: &[ClaimVolume<'_>],
    subject: &Subject,
    secret_in_pod: bool,
) -> Vec<MountRecord> {
    let mounts = pod::all_mounts(pod);
    let by_volume = pod::mounts_by_volume(&mounts);
    volumes
        .iter()
        .filter_map(|v| {
            let source = match &v.use_ {
                ClaimUse::Home | ClaimUse::SecretHome => MountSource::Home,
                ClaimUse::Share { exact: Some(s), .. } => MountSource::Share(s.name.clone()),
                ClaimUse::Share { shares, .. } => MountSource::Share(shares.first()?.name.clone()),
                ClaimUse::Library(lib) => MountSource::Library(lib.name.clone()),
                ClaimUse::Other => return None,
            };
            let mount = by_volume
                .get(v.name.as_str())
                .and_then(|found| found.first())
                .map(|&i| &mounts[i]);
            let access = v.access(subject, secret_in_pod);
            Some(MountRecord {
                volume: v.name.clone(),
                claim_name: v.claim.clone(),
                mount_path: mount
                    .map(|(_, _, _, m)| m.mount_path.clone())
                    .unwrap_or_default(),
                read_only: v.read_only || access != super::access::Access::Rw,
                source,
            })
        })
        .collect()
}
