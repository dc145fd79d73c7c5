//! The admission decision (see docs/design.md): identity, access, guard, injection and the JSON
//! patch. Pure: the server and the `audit` command call the same `review`.

pub mod access;
pub mod adoption;

pub(crate) mod administrators;
pub mod claim_ready;
pub(crate) mod claim_review;
pub(crate) mod claims;
pub(crate) mod context;
pub(crate) mod denial;
pub mod exposure;
pub mod grant;
pub(crate) mod guard;
pub(crate) mod home;
pub(crate) mod home_level;
pub(crate) mod identity;
pub(crate) mod inject;
pub(crate) mod namespace_scope;
pub mod notices;
pub(crate) mod object_name;
pub(crate) mod outcome;
pub(crate) mod patch;
pub(crate) mod pod;
pub(crate) mod policy_review;
pub mod request;
pub(crate) mod reserved;
pub(crate) mod review;
pub mod revocation;
pub mod stamp;
pub(crate) mod storage_reach;
pub mod triage;
pub mod workload;

pub use access::Access;
pub use claim_review::review_claim;
pub use claims::{ClaimColumns, ClaimInfo, ClaimLookup, ListedClaims, NoClaims};
pub use context::Context;
pub use denial::Denial;
pub use identity::{Identity, Subject, slug};
pub use outcome::{Effect, MountRecord, MountSource, Review};
pub use policy_review::{PolicyVerdict, review_policy, validate_policy_config_map};
pub use review::{HomeClaim, expected_home, review};
