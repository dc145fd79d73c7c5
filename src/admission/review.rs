//! The one decision both the server and `audit` call: an AdmissionRequest for a pod in, the
//! response (patch, warnings, audit annotations or denial) and the side effects to perform out.

use json_patch::PatchOperation;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use serde::Serialize;

use super::claims::ClaimLookup;
use std::collections::HashSet;

use super::administrators;
use super::exposure;
use super::guard::{self, ClaimUse, Guard};
use super::identity::{self, Identity, IdentitySource};
use super::inject;
use super::patch::{ContainerKind, PatchBuilder};
use super::pod;
use super::stamp::{self, StampKey};
use crate::keys;
use crate::policy::{NamespaceInfo, PolicySnapshot};

/// Everything the decision reads besides the request.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub policy: &'a PolicySnapshot,
    pub namespace: &'a NamespaceInfo,
    pub claims: &'a dyn ClaimLookup,
    /// The webhook's own username (it creates home claims), when known.
    pub webhook_user: Option<&'a str>,
    /// The key of the stamps on StatefulSets and Notebooks; without it no stamp is believed.
    pub stamp_key: Option<&'a StampKey>,
}

/// One volume the pod ends up with that the policy knows about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MountRecord {
    pub volume: String,
    pub claim_name: String,
    pub mount_path: String,
    pub read_only: bool,
    /// `home`, `share:<name>` or `library:<name>`.
    pub source: String,
}

/// Work the caller must do before the answer is valid; skipped on dry run.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Create the user's home claim (first launch).
    CreateClaim(Box<PersistentVolumeClaim>),
}

/// The full outcome of one admission.
#[derive(Debug, Clone)]
pub struct Review {
    /// The answer; its patch is serialised once, here.
    pub response: AdmissionResponse,
    pub user: Option<String>,
    pub mounts: Vec<MountRecord>,
    pub effects: Vec<Effect>,
}

impl Review {
    pub fn allowed(&self) -> bool {
        self.response.allowed
    }

    /// Denial message, when denied.
    pub fn message(&self) -> Option<&str> {
        (!self.response.allowed).then_some(self.response.result.message.as_str())
    }

    /// The JSON patch operations of the answer (empty when there is none).
    pub fn patch(&self) -> Vec<PatchOperation> {
        self.response
            .patch
            .as_deref()
            .and_then(|bytes| serde_json::from_slice::<json_patch::Patch>(bytes).ok())
            .map(|p| p.0)
            .unwrap_or_default()
    }

    /// Turns the outcome into a denial, e.g. when creating the home claim failed.
    pub fn deny(mut self, reason: &str) -> Review {
        self.response = denial(self.response, reason);
        self.effects.clear();
        self
    }

    /// The compact mount summary (`home=rw,finance=ro,apps=ro`).
    pub fn summary(&self) -> String {
        summary(&self.mounts, false)
    }
}

/// Decides one pod admission. Pure: existing claims come from `ctx.claims`.
pub fn review(ctx: Context<'_>, req: &AdmissionRequest<Pod>) -> Review {
    let base = AdmissionResponse::from(req);
    let Some(pod) = req.object.as_ref() else {
        return passthrough(base);
    };
    match (&req.operation, req.sub_resource.as_deref()) {
        (Operation::Create, None) => create(ctx, req, pod, base),
        (Operation::Update, Some("ephemeralcontainers")) => ephemeral(ctx, req, pod, base),
        (Operation::Update, None) => pod_update(ctx, req, pod, base),
        _ => passthrough(base),
    }
}

/// The home claim `review` will look up for this request, so a caller can fetch it first.
pub fn home_claim_name(ctx: Context<'_>, req: &AdmissionRequest<Pod>) -> Option<String> {
    let pod = req.object.as_ref()?;
    if req.operation != Operation::Create || req.sub_resource.is_some() {
        return None;
    }
    let identity = identify(ctx, req, pod, true).ok()?;
    let user = identity.subject.user.as_deref()?;
    let home = ctx.policy.home_for(ctx.namespace)?;
    Some(inject::home_claim(home, user))
}

/// §5 with stamps: a trusted controller's pod belongs to the user its stamp names.
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

fn passthrough(base: AdmissionResponse) -> Review {
    Review {
        response: base,
        user: None,
        mounts: Vec::new(),
        effects: Vec::new(),
    }
}

fn denial(mut response: AdmissionResponse, reason: &str) -> AdmissionResponse {
    response.allowed = false;
    response.result.code = 403;
    response.result.reason = "Forbidden".into();
    response.result.message = reason.to_string();
    response.patch = None;
    response
        .audit_annotations
        .insert(keys::AUDIT_REASON.into(), reason.to_string());
    response
}

fn denied(base: AdmissionResponse, user: Option<String>, reason: &str) -> Review {
    let mut response = denial(base, reason);
    if let Some(u) = &user {
        response
            .audit_annotations
            .insert(keys::AUDIT_USER.into(), u.clone());
    }
    Review {
        user,
        ..passthrough(response)
    }
}

fn create(
    ctx: Context<'_>,
    req: &AdmissionRequest<Pod>,
    pod: &Pod,
    base: AdmissionResponse,
) -> Review {
    if let Err(reason) = pod::check_shape(pod) {
        return denied(base, None, &reason);
    }
    let identity = match identify(ctx, req, pod, true) {
        Ok(identity) => identity,
        Err(e) => return denied(base, None, &e.to_string()),
    };
    let Identity { subject, source } = &identity;
    let user = subject.user.clone();
    let home = user.as_deref().and_then(|u| {
        ctx.policy
            .home_for(ctx.namespace)
            .map(|h| (h, inject::home_claim(h, u)))
    });
    let own_home = home.as_ref().map(|(_, claim)| claim.as_str());
    let guard = Guard {
        policy: ctx.policy,
        ns: ctx.namespace,
        claims: ctx.claims,
        subject,
        own_home,
    };
    let existing = match guard.scan(pod, None) {
        Ok(v) => v,
        Err(reason) => return denied(base, user, &reason),
    };
    let selected = pod::is_notebook(ctx.policy.settings(), pod) && !pod::opted_out(pod);
    let mut warnings = Vec::new();
    // A controller or another system identity that is not a trusted spawner creates pods for
    // whoever can make it do so: treated as a user, all its pods would share one home.
    let by_system = *source == IdentitySource::Requester
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
            user_info_name(req),
            keys::STAMP_ANNOTATION
        ));
    }
    let notebook = user.is_some() && selected && !by_system;
    let mut patch = PatchBuilder::default();
    let mut plan = inject::Plan::default();
    if notebook {
        match inject::plan(
            ctx,
            req.dry_run,
            subject,
            home,
            pod,
            &existing,
            &mut patch,
            &mut warnings,
        ) {
            Ok(p) => plan = p,
            Err(reason) => return denied(base, user, &reason),
        }
    }
    let secret_in_pod = plan.secret_in_pod || existing.iter().any(|v| v.is_secret());
    if let Err(reason) = guard::check_devices(pod, &existing, subject, secret_in_pod, None) {
        return denied(base, user, &reason);
    }
    let all_kinds = [
        ContainerKind::Init,
        ContainerKind::Regular,
        ContainerKind::Ephemeral,
    ];
    guard::force_read_only(
        pod,
        &existing,
        subject,
        secret_in_pod,
        &all_kinds,
        &mut patch,
    );

    let mut mounts = plan.mounts;
    mounts.extend(existing_records(pod, &existing, subject, secret_in_pod));
    sort_records(&mut mounts);
    if secret_in_pod && mounts.iter().any(|m| m.source.starts_with("share:")) {
        warnings.push(
            "a secret share is mounted: public and private shares are read-only in this pod (no write-down)".into(),
        );
    }
    if secret_in_pod
        && let Some(other) = existing
            .iter()
            .find(|v| matches!(v.use_, ClaimUse::Other) && !v.read_only)
    {
        warnings.push(format!(
            "a secret share is mounted: claim '{}' and every other claim outside the policy are read-only in this pod (no write-down)",
            other.claim
        ));
    }
    let mut response = base;
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
    if let Some(u) = &user {
        response
            .audit_annotations
            .insert(keys::AUDIT_USER.into(), u.clone());
    }
    if !mounts.is_empty() {
        let audit = summary(&mounts, plan.home_would_create);
        response
            .audit_annotations
            .insert(keys::AUDIT_MOUNTS.into(), audit);
    }
    finish(
        response,
        user,
        mounts,
        patch.build(pod),
        plan.effects,
        warnings,
    )
}

/// A debug container added to a running pod: only the containers being added are judged, with
/// the requester's rights (an administrator debugging a notebook is not its owner). Their mounts
/// and devices are checked like a new pod's, and one that targets a container (sharing its
/// process namespace, hence its files through /proc) needs the rights that container has.
fn ephemeral(
    ctx: Context<'_>,
    req: &AdmissionRequest<Pod>,
    pod: &Pod,
    base: AdmissionResponse,
) -> Review {
    let identity = match identify(ctx, req, pod, false) {
        Ok(identity) => identity,
        Err(e) => return denied(base, None, &e.to_string()),
    };
    let subject = &identity.subject;
    let user = subject.user.clone();
    let before = req
        .old_object
        .as_ref()
        .map(pod::ephemeral_names)
        .unwrap_or_default();
    let added: HashSet<(ContainerKind, usize)> = pod
        .spec
        .as_ref()
        .and_then(|s| s.ephemeral_containers.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, c)| !before.contains(c.name.as_str()))
        .map(|(i, _)| (ContainerKind::Ephemeral, i))
        .collect();
    let mut used: HashSet<&str> = pod::all_mounts(pod)
        .into_iter()
        .filter(|(kind, c, ..)| added.contains(&(*kind, *c)))
        .map(|(_, _, _, m)| m.name.as_str())
        .collect();
    used.extend(
        pod::all_devices(pod)
            .into_iter()
            .filter(|(kind, c, _)| added.contains(&(*kind, *c)))
            .map(|(_, _, name)| name),
    );
    let own_home = user.as_deref().and_then(|u| {
        ctx.policy
            .home_for(ctx.namespace)
            .map(|h| inject::home_claim(h, u))
    });
    let guard = Guard {
        policy: ctx.policy,
        ns: ctx.namespace,
        claims: ctx.claims,
        subject,
        own_home: own_home.as_deref(),
    };
    let all = match guard.scan(pod, Some(&used)) {
        Ok(v) => v,
        Err(reason) => return denied(base, user, &reason),
    };
    let secret_in_pod = guard::has_secret_claim(ctx.policy, ctx.namespace, pod);
    let administrator =
        administrators::is_administrator(ctx.policy.settings(), &req.user_info, ctx.webhook_user);
    let denial = guard::check_devices(pod, &all, subject, secret_in_pod, Some(&added))
        .err()
        .or_else(|| {
            (!administrator && !added.is_empty())
                .then(|| {
                    let what = debug_what(pod, &added);
                    exposure::enter(ctx, &req.user_info, pod, &what, &added)
                })
                .flatten()
        });
    if let Some(reason) = denial {
        return denied(base, user, &reason);
    }
    let mut patch = PatchBuilder::default();
    guard::force_read_only(
        pod,
        &all,
        subject,
        secret_in_pod,
        &[ContainerKind::Ephemeral],
        &mut patch,
    );
    let mut response = base;
    if let Some(u) = &user {
        response
            .audit_annotations
            .insert(keys::AUDIT_USER.into(), u.clone());
    }
    finish(
        response,
        user,
        Vec::new(),
        patch.build(pod),
        Vec::new(),
        Vec::new(),
    )
}

/// A running pod changed by a non-administrator. The annotations that record whose notebook it
/// is (and what it mounts) were written by the webhook at creation: changing them would let
/// another user pass as the owner. A new container image runs new code with the container's
/// mounts and environment: the same rule as entering the pod.
fn pod_update(
    ctx: Context<'_>,
    req: &AdmissionRequest<Pod>,
    pod: &Pod,
    base: AdmissionResponse,
) -> Review {
    let Some(before) = req.old_object.as_ref() else {
        return passthrough(base);
    };
    if administrators::is_administrator(ctx.policy.settings(), &req.user_info, ctx.webhook_user) {
        return passthrough(base);
    }
    let changed = [keys::USER_ANNOTATION, keys::MOUNTS_ANNOTATION]
        .into_iter()
        .find(|key| pod::annotation(before, key) != pod::annotation(pod, key));
    if let Some(key) = changed {
        return denied(
            base,
            None,
            &format!(
                "the pod annotation {key} records what notebook-volumes decided when the pod was created; only administrators may change it"
            ),
        );
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
        return denied(base, None, &reason);
    }
    passthrough(base)
}

fn user_info_name(req: &AdmissionRequest<Pod>) -> &str {
    req.user_info.username.as_deref().unwrap_or_default()
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

fn finish(
    mut response: AdmissionResponse,
    user: Option<String>,
    mounts: Vec<MountRecord>,
    patch: Vec<PatchOperation>,
    effects: Vec<Effect>,
    warnings: Vec<String>,
) -> Review {
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    if !patch.is_empty() {
        response = match response.with_patch(json_patch::Patch(patch)) {
            Ok(r) => r,
            Err(e) => return denied(AdmissionResponse::invalid(""), user, &e.to_string()),
        };
    }
    Review {
        response,
        user,
        mounts,
        effects,
    }
}

/// Records of the claim volumes the pod brought itself (home, shares, libraries).
fn existing_records(
    pod: &Pod,
    volumes: &[guard::ClaimVolume<'_>],
    subject: &identity::Subject,
    secret_in_pod: bool,
) -> Vec<MountRecord> {
    let mounts = pod::all_mounts(pod);
    let by_volume = pod::mounts_by_volume(&mounts);
    volumes
        .iter()
        .filter_map(|v| {
            let source = match &v.use_ {
                ClaimUse::Home => "home".to_string(),
                ClaimUse::Share { exact: Some(s), .. } => format!("share:{}", s.name),
                ClaimUse::Share { shares, .. } => format!("share:{}", shares.first()?.name),
                ClaimUse::Library(lib) => format!("library:{}", lib.name),
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

fn sort_records(mounts: &mut Vec<MountRecord>) {
    let rank = |m: &MountRecord| match m.source.split(':').next() {
        Some("home") => 0,
        Some("share") => 1,
        _ => 2,
    };
    mounts.sort_by(|a, b| (rank(a), &a.source, &a.volume).cmp(&(rank(b), &b.source, &b.volume)));
    mounts.dedup_by(|a, b| a.source == b.source);
}

/// `home=rw,finance=ro,apps=ro`; with `would_create`, the home entry says `home=would-create`.
fn summary(mounts: &[MountRecord], would_create: bool) -> String {
    // Records are sorted and deduplicated by source (`sort_records`).
    let mut out = String::with_capacity(mounts.len() * 16);
    for m in mounts {
        let name = m
            .source
            .split_once(':')
            .map_or(m.source.as_str(), |(_, n)| n);
        let value = if m.source == "home" && would_create {
            "would-create"
        } else if m.read_only {
            "ro"
        } else {
            "rw"
        };
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}
