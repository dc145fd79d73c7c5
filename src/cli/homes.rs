//! `homes`: the home claims of a namespace with their owner, size, level, last use and whether
//! the owner still appears in the policy; the administrator decides. It never deletes anything:
//! it prints the `kubectl` commands an administrator would run for homes that look orphaned.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Args;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::ListParams;

use super::output::columns;
use super::policy_args::{self, PolicyNamespace};
use crate::admission::ClaimInfo;
use crate::admission::claims::ClaimColumns;
use crate::keys;
use crate::policy::PolicySnapshot;

#[derive(Debug, Args)]
pub struct HomesArgs {
    /// Namespace whose home claims are listed.
    #[arg(long)]
    pub namespace: String,
    /// Policy files or directories: whether each owner still appears in them.
    #[arg(long = "policies")]
    pub policies: Vec<PathBuf>,
    #[command(flatten)]
    pub policy_namespace: PolicyNamespace,
    /// A home unused for longer than this many days is listed for review.
    #[arg(long, default_value_t = 90)]
    pub unused_days: u32,
    /// Kubeconfig (default: the usual lookup).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
}

/// One home claim as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeRow {
    /// Its user is the owner annotation's.
    pub claim: ClaimColumns,
    pub secret: bool,
    pub last_used: Option<String>,
    pub in_policy: InPolicy,
    /// Why an administrator may want to review it, if anything.
    pub review: Option<String>,
}

/// Whether a home's owner appears in the policy (the IN POLICY column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InPolicy {
    Yes,
    No,
    /// No policies were given to compare with.
    Unknown,
}

impl InPolicy {
    fn cell(self) -> &'static str {
        match self {
            InPolicy::Yes => "yes",
            InPolicy::No => "no",
            InPolicy::Unknown => "?",
        }
    }
}

/// Runs `homes`.
pub fn run(args: &HomesArgs) -> Result<i32, String> {
    super::kube_client::with_client(args.kubeconfig.as_ref(), |client| async move {
        let rows = execute(&client, args).await?;
        print(&args.namespace, &rows);
        Ok(0)
    })
}

/// The rows for the namespace's home claims (labelled `notebook-volumes.io/home=true`).
pub async fn execute(client: &kube::Client, args: &HomesArgs) -> Result<Vec<HomeRow>, String> {
    let policy = policy_args::optional_snapshot(&args.policies, &args.policy_namespace)?;
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &args.namespace);
    let list = api
        .list(&ListParams::default().labels(&format!("{}=true", keys::HOME_LABEL)))
        .await
        .map_err(|e| format!("cannot list claims in '{}': {e}", args.namespace))?;
    Ok(rows(
        &list.items,
        policy.as_ref(),
        Timestamp::now(),
        args.unused_days,
    ))
}

/// Every user the policy names: in a share's readers or writers, a group, or the administrators.
fn named_users(policy: &PolicySnapshot) -> BTreeSet<&str> {
    let mut users: BTreeSet<&str> = BTreeSet::new();
    for share in policy.shares() {
        for p in [&share.readers, &share.writers] {
            users.extend(p.users.iter().map(String::as_str));
        }
    }
    for members in policy.group_members().values() {
        users.extend(members.iter().map(String::as_str));
    }
    users.extend(
        policy
            .settings()
            .administrators
            .users
            .iter()
            .map(String::as_str),
    );
    users
}

/// The listing, pure: claims, the policy if given, the current time and the review threshold.
pub fn rows(
    claims: &[PersistentVolumeClaim],
    policy: Option<&PolicySnapshot>,
    now: Timestamp,
    unused_days: u32,
) -> Vec<HomeRow> {
    let named = policy.map(named_users);
    let mut out: Vec<HomeRow> = claims
        .iter()
        .map(|pvc| {
            let info = ClaimInfo::of(pvc);
            let last_used = pvc
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(keys::LAST_USED_ANNOTATION))
                .cloned();
            let in_policy = match &named {
                None => InPolicy::Unknown,
                Some(n) if info.owner.as_deref().is_some_and(|o| n.contains(o)) => InPolicy::Yes,
                Some(_) => InPolicy::No,
            };
            let idle_days = last_used
                .as_deref()
                .and_then(|t| t.parse::<Timestamp>().ok())
                .map(|t| now.as_second().saturating_sub(t.as_second()) / 86_400);
            let review = if in_policy == InPolicy::No {
                Some("the owner appears nowhere in the policy".to_string())
            } else if idle_days.is_some_and(|d| d > i64::from(unused_days)) {
                Some(format!("unused for {} days", idle_days.unwrap_or_default()))
            } else if last_used.is_none() {
                Some("no recorded use".to_string())
            } else {
                None
            };
            HomeRow {
                claim: ClaimColumns {
                    name: pvc.metadata.name.clone().unwrap_or_default(),
                    user: info.owner,
                    size: info.requested.clone().unwrap_or_default(),
                },
                secret: info.secret,
                last_used,
                in_policy,
                review,
            }
        })
        .collect();
    out.sort_by(|a, b| a.claim.name.cmp(&b.claim.name));
    out
}

fn print(namespace: &str, rows: &[HomeRow]) {
    let cells = rows.iter().map(|r| {
        let [claim, owner, size] = r.claim.cells();
        [
            claim,
            owner,
            size,
            (if r.secret { "secret" } else { "normal" }).to_string(),
            r.last_used.clone().unwrap_or_else(|| "never".to_string()),
            r.in_policy.cell().to_string(),
        ]
    });
    let header = ["CLAIM", "OWNER", "SIZE", "LEVEL", "LAST USED", "IN POLICY"];
    for line in columns(header, cells) {
        out!("{line}");
    }
    let review: Vec<&HomeRow> = rows.iter().filter(|r| r.review.is_some()).collect();
    if review.is_empty() {
        return;
    }
    out!("");
    out!("# For review (nothing was changed). Back a home up before deleting it, e.g.:");
    for r in review {
        out!(
            "# {}: {}",
            r.claim.name,
            r.review.as_deref().unwrap_or_default()
        );
        out!("kubectl -n {namespace} get pvc {} -o yaml", r.claim.name);
        out!("kubectl -n {namespace} delete pvc {}", r.claim.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pvc(name: &str, owner: &str, last_used: Option<&str>) -> PersistentVolumeClaim {
        let mut annotations = json!({keys::OWNER_ANNOTATION: owner});
        if let Some(t) = last_used {
            annotations[keys::LAST_USED_ANNOTATION] = json!(t);
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {keys::HOME_LABEL: "true"}, "annotations": annotations},
            "spec": {"resources": {"requests": {"storage": "2Gi"}}}
        }))
        .unwrap()
    }

    #[test]
    fn rows_say_who_is_gone_and_what_is_idle() {
        let policy = PolicySnapshot::compile(&[crate::policy::Unit {
            name: "p".into(),
            sources: vec![crate::policy::Source {
                origin: crate::policy::Origin::file("p.yaml"),
                text: "kind: Groups\ngroups: {team: [alice, bob]}\n".into(),
            }],
        }]);
        let now: Timestamp = "2026-11-28T00:00:00Z".parse().unwrap();
        let claims = [
            pvc("home-alice", "alice", Some("2026-11-27T10:00:00Z")),
            pvc("home-bob", "bob", Some("2026-01-01T10:00:00Z")),
            pvc("home-zed", "zed", Some("2026-11-27T10:00:00Z")),
        ];
        let rows = rows(&claims, Some(&policy), now, 90);
        assert_eq!(rows[0].review, None);
        assert_eq!(rows[0].in_policy, InPolicy::Yes);
        assert_eq!(rows[0].claim.size, "2Gi");
        assert_eq!(rows[1].review.as_deref(), Some("unused for 330 days"));
        assert_eq!(rows[2].in_policy, InPolicy::No);
        assert_eq!(
            rows[2].review.as_deref(),
            Some("the owner appears nowhere in the policy")
        );
    }
}
