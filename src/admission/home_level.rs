//! Homes per sensitivity level (`Home.secretHome`). A notebook with secret data must not be able
//! to write into anything a normal notebook of the same user can read, the home included: it gets
//! the secret-level home (`separate`, the home claim's name with a level suffix) or the normal
//! home read-only (`readOnly`). The secret-level home is mountable only by its user's notebooks
//! that ask for a secret share they are entitled to.

use k8s_openapi::api::core::v1::Pod;

use super::access::{Access, share_access};
use super::context::Context;
use super::guard::OwnHomes;
use super::home::home_claim;
use super::identity::Subject;
use super::pod;
use crate::policy::home_template::secret_claim;
use crate::policy::{Home, Level, SecretHome};

/// Which home a pod gets, and the user's claims the guard must recognise.
#[derive(Debug, Clone)]
pub struct HomeChoice<'p> {
    pub home: &'p Home,
    /// The claim mounted as this pod's home.
    pub claim: String,
    /// The user's normal home claim.
    pub normal: String,
    /// The user's secret-level home claim (existing or not).
    pub secret: String,
    /// The pod asks for secret data the user is entitled to.
    pub secret_pod: bool,
    /// The home is mounted read-only (`readOnly` in a secret pod).
    pub read_only: bool,
}

impl HomeChoice<'_> {
    /// Whether the chosen claim is the secret-level home.
    pub fn is_secret_level(&self) -> bool {
        self.claim == self.secret
    }

    /// What the guard needs to tell the user's own homes from other claims.
    pub fn own(&self) -> OwnHomes<'_> {
        OwnHomes {
            normal: Some(&self.normal),
            secret: Some(&self.secret),
            secret_pod: self.secret_pod,
        }
    }
}

/// The home of `user` in the context's namespace for a pod that is (`secret_pod`) or is not a
/// secret notebook; `None` without a Home document or a user.
pub fn choose<'p>(
    ctx: Context<'p>,
    user: Option<&str>,
    secret_pod: bool,
) -> Option<HomeChoice<'p>> {
    let home = ctx.policy.home_for(ctx.namespace)?;
    let normal = home_claim(home, user?);
    let secret = secret_claim(&normal);
    let (claim, read_only) = match (secret_pod, home.secret_home) {
        (false, _) => (normal.clone(), false),
        (true, SecretHome::Separate) => (secret.clone(), false),
        (true, SecretHome::ReadOnly) => (normal.clone(), true),
    };
    Some(HomeChoice {
        home,
        claim,
        normal,
        secret,
        secret_pod,
        read_only,
    })
}

/// Whether the pod mounts the claim of a secret share, or asks (by annotation) for a secret share
/// in scope that `subject` may read. Only such a pod may have the secret-level home.
pub fn asks_for_secret(ctx: Context<'_>, subject: &Subject, pod: &Pod) -> bool {
    if super::guard::has_secret_share_claim(ctx.policy, ctx.namespace, pod) {
        return true;
    }
    // Too many names is refused later; it asks for nothing here.
    let Ok(requested) = pod::requested_secret_shares(pod) else {
        return false;
    };
    ctx.policy
        .shares_in_scope(ctx.namespace)
        .into_iter()
        .any(|s| {
            s.level == Level::Secret
                && requested.contains(&s.name)
                && share_access(s, subject) != Access::None
        })
}
