//! `adopt`: the migration path from homes made by a spawner (docs/install.md). An administrator
//! maps existing claims to users by a name pattern and marks them as homes, exactly as the
//! webhook marks the claims it creates; the plan (`admission::adoption`) refuses claims mounted by
//! another user's pod. Unmarked claims stay untrusted.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;

use super::output::columns;
use super::policy_args::{self, PolicyNamespace};
use crate::admission::ClaimInfo;
use crate::admission::adoption::{self, ClaimFacts, Pattern, PodFacts, Row, Verdict};
use crate::keys;

#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// Namespace whose claims are adopted.
    #[arg(long)]
    pub namespace: String,
    /// A preset pattern: kubespawner (claim-{username}), odh (jupyterhub-nb-{username}-pvc) or
    /// workbench ({notebook}-workspace: the user of the notebook pods that mount it).
    #[arg(long, conflicts_with = "pattern", required_unless_present = "pattern")]
    pub preset: Option<String>,
    /// A claim-name pattern with {username} or {notebook} once, e.g. 'claim-{username}'.
    #[arg(long)]
    pub pattern: Option<String>,
    /// Policy files or directories: notes where the namespace's Home template names other claims.
    #[arg(long = "policies")]
    pub policies: Vec<PathBuf>,
    #[command(flatten)]
    pub policy_namespace: PolicyNamespace,
    /// Print the plan as a table and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Kubeconfig of an administrator (default: the usual lookup).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
}

/// Runs `adopt`; exit 0 when every matching claim is adopted (or was), 1 when some were refused.
pub fn run(args: &AdoptArgs) -> Result<i32, String> {
    super::kube_client::with_client(args.kubeconfig.as_ref(), |client| async move {
        let rows = execute(&client, args).await?;
        print_table(&rows, args.dry_run);
        let refused = rows
            .iter()
            .any(|r| matches!(r.verdict, Verdict::Conflict(_)));
        Ok(i32::from(refused))
    })
}

/// The plan for the namespace, applied unless `dry_run`: the rows as planned.
pub async fn execute(client: &kube::Client, args: &AdoptArgs) -> Result<Vec<Row>, String> {
    let pattern = match (&args.preset, &args.pattern) {
        (Some(preset), _) => Pattern::preset(preset),
        (None, Some(text)) => Pattern::parse(text),
        (None, None) => return Err("give --preset or --pattern".into()),
    }
    .map_err(|e| e.to_string())?;
    let snapshot = policy_args::optional_snapshot(&args.policies, &args.policy_namespace)?;
    let ns = crate::policy::NamespaceInfo::new(args.namespace.clone());
    let home = snapshot.as_ref().and_then(|s| s.home_for(&ns));
    let claims_api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &args.namespace);
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &args.namespace);
    let claims = claims_api
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("cannot list claims in '{}': {e}", args.namespace))?;
    let pods = pods_api
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("cannot list pods in '{}': {e}", args.namespace))?;
    let claims: Vec<ClaimFacts> = claims.items.iter().map(claim_facts).collect();
    let pods: Vec<PodFacts> = pods.items.iter().map(pod_facts).collect();
    let rows = adoption::plan(&pattern, &claims, &pods, home);
    if !args.dry_run {
        for row in rows.iter().filter(|r| r.verdict == Verdict::Adopt) {
            let Some(user) = &row.claim.user else {
                continue;
            };
            let marks = json!({"metadata": {
                "labels": {keys::HOME_LABEL: "true"},
                "annotations": {keys::OWNER_ANNOTATION: user},
            }});
            claims_api
                .patch(&row.claim.name, &PatchParams::default(), &Patch::Merge(&marks))
                .await
                .map_err(|e| format!("cannot mark claim '{}' as the home of '{user}': {e}; adopt needs an administrator's rights (Settings.administrators)", row.claim.name))?;
        }
    }
    Ok(rows)
}

fn claim_facts(pvc: &PersistentVolumeClaim) -> ClaimFacts {
    let info = ClaimInfo::of(pvc);
    let size = info.requested.clone().unwrap_or_default();
    ClaimFacts {
        name: pvc.metadata.name.clone().unwrap_or_default(),
        size,
        home: info.home,
        owner: info.owner,
        data_source: pvc.spec.as_ref().and_then(|s| {
            let from_ref = s
                .data_source_ref
                .as_ref()
                .map(|d| format!("{}/{}", d.kind, d.name));
            let from_source = s
                .data_source
                .as_ref()
                .map(|d| format!("{}/{}", d.kind, d.name));
            from_ref.or(from_source)
        }),
    }
}

fn pod_facts(pod: &Pod) -> PodFacts {
    let annotations: BTreeMap<String, String> =
        pod.metadata.annotations.clone().unwrap_or_default();
    PodFacts {
        name: pod.metadata.name.clone().unwrap_or_default(),
        user: PodFacts::user_of(&annotations),
        claims: pod
            .spec
            .iter()
            .flat_map(|s| s.volumes.iter().flatten())
            .filter_map(|v| v.persistent_volume_claim.as_ref())
            .map(|c| c.claim_name.clone())
            .collect(),
    }
}

fn print_table(rows: &[Row], dry_run: bool) {
    let verdict = if dry_run { "PLAN" } else { "RESULT" };
    let cells = rows.iter().map(|r| {
        let [claim, user, size] = r.claim.cells();
        [claim, user, size, r.verdict.to_string()]
    });
    let mut lines = columns(["CLAIM", "USER", "SIZE", verdict], cells).into_iter();
    if let Some(header) = lines.next() {
        out!("{header}");
    }
    for (line, r) in lines.zip(rows) {
        out!("{line}");
        if let Some(note) = &r.note {
            out!("  note: {note}");
        }
    }
    if rows.is_empty() {
        out!("no claim matches the pattern");
    }
}
