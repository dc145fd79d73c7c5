//! §6: the guard. Every claim volume of every pod in an enabled namespace is checked against the
//! subject's rights, whether or not the pod is a notebook.

use k8s_openapi::api::core::v1::Pod;

use super::access::{Access, effective_access, share_access};
use super::claims::ClaimLookup;
use super::identity::Subject;
use super::patch::{ContainerKind, PatchBuilder};
use super::pod;
use crate::keys;
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
    /// A home claim (labelled) of this subject, or the subject's own home claim by name.
    Home,
    Other,
}

#[derive(Debug, Clone)]
pub struct ClaimVolume<'p> {
    pub index: usize,
    pub name: String,
    pub claim: String,
    pub read_only: bool,
    pub use_: ClaimUse<'p>,
}

impl ClaimVolume<'_> {
    /// Access the subject gets through this volume: the least over the shares on the claim.
    pub fn access(&self, subject: &Subject, secret_in_pod: bool) -> Access {
        match &self.use_ {
            ClaimUse::Share { exact: Some(s), .. } => effective_access(s, subject, secret_in_pod),
            ClaimUse::Share { shares, .. } => shares
                .iter()
                .map(|s| effective_access(s, subject, secret_in_pod))
                .min()
                .unwrap_or(Access::None),
            ClaimUse::Library(_) => Access::Ro,
            ClaimUse::Home | ClaimUse::Other => Access::Rw,
        }
    }

    pub fn is_secret(&self) -> bool {
        match &self.use_ {
            ClaimUse::Share { exact: Some(s), .. } => s.level == Level::Secret,
            ClaimUse::Share { shares, .. } => shares.iter().any(|s| s.level == Level::Secret),
            _ => false,
        }
    }
}

/// Classifies every claim volume (or those named in `only`) and denies what the subject may not
/// mount. `own_home` is the claim the subject's home template names in this namespace, if any.
pub fn scan<'p>(
    policy: &'p PolicySnapshot,
    ns: &'p NamespaceInfo,
    claims: &dyn ClaimLookup,
    subject: &Subject,
    own_home: Option<&str>,
    pod: &Pod,
    only: Option<&[String]>,
) -> Result<Vec<ClaimVolume<'p>>, String> {
    let who = subject
        .user
        .as_deref()
        .map_or("an anonymous pod".to_string(), |u| format!("user '{u}'"));
    let mut out = Vec::new();
    let mounts = pod::all_mounts(pod);
    for (index, volume) in pod::volumes(pod).iter().enumerate() {
        let Some(claim) = pod::claim_of(volume) else {
            continue;
        };
        if only.is_some_and(|names| !names.contains(&volume.name)) {
            continue;
        }
        if let Some(unit) = policy.protected_claim(claim) {
            return Err(format!(
                "volume '{}' uses claim '{claim}', which a share in {unit} names; that policy failed validation, so the claim is protected until it is fixed",
                volume.name
            ));
        }
        let shares: Vec<&Share> = policy.shares_for_claim(ns, claim);
        let use_ = if !shares.is_empty() {
            let exact = shares.iter().copied().find(|s| {
                volume.name == keys::share_volume(&s.name)
                    && mounts
                        .iter()
                        .filter(|(_, _, _, m)| m.name == volume.name)
                        .all(|(_, _, _, m)| {
                            m.sub_path.as_deref().filter(|p| !p.is_empty()) == s.sub_path.as_deref()
                        })
            });
            let applicable: Vec<&Share> = match exact {
                Some(s) => vec![s],
                None => shares.clone(),
            };
            if let Some(denied) = applicable
                .iter()
                .find(|s| share_access(s, subject) == Access::None)
            {
                return Err(format!(
                    "volume '{}' uses claim '{claim}' of {} share '{}', which {who} may not access",
                    volume.name,
                    denied.level.as_str(),
                    denied.name
                ));
            }
            ClaimUse::Share { shares, exact }
        } else if let Some(lib) = policy
            .libraries_in_scope(ns)
            .into_iter()
            .find(|l| l.claim_name == claim)
        {
            ClaimUse::Library(lib)
        } else {
            match claims.claim(&ns.name, claim) {
                Some(info) if info.home || info.owner.is_some() => {
                    let mine = match (&info.owner, subject.user.as_deref()) {
                        (Some(owner), Some(user)) => owner == user,
                        (None, Some(_)) => own_home == Some(claim),
                        _ => false,
                    };
                    if !mine {
                        return Err(format!(
                            "volume '{}' uses home claim '{claim}' of {}; {who} may only mount their own home",
                            volume.name,
                            info.owner
                                .as_deref()
                                .map_or("another user".to_string(), |o| format!("user '{o}'"))
                        ));
                    }
                    ClaimUse::Home
                }
                _ if own_home == Some(claim) => ClaimUse::Home,
                _ => ClaimUse::Other,
            }
        };
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
        });
    }
    Ok(out)
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
    for v in volumes {
        let volume_ro = v.read_only;
        let force = v.access(subject, secret_in_pod) == Access::Ro;
        if force && !volume_ro && kinds.contains(&ContainerKind::Regular) {
            patch.read_only_volume(v.index);
        }
        for (kind, c, m, mount) in &mounts {
            if mount.name == v.name
                && (force || volume_ro)
                && mount.read_only != Some(true)
                && kinds.contains(kind)
            {
                patch.read_only_mount(*kind, *c, *m);
            }
        }
    }
}
