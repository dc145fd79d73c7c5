//! A connection into a running pod (`exec`, `attach`, `portforward`, `proxy`), a debug container
//! (its network namespace, the pod's non-claim volumes, with `targetContainerName` or
//! `shareProcessNamespace` its processes and their files through `/proc/<pid>/root`), or a new
//! image for one of its containers exposes everything the pod can reach. Each needs, for every
//! claim the pod's containers mount, at least the rights the containers have; and another user's
//! notebook, whose environment carries that user's tokens, is entered only by its user or an
//! administrator.

use std::collections::HashSet;

use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::api::core::v1::Pod;

use super::access::Access;
use super::administrators::is_administrator;
use super::context::Context;
use super::denial::Denial;
use super::guard::{Guard, has_secret_claim};
use super::home_level;
use super::identity::{self, Subject};
use super::pod::{self, ContainerKind};
use crate::keys;

/// Denial for a CONNECT (`pods/exec`, `pods/attach`, `pods/portforward`, `pods/proxy`) into `pod`.
pub fn connect(
    ctx: Context<'_>,
    user_info: &UserInfo,
    pod: &Pod,
    sub_resource: &str,
) -> Option<Denial> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let what = format!("{sub_resource} into pod '{name}'");
    enter(ctx, user_info, pod, &what, &HashSet::new())
}

/// Denial for anything that runs inside a running pod's namespaces: a connection, a debug
/// container (targeted or not: it shares the pod's network, and with `shareProcessNamespace` its
/// processes), or a new image for one of its containers. `what` names it in the message; the
/// containers in `entering` (the debug containers being added, judged by the guard with the
/// requester's own rights) are not counted as what is entered.
pub fn enter(
    ctx: Context<'_>,
    user_info: &UserInfo,
    pod: &Pod,
    what: &str,
    entering: &HashSet<(ContainerKind, usize)>,
) -> Option<Denial> {
    if is_administrator(ctx.policy.settings(), user_info, ctx.webhook_user) {
        return None;
    }
    let identity = match identity::identify(ctx.policy, user_info, pod::annotations(pod), false) {
        Ok(identity) => identity,
        Err(e) => return Some(e.into()),
    };
    let subject = &identity.subject;
    if let Some(reason) = other_users_notebook(pod, subject, what) {
        return Some(reason);
    }
    let spec = pod.spec.as_ref()?;
    let all: HashSet<(ContainerKind, usize)> = (0..spec.containers.len())
        .map(|c| (ContainerKind::Regular, c))
        .chain(
            (0..spec.init_containers.as_ref().map_or(0, Vec::len))
                .map(|c| (ContainerKind::Init, c)),
        )
        .chain(
            (0..spec.ephemeral_containers.as_ref().map_or(0, Vec::len))
                .map(|c| (ContainerKind::Ephemeral, c)),
        )
        .filter(|c| !entering.contains(c))
        .collect();
    let secret_in_pod = has_secret_claim(ctx.policy, ctx.namespace, ctx.claims, pod);
    exceeds(ctx, pod, &all, subject, secret_in_pod, what)
}

/// Another user's notebook (the webhook wrote its user) may be entered only by that user.
fn other_users_notebook(pod: &Pod, subject: &Subject, what: &str) -> Option<Denial> {
    let owner = pod::annotation(pod, keys::USER_ANNOTATION)?;
    if subject.user.as_deref() == Some(owner) {
        return None;
    }
    Some(Denial::OthersNotebook {
        what: what.into(),
        owner: owner.into(),
        requester: subject.user.clone(),
    })
}

/// Denial when a claim mounted by `containers` gives more than the subject may have.
fn exceeds(
    ctx: Context<'_>,
    pod: &Pod,
    containers: &HashSet<(ContainerKind, usize)>,
    subject: &Subject,
    secret_in_pod: bool,
    what: &str,
) -> Option<Denial> {
    let mounts: Vec<_> = pod::all_mounts(pod)
        .into_iter()
        .filter(|(kind, c, ..)| containers.contains(&(*kind, *c)))
        .collect();
    let devices: Vec<_> = pod::all_devices(pod)
        .into_iter()
        .filter(|(kind, c, _)| containers.contains(&(*kind, *c)))
        .collect();
    let used: HashSet<&str> = mounts
        .iter()
        .map(|(_, _, _, m)| m.name.as_str())
        .chain(devices.iter().map(|(_, _, name)| *name))
        .collect();
    let secret_pod = home_level::asks_for_secret(ctx, subject, pod);
    let home = home_level::choose(ctx, subject.user.as_deref(), secret_pod);
    let guard = Guard::new(
        ctx,
        subject,
        home.as_ref().map(|h| h.own()).unwrap_or_default(),
    );
    let volumes = match guard.scan(pod, Some(&used)) {
        Ok(v) => v,
        Err(reason) => {
            return Some(Denial::Entering {
                what: what.into(),
                reason: Box::new(reason),
            });
        }
    };
    let writable: HashSet<&str> = mounts
        .iter()
        .filter(|(_, _, _, m)| m.read_only != Some(true))
        .map(|(_, _, _, m)| m.name.as_str())
        .chain(devices.iter().map(|(_, _, name)| *name))
        .collect();
    for v in &volumes {
        let writable_mount = writable.contains(v.name.as_str());
        let needed = if writable_mount && !v.read_only {
            Access::Rw
        } else {
            Access::Ro
        };
        let access = v.access(subject, secret_in_pod);
        if access < needed {
            return Some(Denial::ExceedsRights {
                what: what.into(),
                claim: v.claim.clone(),
                volume: v.name.clone(),
                needed,
                access,
            });
        }
    }
    None
}
