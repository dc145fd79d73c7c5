//! What the decision needs to know about existing PersistentVolumeClaims. The caller looks them up
//! (a cache, a GET, or nothing offline); the decision itself does no I/O.

use std::collections::HashMap;

/// The facts about one existing claim that matter to the guard and the home volume.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimInfo {
    /// Labelled `notebook-volumes.io/home=true`.
    pub home: bool,
    /// Value of the `notebook-volumes.io/owner` annotation.
    pub owner: Option<String>,
    /// Labelled `notebook-volumes.io/home-level=secret`: a secret-level home.
    pub secret: bool,
    /// The storage the claim requests (`spec.resources.requests.storage`).
    pub requested: Option<String>,
    /// Why the webhook could not grow it (`notebook-volumes.io/growth-refused`).
    pub growth_refused: Option<String>,
}

/// Existing claims by namespace and name; `None` means the claim does not exist.
pub trait ClaimLookup {
    fn claim(&self, namespace: &str, name: &str) -> Option<ClaimInfo>;
}

/// No claim exists (offline audit without claim manifests).
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
