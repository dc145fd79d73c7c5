//! The validated policy: what the admission decision reads. Built only by `compile`, so every value
//! here has passed the checks of docs/design.md, "Policy".

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::origin::Origin;
use super::selector::LabelSelector;

/// Sensitivity of a share (docs/design.md, "Access").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Public,
    Private,
    Secret,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Public => "public",
            Level::Private => "private",
            Level::Secret => "secret",
        }
    }
}

/// A namespace as the decision sees it: its name and labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl NamespaceInfo {
    pub fn new(name: impl Into<String>) -> Self {
        NamespaceInfo {
            name: name.into(),
            labels: BTreeMap::new(),
        }
    }
}

/// Which namespaces a document applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Everywhere,
    Namespaces(BTreeSet<String>),
    Selector(LabelSelector),
}

impl Scope {
    pub fn includes(&self, ns: &NamespaceInfo) -> bool {
        match self {
            Scope::Everywhere => true,
            Scope::Namespaces(names) => names.contains(&ns.name),
            Scope::Selector(sel) => sel.matches(&ns.labels),
        }
    }

    /// Whether some namespace could be in both scopes. Namespace labels are unknown offline, so a
    /// selector is assumed to reach any listed namespace.
    pub fn may_overlap(&self, other: &Scope) -> bool {
        match (self, other) {
            (Scope::Everywhere, _) | (_, Scope::Everywhere) => true,
            (Scope::Namespaces(a), Scope::Namespaces(b)) => !a.is_disjoint(b),
            (Scope::Selector(a), Scope::Selector(b)) => a.may_overlap(b),
            _ => true,
        }
    }
}

/// Users and groups named in `readers` or `writers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principals {
    pub users: HashSet<String>,
    pub groups: HashSet<String>,
}

impl Principals {
    pub fn contains(&self, user: Option<&str>, groups: &BTreeSet<String>) -> bool {
        user.is_some_and(|u| self.users.contains(u))
            || (!self.groups.is_empty() && groups.iter().any(|g| self.groups.contains(g)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub name: String,
    pub scope: Scope,
    pub claim_name: String,
    pub mount_path: String,
    pub sub_path: Option<String>,
    pub level: Level,
    pub readers: Principals,
    pub writers: Principals,
    /// Set when notebook-volumes provisions the claim in every enabled namespace in scope.
    pub storage: Option<Storage>,
    pub origin: Origin,
}

/// Where a provisioned share or library claim gets its volume (docs/policies.md, "storage").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// The claim's request and, for a static source, the volume's capacity.
    pub size: String,
    /// `ReadWriteMany` (default) or `ReadOnlyMany`.
    pub access_mode: String,
    pub source: StorageSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageSource {
    /// A StorageClass provisions one volume per claim: per namespace, data is not shared
    /// between namespaces.
    Class(String),
    /// One export, a PersistentVolume per namespace pre-bound to that namespace's claim: every
    /// namespace sees the same files.
    Nfs { server: String, path: String },
    Csi {
        driver: String,
        volume_handle: String,
        volume_attributes: BTreeMap<String, String>,
    },
    /// A directory on the node: single-node and test clusters only.
    HostPath(String),
}

impl StorageSource {
    /// Static sources get a PersistentVolume made by notebook-volumes; a class provisions its own.
    pub fn is_static(&self) -> bool {
        !matches!(self, StorageSource::Class(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    pub scope: Scope,
    pub claim_name_template: String,
    pub mount_path: String,
    pub create: Option<HomeCreate>,
    /// What a notebook with secret data gets as its home (no write-down through the home).
    pub secret_home: SecretHome,
    /// Sizes by group for new home claims, in policy order: the first tier naming one of the
    /// user's groups wins, `create.size` otherwise.
    pub sizes: Vec<SizeTier>,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeTier {
    pub groups: BTreeSet<String>,
    pub size: String,
}

impl Home {
    /// The size a new home claim of a user in `groups` requests: the first tier naming one of
    /// them, `create.size` otherwise; `None` when the Home creates no claims.
    pub fn size_for(&self, groups: &BTreeSet<String>) -> Option<&str> {
        let create = self.create.as_ref()?;
        Some(
            self.sizes
                .iter()
                .find(|t| !t.groups.is_disjoint(groups))
                .map_or(create.size.as_str(), |t| t.size.as_str()),
        )
    }
}

/// The home of a notebook that mounts a secret share. Either way the normal home is never
/// writable there: secret data could otherwise reach a normal notebook through it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SecretHome {
    /// A second claim, the home claim's name with a level suffix, created on the first secret
    /// launch and mountable only by its user's secret notebooks (the default).
    #[default]
    Separate,
    /// The normal home, mounted read-only.
    ReadOnly,
}

impl SecretHome {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretHome::Separate => "separate",
            SecretHome::ReadOnly => "readOnly",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeCreate {
    pub size: String,
    pub storage_class_name: Option<String>,
    pub access_modes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Library {
    pub name: String,
    pub scope: Scope,
    pub claim_name: String,
    pub mount_path: String,
    /// Every variable the notebook containers get, Lmod's first, in a stable order.
    pub env: Vec<(String, String)>,
    pub storage: Option<Storage>,
    pub origin: Origin,
}

/// A Share and a Library each hold one claim in the namespaces their scope reaches, which
/// notebook-volumes may provision: what the provisioning plan reads of either.
pub trait ClaimHolder {
    /// `share` or `library`, as messages and labels name it.
    const KIND: &'static str;
    fn name(&self) -> &str;
    fn scope(&self) -> &Scope;
    fn claim_name(&self) -> &str;
    fn storage(&self) -> Option<&Storage>;
    fn origin(&self) -> &Origin;
}

macro_rules! claim_holder {
    ($($holder:ty => $kind:literal),*) => {$(
        impl ClaimHolder for $holder {
            const KIND: &'static str = $kind;
            fn name(&self) -> &str { &self.name }
            fn scope(&self) -> &Scope { &self.scope }
            fn claim_name(&self) -> &str { &self.claim_name }
            fn storage(&self) -> Option<&Storage> { self.storage.as_ref() }
            fn origin(&self) -> &Origin { &self.origin }
        }
    )*};
}
claim_holder!(Share => "share", Library => "library");

/// The `Settings` document, or its defaults when there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    // Who the user of a pod is, and which groups they have.
    /// In policy order; few enough that a scan beats hashing.
    pub trusted_spawners: Vec<String>,
    /// Controllers whose pods belong to the user in the webhook's stamp on the owning object
    /// (StatefulSet, Notebook) and to nobody else: username annotations are not believed.
    pub trusted_controllers: Vec<String>,
    pub username_annotations: Vec<String>,
    /// Pod annotation in which a trusted spawner passes the user's groups (comma-separated);
    /// `None`: groups come only from `Groups` documents and the requester.
    pub groups_annotation: Option<String>,
    /// Whether OpenShift `Group` objects (`user.openshift.io/v1`) add to users' groups.
    pub openshift_groups: OpenShiftGroupsMode,
    // Which pods get the volumes, and what they get when a claim cannot serve.
    pub notebook_selector: Vec<LabelSelector>,
    /// What a notebook gets when a share's or library's claim is missing or unusable here.
    pub unusable_claims: UnusableClaims,
    // What the guard lets through besides the policy's grants.
    /// Who may create, mark or clone the claims the policy reserves (homes, share and library
    /// claims), besides the webhook itself. Default: the `system:masters` group.
    pub administrators: Principals,
    /// Inline pod volume types allowed beyond the built-in safe ones (`nfs`, `hostPath`, ...).
    pub allowed_volume_types: BTreeSet<String>,
    /// CSI drivers allowed as inline (`csi:`) pod volumes.
    pub allowed_csi_drivers: BTreeSet<String>,
}

/// Whether the members of OpenShift `Group` objects get those groups. Off unless a `Settings`
/// document asks: turning it on widens access (every Group whose name a share names grants), so
/// no install or upgrade does it without a policy edit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OpenShiftGroupsMode {
    #[default]
    Off,
    /// Watch the Groups when the API server serves `groups.user.openshift.io` (checked again
    /// every minute, so a later install is picked up).
    Auto,
}

impl OpenShiftGroupsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            OpenShiftGroupsMode::Off => "off",
            OpenShiftGroupsMode::Auto => "auto",
        }
    }
}

/// A share or library whose claim is missing, not Bound, or lacks a many-node access mode in
/// the pod's namespace would leave the notebook Pending: it is skipped with a warning, or the
/// whole pod is denied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnusableClaims {
    #[default]
    Skip,
    Deny,
}

/// Where JupyterHub passes the user's groups unless a `Settings` document says otherwise.
pub const DEFAULT_GROUPS_ANNOTATION: &str = "hub.jupyter.org/groups";

/// Group whose members are administrators when `Settings.administrators` is not set.
pub const DEFAULT_ADMIN_GROUP: &str = "system:masters";

/// Annotations read for the username when no `Settings` document says otherwise.
pub const DEFAULT_USERNAME_ANNOTATIONS: &[&str] =
    &["hub.jupyter.org/username", "opendatahub.io/username"];

impl Default for Settings {
    /// No trusted spawner (so nobody may create a notebook for someone else); KubeSpawner and
    /// Kubeflow/ODH notebook pods recognised by their usual labels.
    fn default() -> Self {
        let kubespawner = LabelSelector {
            match_labels: [("component".to_string(), "singleuser-server".to_string())].into(),
            ..Default::default()
        };
        let odh = LabelSelector {
            match_expressions: vec![super::selector::Requirement {
                key: "notebook-name".into(),
                operator: super::selector::Operator::Exists,
                values: vec![],
            }],
            ..Default::default()
        };
        Settings {
            trusted_spawners: Vec::new(),
            trusted_controllers: Vec::new(),
            username_annotations: DEFAULT_USERNAME_ANNOTATIONS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            notebook_selector: vec![kubespawner, odh],
            administrators: Principals {
                users: HashSet::new(),
                groups: [DEFAULT_ADMIN_GROUP.to_string()].into(),
            },
            allowed_volume_types: BTreeSet::new(),
            allowed_csi_drivers: BTreeSet::new(),
            groups_annotation: Some(DEFAULT_GROUPS_ANNOTATION.to_string()),
            unusable_claims: UnusableClaims::Skip,
            openshift_groups: OpenShiftGroupsMode::Off,
        }
    }
}
