//! What a pod decision returns: allowed or a typed `Denial`, the patch, warnings, audit
//! annotations, the mounts and the effects the caller performs. The wire answer
//! (`AdmissionResponse`) is made from it only at the edge, by `Review::response`.

use std::collections::BTreeMap;
use std::fmt;

use json_patch::PatchOperation;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::core::admission::AdmissionResponse;
use serde::{Serialize, Serializer};

use super::denial::Denial;
use crate::keys;

/// Where a mounted volume comes from; ordered home, shares, libraries (the summary's order).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MountSource {
    Home,
    Share(String),
    Library(String),
}

impl MountSource {
    /// The name in the mount summary: `home`, or the share's or library's name.
    pub fn name(&self) -> &str {
        match self {
            MountSource::Home => "home",
            MountSource::Share(name) | MountSource::Library(name) => name,
        }
    }
}

/// `home`, `share:<name>` or `library:<name>` (padded like a string: `{:<22}`).
impl fmt::Display for MountSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountSource::Home => f.pad("home"),
            MountSource::Share(name) => f.pad(&format!("share:{name}")),
            MountSource::Library(name) => f.pad(&format!("library:{name}")),
        }
    }
}

impl Serialize for MountSource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One volume the pod ends up with that the policy knows about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MountRecord {
    pub volume: String,
    pub claim_name: String,
    pub mount_path: String,
    pub read_only: bool,
    pub source: MountSource,
}

/// Work the caller must do for an allowed answer (a creation before answering, a growth queued
/// after); none on a dry run.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Create the user's home claim (first launch).
    CreateClaim(Box<PersistentVolumeClaim>),
    /// Grow the user's home claim to `size` (the policy gives more than it requests); queued
    /// after the answer, never awaited.
    GrowClaim {
        namespace: String,
        claim: String,
        size: String,
    },
}

/// One line naming the object, not the whole claim: what an operator reads in a log.
impl std::fmt::Display for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Effect::CreateClaim(pvc) => write!(
                f,
                "create claim {}/{}",
                pvc.metadata.namespace.as_deref().unwrap_or_default(),
                pvc.metadata.name.as_deref().unwrap_or_default()
            ),
            Effect::GrowClaim {
                namespace,
                claim,
                size,
            } => write!(f, "grow claim {namespace}/{claim} to {size}"),
        }
    }
}

/// The full outcome of one admission.
#[derive(Debug, Clone, Default)]
pub struct Review {
    /// Why the request is refused; `None` when it is allowed.
    pub denial: Option<Denial>,
    pub patch: Vec<PatchOperation>,
    pub warnings: Vec<String>,
    pub audit_annotations: BTreeMap<String, String>,
    pub user: Option<String>,
    pub mounts: Vec<MountRecord>,
    pub effects: Vec<Effect>,
}

impl Review {
    /// A refusal; the user, when known, is recorded for the audit log.
    pub fn denied(denial: Denial, user: Option<String>) -> Review {
        Review::default().with_user(user).deny(denial)
    }

    /// Records the user in the outcome and its audit annotations.
    pub fn with_user(mut self, user: Option<String>) -> Review {
        if let Some(u) = &user {
            self.audit_annotations
                .insert(keys::AUDIT_USER.into(), u.clone());
        }
        self.user = user;
        self
    }

    pub fn allowed(&self) -> bool {
        self.denial.is_none()
    }

    /// Denial message, when denied.
    pub fn message(&self) -> Option<String> {
        self.denial.as_ref().map(ToString::to_string)
    }

    /// Turns the outcome into a denial, e.g. when creating the home claim failed: no patch, no
    /// effects, the reason in the audit annotations.
    pub fn deny(mut self, denial: Denial) -> Review {
        self.audit_annotations
            .insert(keys::AUDIT_REASON.into(), denial.to_string());
        self.patch.clear();
        self.effects.clear();
        self.denial = Some(denial);
        self
    }

    /// The compact mount summary (`home=rw,finance=ro,apps=ro`).
    pub fn summary(&self) -> String {
        summary(&self.mounts, false)
    }

    /// The wire answer to the request `base` was made from (`AdmissionResponse::from(&req)`);
    /// the patch is serialised here, once, and moved rather than copied.
    pub fn response(self, base: AdmissionResponse) -> AdmissionResponse {
        let mut response = base;
        response.audit_annotations.extend(self.audit_annotations);
        if !self.warnings.is_empty() {
            response.warnings = Some(self.warnings);
        }
        if let Some(denial) = &self.denial {
            return forbid(response, &denial.to_string());
        }
        if self.patch.is_empty() {
            return response;
        }
        // Sized once: an operation of a notebook's patch takes about 100 to 200 bytes.
        let mut bytes = Vec::with_capacity(self.patch.len() * 192);
        if let Err(e) = serde_json::to_writer(&mut bytes, &self.patch) {
            return forbid(response, &e.to_string());
        }
        // `with_patch` is the only way to set the patch type (a private field): it is given an
        // empty patch, and the real one, serialised above, replaces it. Neither can fail; the
        // request's identity is kept to answer it in case.
        let (types, uid) = (response.types.clone(), response.uid.clone());
        match response.with_patch(json_patch::Patch(Vec::new())) {
            Ok(mut r) => {
                r.patch = Some(bytes);
                r
            }
            Err(e) => {
                let mut failed = AdmissionResponse::invalid(&e);
                (failed.types, failed.uid) = (types, uid);
                forbid(failed, &e.to_string())
            }
        }
    }
}

/// A 403 answer with the reason as message and audit annotation.
pub(crate) fn forbid(mut response: AdmissionResponse, reason: &str) -> AdmissionResponse {
    response.allowed = false;
    response.result.code = 403;
    response.result.reason = "Forbidden".into();
    response.result.message = reason.to_string();
    response.patch = None;
    response
        .audit_annotations
        .insert(keys::AUDIT_REASON.into(), reason.to_string());
    response
}

/// Sorts home, shares, libraries (each by name, then volume) and keeps one record per source.
pub fn sort_records(mounts: &mut Vec<MountRecord>) {
    mounts.sort_by(|a, b| (&a.source, &a.volume).cmp(&(&b.source, &b.volume)));
    mounts.dedup_by(|a, b| a.source == b.source);
}

/// `home=rw,finance=ro,apps=ro`; with `would_create`, the home entry says `home=would-create`.
/// Records are sorted and deduplicated by source (`sort_records`).
pub fn summary(mounts: &[MountRecord], would_create: bool) -> String {
    let mut out = String::with_capacity(mounts.len() * 16);
    for m in mounts {
        let value = if m.source == MountSource::Home && would_create {
            "would-create"
        } else if m.read_only {
            "ro"
        } else {
            "rw"
        };
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(m.source.name());
        out.push('=');
        out.push_str(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use json_patch::jsonptr::PointerBuf;
    use json_patch::{AddOperation, PatchOperation, RemoveOperation};
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn base() -> AdmissionResponse {
        let mut base = AdmissionResponse::invalid("");
        base.uid = "uid-1".into();
        base.allowed = true;
        base.result = Default::default();
        base
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..Default::default() })]

        /// The answer carries exactly the patch serde writes for the operations, typed as a JSON
        /// patch, whatever their number and values; the request's identity is kept.
        #[test]
        fn the_answer_carries_the_patch_serde_writes(
            ops in proptest::collection::vec((any::<bool>(), "[a-z~/\"\\\\é\u{0}]{0,8}", any::<String>()), 1..20)
        ) {
            let patch: Vec<PatchOperation> = ops
                .into_iter()
                .map(|(add, key, value)| {
                    let path = PointerBuf::from_tokens(["metadata", "annotations", key.as_str()]);
                    if add {
                        PatchOperation::Add(AddOperation { path, value: json!(value) })
                    } else {
                        PatchOperation::Remove(RemoveOperation { path })
                    }
                })
                .collect();
            let review = Review { patch: patch.clone(), ..Review::default() };
            let response = review.response(base());
            let expected = serde_json::to_vec(&json_patch::Patch(patch)).expect("patch");
            prop_assert_eq!(response.patch.as_deref(), Some(expected.as_slice()));
            prop_assert!(response.allowed);
            prop_assert_eq!(response.uid.as_str(), "uid-1");
            let written = serde_json::to_value(&response).expect("response");
            prop_assert_eq!(&written["patchType"], &json!("JSONPatch"));
        }
    }

    #[test]
    fn a_denial_answers_without_a_patch() {
        let review = Review {
            patch: vec![PatchOperation::Remove(RemoveOperation {
                path: PointerBuf::from_tokens(["metadata"]),
            })],
            ..Review::default()
        }
        .deny(Denial::Unavailable("down".into()));
        let response = review.response(base());
        assert!(!response.allowed);
        assert_eq!(response.patch, None);
        assert_eq!(response.result.code, 403);
        let written = serde_json::to_value(&response).expect("response");
        assert_eq!(written.get("patchType"), None);
    }
}
