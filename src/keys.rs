//! Names and keys (docs/design.md, "Keys"): one place, so the server, the CLI and the docs agree.

/// Prefix of every label and annotation the webhook reads or writes.
pub const PREFIX: &str = "notebook-volumes.io/";

/// Namespace label that opts a namespace in (`=enabled`).
pub const INJECT_LABEL: &str = "notebook-volumes.io/inject";
pub const INJECT_ENABLED: &str = "enabled";
/// ConfigMap label (`=true`) that marks policy ConfigMaps in the policy namespace.
pub const POLICY_LABEL: &str = "notebook-volumes.io/policy";
/// Pod annotation: `"false"` skips injection (the guard still applies).
pub const INJECT_ANNOTATION: &str = "notebook-volumes.io/inject";
/// Pod annotation: comma-separated secret shares this notebook asks for.
pub const SECRET_SHARES_ANNOTATION: &str = "notebook-volumes.io/secret-shares";

/// Prefix of the keys that must survive the Kubeflow / Open Data Hub notebook controller, which
/// copies a Notebook's annotations to its pods except keys containing `notebook` or `kubectl`
/// (so [`PREFIX`] never arrives).
pub const RELAYED_PREFIX: &str = "nb-volumes.io/";
/// [`INJECT_ANNOTATION`] under a key the notebook controller copies.
pub const RELAYED_INJECT_ANNOTATION: &str = "nb-volumes.io/inject";
/// [`SECRET_SHARES_ANNOTATION`] under a key the notebook controller copies.
pub const RELAYED_SECRET_SHARES_ANNOTATION: &str = "nb-volumes.io/secret-shares";
/// Written by the webhook on StatefulSet pod templates and Notebooks: `<user>:<MAC>`, the
/// identity it decided for whoever last changed the object, bound to its namespace and name.
pub const STAMP_ANNOTATION: &str = "nb-volumes.io/stamp";
/// Pod annotation written by the webhook: the identity it decided on.
pub const USER_ANNOTATION: &str = "notebook-volumes.io/user";
/// Pod annotation written by the webhook: compact summary of the mounts.
pub const MOUNTS_ANNOTATION: &str = "notebook-volumes.io/mounts";
/// Pod annotation written by the webhook: the groups a trusted spawner passed for the user
/// (comma-separated), which the decision added to the user's groups.
pub const GROUPS_ANNOTATION: &str = "notebook-volumes.io/groups";
/// PVC annotation written by the webhook: raw username owning a home claim.
pub const OWNER_ANNOTATION: &str = "notebook-volumes.io/owner";
/// PVC label (`=true`) written by the webhook on home claims.
pub const HOME_LABEL: &str = "notebook-volumes.io/home";
/// PVC label written by the webhook on a secret-level home claim (`=secret`): only its user's
/// notebooks with secret data may mount it.
pub const HOME_LEVEL_LABEL: &str = "notebook-volumes.io/home-level";
pub const HOME_LEVEL_SECRET: &str = "secret";

/// PVC annotation written by the webhook: when a notebook last mounted the home (RFC 3339, UTC;
/// at most once a day).
pub const LAST_USED_ANNOTATION: &str = "notebook-volumes.io/last-used";

/// PVC annotation written by the webhook: why a home claim was not grown to the size its policy
/// gives (`<size>: <reason>`); removed when it is grown.
pub const GROWTH_REFUSED_ANNOTATION: &str = "notebook-volumes.io/growth-refused";

/// Label on the share and library claims and PersistentVolumes the reconciler provisions
/// (`=notebook-volumes`). Only notebook-volumes and administrators may set it (claim guard).
pub const MANAGED_BY_LABEL: &str = "notebook-volumes.io/managed-by";
pub const MANAGED_BY: &str = "notebook-volumes";
/// Label naming the share (or library) a provisioned claim or volume is for.
pub const SHARE_LABEL: &str = "notebook-volumes.io/share";
pub const LIBRARY_LABEL: &str = "notebook-volumes.io/library";

/// Pod label naming the notebook container (Kubeflow / Open Data Hub notebooks).
pub const NOTEBOOK_NAME_LABEL: &str = "notebook-name";
/// Container name that is always a notebook container.
pub const NOTEBOOK_CONTAINER: &str = "notebook";

/// Volume names the webhook adds.
pub const HOME_VOLUME: &str = "nv-home";
pub const SHARE_VOLUME_PREFIX: &str = "nv-share-";
pub const LIBRARY_VOLUME_PREFIX: &str = "nv-lib-";

/// Audit annotation keys (the API server prefixes them with the webhook name).
pub const AUDIT_USER: &str = "user";
pub const AUDIT_MOUNTS: &str = "mounts";
pub const AUDIT_REASON: &str = "reason";
pub const AUDIT_HUB_GROUPS: &str = "hub-groups";

pub fn share_volume(share: &str) -> String {
    format!("{SHARE_VOLUME_PREFIX}{share}")
}

pub fn library_volume(library: &str) -> String {
    format!("{LIBRARY_VOLUME_PREFIX}{library}")
}
