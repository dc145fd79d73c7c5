//! Whether a share's or library's claim can be mounted in the pod's namespace. A claim that is
//! missing, not Bound, or bound to a volume only one node may use leaves the notebook Pending with
//! no word why; the decision skips it with a warning (or denies the pod) instead.

use std::fmt;

use super::claims::ClaimLookup;

/// Why a claim cannot serve a share or library here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    Deleting,
    Missing,
    NotBound {
        phase: String,
    },
    /// Bound, but without a mode that lets pods on many nodes mount it this way.
    SingleNode {
        modes: Vec<String>,
        read_only: bool,
    },
}

impl Unusable {
    /// What an administrator does about it.
    pub fn fix(&self) -> &'static str {
        match self {
            Unusable::Missing => {
                "create a ReadWriteMany claim of that name in this namespace, or take the namespace out of the share's scope"
            }
            Unusable::Deleting => {
                "the deletion completes once no pod uses the claim; create it again afterwards if the share should stay"
            }
            Unusable::NotBound { .. } => {
                "check the claim's events (kubectl describe pvc) for its storage class or volume"
            }
            Unusable::SingleNode {
                read_only: true, ..
            } => "bind it to a ReadWriteMany or ReadOnlyMany volume",
            Unusable::SingleNode { .. } => "bind it to a ReadWriteMany volume",
        }
    }
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::Missing => f.write_str("does not exist"),
            Unusable::Deleting => f.write_str("is being deleted"),
            Unusable::NotBound { phase } => write!(f, "is {phase}, not Bound"),
            Unusable::SingleNode { modes, .. } => write!(
                f,
                "is bound with access modes [{}], which notebooks on different nodes cannot share",
                modes.join(", ")
            ),
        }
    }
}

/// Checks the claim `name` in `namespace` for a mount `read_only` or not. `Ok` when the lookup
/// does not know the namespace's claims (offline without a listing): nothing to judge.
pub fn usable(
    claims: &dyn ClaimLookup,
    namespace: &str,
    name: &str,
    read_only: bool,
) -> Result<(), Unusable> {
    let Some(known) = claims.volume_claim(namespace, name) else {
        return Ok(());
    };
    let claim = known.ok_or(Unusable::Missing)?;
    if claim.deleting {
        return Err(Unusable::Deleting);
    }
    let phase = claim.phase.unwrap_or_else(|| "Pending".into());
    if phase != "Bound" {
        return Err(Unusable::NotBound { phase });
    }
    let has = |mode: &str| claim.access_modes.iter().any(|m| m == mode);
    if has("ReadWriteMany") || (read_only && has("ReadOnlyMany")) {
        Ok(())
    } else {
        Err(Unusable::SingleNode {
            modes: claim.access_modes,
            read_only,
        })
    }
}

/// The warning (or denial message) for a share or library not mounted.
pub fn unusable_message(source: &str, namespace: &str, claim: &str, problem: &Unusable) -> String {
    format!(
        "{source} not mounted: its claim '{claim}' in namespace '{namespace}' {problem}; {}",
        problem.fix()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::claims::{ClaimInfo, ListedClaims, NoClaims};

    fn listed(phase: Option<&str>, modes: &[&str]) -> ListedClaims {
        ListedClaims(
            [(
                ("ns".to_string(), "data".to_string()),
                ClaimInfo {
                    phase: phase.map(str::to_string),
                    access_modes: modes.iter().map(|m| m.to_string()).collect(),
                    ..Default::default()
                },
            )]
            .into(),
        )
    }

    #[test]
    fn only_a_bound_many_node_claim_is_usable() {
        let rwx = listed(Some("Bound"), &["ReadWriteMany"]);
        assert_eq!(usable(&rwx, "ns", "data", false), Ok(()));
        assert_eq!(usable(&rwx, "ns", "other", true), Err(Unusable::Missing));
        assert_eq!(usable(&rwx, "other", "data", true), Err(Unusable::Missing));
        let rox = listed(Some("Bound"), &["ReadOnlyMany"]);
        assert_eq!(usable(&rox, "ns", "data", true), Ok(()));
        assert!(matches!(
            usable(&rox, "ns", "data", false),
            Err(Unusable::SingleNode { .. })
        ));
        let rwo = listed(Some("Bound"), &["ReadWriteOnce"]);
        let err = usable(&rwo, "ns", "data", true).unwrap_err();
        assert!(err.to_string().contains("[ReadWriteOnce]"), "{err}");
        let pending = listed(None, &["ReadWriteMany"]);
        assert_eq!(
            usable(&pending, "ns", "data", true),
            Err(Unusable::NotBound {
                phase: "Pending".into()
            })
        );
        assert_eq!(
            usable(&NoClaims, "ns", "data", false),
            Ok(()),
            "unknown: not judged"
        );
    }

    #[test]
    fn the_message_names_the_claim_and_the_fix() {
        let m = unusable_message("share 'finance'", "ds", "finance-data", &Unusable::Missing);
        assert_eq!(
            m,
            "share 'finance' not mounted: its claim 'finance-data' in namespace 'ds' does not exist; create a ReadWriteMany claim of that name in this namespace, or take the namespace out of the share's scope"
        );
    }
}
