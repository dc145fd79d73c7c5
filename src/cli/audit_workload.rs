//! `audit` of a StatefulSet or Notebook: the stamp the webhook would write for the requester, and
//! what the first pod a trusted controller makes from it would get.

use serde_json::{Value, json};

use std::collections::HashMap;

use super::audit::{AuditArgs, AuditOutput, read_claims};
use super::policy_args;
use crate::admission::request::{Requester, pod_request, workload_request};
use crate::admission::stamp::StampKey;
use crate::admission::workload::{
    StampAction, WorkloadContext, WorkloadKind, first_pod, review_workload,
};
use crate::admission::{ClaimInfo, Context, review};
use crate::files::read;
use crate::policy::{NamespaceInfo, PolicySnapshot};

/// Who creates a StatefulSet's pods when the Settings trust no controller.
const STATEFULSET_CONTROLLER: &str = "system:serviceaccount:kube-system:statefulset-controller";

/// A StatefulSet or Notebook manifest is audited for its stamp and its first pod.
pub(crate) fn run_if_workload(args: &AuditArgs) -> Result<Option<i32>, String> {
    let Some(path) = &args.pod else {
        return Ok(None);
    };
    let text = read(path).map_err(|e| e.to_string())?;
    let Ok(value) = serde_saphyr::from_str::<serde_json::Value>(&text) else {
        return Ok(None);
    };
    let group = value
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .and_then(|v| v.split_once('/'))
        .map_or("", |(g, _)| g);
    let kind = value
        .get("kind")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let Some(kind) = WorkloadKind::of(group, kind) else {
        return Ok(None);
    };
    let namespace = args
        .namespace
        .namespace
        .clone()
        .or_else(|| {
            value
                .pointer("/metadata/namespace")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "default".into());
    let policy = policy_args::load_snapshot(&args.policies, &args.policy_namespace)?;
    let policy = super::openshift_groups::attach(policy, args.openshift_groups.as_deref())?;
    let ns = args.namespace.info(&namespace);
    let username = args.requester.clone().ok_or(
        "auditing a StatefulSet or Notebook needs --requester: the user (or trusted spawner) that creates it",
    )?;
    let claims = match &args.claims {
        Some(path) => read_claims(path, &namespace)?,
        None => HashMap::new(),
    };
    let audit = WorkloadAudit {
        policy: &policy,
        namespace: &ns,
        claims: &claims,
        requester: Requester {
            username,
            groups: args.requester_groups.clone(),
        },
        dry_run: args.dry_run,
        output: args.output,
    };
    run(audit, kind, &value).map(Some)
}

pub struct WorkloadAudit<'a> {
    pub policy: &'a PolicySnapshot,
    pub namespace: &'a NamespaceInfo,
    pub claims: &'a std::collections::HashMap<(String, String), ClaimInfo>,
    pub requester: Requester,
    pub dry_run: bool,
    pub output: AuditOutput,
}

pub fn run(a: WorkloadAudit<'_>, kind: WorkloadKind, object: &Value) -> Result<i32, String> {
    // A key of this process alone: the stamp's MAC is shown as the webhook would compute it with
    // another key; the decision does not depend on it.
    let key = StampKey::generate()
        .map_err(|e| e.to_string())
        .and_then(|b| StampKey::new(&b).map_err(|e| e.to_string()))?;
    let req = workload_request(object, &a.namespace.name, &a.requester, a.dry_run)?;
    let ctx = WorkloadContext {
        policy: a.policy,
        namespace: &a.namespace.name,
        stamp_key: Some(&key),
    };
    let outcome = review_workload(ctx, &req, None);
    let mut stamped = object.clone();
    json_patch::patch(&mut stamped, &outcome.patch())
        .map_err(|e| format!("the patch does not apply: {e}"))?;
    let pod_review = if outcome.allowed() {
        let pod = first_pod(kind, &stamped)?;
        let controller = a
            .policy
            .settings()
            .trusted_controllers
            .first()
            .cloned()
            .unwrap_or_else(|| STATEFULSET_CONTROLLER.into());
        let requester = Requester {
            username: controller,
            groups: Vec::new(),
        };
        let request = pod_request(&pod, &a.namespace.name, &requester, a.dry_run, false)?;
        let pod_ctx = Context {
            policy: a.policy,
            namespace: a.namespace,
            claims: a.claims,
            webhook_user: None,
            stamp_key: Some(&key),
        };
        Some((pod.clone(), review(pod_ctx, &request)))
    } else {
        None
    };
    let what = format!(
        "{} '{}'",
        kind.as_str(),
        object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    );
    let stamp_line = match &outcome.action {
        StampAction::Stamped(u) => format!("{what}: stamped for user {u}"),
        StampAction::Cleared(why) => {
            format!("{what}: no stamp ({why}); its pods get no user's volumes")
        }
        StampAction::Kept | StampAction::NotJudged => format!("{what}: stamp unchanged"),
    };
    match a.output {
        AuditOutput::Text => {
            if let Some(m) = outcome.message() {
                out!("DENIED: {m}");
            } else {
                out!("{stamp_line}");
            }
            for w in outcome.response.warnings.iter().flatten() {
                out!("warning: {w}");
            }
            if let Some((pod, decision)) = &pod_review {
                out!("its first pod, created by a trusted controller:");
                super::audit::print(AuditOutput::Text, pod, decision, None)?;
            }
        }
        AuditOutput::Json => {
            let pod = pod_review.as_ref().map(|(_, r)| {
                json!({
                    "allowed": r.allowed(), "user": r.user, "message": r.message(),
                    "mounts": r.mounts,
                })
            });
            let out = json!({
                "allowed": outcome.allowed(),
                "message": outcome.message(),
                "stampedUser": outcome.user(),
                "patch": outcome.patch(),
                "warnings": outcome.response.warnings.clone().unwrap_or_default(),
                "pod": pod,
            });
            out!(
                "{}",
                serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
            );
        }
        AuditOutput::Patch => out!(
            "{}",
            serde_json::to_string_pretty(&outcome.patch()).map_err(|e| e.to_string())?
        ),
        AuditOutput::Pod => out_raw!(
            "{}",
            serde_saphyr::to_string(&stamped).map_err(|e| e.to_string())?
        ),
    }
    let pod_allowed = pod_review.as_ref().is_none_or(|(_, r)| r.allowed());
    Ok(if outcome.allowed() && pod_allowed {
        0
    } else {
        1
    })
}
