//! Events users see (docs/operating.md, "Events"): what a pod decision tells the people who look
//! at their notebook's Pod, StatefulSet or Notebook rather than at the webhook's logs. Pure: the
//! server hands these to a bounded queue after the answer and a background task writes them.

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::core::admission::{AdmissionRequest, Operation};

use super::object_name::object_name;
use super::outcome::{Effect, Review};
use super::pod;

/// Stable Event reasons, for `kubectl get events --field-selector reason=...`.
pub const DENIED: &str = "VolumesDenied";
pub const FORCED_READ_ONLY: &str = "ForcedReadOnly";
pub const MOUNT_SKIPPED: &str = "MountSkipped";
pub const WRITE_PROTECTED: &str = "WriteProtected";
pub const HOME_CREATED: &str = "HomeCreated";
pub const NOTEBOOK_WARNING: &str = "NotebookVolumesWarning";

/// One Event to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The object the Event is about.
    pub regarding: ObjectReference,
    /// A pod being created: the writer waits for it to exist and records the Event with its uid
    /// (`kubectl describe pod` shows only Events with the uid), or drops it.
    pub wait_for_pod: bool,
    pub warning: bool,
    pub reason: &'static str,
    pub note: String,
}

/// The notices of an answered admission; the common quiet case costs a few comparisons. The
/// home claim is the one the decision asked the server to create (it was, or the pod would have
/// been denied).
pub fn for_admission(req: &AdmissionRequest<Pod>, review: &Review) -> Vec<Notice> {
    if req.dry_run {
        return Vec::new();
    }
    let home = review.effects.iter().find_map(|effect| match effect {
        Effect::CreateClaim(pvc) => pvc.metadata.name.as_deref(),
        _ => None,
    });
    let quiet = review.denial.is_none()
        && review.warnings.is_empty()
        && home.is_none()
        && !review.mounts.iter().any(|m| m.read_only);
    if quiet {
        return Vec::new();
    }
    notices(req, review, home)
}

/// The Events one pod decision produces: none on dry run. `home_created` names the home claim
/// the server created for this pod.
pub fn notices(
    req: &AdmissionRequest<Pod>,
    review: &Review,
    home_created: Option<&str>,
) -> Vec<Notice> {
    let Some(pod) = req.object.as_ref() else {
        return Vec::new();
    };
    if req.dry_run {
        return Vec::new();
    }
    let namespace = req.namespace.clone().unwrap_or_default();
    if let Some(denial) = &review.denial {
        return vec![Notice {
            regarding: denied_regarding(req, pod, &namespace),
            wait_for_pod: false,
            warning: true,
            reason: DENIED,
            note: format!("{} denied: {denial}", what(req, pod)),
        }];
    }
    if req.operation != Operation::Create || req.sub_resource.is_some() {
        return Vec::new();
    }
    let Some(name) = pod.metadata.name.clone().filter(|n| !n.is_empty()) else {
        // A pod named by the API server later (generateName): nothing to attach the Event to
        // until it exists, and the decision said nothing a user would miss.
        return Vec::new();
    };
    let regarding = pod_reference(&namespace, &name, None);
    let mut out = Vec::new();
    let mut add = |warning: bool, reason: &'static str, note: String| {
        out.push(Notice {
            regarding: regarding.clone(),
            wait_for_pod: true,
            warning,
            reason,
            note,
        });
    };
    if let Some(claim) = home_created {
        add(
            false,
            HOME_CREATED,
            format!(
                "home claim '{claim}' created for user '{}'",
                review.user.as_deref().unwrap_or_default()
            ),
        );
    }
    let forced: Vec<String> = forced_read_only(pod, review);
    if !forced.is_empty() {
        add(
            false,
            FORCED_READ_ONLY,
            format!(
                "mounted read-only (the user may only read them): {}",
                forced.join(", ")
            ),
        );
    }
    for warning in &review.warnings {
        let (is_warning, reason) = classify(warning);
        add(is_warning, reason, warning.clone());
    }
    out
}

/// The pod's volumes that it asked for read-write and the decision made read-only.
fn forced_read_only(pod: &Pod, review: &Review) -> Vec<String> {
    let mounts = pod::all_mounts(pod);
    review
        .mounts
        .iter()
        .filter(|record| record.read_only)
        .filter_map(|record| {
            let volume = pod::volumes(pod).iter().find(|v| v.name == record.volume)?;
            let volume_ro = volume
                .persistent_volume_claim
                .as_ref()
                .and_then(|p| p.read_only)
                .unwrap_or(false);
            let mount_rw = mounts
                .iter()
                .any(|m| m.3.name == record.volume && m.3.read_only != Some(true));
            (!volume_ro || mount_rw)
                .then(|| format!("{} (claim '{}')", record.source.name(), record.claim_name))
        })
        .collect()
}

/// The kind of a decision's warning, from the sentences the decision writes.
fn classify(warning: &str) -> (bool, &'static str) {
    if warning.contains(" not mounted: ") {
        (true, MOUNT_SKIPPED)
    } else if warning.starts_with("a secret share is mounted") {
        (false, WRITE_PROTECTED)
    } else {
        (true, NOTEBOOK_WARNING)
    }
}

/// A denied pod does not exist: the Event goes on its controller (a StatefulSet, whose Events
/// the notebook controllers show on the Notebook), else on the pod's name when it has one (what
/// KubeSpawner's progress reads), else on the namespace. An UPDATE's pod exists.
fn denied_regarding(req: &AdmissionRequest<Pod>, pod: &Pod, namespace: &str) -> ObjectReference {
    let name = object_name(&pod.metadata, &req.name);
    if req.operation == Operation::Update {
        return pod_reference(namespace, &name, pod.metadata.uid.clone());
    }
    let controller = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    if let Some(owner) = controller {
        return ObjectReference {
            api_version: Some(owner.api_version.clone()),
            kind: Some(owner.kind.clone()),
            name: Some(owner.name.clone()),
            namespace: Some(namespace.to_string()),
            uid: Some(owner.uid.clone()),
            ..Default::default()
        };
    }
    if !name.is_empty() {
        return pod_reference(namespace, &name, None);
    }
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Namespace".into()),
        name: Some(namespace.to_string()),
        namespace: Some(namespace.to_string()),
        ..Default::default()
    }
}

fn pod_reference(namespace: &str, name: &str, uid: Option<String>) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        uid,
        ..Default::default()
    }
}

/// How the denied request is named in the note.
fn what(req: &AdmissionRequest<Pod>, pod: &Pod) -> String {
    let name = pod
        .metadata
        .name
        .clone()
        .or_else(|| pod.metadata.generate_name.as_ref().map(|g| format!("{g}*")))
        .unwrap_or_else(|| req.name.clone());
    match (&req.operation, req.sub_resource.as_deref()) {
        (Operation::Update, Some("ephemeralcontainers")) => {
            format!("debug container in pod '{name}'")
        }
        (Operation::Update, _) => format!("change of pod '{name}'"),
        _ => format!("pod '{name}'"),
    }
}
