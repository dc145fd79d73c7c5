//! Why a pod, a debug container, an image change or a connection is refused. One variant per
//! rule, so tests and metrics tell denials apart by kind; the text is what the requester reads.

use super::access::Access;
use super::identity::ImpersonationDenied;
use crate::keys;
use crate::policy::Level;

/// `user 'alice'`, or `fallback` for the anonymous principal.
fn who(user: &Option<String>, fallback: &str) -> String {
    user.as_deref()
        .map_or(fallback.to_string(), |u| format!("user '{u}'"))
}

fn pod_who(user: &Option<String>) -> String {
    who(user, "an anonymous pod")
}

fn requester_who(user: &Option<String>) -> String {
    who(user, "an anonymous requester")
}

fn read_write(access: &Access) -> &'static str {
    if *access == Access::Rw {
        "read-write"
    } else {
        "read-only"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// A share's or library's claim cannot be mounted here and the Settings deny such pods.
    #[error("{message} (the Settings policy document sets unusableClaims: deny)")]
    UnusableClaim { message: String },

    #[error(
        "volume '{volume}' has a type this webhook cannot check; only volume types it knows are admitted in namespaces it guards"
    )]
    UnknownVolumeType { volume: String },

    #[error(
        "volume '{volume}' uses claim '{claim}', which a share or library in {unit} names; that policy failed validation, so the claim is protected until it is fixed"
    )]
    ProtectedClaim {
        volume: String,
        claim: String,
        unit: String,
    },

    #[error(
        "volume '{volume}' uses claim '{claim}', a home claim name under a Home template of {unit}; that policy failed validation, so home claims under it are protected until it is fixed"
    )]
    ProtectedHome {
        volume: String,
        claim: String,
        unit: String,
    },

    #[error(
        "volume '{volume}' uses claim '{claim}' of {} share '{share}', which {} may not access",
        level.as_str(),
        pod_who(user)
    )]
    ShareAccess {
        volume: String,
        claim: String,
        level: Level,
        share: String,
        user: Option<String>,
    },

    /// Another user's home (by the namespace's template or by its marks).
    #[error(
        "volume '{volume}' uses claim '{claim}', {reserved}; {} may only mount their own home",
        pod_who(user)
    )]
    OthersHome {
        volume: String,
        claim: String,
        reserved: String,
        user: Option<String>,
    },

    /// The user's own secret-level home in a pod without secret data (write-down).
    #[error(
        "volume '{volume}' uses claim '{claim}', the secret-level home of {}; only a notebook that mounts a secret share its user may read can mount it, so secret data never reaches a normal notebook: ask for the secret share (notebook-volumes.io/secret-shares), or mount the normal home",
        pod_who(user)
    )]
    SecretHomeOutsideSecret {
        volume: String,
        claim: String,
        user: Option<String>,
    },

    /// A share's, a library's or a protected claim, not mountable here.
    #[error(
        "volume '{volume}' uses claim '{claim}', {reserved}; {} may not mount it",
        pod_who(user)
    )]
    ReservedClaim {
        volume: String,
        claim: String,
        reserved: String,
        user: Option<String>,
    },

    #[error(
        "ephemeral volume '{volume}' marks its claim as a home ({} / {}); only notebook-volumes marks home claims",
        keys::HOME_LABEL,
        keys::OWNER_ANNOTATION
    )]
    EphemeralHomeMarks { volume: String },

    #[error(
        "ephemeral volume '{volume}' binds a chosen PersistentVolume (volumeName); static binding is an administrator's action"
    )]
    EphemeralBinding { volume: String },

    #[error(
        "ephemeral volume '{volume}' fills its claim from namespace '{namespace}'; cross-namespace data sources are not admitted"
    )]
    EphemeralCrossNamespace { volume: String, namespace: String },

    #[error(
        "ephemeral volume '{volume}' clones claim '{source_claim}', {reserved}; cloning it would copy its data outside the policy"
    )]
    EphemeralClone {
        volume: String,
        source_claim: String,
        reserved: String,
    },

    #[error("ephemeral volume '{volume}' would create claim '{claim}', which is {reserved}")]
    EphemeralReservedName {
        volume: String,
        claim: String,
        reserved: String,
    },

    #[error(
        "volume '{volume}' is an inline CSI volume of driver '{driver}', which could reach a share's storage without its claim; use a PersistentVolumeClaim, or ask an administrator to list the driver under allowedCSIDrivers in the Settings policy document"
    )]
    InlineCsi { volume: String, driver: String },

    #[error(
        "volume '{volume}' is an inline '{kind}' volume, which could reach a share's storage without its claim; use a PersistentVolumeClaim, or ask an administrator to list '{kind}' under allowedVolumeTypes in the Settings policy document"
    )]
    InlineVolume { volume: String, kind: String },

    #[error(
        "volume '{volume}' is an inline '{kind}' volume on the storage notebook-volumes provisions for {owner}; that data is reached only through its claim, with the rights the policy gives: mount the claim '{claim}' instead (notebooks get it injected when entitled)"
    )]
    InlineProvisioned {
        volume: String,
        kind: String,
        owner: String,
        claim: String,
    },

    #[error(
        "home claim '{claim}' in namespace '{namespace}' belongs to user '{owner}', not '{user}'; check the Home claimNameTemplate or the claim's {} annotation",
        keys::OWNER_ANNOTATION
    )]
    HomeOwnedByOther {
        claim: String,
        namespace: String,
        owner: String,
        user: String,
    },

    #[error(
        "claim '{claim}' in namespace '{namespace}' has the name of the home of '{user}' but was not created by notebook-volumes; an administrator must check its contents and then mark it (label {}=true, annotation {}={user}), or delete it",
        keys::HOME_LABEL,
        keys::OWNER_ANNOTATION
    )]
    HomeNotMarked {
        claim: String,
        namespace: String,
        user: String,
    },

    #[error(
        "volume '{volume}' (claim '{claim}') is used as a raw block device (volumeDevices), which cannot be made read-only, and the access here is '{access}'"
    )]
    RawDevice {
        volume: String,
        claim: String,
        access: Access,
    },

    #[error(
        "home claim '{claim}' of user '{user}' is {reserved}; a share's or library's claim is never anyone's home (fix the Home claimNameTemplate)"
    )]
    HomeIsReserved {
        claim: String,
        user: String,
        reserved: String,
    },

    #[error(
        "the pod asks for more than {max} secret shares ({}); ask only for the ones this notebook needs",
        keys::SECRET_SHARES_ANNOTATION
    )]
    TooManySecretShares { max: usize },

    #[error(
        "secret share '{share}' was requested ({}) but is not available to user '{user}' in namespace '{namespace}'",
        keys::SECRET_SHARES_ANNOTATION
    )]
    SecretShareUnavailable {
        share: String,
        user: String,
        namespace: String,
    },

    #[error("the pod has {count} containers; at most {max} are admitted here")]
    TooManyContainers { count: usize, max: usize },

    #[error("the pod has {count} volumes; at most {max} are admitted here")]
    TooManyVolumes { count: usize, max: usize },

    #[error("container name '{name}' is used twice; container names must be unique in a pod")]
    DuplicateContainer { name: String },

    #[error(transparent)]
    Impersonation(#[from] ImpersonationDenied),

    #[error(
        "the pod annotation {key} records what notebook-volumes decided when the pod was created; only administrators may change it"
    )]
    DecisionAnnotation { key: &'static str },

    /// Entering another user's notebook (exec, debug, new image).
    #[error(
        "{what}: the pod is the notebook of user '{owner}', and {} is neither that user nor an administrator (Settings.administrators); its processes carry that user's files and tokens",
        requester_who(requester)
    )]
    OthersNotebook {
        what: String,
        owner: String,
        requester: Option<String>,
    },

    /// Entering a pod that mounts a claim the requester may not have.
    #[error(
        "{what}: the container has claim '{claim}' (volume '{volume}') {}, but the requester's access is '{access}'",
        read_write(needed)
    )]
    ExceedsRights {
        what: String,
        claim: String,
        volume: String,
        needed: Access,
        access: Access,
    },

    /// A guard denial of one of the volumes of a pod being entered.
    #[error("{what}: {reason}")]
    Entering { what: String, reason: Box<Denial> },

    /// A request for a namespace the webhook does not itself see as enabled.
    #[error("{0}")]
    OutOfScope(String),

    /// A cluster call or the answer itself failed: the message says what to do.
    #[error("{0}")]
    Unavailable(String),
}

impl Denial {
    /// The rule that refused, as a metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Denial::UnknownVolumeType { .. } => "unknown_volume_type",
            Denial::UnusableClaim { .. } => "unusable_claim",
            Denial::ProtectedClaim { .. } | Denial::ProtectedHome { .. } => "protected_claim",
            Denial::ShareAccess { .. } => "share_access",
            Denial::OthersHome { .. } => "others_home",
            Denial::SecretHomeOutsideSecret { .. } => "secret_home",
            Denial::ReservedClaim { .. } => "reserved_claim",
            Denial::EphemeralHomeMarks { .. }
            | Denial::EphemeralBinding { .. }
            | Denial::EphemeralCrossNamespace { .. }
            | Denial::EphemeralClone { .. }
            | Denial::EphemeralReservedName { .. } => "ephemeral_volume",
            Denial::InlineCsi { .. }
            | Denial::InlineVolume { .. }
            | Denial::InlineProvisioned { .. } => "inline_volume",
            Denial::HomeOwnedByOther { .. } | Denial::HomeNotMarked { .. } => "home_claim",
            Denial::RawDevice { .. } => "raw_device",
            Denial::HomeIsReserved { .. } => "home_template",
            Denial::TooManySecretShares { .. } | Denial::SecretShareUnavailable { .. } => {
                "secret_share"
            }
            Denial::TooManyContainers { .. }
            | Denial::TooManyVolumes { .. }
            | Denial::DuplicateContainer { .. } => "pod_shape",
            Denial::Impersonation(_) => "impersonation",
            Denial::DecisionAnnotation { .. } => "decision_annotation",
            Denial::OthersNotebook { .. } => "others_notebook",
            Denial::ExceedsRights { .. } => "exceeds_rights",
            Denial::Entering { reason, .. } => reason.reason(),
            Denial::OutOfScope(_) => "out_of_scope",
            Denial::Unavailable(_) => "unavailable",
        }
    }

    /// The denial itself, through the wrapper naming what was being entered.
    pub fn root(&self) -> &Denial {
        match self {
            Denial::Entering { reason, .. } => reason.root(),
            other => other,
        }
    }
}
