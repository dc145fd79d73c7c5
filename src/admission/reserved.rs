//! Claim names the policy reserves in a namespace: share and library claims, claims of a rejected
//! policy unit, and home claims (by template, whether or not they exist, or by label). Pods,
//! clones, snapshots and generated ephemeral claims all ask the same question here.

use std::fmt;

use super::claims::ClaimLookup;
use crate::policy::home_template::home_user;
use crate::policy::{Library, NamespaceInfo, PolicySnapshot, Share};

/// Why a claim name is not an ordinary claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation<'p> {
    /// Named by a share or library of a policy unit that failed validation.
    Protected {
        unit: &'p str,
    },
    Share(&'p Share),
    Library(&'p Library),
    /// A name the namespace's Home template gives the user whose slug is `slug`.
    Home {
        slug: String,
    },
    /// The secret-level home beside the home the template gives the user whose slug is `slug`.
    SecretHome {
        slug: String,
    },
    /// A claim marked as a home (label or owner annotation), e.g. under an earlier template;
    /// `secret` when it is marked as a secret-level home.
    MarkedHome {
        owner: Option<String>,
        secret: bool,
    },
}

impl fmt::Display for Reservation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reservation::Protected { unit } => write!(
                f,
                "protected: a share, library or home template in {unit} names it and that policy failed validation"
            ),
            Reservation::Share(s) => {
                write!(f, "the claim of {} share '{}'", s.level.as_str(), s.name)
            }
            Reservation::Library(l) => write!(f, "the claim of library '{}'", l.name),
            Reservation::Home { slug } => write!(
                f,
                "reserved for the home of the user whose name slugs to '{slug}'"
            ),
            Reservation::SecretHome { slug } => write!(
                f,
                "reserved for the secret-level home of the user whose name slugs to '{slug}'"
            ),
            Reservation::MarkedHome {
                owner: Some(o),
                secret,
            } => write!(f, "the {}home claim of user '{o}'", level_word(*secret)),
            Reservation::MarkedHome {
                owner: None,
                secret,
            } => write!(f, "a {}home claim", level_word(*secret)),
        }
    }
}

fn level_word(secret: bool) -> &'static str {
    if secret { "secret-level " } else { "" }
}

/// What `claim` is reserved for in `ns`, if anything, most protective reason first.
pub fn reservation<'p>(
    policy: &'p PolicySnapshot,
    ns: &NamespaceInfo,
    claims: &dyn ClaimLookup,
    claim: &str,
) -> Option<Reservation<'p>> {
    if let Some(unit) = policy
        .protected_claim(claim)
        .or_else(|| policy.protected_home(claim))
    {
        return Some(Reservation::Protected { unit });
    }
    if let Some(share) = policy.shares_for_claim(ns, claim).first() {
        return Some(Reservation::Share(share));
    }
    if let Some(lib) = policy
        .libraries_in_scope(ns)
        .into_iter()
        .find(|l| l.claim_name == claim)
    {
        return Some(Reservation::Library(lib));
    }
    if let Some(info) = claims
        .claim(&ns.name, claim)
        .filter(|info| info.home || info.owner.is_some())
    {
        return Some(Reservation::MarkedHome {
            owner: info.owner,
            secret: info.secret,
        });
    }
    let (slug, secret) = policy
        .home_for(ns)
        .and_then(|h| home_user(&h.claim_name_template, claim))?;
    let slug = slug.to_string();
    Some(if secret {
        Reservation::SecretHome { slug }
    } else {
        Reservation::Home { slug }
    })
}
