//! The policy documents as written (docs/design.md, "Policy"), parsed strictly: unknown fields are errors so that a typo
//! can never silently weaken access control.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::selector::LabelSelector;

/// The kinds a policy document may have.
pub const KINDS: &[&str] = &["Share", "Home", "Library", "Groups", "Settings"];

/// A Share and a Library are both a claim mounted in the notebooks of the namespaces in scope;
/// this writes their common fields once while keeping `deny_unknown_fields` (which serde's
/// `flatten` would disable).
macro_rules! mounted_claim_doc {
    ($(#[$meta:meta])* $doc:ident { $($(#[$field_meta:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $doc {
            pub name: String,
            pub namespaces: Option<Vec<String>>,
            pub namespace_selector: Option<LabelSelector>,
            pub claim_name: String,
            pub mount_path: String,
            /// Where the claim's volume comes from, when notebook-volumes provisions the claim.
            pub storage: Option<StorageDoc>,
            $($(#[$field_meta])* pub $field: $ty,)*
        }

        impl $doc {
            pub fn mounted_claim(&self) -> MountedClaim<'_> {
                MountedClaim {
                    name: &self.name,
                    namespaces: &self.namespaces,
                    namespace_selector: &self.namespace_selector,
                    claim_name: &self.claim_name,
                    mount_path: &self.mount_path,
                }
            }
        }
    };
}

/// The common fields of a Share and a Library, for the checks they share.
pub struct MountedClaim<'d> {
    pub name: &'d str,
    pub namespaces: &'d Option<Vec<String>>,
    pub namespace_selector: &'d Option<LabelSelector>,
    pub claim_name: &'d str,
    pub mount_path: &'d str,
}

mounted_claim_doc!(ShareDoc {
    sub_path: Option<String>,
    level: LevelDoc,
    readers: Option<PrincipalsDoc>,
    writers: Option<PrincipalsDoc>,
});

/// `storage` of a Share or Library: a StorageClass (dynamic) or one static volume source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageDoc {
    pub storage_class_name: Option<String>,
    pub size: Option<String>,
    pub access_mode: Option<String>,
    pub nfs: Option<NfsDoc>,
    pub csi: Option<CsiDoc>,
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

/// Either list may be left out.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrincipalsDoc {
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HomeDoc {
    pub namespaces: Option<Vec<String>>,
    pub namespace_selector: Option<LabelSelector>,
    pub claim_name_template: String,
    pub mount_path: String,
    pub create: Option<HomeCreateDoc>,
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
    pub storage_class_name: Option<String>,
    pub access_modes: Option<Vec<String>>,
}

mounted_claim_doc!(LibraryDoc {
    lmod: Option<LmodDoc>,
    #[serde(default)]
    env: BTreeMap<String, String>,
});

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LmodDoc {
    pub module_path: Option<Vec<String>>,
    pub lmod_root: Option<String>,
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
    pub username_annotations: Option<Vec<String>>,
    pub notebook_selector: Option<Vec<LabelSelector>>,
    pub administrators: Option<PrincipalsDoc>,
    #[serde(default)]
    pub allowed_volume_types: Vec<String>,
    #[serde(default, rename = "allowedCSIDrivers")]
    pub allowed_csi_drivers: Vec<String>,
    /// `""` turns groups from the spawner off.
    pub groups_annotation: Option<String>,
    pub unusable_claims: Option<UnusableClaimsDoc>,
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
