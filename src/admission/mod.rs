//! The admission decision (see docs/design.md): identity, access, guard, injection and the JSON
//! patch. Pure: the server and the `audit` command call the same `review`.

pub mod access;
pub mod administrators;
pub mod claim_review;
pub mod claims;
pub mod context;
pub mod denial;
pub mod exposure;
pub mod guard;
pub mod home;
pub mod identity;
pub mod inject;
pub mod outcome;
pub mod patch;
pub mod pod;
pub mod policy_review;
pub mod request;
pub mod reserved;
pub mod review;

pub use access::Access;
pub use claim_review::review_claim;
pub use claims::{ClaimInfo, ClaimLookup, NoClaims};
pub use context::Context;
pub use denial::Denial;
pub use identity::{Identity, Subject, slug};
pub use outcome::{Effect, MountRecord, MountSource, Review};
pub use policy_review::{PolicyVerdict, review_policy, validate_policy_config_map};
pub use review::{home_claim_name, review};
