//! The validating webhook for policy ConfigMaps (docs/design.md, "Policy"), pure so it can be unit-tested and reused.
//! A candidate is compiled after every other current unit (first come, first served): a change can
//! be refused, but it can never push out policy that is already accepted.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};

use crate::policy::{
    Finding, PolicySnapshot, Severity, Unit, is_policy_config_map, unit_from_config_map,
};

/// The verdict on one candidate policy ConfigMap.
#[derive(Debug, Clone, Default)]
pub struct PolicyVerdict {
    /// The unit name, `ConfigMap <namespace>/<name>`.
    pub unit: String,
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

impl PolicyVerdict {
    pub fn accepted(&self) -> bool {
        self.errors.is_empty()
    }

    /// The denial message: every error, one per line, each naming key, line and field.
    pub fn message(&self) -> String {
        let mut out = format!(
            "policy {} is invalid ({} error{}); fix it and apply again:",
            self.unit,
            self.errors.len(),
            if self.errors.len() == 1 { "" } else { "s" }
        );
        for e in &self.errors {
            out.push('\n');
            out.push_str(&e.to_string());
        }
        out
    }
}

/// Compiles `current` with `candidate` replacing its previous version, placed last, and reports
/// the candidate's own findings.
pub fn validate_policy_config_map(current: &[Unit], candidate: &ConfigMap) -> PolicyVerdict {
    let unit = unit_from_config_map(candidate);
    let name = unit.name.clone();
    let mut units: Vec<Unit> = current.iter().filter(|u| u.name != name).cloned().collect();
    units.push(unit);
    let snapshot = PolicySnapshot::compile(&units);
    let mut verdict = PolicyVerdict {
        unit: name.clone(),
        ..PolicyVerdict::default()
    };
    if let Some(report) = snapshot.reports().iter().rev().find(|r| r.unit == name) {
        for f in &report.findings {
            match f.severity {
                Severity::Error => verdict.errors.push(f.clone()),
                Severity::Warning => verdict.warnings.push(f.clone()),
            }
        }
    }
    verdict
}

/// Answers a ConfigMap admission: CREATE and UPDATE of a labelled ConfigMap in the policy
/// namespace are validated; everything else (DELETE, other namespaces, unlabelled ConfigMaps) is
/// allowed untouched.
pub fn review_policy(
    current: &[Unit],
    policy_namespace: &str,
    req: &AdmissionRequest<ConfigMap>,
) -> (AdmissionResponse, Option<PolicyVerdict>) {
    let base = AdmissionResponse::from(req);
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return (base, None);
    }
    let Some(object) = req.object.as_ref() else {
        return (base, None);
    };
    let namespace = object
        .metadata
        .namespace
        .as_deref()
        .or(req.namespace.as_deref())
        .unwrap_or_default();
    if namespace != policy_namespace || !is_policy_config_map(object) {
        return (base, None);
    }
    let mut candidate = object.clone();
    candidate.metadata.namespace = Some(namespace.to_string());
    if candidate
        .metadata
        .name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        candidate.metadata.name = Some(req.name.clone());
    }
    let verdict = validate_policy_config_map(current, &candidate);
    let mut response = base;
    if !verdict.warnings.is_empty() {
        response.warnings = Some(verdict.warnings.iter().map(ToString::to_string).collect());
    }
    if !verdict.accepted() {
        response = response.deny(verdict.message());
        response.result.code = 422;
        response.result.reason = "Invalid".into();
    }
    (response, Some(verdict))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn cm(name: &str, text: &str) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cm.metadata.namespace = Some("nv".into());
        cm.metadata.labels = Some(BTreeMap::from([(
            crate::keys::POLICY_LABEL.to_string(),
            "true".to_string(),
        )]));
        cm.data = Some(BTreeMap::from([("p.yaml".to_string(), text.to_string())]));
        cm
    }

    const SHARE_A: &str = "kind: Share\nname: a\nclaimName: a\nmountPath: /data/a\nlevel: public\n";

    #[test]
    fn a_candidate_conflicting_with_an_accepted_unit_is_the_one_rejected() {
        let current = vec![unit_from_config_map(&cm("first", SHARE_A))];
        let second = cm(
            "second",
            "kind: Share\nname: b\nclaimName: b\nmountPath: /data/a/b\nlevel: public\n",
        );
        let verdict = validate_policy_config_map(&current, &second);
        assert!(!verdict.accepted());
        let message = verdict.message();
        assert!(
            message.contains("ConfigMap nv/second, key p.yaml, line 4"),
            "{message}"
        );
        assert!(message.contains("field 'mountPath'"), "{message}");
    }

    #[test]
    fn an_update_replaces_its_previous_version() {
        let current = vec![unit_from_config_map(&cm("first", SHARE_A))];
        let verdict = validate_policy_config_map(&current, &cm("first", SHARE_A));
        assert!(verdict.accepted(), "{:?}", verdict.errors);
    }

    #[test]
    fn undefined_groups_are_warnings_not_errors() {
        let text = "kind: Share\nname: a\nclaimName: a\nmountPath: /data/a\nlevel: private\nreaders: {groups: [nobody]}\n";
        let verdict = validate_policy_config_map(&[], &cm("c", text));
        assert!(verdict.accepted());
        assert_eq!(verdict.warnings.len(), 1);
    }
}
