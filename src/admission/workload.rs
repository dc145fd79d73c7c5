//! StatefulSets and Notebooks, the objects whose templates become notebook pods: on CREATE and
//! UPDATE the webhook stamps them with the identity it decides for the requester, so that the pods
//! a trusted controller later makes from them belong to that user and to nobody else.

use std::collections::BTreeMap;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, RemoveOperation};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use serde_json::Value;

use super::identity::{self, IdentitySource};
use super::object_name::object_name;
use super::stamp::{self, StampKey};
use crate::keys;
use crate::policy::PolicySnapshot;

/// What the decision reads besides the request.
#[derive(Clone, Copy)]
pub struct WorkloadContext<'a> {
    pub policy: &'a PolicySnapshot,
    pub namespace: &'a str,
    pub stamp_key: Option<&'a StampKey>,
}

/// The kinds whose templates become notebook pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    /// `apps/v1`: its pod template is copied into every pod by the StatefulSet controller.
    StatefulSet,
    /// `kubeflow.org`: the notebook controller copies its labels and annotations (except keys
    /// containing `notebook` or `kubectl`) into the pod template of a StatefulSet of the same name.
    Notebook,
}

impl WorkloadKind {
    pub fn of(group: &str, kind: &str) -> Option<WorkloadKind> {
        match (group, kind) {
            ("apps", "StatefulSet") => Some(WorkloadKind::StatefulSet),
            ("kubeflow.org", "Notebook") => Some(WorkloadKind::Notebook),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::Notebook => "Notebook",
        }
    }

    /// Where the annotations that reach the pods live.
    fn annotations_path(self) -> &'static [&'static str] {
        match self {
            WorkloadKind::StatefulSet => &["spec", "template", "metadata", "annotations"],
            WorkloadKind::Notebook => &["metadata", "annotations"],
        }
    }

    /// The parts whose change changes the pods: a change by someone makes them that someone's.
    fn pod_parts(self) -> &'static [&'static str] {
        match self {
            WorkloadKind::StatefulSet => &["/spec/template"],
            WorkloadKind::Notebook => &["/metadata/labels", "/metadata/annotations", "/spec"],
        }
    }
}

/// What happened to the stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StampAction {
    /// Written (or confirmed) for this user.
    Stamped(String),
    /// Left as it was: an UPDATE that does not change what the pods get.
    Kept,
    /// Removed, or none written: the pods will belong to nobody.
    Cleared(String),
    /// Not a StatefulSet or Notebook write this webhook judges.
    NotJudged,
}

/// The full outcome of one workload admission.
#[derive(Debug, Clone)]
pub struct WorkloadReview {
    pub response: AdmissionResponse,
    pub kind: Option<WorkloadKind>,
    pub action: StampAction,
}

impl WorkloadReview {
    pub fn allowed(&self) -> bool {
        self.response.allowed
    }

    pub fn message(&self) -> Option<&str> {
        (!self.response.allowed).then_some(self.response.result.message.as_str())
    }

    /// The user the pods will belong to, when stamped.
    pub fn user(&self) -> Option<&str> {
        match &self.action {
            StampAction::Stamped(u) => Some(u),
            _ => None,
        }
    }

    /// The JSON patch operations of the answer (empty when there is none).
    pub fn patch(&self) -> Vec<PatchOperation> {
        self.response
            .patch
            .as_deref()
            .and_then(|bytes| serde_json::from_slice::<json_patch::Patch>(bytes).ok())
            .map(|p| p.0)
            .unwrap_or_default()
    }
}

/// The controlling Notebook whose stamp a trusted controller relays, as `(apiVersion, name)`: the
/// server fetches it before calling [`review_workload`].
pub fn relayed_owner(
    policy: &PolicySnapshot,
    req: &AdmissionRequest<DynamicObject>,
) -> Option<(String, String)> {
    let object = req.object.as_ref()?;
    if !matches!(req.operation, Operation::Create | Operation::Update)
        || req.sub_resource.is_some()
        || WorkloadKind::of(&req.kind.group, &req.kind.kind) != Some(WorkloadKind::StatefulSet)
        || !stamp::is_trusted_controller(policy, &req.user_info)
    {
        return None;
    }
    let owner = stamp::controller_of(object.metadata.owner_references.as_ref())?;
    let group = owner.api_version.split_once('/').map(|(g, _)| g);
    (group == Some("kubeflow.org") && owner.kind == "Notebook")
        .then(|| (owner.api_version.clone(), owner.name.clone()))
}

/// Decides one StatefulSet or Notebook CREATE/UPDATE. `owner` is the Notebook named by
/// [`relayed_owner`], as the API server has it now (`None`: it does not exist).
///
/// - A trusted controller (the notebook controller relaying a Notebook) keeps a stamp only when
///   it is valid: the Notebook's current stamp for a StatefulSet it controls, or the object's own.
/// - An UPDATE that leaves the pod template alone (scaling, finalizers, owner references) keeps
///   the stamp as it is.
/// - Anyone else makes the object theirs: the stamp names the identity §5 gives the requester (a
///   trusted spawner names the user by annotation), and a template naming someone else is denied.
pub fn review_workload(
    ctx: WorkloadContext<'_>,
    req: &AdmissionRequest<DynamicObject>,
    owner: Option<&DynamicObject>,
) -> WorkloadReview {
    let base = AdmissionResponse::from(req);
    let kind = WorkloadKind::of(&req.kind.group, &req.kind.kind);
    let (Some(kind), Some(object)) = (kind, req.object.as_ref()) else {
        return not_judged(base, kind);
    };
    if !matches!(req.operation, Operation::Create | Operation::Update) || req.sub_resource.is_some()
    {
        return not_judged(base, Some(kind));
    }
    let value = match serde_json::to_value(object) {
        Ok(v) => v,
        Err(e) => {
            return deny(
                base,
                kind,
                &format!("cannot read the {}: {e}", kind.as_str()),
            );
        }
    };
    let name = object_name(&object.metadata, &req.name);
    let annotations = annotations_at(&value, kind.annotations_path());
    let current = stamp::stamp_in(annotations.as_ref()).map(str::to_string);
    let ns = ctx.namespace;

    let decided: Result<Option<String>, String> =
        if stamp::is_trusted_controller(ctx.policy, &req.user_info) {
            Ok(relayed_user(ctx, req, &name, current.as_deref(), owner))
        } else if req.operation == Operation::Update && !changes_pods(kind, &value, req) {
            return WorkloadReview {
                response: base,
                kind: Some(kind),
                action: StampAction::Kept,
            };
        } else {
            requester_user(ctx, req, kind, &name, annotations.as_ref())
        };
    let user = match decided {
        Ok(user) => user,
        Err(reason) => return deny(base, kind, &reason),
    };
    if let Some(reason) = someone_elses(ctx, req, kind, &name, user.as_deref()) {
        return deny(base, kind, &reason);
    }
    let mut warnings = Vec::new();
    let (wanted, action) = match (&user, ctx.stamp_key) {
        (Some(u), Some(key)) if !name.is_empty() => (
            Some(key.sign(ns, &name, u)),
            StampAction::Stamped(u.clone()),
        ),
        (Some(u), None) => {
            let why = format!(
                "no stamp for user '{u}': the webhook has no stamp key, so the pods of this {} will get no user's volumes",
                kind.as_str()
            );
            warnings.push(why.clone());
            (None, StampAction::Cleared(why))
        }
        (Some(u), Some(_)) => {
            let why = format!(
                "no stamp for user '{u}': the {} has no name yet (generateName); stamps are bound to a name, so its pods will get no user's volumes; give it a name",
                kind.as_str()
            );
            warnings.push(why.clone());
            (None, StampAction::Cleared(why))
        }
        (None, _) => (None, StampAction::Cleared("no user".into())),
    };
    let mut patch = Vec::new();
    if wanted != current {
        patch = stamp_patch(&value, kind.annotations_path(), wanted.as_deref());
    }
    let mut response = base;
    if let StampAction::Stamped(u) = &action {
        response
            .audit_annotations
            .insert(keys::AUDIT_USER.into(), u.clone());
    }
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    if !patch.is_empty() {
        response = match response.with_patch(json_patch::Patch(patch)) {
            Ok(r) => r,
            Err(e) => return deny(AdmissionResponse::from(req), kind, &e.to_string()),
        };
    }
    WorkloadReview {
        response,
        kind: Some(kind),
        action,
    }
}

/// The user a trusted controller's write carries: the controlling Notebook's current stamp, or
/// else the object's own stamp, when the webhook wrote it.
fn relayed_user(
    ctx: WorkloadContext<'_>,
    req: &AdmissionRequest<DynamicObject>,
    name: &str,
    current: Option<&str>,
    owner: Option<&DynamicObject>,
) -> Option<String> {
    let key = ctx.stamp_key?;
    if let Some((_, owner_name)) = relayed_owner(ctx.policy, req) {
        // The notebook controller copies a Notebook's annotations into the template only when it
        // creates the StatefulSet; on later updates the Notebook as it is now decides. The owner
        // must be the very Notebook the reference names (same uid), not a namesake made later.
        let uid = req
            .object
            .as_ref()
            .and_then(|o| stamp::controller_of(o.metadata.owner_references.as_ref()))
            .map(|r| r.uid.as_str());
        let owner = owner.filter(|o| {
            o.metadata.name.as_deref() == Some(owner_name.as_str())
                && uid.is_some_and(|u| !u.is_empty() && o.metadata.uid.as_deref() == Some(u))
        })?;
        let stamp = stamp::stamp_in(owner.metadata.annotations.as_ref())?;
        return key.verify(ctx.namespace, &owner_name, stamp);
    }
    // Without a controlling Notebook, a controller's write to a StatefulSet keeps its own stamp
    // only when it leaves the template alone: a controller rewriting the template of an orphaned
    // or unowned StatefulSet would otherwise run someone else's spec under the old stamp. (On a
    // Notebook, a controller only marks it, e.g. the culler's stop annotation: the stamp stays.)
    if WorkloadKind::of(&req.kind.group, &req.kind.kind)? == WorkloadKind::StatefulSet {
        let object = serde_json::to_value(req.object.as_ref()?).ok()?;
        if req.operation != Operation::Update
            || changes_pods(WorkloadKind::StatefulSet, &object, req)
        {
            return None;
        }
    }
    key.verify(ctx.namespace, name, current?)
}

/// Why a write may not change what the pods of an object run: its valid stamp (before the write)
/// names another user. Restamping it to the editor would let the owner's next routine write
/// (a restart, stop/start) carry the editor's spec back under the owner's name.
fn someone_elses(
    ctx: WorkloadContext<'_>,
    req: &AdmissionRequest<DynamicObject>,
    kind: WorkloadKind,
    name: &str,
    requester: Option<&str>,
) -> Option<String> {
    if req.operation != Operation::Update {
        return None;
    }
    let key = ctx.stamp_key?;
    let old = serde_json::to_value(req.old_object.as_ref()?).ok()?;
    let old_annotations = annotations_at(&old, kind.annotations_path());
    let owner = key.verify(
        ctx.namespace,
        name,
        stamp::stamp_in(old_annotations.as_ref())?,
    )?;
    if requester == Some(owner.as_str()) {
        return None;
    }
    Some(format!(
        "{} '{name}' belongs to '{owner}' (its stamp): only '{owner}' may change what its pods run; ask them, or delete it and create your own",
        kind.as_str()
    ))
}

/// The user §5 gives the requester of this write; `Err` when the template names someone else.
fn requester_user(
    ctx: WorkloadContext<'_>,
    req: &AdmissionRequest<DynamicObject>,
    kind: WorkloadKind,
    name: &str,
    annotations: Option<&BTreeMap<String, String>>,
) -> Result<Option<String>, String> {
    let identity =
        identity::identify(ctx.policy, &req.user_info, annotations, true).map_err(|e| {
            format!(
                "{} '{name}' names a user in its pod annotations: {e}",
                kind.as_str()
            )
        })?;
    let user = identity.subject.user;
    // A system identity that is not a trusted controller writes for whoever can make it do so.
    let system = identity.source == IdentitySource::Requester
        && user.as_deref().is_some_and(|u| u.starts_with("system:"));
    Ok(if system { None } else { user })
}

/// Whether an UPDATE changes what the pods of the object get.
fn changes_pods(kind: WorkloadKind, new: &Value, req: &AdmissionRequest<DynamicObject>) -> bool {
    let Some(old) = req
        .old_object
        .as_ref()
        .and_then(|o| serde_json::to_value(o).ok())
    else {
        return true;
    };
    kind.pod_parts()
        .iter()
        .any(|p| old.pointer(p) != new.pointer(p))
}

fn annotations_at(value: &Value, path: &[&str]) -> Option<BTreeMap<String, String>> {
    let mut at = value;
    for segment in path {
        at = at.get(segment)?;
    }
    serde_json::from_value(at.clone()).ok()
}

/// JSON patch that sets (or, with `None`, removes) the stamp under `path`, creating the missing
/// parents.
fn stamp_patch(value: &Value, path: &[&str], stamp: Option<&str>) -> Vec<PatchOperation> {
    let mut at = value;
    let mut pointer = PointerBuf::new();
    for (i, segment) in path.iter().enumerate() {
        match at.get(segment) {
            Some(next) if next.is_object() => {
                pointer.push_back(*segment);
                at = next;
            }
            _ => {
                let Some(stamp) = stamp else {
                    return Vec::new();
                };
                // Build the rest of the path as one object.
                let mut rest = serde_json::json!({ keys::STAMP_ANNOTATION: stamp });
                for s in path[i + 1..].iter().rev() {
                    rest = serde_json::json!({ *s: rest });
                }
                pointer.push_back(*segment);
                return vec![PatchOperation::Add(AddOperation {
                    path: pointer,
                    value: rest,
                })];
            }
        }
    }
    pointer.push_back(keys::STAMP_ANNOTATION);
    match stamp {
        Some(stamp) => vec![PatchOperation::Add(AddOperation {
            path: pointer,
            value: Value::String(stamp.to_string()),
        })],
        None if at.get(keys::STAMP_ANNOTATION).is_some() => {
            vec![PatchOperation::Remove(RemoveOperation { path: pointer })]
        }
        None => Vec::new(),
    }
}

fn not_judged(base: AdmissionResponse, kind: Option<WorkloadKind>) -> WorkloadReview {
    WorkloadReview {
        response: base,
        kind,
        action: StampAction::NotJudged,
    }
}

fn deny(response: AdmissionResponse, kind: WorkloadKind, reason: &str) -> WorkloadReview {
    WorkloadReview {
        response: super::outcome::forbid(response, reason),
        kind: Some(kind),
        action: StampAction::NotJudged,
    }
}

/// The pod a controller makes from a StatefulSet or Notebook (`object`, as JSON), named as the
/// first replica: a StatefulSet's pod template; for a Notebook, the Kubeflow notebook
/// controller's copy rule (its labels, and its annotations except keys containing `notebook` or
/// `kubectl`, onto the template of a StatefulSet of the same name).
pub fn first_pod(
    kind: WorkloadKind,
    object: &Value,
) -> Result<k8s_openapi::api::core::v1::Pod, String> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let (mut metadata, spec) = match kind {
        WorkloadKind::StatefulSet => (
            object
                .pointer("/spec/template/metadata")
                .cloned()
                .unwrap_or_else(|| serde_json::json!({})),
            object.pointer("/spec/template/spec").cloned(),
        ),
        WorkloadKind::Notebook => {
            let mut labels = serde_json::Map::new();
            labels.insert("statefulset".into(), Value::String(name.clone()));
            labels.insert(
                keys::NOTEBOOK_NAME_LABEL.into(),
                Value::String(name.clone()),
            );
            if let Some(Value::Object(own)) = object.pointer("/metadata/labels") {
                labels.extend(own.clone());
            }
            let annotations: serde_json::Map<String, Value> =
                match object.pointer("/metadata/annotations") {
                    Some(Value::Object(own)) => own
                        .iter()
                        .filter(|(k, _)| !k.contains("kubectl") && !k.contains("notebook"))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    _ => serde_json::Map::new(),
                };
            (
                serde_json::json!({"labels": labels, "annotations": annotations}),
                object.pointer("/spec/template/spec").cloned(),
            )
        }
    };
    if let Value::Object(m) = &mut metadata {
        m.insert("name".into(), Value::String(format!("{name}-0")));
        m.insert(
            "ownerReferences".into(),
            serde_json::json!([{
                "apiVersion": "apps/v1", "kind": "StatefulSet", "name": name,
                "uid": "", "controller": true, "blockOwnerDeletion": true
            }]),
        );
    }
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": metadata,
        "spec": spec.unwrap_or_else(|| serde_json::json!({"containers": []})),
    });
    serde_json::from_value(pod)
        .map_err(|e| format!("the {} has no valid pod template: {e}", kind.as_str()))
}
