//! `audit`: what the webhook would answer for a pod, from policy files, without a cluster.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use serde_json::json;

use super::policy_args::{self, NamespaceArgs, PolicyNamespace};
use crate::admission::request::{Requester, pod_request};
use crate::admission::{ClaimInfo, ClaimLookup, Context, ListedClaims, NoClaims, Review, review};
use crate::files::read;
use crate::keys;
use crate::policy::{provision, yaml};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditOutput {
    Text,
    Json,
    Patch,
    Pod,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Policy files or directories (repeatable); with --live, the default is the policy
    /// ConfigMaps of --policy-namespace in the cluster.
    #[arg(long = "policies", required_unless_present = "live")]
    pub policies: Vec<PathBuf>,
    #[command(flatten)]
    pub policy_namespace: PolicyNamespace,
    /// The pod, StatefulSet or Notebook manifest (YAML or JSON).
    #[arg(long, required_unless_present = "live", conflicts_with = "live")]
    pub pod: Option<PathBuf>,
    /// Instead of one manifest: the running notebooks of the cluster (read with the caller's
    /// kubeconfig) that mount a share beyond what current policy grants, and the rule now in
    /// force; --namespace limits it to one enabled namespace. Exit 1 when there are any.
    #[arg(long)]
    pub live: bool,
    #[command(flatten)]
    pub namespace: NamespaceArgs,
    /// Who creates the pod (default: the first trusted spawner of the Settings document).
    #[arg(long)]
    pub requester: Option<String>,
    /// The requester's groups, g1,g2.
    #[arg(long, value_delimiter = ',')]
    pub requester_groups: Vec<String>,
    /// OpenShift Group manifests, a file or directory (`oc get groups -o yaml`), used when the
    /// Settings say `openshiftGroups: auto`; with --live they are read from the cluster.
    #[arg(long, conflicts_with = "live")]
    pub openshift_groups: Option<PathBuf>,
    /// Answer as for `kubectl create --dry-run=server` (no claim would be created).
    #[arg(long)]
    pub dry_run: bool,
    /// The PersistentVolumeClaims of the namespace (manifests or a List, e.g. `kubectl get pvc -o
    /// yaml`): home claims with their owner annotation, and the share and library claims, judged
    /// for readiness (missing, not Bound, single-node) as the server judges them.
    #[arg(long)]
    pub claims: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    pub output: AuditOutput,
}

pub fn run(args: &AuditArgs) -> Result<i32, String> {
    let policy = policy_args::load_snapshot(&args.policies, &args.policy_namespace)?;
    let policy = super::openshift_groups::attach(policy, args.openshift_groups.as_deref())?;
    let path = args.pod.as_ref().ok_or("--pod is required")?;
    let pod_text = read(path).map_err(|e| e.to_string())?;
    let pod: Pod = yaml::from_str(&pod_text)
        .map_err(|e| format!("{} is not a valid Pod manifest: {e}", path.display()))?;
    let namespace = args
        .namespace
        .namespace
        .clone()
        .or_else(|| pod.metadata.namespace.clone())
        .unwrap_or_else(|| "default".into());
    let ns = args.namespace.info(&namespace);
    let username = match &args.requester {
        Some(r) => r.clone(),
        None => policy.settings().trusted_spawners.first().cloned().ok_or(
            "no --requester given and the policy has no trusted spawner to default to; pass --requester NAME",
        )?,
    };
    // A claims listing is the namespace's claims in full: share and library claims are judged
    // from it as the server judges them from its cache. Without one, they are not judged.
    let objects = match &args.claims {
        Some(path) => Some(read_claim_objects(path, &namespace)?),
        None => None,
    };
    let listed = objects.as_ref().map(|o| ListedClaims(claim_infos(o)));
    // Provisioned claims the policy no longer provisions here (kept, with their data).
    let orphans = objects
        .as_ref()
        .map(|o| provision::orphaned(&policy, &ns, o));
    let claims: &dyn ClaimLookup = match &listed {
        Some(listed) => listed,
        None => &NoClaims,
    };
    let requester = Requester {
        username,
        groups: args.requester_groups.clone(),
    };
    let request = pod_request(&pod, &namespace, &requester, args.dry_run, false)?;
    let ctx = Context {
        policy: &policy,
        namespace: &ns,
        claims,
        webhook_user: None,
        stamp_key: None,
    };
    let outcome = review(ctx, &request);
    print(args.output, &pod, &outcome, orphans.as_deref())?;
    Ok(if outcome.allowed() { 0 } else { 1 })
}

pub(super) fn read_claims(
    path: &std::path::Path,
    namespace: &str,
) -> Result<HashMap<(String, String), ClaimInfo>, String> {
    Ok(claim_infos(&read_claim_objects(path, namespace)?))
}

fn claim_infos(claims: &[PersistentVolumeClaim]) -> HashMap<(String, String), ClaimInfo> {
    claims
        .iter()
        .map(|pvc| {
            let ns = pvc.metadata.namespace.clone().unwrap_or_default();
            let name = pvc.metadata.name.clone().unwrap_or_default();
            ((ns, name), ClaimInfo::of(pvc))
        })
        .collect()
}

/// The claims of a listing, each with its namespace (`namespace` when it names none).
fn read_claim_objects(
    path: &std::path::Path,
    namespace: &str,
) -> Result<Vec<PersistentVolumeClaim>, String> {
    let text = read(path).map_err(|e| e.to_string())?;
    let (docs, error) = yaml::read_stream(&text);
    if let Some(e) = error {
        return Err(format!("{}:{}: {}", path.display(), e.line, e.message));
    }
    let mut claims = Vec::new();
    for doc in docs.iter().filter(|d| d.get("kind").is_some()) {
        for item in doc.manifest_objects() {
            let mut pvc: PersistentVolumeClaim =
                serde_json::from_value(item.to_json()).map_err(|e| {
                    format!(
                        "{}:{}: not a PersistentVolumeClaim: {e}",
                        path.display(),
                        item.line
                    )
                })?;
            pvc.metadata
                .namespace
                .get_or_insert_with(|| namespace.to_string());
            claims.push(pvc);
        }
    }
    Ok(claims)
}

/// The answer for the pod; with a claims listing (`orphans` is `Some`), the provisioned claims
/// the policy no longer provisions in the namespace (kept with their data).
pub(super) fn print(
    output: AuditOutput,
    pod: &Pod,
    outcome: &Review,
    orphans: Option<&[provision::Orphan]>,
) -> Result<(), String> {
    let text = |v: &serde_json::Value| serde_json::to_string_pretty(v).map_err(|e| e.to_string());
    match output {
        AuditOutput::Json => {
            let mut out = json!({
                "allowed": outcome.allowed(),
                "user": outcome.user,
                "message": outcome.message(),
                "mounts": outcome.mounts,
                "patch": outcome.patch,
                "warnings": outcome.warnings,
                "auditAnnotations": outcome.audit_annotations,
            });
            if let Some(orphans) = orphans {
                out["orphanedClaims"] = json!(orphans);
            }
            out!("{}", text(&out)?);
        }
        AuditOutput::Patch => out!(
            "{}",
            text(&serde_json::to_value(&outcome.patch).map_err(|e| e.to_string())?)?
        ),
        AuditOutput::Pod => {
            let mut doc = serde_json::to_value(pod).map_err(|e| e.to_string())?;
            json_patch::patch(&mut doc, &outcome.patch)
                .map_err(|e| format!("the patch does not apply: {e}"))?;
            out_raw!(
                "{}",
                serde_saphyr::to_string(&doc).map_err(|e| e.to_string())?
            );
        }
        AuditOutput::Text => {
            if !outcome.allowed() {
                out!("DENIED: {}", outcome.message().unwrap_or_default());
            } else {
                out!(
                    "allowed for user: {}",
                    outcome.user.as_deref().unwrap_or("(anonymous)")
                );
                if outcome.mounts.is_empty() {
                    out!("no policy volumes");
                }
                for m in &outcome.mounts {
                    let mode = if m.read_only { "ro" } else { "rw" };
                    out!(
                        "  {mode}  {:<40} {:<22} claim {}",
                        m.mount_path,
                        m.source,
                        m.claim_name
                    );
                }
                out!("patch: {} operation(s)", outcome.patch.len());
            }
            for w in &outcome.warnings {
                out!("warning: {w}");
            }
            if let Some(m) = outcome.audit_annotations.get(keys::AUDIT_MOUNTS) {
                out!("audit annotation mounts: {m}");
            }
            for o in orphans.unwrap_or_default() {
                out!(
                    "provisioned claim no longer in policy: '{}' in namespace '{}' (made for {}); notebook-volumes keeps it and its data: delete it by hand when no longer needed",
                    o.claim,
                    o.namespace,
                    o.owner
                );
            }
        }
    }
    Ok(())
}
