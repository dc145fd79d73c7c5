//! What the decision needs to know about existing PersistentVolumeClaims. The caller looks them up
//! (a cache, a GET, or nothing offline); the decision itself does no I/O.

use std::collections::HashMap;

/// A home claim as the `adopt` and `homes` tables list it in their first three columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimColumns {
    pub name: String,
    /// Whose home it is (or would be once adopted), when known.
    pub user: Option<String>,
    /// The storage it requests, as written in the claim.
    pub size: String,
}

impl ClaimColumns {
    /// The CLAIM, USER and SIZE cells of a table row (`-` for no user).
    pub fn cells(&self) -> [String; 3] {
        [
            self.name.clone(),
            self.user.clone().unwrap_or_else(|| "-".to_string()),
            self.size.clone(),
        ]
    }
}

/// The facts about one existing claim that matter to the guard and the home volume.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimInfo {
    // Its labels and annotations, set by the webhook or an administrator.
    /// Labelled `notebook-volumes.io/home=true`.
    pub home: bool,
    /// Labelled `notebook-volumes.io/home-level=secret`: a secret-level home.
    pub secret: bool,
    /// Value of the `notebook-volumes.io/owner` annotation.
    pub owner: Option<String>,
    /// Why the webhook could not grow it (`notebook-volumes.io/growth-refused`).
    pub growth_refused: Option<String>,
    // Its spec and status.
    /// The storage the claim requests (`spec.resources.requests.storage`).
    pub requested: Option<String>,
    /// The access modes the bound volume has (`status.accessModes`), else those requested.
    pub access_modes: Vec<String>,
    /// `status.phase` (`Pending`, `Bound`, `Lost`).
    pub phase: Option<String>,
    /// Marked for deletion (a pod mounting it would wait until the deletion completes).
    pub deleting: bool,
}

/// Existing claims by namespace and name; `None` means the claim does not exist.
pub trait ClaimLookup {
    fn claim(&self, namespace: &str, name: &str) -> Option<ClaimInfo>;

    /// A share's or library's claim: `None` when this lookup does not know the namespace's
    /// claims (then nothing is judged), `Some(None)` when the claim does not exist.
    fn volume_claim(&self, _namespace: &str, _name: &str) -> Option<Option<ClaimInfo>> {
        None
    }
}

/// No claim exists (offline audit without claim manifests); share claims are not judged.
pub struct NoClaims;

impl ClaimLookup for NoClaims {
    fn claim(&self, _: &str, _: &str) -> Option<ClaimInfo> {
        None
    }
}

impl ClaimLookup for HashMap<(String, String), ClaimInfo> {
    fn claim(&self, namespace: &str, name: &str) -> Option<ClaimInfo> {
        self.get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
}

/// Every claim of the namespaces concerned, listed (`audit --claims`): a share's or library's
/// claim that is not listed does not exist.
pub struct ListedClaims(pub HashMap<(String, String), ClaimInfo>);

impl ClaimLookup for ListedClaims {
    fn claim(&self, namespace: &str, name: &str) -> Option<ClaimInfo> {
        self.0.claim(namespace, name)
    }

    fn volume_claim(&self, namespace: &str, name: &str) -> Option<Option<ClaimInfo>> {
        Some(self.0.claim(namespace, name))
    }
}

impl ClaimInfo {
    /// Reads the facts from a claim object.
    pub fn of(pvc: &k8s_openapi::api::core::v1::PersistentVolumeClaim) -> Self {
        let meta = &pvc.metadata;
        let label = |key: &str| meta.labels.as_ref().and_then(|l| l.get(key));
        ClaimInfo {
            home: label(crate::keys::HOME_LABEL).is_some_and(|v| v == "true"),
            secret: label(crate::keys::HOME_LEVEL_LABEL)
                .is_some_and(|v| v == crate::keys::HOME_LEVEL_SECRET),
            owner: meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(crate::keys::OWNER_ANNOTATION))
                .cloned(),
            phase: pvc.status.as_ref().and_then(|s| s.phase.clone()),
            deleting: meta.deletion_timestamp.is_some(),
            access_modes: pvc
                .status
                .as_ref()
                .and_then(|s| s.access_modes.clone())
                .filter(|m| !m.is_empty())
                .or_else(|| pvc.spec.as_ref().and_then(|s| s.access_modes.clone()))
                .unwrap_or_default(),
            requested: pvc
                .spec
                .as_ref()
                .and_then(|s| s.resources.as_ref())
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
                .map(|q| q.0.clone()),
            growth_refused: meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(crate::keys::GROWTH_REFUSED_ANNOTATION))
                .cloned(),
        }
    }
}
