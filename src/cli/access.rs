//! `access`: the matrix of principals named in policy × shares, for audits.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde_json::json;

use super::output::columns;
use super::policy_args::{self, NamespaceArgs, PolicyNamespace};
use crate::admission::access::share_access;
use crate::admission::grant::{SourcedSubject, explain};
use crate::admission::{Access, Subject};
use crate::policy::{OpenShiftGroupsMode, PolicySnapshot, Share};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccessOutput {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct AccessArgs {
    /// Policy files or directories (repeatable).
    #[arg(long = "policies", required = true)]
    pub policies: Vec<PathBuf>,
    #[command(flatten)]
    pub policy_namespace: PolicyNamespace,
    #[command(flatten)]
    pub namespace: NamespaceArgs,
    /// One user's access to each share, with what granted it (which list, which group and where
    /// the group came from) instead of the matrix.
    #[arg(long)]
    pub user: Option<String>,
    /// With --user: the groups the hub passes in the groups annotation, g1,g2.
    #[arg(long, value_delimiter = ',', requires = "user")]
    pub hub_groups: Vec<String>,
    /// With --user: the user's own Kubernetes groups (a pod they create themselves), g1,g2.
    #[arg(long, value_delimiter = ',', requires = "user")]
    pub requester_groups: Vec<String>,
    /// OpenShift Group manifests, a file or directory (`oc get groups -o yaml`): their members
    /// get those groups when the Settings say `openshiftGroups: auto`, as in the webhook.
    #[arg(long)]
    pub openshift_groups: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    pub output: AccessOutput,
}

/// `access --user`: one row per share with the access and its grant.
fn print_user(
    policy: &PolicySnapshot,
    shares: &[&Share],
    args: &AccessArgs,
    user: &str,
) -> Result<i32, String> {
    let subject = SourcedSubject::new(policy, user, &args.hub_groups, &args.requester_groups);
    let rows: Vec<_> = shares.iter().map(|s| (*s, explain(s, &subject))).collect();
    match args.output {
        AccessOutput::Json => {
            let groups: BTreeMap<&str, Vec<String>> = subject
                .groups
                .iter()
                .map(|(g, sources)| {
                    (
                        g.as_str(),
                        sources.iter().map(ToString::to_string).collect(),
                    )
                })
                .collect();
            let shares_json: Vec<_> = rows
                .iter()
                .map(|(s, (access, grant))| {
                    json!({"name": s.name, "level": s.level.as_str(), "access": access.as_str(),
                           "grantedBy": grant.as_ref().map(ToString::to_string)})
                })
                .collect();
            let out = json!({"user": user, "groups": groups, "shares": shares_json});
            out!(
                "{}",
                serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
            );
        }
        AccessOutput::Csv => {
            out!("share,level,access,granted_by");
            for (s, (access, grant)) in &rows {
                let by = grant.as_ref().map(ToString::to_string).unwrap_or_default();
                out!(
                    "{},{},{},\"{}\"",
                    s.name,
                    s.level.as_str(),
                    access.as_str(),
                    by.replace('"', "\"\"")
                );
            }
        }
        AccessOutput::Table => {
            for (g, sources) in &subject.groups {
                let from: Vec<String> = sources.iter().map(ToString::to_string).collect();
                out!("group {g}: from {}", from.join(", "));
            }
            let cells = rows.iter().map(|(s, (access, grant))| {
                [
                    s.name.clone(),
                    s.level.as_str().to_string(),
                    access.as_str().to_string(),
                    grant.as_ref().map(ToString::to_string).unwrap_or_default(),
                ]
            });
            for line in columns(["SHARE", "LEVEL", "ACCESS", "GRANTED BY"], cells) {
                out!("{line}");
            }
        }
    }
    Ok(0)
}

/// One row: a principal and its access to each share, in share order.
pub struct Row {
    pub kind: &'static str,
    pub name: String,
    pub access: Vec<Access>,
}

/// Users and groups named anywhere in the policy (and the members of OpenShift Groups when the
/// Settings use them), plus `*` for any notebook user.
pub fn matrix(policy: &PolicySnapshot, shares: &[&Share]) -> Vec<Row> {
    let mut users = BTreeSet::new();
    let mut groups = BTreeSet::new();
    for share in policy.shares() {
        for p in [&share.readers, &share.writers] {
            users.extend(p.users.iter().cloned());
            groups.extend(p.groups.iter().cloned());
        }
    }
    for (group, members) in policy.group_members() {
        groups.insert(group.clone());
        users.extend(members.iter().cloned());
    }
    // Members of OpenShift Groups, when the Settings use them.
    if policy.settings().openshift_groups == OpenShiftGroupsMode::Auto {
        users.extend(policy.openshift_groups().users().cloned());
    }
    let row = |kind, name: String, subject: Subject| Row {
        kind,
        access: shares.iter().map(|s| share_access(s, &subject)).collect(),
        name,
    };
    let mut rows = vec![row("anyone", "*".into(), Subject::default())];
    for g in groups {
        let subject = Subject {
            user: None,
            groups: [g.clone()].into(),
        };
        rows.push(row("group", g, subject));
    }
    for u in users {
        let subject = Subject {
            user: Some(u.clone()),
            groups: policy.groups_of(&u),
        };
        rows.push(row("user", u, subject));
    }
    rows
}

pub fn run(args: &AccessArgs) -> Result<i32, String> {
    let policy = policy_args::load_snapshot(&args.policies, &args.policy_namespace)?;
    let policy = super::openshift_groups::attach(policy, args.openshift_groups.as_deref())?;
    let shares: Vec<&Share> = match &args.namespace.namespace {
        Some(name) => policy.shares_in_scope(&args.namespace.info(name)),
        None => policy.shares().iter().collect(),
    };
    if let Some(user) = &args.user {
        return print_user(&policy, &shares, args, user);
    }
    let rows = matrix(&policy, &shares);
    let label = |r: &Row| format!("{}:{}", r.kind, r.name);
    match args.output {
        AccessOutput::Json => {
            let principals: Vec<_> = rows
                .iter()
                .map(|r| {
                    let access: BTreeMap<&str, &str> = shares
                        .iter()
                        .zip(&r.access)
                        .map(|(s, a)| (s.name.as_str(), a.as_str()))
                        .collect();
                    json!({"kind": r.kind, "name": r.name, "access": access})
                })
                .collect();
            let shares_json: Vec<_> = shares
                .iter()
                .map(|s| json!({"name": s.name, "level": s.level.as_str(), "claimName": s.claim_name, "mountPath": s.mount_path}))
                .collect();
            let out = json!({"namespace": args.namespace.namespace, "shares": shares_json, "principals": principals});
            out!(
                "{}",
                serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
            );
        }
        AccessOutput::Csv => {
            let header: Vec<&str> = shares.iter().map(|s| s.name.as_str()).collect();
            out!("principal,{}", header.join(","));
            for r in &rows {
                let cells: Vec<&str> = r.access.iter().map(|a| a.as_str()).collect();
                out!("{},{}", label(r), cells.join(","));
            }
        }
        AccessOutput::Table => {
            let first = rows
                .iter()
                .map(|r| label(r).len())
                .max()
                .unwrap_or(9)
                .max(9);
            let widths: Vec<usize> = shares
                .iter()
                .map(|s| s.name.len().max(s.level.as_str().len()))
                .collect();
            let mut line = format!("{:first$}", "PRINCIPAL");
            for (s, w) in shares.iter().zip(&widths) {
                line.push_str(&format!("  {:w$}", s.name));
            }
            out!("{}", line.trim_end());
            let mut line = format!("{:first$}", "(level)");
            for (s, w) in shares.iter().zip(&widths) {
                line.push_str(&format!("  {:w$}", s.level.as_str()));
            }
            out!("{}", line.trim_end());
            for r in &rows {
                let mut line = format!("{:first$}", label(r));
                for (a, w) in r.access.iter().zip(&widths) {
                    line.push_str(&format!("  {:w$}", a.as_str()));
                }
                out!("{}", line.trim_end());
            }
        }
    }
    Ok(0)
}
