//! The admission decision (§4–§7): identity, access, guard, injection and the JSON patch. Pure:
//! the server and the `audit` command call the same `review`.

pub mod access;
pub mod administrators;
pub mod claim_review;
pub mod claims;
pub mod exposure;
pub mod guard;
pub mod identity;
pub mod inject;
pub mod patch;
pub mod pod;
pub mod policy_review;
pub mod request;
pub mod reserved;
pub mod review;
pub mod stamp;
pub mod workload;

pub use access::Access;
pub use claim_review::review_claim;
pub use claims::{ClaimInfo, ClaimLookup, NoClaims};
pub use identity::{Identity, Subject, slug};
pub use policy_review::{PolicyVerdict, review_policy, validate_policy_config_map};
pub use review::{Context, Effect, MountRecord, Review, home_claim_name, review};
