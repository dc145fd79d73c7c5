//! Whose notebook is this (docs/design.md, "Identity")? Spawners create pods for users, so the requester is trusted to name
//! the user only when the policy lists it as a trusted spawner.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::authentication::v1::UserInfo;
use sha2::{Digest, Sha256};

use crate::policy::PolicySnapshot;

/// The principal whose rights apply; `user: None` is the anonymous principal (public shares only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub user: Option<String>,
    pub groups: BTreeSet<String>,
}

/// How the user was decided, for logs and audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    /// A trusted spawner named the user in this annotation.
    Annotation(String),
    /// The requester itself is the user.
    Requester,
    /// A trusted controller created the pod from an object the webhook stamped for the user.
    Stamp,
    /// A trusted spawner created a pod naming no user, or a trusted controller one without a
    /// valid stamp.
    Anonymous,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: Subject,
    pub source: IdentitySource,
    /// Groups a trusted spawner passed in the groups annotation (already in `subject.groups`).
    pub hub_groups: BTreeSet<String>,
    /// The groups annotation key, when the pod carries one that is not believed (its creator is
    /// not a trusted spawner naming a user): the pod gets no group from it.
    pub ignored_groups: Option<String>,
}

impl Identity {
    pub fn new(subject: Subject, source: IdentitySource) -> Identity {
        Identity {
            subject,
            source,
            hub_groups: BTreeSet::new(),
            ignored_groups: None,
        }
    }
}

/// Most groups read from the groups annotation; more and the annotation is ignored.
pub const MAX_HUB_GROUPS: usize = 256;
/// Longest groups annotation value read (bytes).
pub const MAX_HUB_GROUPS_BYTES: usize = 16 * 1024;

/// The groups in a groups annotation value: comma-separated, blanks dropped; `None` when the value
/// exceeds the caps (the annotation is then not believed at all).
pub fn parse_hub_groups(value: &str) -> Option<BTreeSet<String>> {
    if value.len() > MAX_HUB_GROUPS_BYTES {
        return None;
    }
    let groups: BTreeSet<String> = value
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect();
    (groups.len() <= MAX_HUB_GROUPS).then_some(groups)
}

/// The groups annotation's value on a pod, when the Settings name a key and the pod carries it.
fn groups_annotation<'a>(
    policy: &'a PolicySnapshot,
    annotations: Option<&'a BTreeMap<String, String>>,
) -> Option<(&'a String, &'a String)> {
    let key = policy.settings().groups_annotation.as_ref()?;
    annotations?.get(key).map(|v| (key, v))
}

/// A pod that claims a user its creator may not speak for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "pod claims user '{claimed}' but was created by '{requester}'; only trusted spawners may create notebooks for other users (if '{requester}' is the notebook spawner, list it under trustedSpawners in the Settings policy document)"
)]
pub struct ImpersonationDenied {
    pub claimed: String,
    pub requester: String,
}

/// Applies the identity rule. With `strict`, a username annotation naming someone other than an
/// untrusted requester is denied; without it (a debug container added to an existing pod) the
/// requester's own rights simply apply.
pub fn identify(
    policy: &PolicySnapshot,
    user_info: &UserInfo,
    annotations: Option<&BTreeMap<String, String>>,
    strict: bool,
) -> Result<Identity, ImpersonationDenied> {
    let requester = user_info.username.clone().unwrap_or_default();
    let settings = policy.settings();
    let named = settings.username_annotations.iter().find_map(|key| {
        // An empty value names nobody.
        let value = annotations?.get(key).filter(|v| !v.trim().is_empty())?;
        Some((key, value))
    });
    let policy_groups = |user: &str| policy.groups_of(user);
    let hub = groups_annotation(policy, annotations);
    if settings.trusted_spawners.contains(&requester) {
        return Ok(match named {
            Some((key, user)) => {
                let mut groups = policy_groups(user);
                let hub_groups = hub
                    .and_then(|(_, value)| parse_hub_groups(value))
                    .unwrap_or_default();
                groups.extend(hub_groups.iter().cloned());
                let mut identity = Identity::new(
                    Subject {
                        user: Some(user.clone()),
                        groups,
                    },
                    IdentitySource::Annotation(key.clone()),
                );
                identity.hub_groups = hub_groups;
                // Over the caps: believed for nothing, and said so.
                if hub.is_some_and(|(_, value)| parse_hub_groups(value).is_none()) {
                    identity.ignored_groups = hub.map(|(key, _)| key.clone());
                }
                identity
            }
            None => {
                let mut identity = Identity::new(Subject::default(), IdentitySource::Anonymous);
                identity.ignored_groups = hub.map(|(key, _)| key.clone());
                identity
            }
        });
    }
    if let Some((_, claimed)) = named
        && strict
        && *claimed != requester
    {
        return Err(ImpersonationDenied {
            claimed: claimed.clone(),
            requester,
        });
    }
    let mut groups = policy_groups(&requester);
    groups.extend(user_info.groups.iter().flatten().cloned());
    // Anyone may write the groups annotation on their own pod (or StatefulSet, or Notebook): from
    // a creator that is not a trusted spawner it grants nothing.
    let mut identity = Identity::new(
        Subject {
            user: Some(requester),
            groups,
        },
        IdentitySource::Requester,
    );
    identity.ignored_groups = hub.map(|(key, _)| key.clone());
    Ok(identity)
}

/// Longest slug kept without a hash suffix.
const SLUG_MAX: usize = 40;
/// Hex digits of the SHA-256 of the raw name in a hashed slug (64 bits).
const HASH_HEX: usize = 16;
/// Separates the readable part of a hashed slug from its hash. Kept names never contain it, so a
/// hashed slug can never equal a kept name.
const HASH_SEPARATOR: &str = "--";

/// DNS-1123 slug of a username for `{user}` in claim templates. A name that is already a short
/// DNS-1123 label without `--` is kept as it is; any other name becomes its lowercased readable
/// part, `--`, and 16 hex digits of the SHA-256 of the raw name. Kept names never contain `--` and
/// every hashed slug does, so two distinct usernames never share a claim name (short of a 64-bit
/// hash collision between two hashed names).
pub fn slug(user: &str) -> String {
    if is_kept(user) {
        return user.to_string();
    }
    let mut readable = String::with_capacity(SLUG_MAX);
    for c in user.chars() {
        if readable.len() >= SLUG_MAX {
            break;
        }
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            readable.push(c);
        } else if !readable.is_empty() && !readable.ends_with('-') {
            readable.push('-');
        }
    }
    let readable = readable.trim_end_matches('-');
    let digest = Sha256::digest(user.as_bytes());
    let mut out = String::with_capacity(readable.len() + HASH_SEPARATOR.len() + HASH_HEX + 1);
    // A slug must start with an alphanumeric character: names without one get a fixed `u`.
    out.push_str(if readable.is_empty() { "u" } else { readable });
    out.push_str(HASH_SEPARATOR);
    for b in digest.iter().take(HASH_HEX / 2) {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Names used as they are: lowercase alphanumerics and single dashes inside, at most `SLUG_MAX`.
fn is_kept(user: &str) -> bool {
    let bytes = user.as_bytes();
    !user.is_empty()
        && user.len() <= SLUG_MAX
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
        && !user.contains(HASH_SEPARATOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_keeps_simple_names() {
        assert_eq!(slug("alice"), "alice");
        assert_eq!(slug("bob-2"), "bob-2");
    }

    #[test]
    fn slug_of_changed_names_carries_a_hash_so_case_variants_differ() {
        let upper = slug("Alice");
        assert!(upper.starts_with("alice--"), "{upper}");
        assert_eq!(upper.len(), "alice--".len() + 16);
        assert_ne!(upper, slug("alice"));
        assert_ne!(slug("a.b@x.org"), slug("a-b@x.org"));
        assert!(slug("a.b@x.org").starts_with("a-b-x-org--"));
    }

    #[test]
    fn a_username_that_looks_like_a_hashed_slug_is_hashed_itself() {
        let hashed = slug("Alice");
        assert_ne!(slug(&hashed), hashed, "kept names never contain --");
        assert!(slug("alice--0123456789abcdef").contains("--"));
    }

    #[test]
    fn slug_of_long_names_is_truncated_and_hashed() {
        let long = "a".repeat(60);
        let s = slug(&long);
        assert_eq!(s.len(), 40 + 2 + 16);
        assert_ne!(slug(&"a".repeat(61)), s);
        assert_eq!(slug(&"a".repeat(40)), "a".repeat(40));
    }

    #[test]
    fn slug_of_symbol_only_names_starts_with_a_letter() {
        let s = slug("@@@");
        assert!(s.starts_with("u--"), "{s}");
        assert_eq!(s.len(), 3 + 16);
        assert_ne!(slug("-"), slug("--"));
    }
}
