//! Policy documents (docs/design.md, "Policy"): parsing, validation and the compiled, indexed snapshot. Pure: text in,
//! snapshot out; reading files or ConfigMaps happens at the edges.

pub(crate) mod bounds;
pub(crate) mod check;
pub(crate) mod config_map;
pub(crate) mod cross_check;
pub(crate) mod document;
pub(crate) mod home_template;
pub(crate) mod in_force;
pub(crate) mod model;
pub mod openshift_groups;
pub(crate) mod origin;
pub(crate) mod parse;
pub(crate) mod protection;
pub mod provision;
pub(crate) mod quantity;
pub(crate) mod queries;
pub mod rules;
pub(crate) mod selector;
pub(crate) mod share_index;
pub(crate) mod snapshot;
pub(crate) mod storage;
pub(crate) mod yaml;

pub use config_map::{
    DEFAULT_POLICY_NAMESPACE, is_policy_config_map, unit_from_config_map, units_from_text,
};
pub use model::{
    DEFAULT_GROUPS_ANNOTATION, Home, HomeCreate, Level, Library, NamespaceInfo,
    OpenShiftGroupsMode, Principals, Scope, SecretHome, Settings, Share, SizeTier, Storage,
    StorageSource, UnusableClaims,
};
pub use origin::{Finding, Origin, Severity};
pub use parse::Source;
pub use protection::Protection;
pub use snapshot::{PolicySnapshot, Unit, UnitReport};
