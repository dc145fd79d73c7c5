//! `--openshift-groups PATH` of `access` and `audit`: OpenShift Group manifests from files or a
//! directory (`oc get groups -o yaml`), indexed as the server indexes the Groups it watches.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::files::{read, yaml_files};
use crate::policy::openshift_groups::OpenShiftGroups;
use crate::policy::yaml;
use crate::policy::{OpenShiftGroupsMode, PolicySnapshot};

/// Reads the Group manifests under `path` (Groups, `List`s or `GroupList`s of them). Another
/// kind is an error; a Group the server would skip is skipped with a note on stderr.
pub fn load(path: &Path) -> Result<OpenShiftGroups, String> {
    let mut objects: Vec<(usize, String, Value)> = Vec::new();
    for file in yaml_files(path).map_err(|e| e.to_string())? {
        let text = read(&file).map_err(|e| e.to_string())?;
        let (docs, error) = yaml::read_stream(&text);
        if let Some(e) = error {
            return Err(format!("{}:{}: {}", file.display(), e.line, e.message));
        }
        for doc in docs.iter().filter(|d| !d.is_null()) {
            let items = match doc.get("kind").and_then(yaml::Node::as_str) {
                Some("GroupList") => doc
                    .get("items")
                    .and_then(yaml::Node::as_seq)
                    .map_or_else(Vec::new, |items| items.iter().collect()),
                _ => doc.manifest_objects(),
            };
            for item in items {
                let kind = item.get("kind").and_then(yaml::Node::as_str);
                let api_version = item.get("apiVersion").and_then(yaml::Node::as_str);
                if kind != Some("Group") || api_version != Some("user.openshift.io/v1") {
                    return Err(format!(
                        "{}:{}: not an OpenShift Group (apiVersion user.openshift.io/v1, kind Group); pass the output of `oc get groups -o yaml`",
                        file.display(),
                        item.line
                    ));
                }
                objects.push((item.line, file.display().to_string(), item.to_json()));
            }
        }
    }
    let (groups, skipped) = OpenShiftGroups::index(objects.iter().map(|(_, _, v)| {
        (
            v.get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str),
            v.get("users"),
        )
    }));
    for s in &skipped {
        eprintln!(
            "OpenShift Group '{}' skipped, as the webhook skips it: {}",
            s.name, s.reason
        );
    }
    for (account, namespace) in groups.service_accounts() {
        eprintln!(
            "OpenShift Groups list service account '{account}': everyone with edit in namespace '{namespace}' may act as it and has its groups"
        );
    }
    Ok(groups)
}

/// The policy with the Groups under `path`, when given; says on stderr when the policy's
/// Settings leave them unused (as the webhook would).
pub fn attach(policy: PolicySnapshot, path: Option<&Path>) -> Result<PolicySnapshot, String> {
    let Some(path) = path else {
        return Ok(policy);
    };
    let groups = load(path)?;
    if policy.settings().openshift_groups == OpenShiftGroupsMode::Off {
        eprintln!(
            "the policy's Settings have openshiftGroups: off: the OpenShift Groups grant nothing (set openshiftGroups: auto to use them)"
        );
    }
    Ok(policy.with_openshift_groups(Arc::new(groups)))
}
