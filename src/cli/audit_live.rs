//! `audit --live`: running notebooks whose mounts exceed current policy, read from the cluster
//! with the caller's kubeconfig. Policy comes from --policies, else from the cluster's policy
//! ConfigMaps (what the webhook enforces now).

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ListParams;
use kube::{Api, Client};
use serde_json::json;

use super::audit::{AuditArgs, AuditOutput};
use super::policy_args;
use crate::admission::revocation::Excess;
use crate::keys;
use crate::policy::in_force::Policy;
use crate::policy::{OpenShiftGroupsMode, PolicySnapshot, unit_from_config_map};

pub fn run(args: &AuditArgs) -> Result<i32, String> {
    if matches!(args.output, AuditOutput::Patch | AuditOutput::Pod) {
        return Err("--live prints text or json; use --output text or --output json".into());
    }
    let found = super::kube_client::with_client(None, |client| live(client, args))?;
    print(args.output, &found)?;
    Ok(if found.is_empty() { 0 } else { 1 })
}

async fn live(client: Client, args: &AuditArgs) -> Result<Vec<Excess>, String> {
    let policy = if args.policies.is_empty() {
        cluster_policy(&client, &args.policy_namespace.policy_namespace).await?
    } else {
        policy_args::load_snapshot(&args.policies, &args.policy_namespace)?
    };
    // Members of OpenShift Groups are entitled as in the webhook.
    let policy = if policy.settings().openshift_groups == OpenShiftGroupsMode::Auto {
        let (groups, skipped) = crate::cluster::openshift_groups::list(&client)
            .await
            .map_err(|e| e.to_string())?;
        for s in &skipped {
            eprintln!(
                "OpenShift Group '{}' skipped, as the webhook skips it: {}",
                s.name, s.reason
            );
        }
        policy.with_openshift_groups(std::sync::Arc::new(groups))
    } else {
        policy
    };
    crate::cluster::live::exceeding_pods(&client, &policy, args.namespace.namespace.as_deref())
        .await
        .map_err(|e| e.to_string())
}

/// The policy the webhook compiles from the labelled ConfigMaps of `namespace`.
async fn cluster_policy(client: &Client, namespace: &str) -> Result<PolicySnapshot, String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let label = format!("{}=true", keys::POLICY_LABEL);
    let mut list = api
        .list(&ListParams::default().labels(&label))
        .await
        .map_err(|e| format!("cannot list the policy ConfigMaps in namespace '{namespace}': {e}; pass --policies or --policy-namespace"))?
        .items;
    // Older ConfigMaps win conflicts, as in the server.
    list.sort_by(|a, b| {
        (&a.metadata.creation_timestamp, &a.metadata.name)
            .cmp(&(&b.metadata.creation_timestamp, &b.metadata.name))
    });
    let units = list.iter().map(unit_from_config_map).collect();
    Ok(Policy::compile(units).snapshot)
}

fn print(output: AuditOutput, found: &[Excess]) -> Result<(), String> {
    if output == AuditOutput::Json {
        let out = json!({"exceeding": found});
        out!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    if found.is_empty() {
        out!("no running notebook mounts more than current policy grants");
        return Ok(());
    }
    out!(
        "{:<20} {:<28} {:<16} {:<18} {:<7} {:<4} WHY",
        "NAMESPACE",
        "POD",
        "USER",
        "SHARE",
        "MOUNTED",
        "NOW"
    );
    for e in found {
        out!(
            "{:<20} {:<28} {:<16} {:<18} {:<7} {:<4} {}",
            e.namespace,
            e.pod,
            e.user,
            e.share,
            e.mounted,
            e.granted,
            e.reason
        );
    }
    Ok(())
}
