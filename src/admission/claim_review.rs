//! The claim guard: validating admission of PersistentVolumeClaims and VolumeSnapshots in enabled
//! namespaces. The pod guard (`admission::guard`) decides who may mount a claim; this decides who may create a
//! claim the policy reserves, mark one as a home, or copy a guarded claim's data into a new claim
//! (clone, snapshot), which the pod guard would otherwise never see. Administrators and the
//! webhook itself may do all of it; everyone else, including controllers acting for users (the
//! ephemeral-volume controller), may not.

use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use serde::Deserialize;

use super::administrators::is_administrator;
use super::context::Context;
use super::identity;
use super::reserved::{Reservation, reservation};
use crate::keys;

/// API group of VolumeSnapshots (external-snapshotter CRDs).
pub const SNAPSHOT_GROUP: &str = "snapshot.storage.k8s.io";

/// Identities of the persistent volume controller, which binds a claim by setting its
/// `spec.volumeName` (kube-controller-manager with and without
/// `--use-service-account-credentials`). Others are named in `Settings.administrators`.
pub const VOLUME_BINDERS: &[&str] = &[
    "system:serviceaccount:kube-system:persistent-volume-binder",
    "system:kube-controller-manager",
];

/// The labels of a provisioned claim: the managed mark the reconciler trusts, and the share or
/// library it is for, which administrators select by when cleaning up.
const PROVISION_LABELS: [&str; 3] = [
    keys::MANAGED_BY_LABEL,
    keys::SHARE_LABEL,
    keys::LIBRARY_LABEL,
];

/// The fields of a claim's spec the guard reads (decoded without the full typed model, so a
/// field the API server adds later cannot make decoding fail).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClaimSpec {
    #[serde(default)]
    data_source: Option<SourceRef>,
    #[serde(default)]
    data_source_ref: Option<SourceRef>,
    #[serde(default)]
    volume_name: Option<String>,
}

/// `spec.dataSource` (TypedLocalObjectReference) or `spec.dataSourceRef` (TypedObjectReference).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourceRef {
    #[serde(default)]
    api_group: Option<String>,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

impl SourceRef {
    /// A clone of another claim (core group, kind PersistentVolumeClaim).
    fn is_claim(&self) -> bool {
        self.api_group.as_deref().unwrap_or("").is_empty() && self.kind == "PersistentVolumeClaim"
    }
}

/// Decides one PersistentVolumeClaim or VolumeSnapshot admission. Pure: labelled home claims come
/// from `ctx.claims`. Anything else (another kind, DELETE, a subresource) is allowed.
pub fn review_claim(ctx: Context<'_>, req: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
    let base = AdmissionResponse::from(req);
    match check(ctx, req) {
        Ok(()) => base,
        Err(reason) => deny(base, &reason),
    }
}

fn deny(mut response: AdmissionResponse, reason: &str) -> AdmissionResponse {
    response.allowed = false;
    response.result.code = 403;
    response.result.reason = "Forbidden".into();
    response.result.message = reason.to_string();
    response
        .audit_annotations
        .insert(keys::AUDIT_REASON.into(), reason.to_string());
    response
}

fn check(ctx: Context<'_>, req: &AdmissionRequest<DynamicObject>) -> Result<(), String> {
    if req.sub_resource.is_some()
        || is_administrator(ctx.policy.settings(), &req.user_info, ctx.webhook_user)
    {
        return Ok(());
    }
    let Some(object) = req.object.as_ref() else {
        return Ok(());
    };
    let requester = Requester(req.user_info.username.as_deref().unwrap_or(""));
    let name = object
        .metadata
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(&req.name);
    let asked = Asked {
        ctx,
        requester,
        name,
        object,
    };
    match (
        req.kind.group.as_str(),
        req.kind.kind.as_str(),
        &req.operation,
    ) {
        ("", "PersistentVolumeClaim", Operation::Create) => create_claim(asked),
        ("", "PersistentVolumeClaim", Operation::Update) => {
            update_claim(asked, req.old_object.as_ref())
        }
        (SNAPSHOT_GROUP, "VolumeSnapshot", Operation::Create) => create_snapshot(asked),
        // Snapshot CRDs before external-snapshotter 6.3 (without its validation webhook) let the
        // source change until the snapshot is taken: a new source is judged as at creation.
        (SNAPSHOT_GROUP, "VolumeSnapshot", Operation::Update)
            if snapshot_source(object) != req.old_object.as_ref().map_or("", snapshot_source) =>
        {
            create_snapshot(asked)
        }
        _ => Ok(()),
    }
}

/// One request as the rules read it: who asks, for which object, under which policy.
#[derive(Clone, Copy)]
struct Asked<'a> {
    ctx: Context<'a>,
    requester: Requester<'a>,
    name: &'a str,
    object: &'a DynamicObject,
}

/// The requester's raw username.
#[derive(Clone, Copy)]
struct Requester<'a>(&'a str);

impl Requester<'_> {
    fn who(&self) -> String {
        if self.0.is_empty() {
            "an anonymous requester".into()
        } else {
            format!("'{}'", self.0)
        }
    }
}

/// Rules 1-5 for a new claim: reserved names, home and managed marks, static binding, clone
/// sources.
fn create_claim(asked: Asked<'_>) -> Result<(), String> {
    let Asked {
        ctx,
        requester,
        name,
        object,
    } = asked;
    if let Some(unit) = protected_home(ctx, name) {
        return Err(format!(
            "claim name '{name}' is reserved by a Home template of {unit}, a policy that failed validation; it stays reserved until that policy is fixed: ask an administrator"
        ));
    }
    match reservation(ctx.policy, ctx.namespace, ctx.claims, name) {
        None => {}
        Some(Reservation::Home { slug }) => {
            return Err(format!(
                "claim name '{name}' is reserved for the home of the user whose name slugs to '{slug}'; home claims are created by notebook-volumes on first launch (start a notebook), or by an administrator"
            ));
        }
        Some(Reservation::SecretHome { slug }) => {
            return Err(format!(
                "claim name '{name}' is reserved for the secret-level home of the user whose name slugs to '{slug}'; it is created by notebook-volumes on the user's first notebook with a secret share, or by an administrator"
            ));
        }
        Some(Reservation::MarkedHome { .. }) => {
            return Err(format!(
                "claim name '{name}' is taken by an existing home claim; only notebook-volumes and administrators create home claims"
            ));
        }
        Some(other) => {
            return Err(format!(
                "claim name '{name}' is {other}; share and library claims are provisioned by administrators: ask one to create it, or choose another name"
            ));
        }
    }
    if let Some(mark) = home_marks(object).first() {
        return Err(format!(
            "claim '{name}' sets {mark}, which marks home claims; only notebook-volumes and administrators may mark a claim as someone's home: remove it, or ask an administrator"
        ));
    }
    if let Some(key) = PROVISION_LABELS
        .iter()
        .find(|key| label(object, key).is_some())
    {
        return Err(format!(
            "claim '{name}' sets the label {key}, which marks the share and library claims notebook-volumes provisions; only notebook-volumes and administrators may set it: remove it"
        ));
    }
    let spec = claim_spec(name, object)?;
    if let Some(volume) = spec.volume_name.as_deref().filter(|v| !v.is_empty()) {
        return Err(format!(
            "claim '{name}' binds to the PersistentVolume '{volume}' by name (spec.volumeName); static binding is an administrator's action: remove spec.volumeName and let a storage class provision the volume, or ask an administrator"
        ));
    }
    let sources = [
        ("spec.dataSource", spec.data_source.as_ref()),
        ("spec.dataSourceRef", spec.data_source_ref.as_ref()),
    ];
    for (field, source) in sources {
        let Some(source) = source else { continue };
        if let Some(other) = source
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty() && *n != ctx.namespace.name)
        {
            return Err(format!(
                "claim '{name}' takes its data from namespace '{other}' ({field}.namespace); cross-namespace data sources are an administrator's action: ask an administrator"
            ));
        }
        if source.is_claim() {
            let verb = format!("clones claim '{}' ({field})", source.name);
            let subject = format!("claim '{name}'");
            guarded_source(ctx, requester, &subject, &verb, &source.name, "clone")?;
        }
    }
    Ok(())
}

/// Rule 3 on UPDATE (the home marks), and the one-time `spec.volumeName` that an unbound claim
/// still accepts (rule 5 would otherwise be a create-then-update away).
fn update_claim(asked: Asked<'_>, old: Option<&DynamicObject>) -> Result<(), String> {
    let Asked {
        requester,
        name,
        object,
        ..
    } = asked;
    let (new_label, new_owner) = (
        label(object, keys::HOME_LABEL),
        annotation(object, keys::OWNER_ANNOTATION),
    );
    let (old_label, old_owner) = (
        old.and_then(|o| label(o, keys::HOME_LABEL)),
        old.and_then(|o| annotation(o, keys::OWNER_ANNOTATION)),
    );
    let level_changed =
        label(object, keys::HOME_LEVEL_LABEL) != old.and_then(|o| label(o, keys::HOME_LEVEL_LABEL));
    if let Some(key) = PROVISION_LABELS
        .iter()
        .find(|key| label(object, key) != old.and_then(|o| label(o, key)))
    {
        return Err(format!(
            "claim '{name}': {} may not set, change or remove the label {key}, which marks the share and library claims notebook-volumes provisions; only notebook-volumes and administrators may: leave it as it is",
            requester.who(),
        ));
    }
    let changed = if new_label != old_label {
        Some(format!("the label {}", keys::HOME_LABEL))
    } else if level_changed {
        Some(format!("the label {}", keys::HOME_LEVEL_LABEL))
    } else if new_owner != old_owner {
        Some(format!("the annotation {}", keys::OWNER_ANNOTATION))
    } else {
        None
    };
    if let Some(mark) = changed {
        return Err(format!(
            "claim '{name}': {} may not set, change or remove {mark}, which marks home claims; only notebook-volumes and administrators may: leave it as it is, or ask an administrator",
            requester.who()
        ));
    }
    let volume = |o: Option<&DynamicObject>| {
        o.and_then(|o| o.data.pointer("/spec/volumeName"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let (new_volume, old_volume) = (volume(Some(object)), volume(old));
    if new_volume != old_volume && !VOLUME_BINDERS.contains(&requester.0) {
        return Err(format!(
            "claim '{name}': {} may not set spec.volumeName to '{new_volume}'; binding a claim to a chosen PersistentVolume is an administrator's action. If {} is your cluster's persistent volume controller, add it to administrators.users in the Settings document",
            requester.who(),
            requester.who()
        ));
    }
    Ok(())
}

/// Rule 6: a snapshot is a copy that any namespace member can restore into a new claim (on
/// creation, and when an update changes what it copies).
fn create_snapshot(asked: Asked<'_>) -> Result<(), String> {
    let source = snapshot_source(asked.object);
    if source.is_empty() {
        return Ok(());
    }
    let verb = format!("copies claim '{source}' (spec.source.persistentVolumeClaimName)");
    let subject = format!("volume snapshot '{}'", asked.name);
    guarded_source(
        asked.ctx,
        asked.requester,
        &subject,
        &verb,
        source,
        "snapshot",
    )
}

/// The claim a VolumeSnapshot copies (`""` for one made from existing content).
fn snapshot_source(object: &DynamicObject) -> &str {
    object
        .data
        .pointer("/spec/source/persistentVolumeClaimName")
        .and_then(|v| v.as_str())
        .unwrap_or("")
}

/// Denies copying `source` into a new object unless the requester may: nobody but administrators
/// copies share, library or protected claims; only a home's owner copies that home.
fn guarded_source(
    ctx: Context<'_>,
    requester: Requester<'_>,
    subject: &str,
    verb: &str,
    source: &str,
    action: &str,
) -> Result<(), String> {
    if let Some(unit) = protected_home(ctx, source) {
        return Err(format!(
            "{subject} {verb}, a name reserved by a Home template of {unit}, a policy that failed validation; only administrators may {action} it until that policy is fixed"
        ));
    }
    let own_template = |slug: &str| !requester.0.is_empty() && slug == identity::slug(requester.0);
    match reservation(ctx.policy, ctx.namespace, ctx.claims, source) {
        None => Ok(()),
        Some(
            secret
            @ (Reservation::SecretHome { .. } | Reservation::MarkedHome { secret: true, .. }),
        ) => Err(format!(
            "{subject} {verb}, {secret}; a copy would be an ordinary claim that the user's normal notebooks could mount, taking secret data out of the secret level (write-down), so only administrators may {action} it"
        )),
        Some(Reservation::Home { slug }) if own_template(&slug) => Ok(()),
        Some(Reservation::MarkedHome {
            owner: Some(owner), ..
        }) if !requester.0.is_empty() && owner == requester.0 => Ok(()),
        Some(home @ (Reservation::Home { .. } | Reservation::MarkedHome { .. })) => Err(format!(
            "{subject} {verb}, {home}; only the home's owner and administrators may {action} it"
        )),
        Some(other) => Err(format!(
            "{subject} {verb}, {other}; a {action} can become a read-write claim that any member of the namespace could mount, so only administrators may {action} share and library claims: ask an administrator"
        )),
    }
}

/// The rejected policy unit whose Home template can produce this name: such names stay reserved
/// (for nobody) until the unit is fixed.
fn protected_home<'p>(ctx: Context<'p>, claim: &str) -> Option<&'p str> {
    ctx.policy.protected_home(claim)
}

/// The home marks present on a new object, as they would be named in a message.
fn home_marks(object: &DynamicObject) -> Vec<String> {
    let mut marks = Vec::new();
    if label(object, keys::HOME_LABEL).is_some() {
        marks.push(format!("the label {}", keys::HOME_LABEL));
    }
    if label(object, keys::HOME_LEVEL_LABEL).is_some() {
        marks.push(format!("the label {}", keys::HOME_LEVEL_LABEL));
    }
    if annotation(object, keys::OWNER_ANNOTATION).is_some() {
        marks.push(format!("the annotation {}", keys::OWNER_ANNOTATION));
    }
    marks
}

fn label<'o>(object: &'o DynamicObject, key: &str) -> Option<&'o str> {
    object
        .metadata
        .labels
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

fn annotation<'o>(object: &'o DynamicObject, key: &str) -> Option<&'o str> {
    object
        .metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

fn claim_spec(name: &str, object: &DynamicObject) -> Result<ClaimSpec, String> {
    match object.data.get("spec") {
        None | Some(serde_json::Value::Null) => Ok(ClaimSpec::default()),
        Some(spec) => ClaimSpec::deserialize(spec).map_err(|e| {
            format!("cannot read the spec of claim '{name}': {e}; this is a bug in the caller or the webhook, report it")
        }),
    }
}
