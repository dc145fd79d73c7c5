//! Policy documents (§3): parsing, validation and the compiled, indexed snapshot. Pure: text in,
//! snapshot out; reading files or ConfigMaps happens at the edges.

pub mod bounds;
pub mod check;
pub mod config_map;
pub mod document;
pub mod home_template;
pub mod model;
pub mod origin;
pub mod parse;
pub mod protection;
pub mod rules;
pub mod selector;
pub mod share_index;
pub mod snapshot;
pub mod yaml;

pub use config_map::{
    DEFAULT_POLICY_NAMESPACE, is_policy_config_map, unit_from_config_map, units_from_text,
};
pub use model::{
    Home, HomeCreate, Level, Library, NamespaceInfo, Principals, Scope, Settings, Share,
};
pub use origin::{Finding, Origin, Severity};
pub use parse::Source;
pub use protection::Protection;
pub use snapshot::{PolicySnapshot, Unit, UnitReport};
