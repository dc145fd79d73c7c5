//! Policy units from ConfigMaps, whether they come from the cluster or from manifests in files
//! (as `kubectl get cm -o yaml` prints them).

use k8s_openapi::api::core::v1::ConfigMap;
use serde_yaml::Value;

use super::lines::FieldLines;
use super::origin::{Finding, Origin, Severity, config_map_unit};
use super::parse::{Source, parse_value, split_documents};
use super::snapshot::Unit;
use crate::keys;

/// Whether a ConfigMap carries the policy label.
pub fn is_policy_config_map(cm: &ConfigMap) -> bool {
    cm.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(keys::POLICY_LABEL))
        .is_some_and(|v| v == "true")
}

/// Data keys that hold policy documents.
pub fn is_policy_key(key: &str) -> bool {
    key.ends_with(".yaml") || key.ends_with(".yml")
}

/// The unit of one ConfigMap: each `.yaml`/`.yml` data key, in key order.
pub fn unit_from_config_map(cm: &ConfigMap) -> Unit {
    let namespace = cm.metadata.namespace.as_deref().unwrap_or("default");
    let name = cm.metadata.name.as_deref().unwrap_or("");
    let sources = cm
        .data
        .iter()
        .flatten()
        .filter(|(k, _)| is_policy_key(k))
        .map(|(key, text)| Source {
            origin: Origin::config_map(namespace, name, key),
            text: text.clone(),
        })
        .collect();
    Unit {
        name: config_map_unit(namespace, name),
        sources,
    }
}

/// Splits a file into units: its plain policy documents form one unit named after the file, and
/// each labelled ConfigMap manifest (also inside a `List`) is a unit of its own. Unlabelled
/// ConfigMaps are skipped with a warning, as the webhook ignores them.
pub fn units_from_text(path: &str, text: &str) -> (Vec<Unit>, Vec<Finding>) {
    let file_origin = Origin::file(path);
    let mut plain = Vec::new();
    let mut units = Vec::new();
    let mut findings = Vec::new();
    for raw in split_documents(text) {
        let value = match parse_value(&file_origin, &raw) {
            Ok(v) => v,
            Err(f) => {
                findings.push(f);
                continue;
            }
        };
        let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
        match kind {
            "ConfigMap" | "List" => {
                let lines = FieldLines::scan(raw.text, raw.first_line);
                let items = if kind == "List" {
                    value
                        .get("items")
                        .and_then(Value::as_sequence)
                        .cloned()
                        .unwrap_or_default()
                } else {
                    vec![value]
                };
                for item in items {
                    if item.get("kind").and_then(Value::as_str) != Some("ConfigMap") {
                        continue;
                    }
                    match serde_yaml::from_value::<ConfigMap>(item) {
                        Ok(cm) => {
                            if !is_policy_config_map(&cm) {
                                findings.push(Finding {
                                    severity: Severity::Warning,
                                    origin: file_origin.clone(),
                                    line: lines.start(),
                                    field: None,
                                    message: format!(
                                        "ConfigMap {} has no label {}=true; the webhook ignores it",
                                        cm.metadata.name.as_deref().unwrap_or("?"),
                                        keys::POLICY_LABEL
                                    ),
                                });
                                continue;
                            }
                            let mut unit = unit_from_config_map(&cm);
                            for source in &mut unit.sources {
                                let key = source.origin.key.clone().unwrap_or_default();
                                // Block scalars start on the line after the key.
                                let key_line = lines.line_of_keys(&["data", &key]);
                                source.origin.file = Some((path.to_string(), key_line));
                            }
                            units.push(unit);
                        }
                        Err(e) => findings.push(Finding {
                            severity: Severity::Error,
                            origin: file_origin.clone(),
                            line: lines.start(),
                            field: None,
                            message: format!("not a valid ConfigMap: {e}"),
                        }),
                    }
                }
            }
            _ => plain.push(raw),
        }
    }
    if !plain.is_empty() {
        // Keep the plain documents with their original line numbers by blanking the rest.
        let mut kept = vec![String::new(); text.lines().count()];
        for raw in &plain {
            for (i, line) in raw.text.lines().enumerate() {
                if let Some(slot) = kept.get_mut(raw.first_line - 1 + i) {
                    *slot = line.to_string();
                }
            }
            if raw.first_line >= 2
                && let Some(slot) = kept.get_mut(raw.first_line - 2)
            {
                *slot = "---".to_string();
            }
        }
        units.insert(
            0,
            Unit {
                name: path.to_string(),
                sources: vec![Source {
                    origin: file_origin,
                    text: kept.join("\n"),
                }],
            },
        );
    }
    (units, findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicySnapshot;

    #[test]
    fn config_map_manifests_become_units_with_file_lines() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: team-a\n  namespace: nv\n  labels:\n    notebook-volumes.io/policy: \"true\"\ndata:\n  shares.yaml: |\n    kind: Share\n    name: a\n    claimName: a\n    mountPath: relative\n    level: public\n";
        let (units, findings) = units_from_text("cm.yaml", text);
        assert!(findings.is_empty(), "{findings:?}");
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].name, "ConfigMap nv/team-a");
        let snap = PolicySnapshot::compile(&units);
        let f = snap.findings().next().unwrap().to_string();
        assert!(f.contains("cm.yaml:13"), "{f}");
        assert!(
            f.contains("ConfigMap nv/team-a, key shares.yaml, line 4"),
            "{f}"
        );
        assert!(f.contains("field 'mountPath'"), "{f}");
    }

    #[test]
    fn unlabelled_config_maps_are_skipped_with_a_warning() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: kube-root-ca.crt, namespace: nv}\n  data: {ca.crt: x}\n";
        let (units, findings) = units_from_text("list.yaml", text);
        assert!(units.is_empty());
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::Warning);
    }

    #[test]
    fn plain_documents_keep_their_lines_beside_config_maps() {
        let text = "kind: Groups\ngroups: {a: [x]}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: {notebook-volumes.io/policy: \"true\"}}\ndata: {}\n---\nkind: Share\nname: Bad\nclaimName: a\nmountPath: /a\nlevel: public\n";
        let (units, _) = units_from_text("mixed.yaml", text);
        assert_eq!(units.len(), 2);
        let snap = PolicySnapshot::compile(&units);
        let f = snap.findings().next().unwrap();
        assert_eq!(f.line, 10);
    }
}
