//! The policy documents as written (docs/design.md, "Policy"), parsed strictly: unknown fields are errors so that a typo
//! can never silently weaken access control.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::selector::LabelSelector;

/// The kinds a policy document may have.
pub const KINDS: &[&str] = &["Share", "Home", "Library", "Groups", "Settings"];

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShareDoc {
    pub name: String,
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    pub claim_name: String,
    pub mount_path: String,
    #[serde(default)]
    pub sub_path: Option<String>,
    pub level: LevelDoc,
    #[serde(default)]
    pub readers: Option<PrincipalsDoc>,
    #[serde(default)]
    pub writers: Option<PrincipalsDoc>,
    /// Where the claim's volume comes from, when notebook-volumes provisions the claim.
    #[serde(default)]
    pub storage: Option<StorageDoc>,
}

/// `storage` of a Share or Library: a StorageClass (dynamic) or one static volume source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageDoc {
    #[serde(default)]
    pub storage_class_name: Option<String>,
    #[serde(default)]
    pub size: Option<String>,
    #[serde(default)]
    pub access_mode: Option<String>,
    #[serde(default)]
    pub nfs: Option<NfsDoc>,
    #[serde(default)]
    pub csi: Option<CsiDoc>,
    #[serde(default)]
    pub host_path: Option<HostPathDoc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NfsDoc {
    pub server: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CsiDoc {
    pub driver: String,
    pub volume_handle: String,
    #[serde(default)]
    pub volume_attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostPathDoc {
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LevelDoc {
    Public,
    Private,
    Secret,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalsDoc {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HomeDoc {
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    pub claim_name_template: String,
    pub mount_path: String,
    #[serde(default)]
    pub create: Option<HomeCreateDoc>,
    #[serde(default)]
    pub secret_home: Option<SecretHomeDoc>,
    /// Size tiers by group for the claims `create` makes; the first tier naming one of the
    /// user's groups wins, `create.size` otherwise.
    #[serde(default)]
    pub sizes: Vec<SizeTierDoc>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SizeTierDoc {
    pub groups: Vec<String>,
    pub size: String,
}

/// `Home.secretHome`: `separate` (default) or `readOnly`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SecretHomeDoc {
    Separate,
    ReadOnly,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HomeCreateDoc {
    pub size: String,
    #[serde(default)]
    pub storage_class_name: Option<String>,
    #[serde(default)]
    pub access_modes: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LibraryDoc {
    pub name: String,
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    pub claim_name: String,
    pub mount_path: String,
    #[serde(default)]
    pub lmod: Option<LmodDoc>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub storage: Option<StorageDoc>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LmodDoc {
    #[serde(default)]
    pub module_path: Option<Vec<String>>,
    #[serde(default)]
    pub lmod_root: Option<String>,
    #[serde(default)]
    pub default_modules: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupsDoc {
    pub groups: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsDoc {
    #[serde(default)]
    pub trusted_spawners: Vec<String>,
    #[serde(default)]
    pub trusted_controllers: Vec<String>,
    #[serde(default)]
    pub username_annotations: Option<Vec<String>>,
    #[serde(default)]
    pub notebook_selector: Option<Vec<LabelSelector>>,
    #[serde(default)]
    pub administrators: Option<PrincipalsDoc>,
    #[serde(default)]
    pub allowed_volume_types: Vec<String>,
    #[serde(default, rename = "allowedCSIDrivers")]
    pub allowed_csi_drivers: Vec<String>,
    /// `""` turns groups from the spawner off.
    #[serde(default)]
    pub groups_annotation: Option<String>,
    #[serde(default)]
    pub unusable_claims: Option<UnusableClaimsDoc>,
    #[serde(default)]
    pub openshift_groups: Option<OpenShiftGroupsDoc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpenShiftGroupsDoc {
    Auto,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnusableClaimsDoc {
    Skip,
    Deny,
}

/// One parsed document, tagged by its `kind`.
#[derive(Debug, Clone)]
pub enum Document {
    Share(ShareDoc),
    Home(HomeDoc),
    Library(LibraryDoc),
    Groups(GroupsDoc),
    Settings(SettingsDoc),
}
