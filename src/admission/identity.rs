//! §5: whose notebook is this? Spawners create pods for users, so the requester is trusted to name
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
    /// A trusted spawner created a pod naming no user.
    Anonymous,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: Subject,
    pub source: IdentitySource,
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

/// Applies the rule of §5. With `strict`, a username annotation naming someone other than an
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
    let policy_groups = |user: &str| policy.groups_of(user).cloned().unwrap_or_default();
    if settings.trusted_spawners.contains(&requester) {
        return Ok(match named {
            Some((key, user)) => Identity {
                subject: Subject {
                    user: Some(user.clone()),
                    groups: policy_groups(user),
                },
                source: IdentitySource::Annotation(key.clone()),
            },
            None => Identity {
                subject: Subject::default(),
                source: IdentitySource::Anonymous,
            },
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
    Ok(Identity {
        subject: Subject {
            user: Some(requester),
            groups,
        },
        source: IdentitySource::Requester,
    })
}

/// Longest slug kept without a hash suffix.
const SLUG_MAX: usize = 40;

/// DNS-1123 slug of a username for `{user}` in claim templates. Lowercased, other characters
/// collapsed to `-`, trimmed; when that changed the name or it is long, the first 8 hex digits of
/// the SHA-256 of the raw name are appended so that distinct users never share a volume.
pub fn slug(user: &str) -> String {
    let mut out = String::with_capacity(user.len() + 9);
    for c in user.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    let mut slug = trimmed.chars().take(SLUG_MAX).collect::<String>();
    if slug != user || user.len() > SLUG_MAX {
        let digest = Sha256::digest(user.as_bytes());
        let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        slug = slug.trim_end_matches('-').to_string();
        if !slug.is_empty() {
            slug.push('-');
        }
        slug.push_str(&hex);
    }
    slug
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
        assert!(upper.starts_with("alice-"), "{upper}");
        assert_eq!(upper.len(), "alice-".len() + 8);
        assert_ne!(upper, slug("alice"));
        assert_ne!(slug("a.b@x.org"), slug("a-b@x.org"));
        assert!(slug("a.b@x.org").starts_with("a-b-x-org-"));
    }

    #[test]
    fn slug_of_long_names_is_truncated_and_hashed() {
        let long = "a".repeat(60);
        let s = slug(&long);
        assert_eq!(s.len(), 40 + 1 + 8);
        assert_ne!(slug(&"a".repeat(61)), s);
    }

    #[test]
    fn slug_of_symbol_only_names_is_the_hash() {
        let s = slug("@@@");
        assert_eq!(s.len(), 8);
        assert!(s.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
