//! Policy units from ConfigMaps, whether they come from the cluster or from manifests in files
//! (as `kubectl get cm -o yaml` prints them).

use k8s_openapi::api::core::v1::ConfigMap;
use serde_yaml::Value;

use super::bounds;
use super::lines::FieldLines;
use super::origin::{Finding, Origin, Severity, config_map_unit};
use super::parse::{RawDoc, Source, document_spans, read_documents};
use super::snapshot::Unit;
use crate::keys;

/// Namespace the webhook reads policy from unless told otherwise.
pub const DEFAULT_POLICY_NAMESPACE: &str = "notebook-volumes";

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
/// each policy ConfigMap manifest (also inside a `List`) is a unit of its own. A ConfigMap is
/// policy only as the server reads it: labelled `notebook-volumes.io/policy=true` and in
/// `policy_namespace` (a manifest without a namespace counts as in it, as
/// `kubectl apply -n <policy namespace>` would place it). Other ConfigMaps are skipped with a
/// warning saying why.
pub fn units_from_text(
    path: &str,
    text: &str,
    policy_namespace: &str,
) -> (Vec<Unit>, Vec<Finding>) {
    let file_origin = Origin::file(path);
    let mut plain = Vec::new();
    let mut units = Vec::new();
    if text.len() > bounds::MAX_FILE_BYTES {
        let finding = Finding {
            severity: Severity::Error,
            origin: file_origin,
            line: 1,
            field: None,
            message: format!(
                "the file is {} bytes, more than the {} read as policy; split it",
                text.len(),
                bounds::MAX_FILE_BYTES
            ),
        };
        return (units, vec![finding]);
    }
    // A file of manifests may be larger than one policy source: documents are read one by one.
    let (docs, read_errors) = read_documents_of_file(&file_origin, text);
    let mut findings = Vec::new();
    // What could not be read (a syntax error and everything after it) stays in the file's own
    // unit: its errors are reported there, and what it names is protected like any rejected unit.
    if !read_errors.is_empty() {
        let read: std::collections::HashSet<usize> = docs.iter().map(|d| d.first_line).collect();
        plain.extend(
            document_spans(text)
                .into_iter()
                .filter(|(span, line)| !read.contains(line) && has_content(span))
                .map(|(span, first_line)| RawDoc {
                    value: Value::Null,
                    text: span,
                    first_line,
                }),
        );
    }
    for raw in docs {
        let kind = raw.value.get("kind").and_then(Value::as_str).unwrap_or("");
        match kind {
            "ConfigMap" | "List" => {
                let lines = FieldLines::scan(raw.text, raw.first_line);
                let items = if kind == "List" {
                    raw.value
                        .get("items")
                        .and_then(Value::as_sequence)
                        .cloned()
                        .unwrap_or_default()
                } else {
                    vec![raw.value.clone()]
                };
                for item in items {
                    if item.get("kind").and_then(Value::as_str) != Some("ConfigMap") {
                        continue;
                    }
                    match serde_yaml::from_value::<ConfigMap>(item) {
                        Ok(mut cm) => {
                            let name = cm.metadata.name.clone().unwrap_or_default();
                            let skip = |why: String| Finding {
                                severity: Severity::Warning,
                                origin: file_origin.clone(),
                                line: lines.start(),
                                field: None,
                                message: format!("ConfigMap {name} skipped: {why}"),
                            };
                            if !is_policy_config_map(&cm) {
                                findings.push(skip(format!(
                                    "it has no label {}=true; the webhook ignores it",
                                    keys::POLICY_LABEL
                                )));
                                continue;
                            }
                            let namespace = cm
                                .metadata
                                .namespace
                                .get_or_insert_with(|| policy_namespace.to_string());
                            if namespace != policy_namespace {
                                findings.push(skip(format!(
                                    "it is in namespace '{namespace}'; the webhook reads policy only from '{policy_namespace}' (pass --policy-namespace to check another)"
                                )));
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
        // Keep the plain documents with their original line numbers by blanking the rest; each
        // keeps its own `---` line, so it is read again exactly as it was.
        let mut kept = vec![String::new(); text.lines().count()];
        for raw in &plain {
            for (i, line) in raw.text.lines().enumerate() {
                if let Some(slot) = kept.get_mut(raw.first_line - 1 + i) {
                    *slot = line.to_string();
                }
            }
            if !raw.text.starts_with("---")
                && raw.first_line >= 2
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

/// Whether a document's lines hold anything but blanks, comments and its `---` line.
fn has_content(span: &str) -> bool {
    span.lines().any(|l| {
        let t = l.trim();
        !(t.is_empty() || t.starts_with('#') || t == "---" || t.starts_with("--- #"))
    })
}

/// The documents of a file of manifests: the file may hold several ConfigMaps, so the limit on
/// one policy source applies to each document rather than to the whole file.
fn read_documents_of_file<'a>(origin: &Origin, text: &'a str) -> (Vec<RawDoc<'a>>, Vec<Finding>) {
    if text.len() <= bounds::MAX_SOURCE_BYTES {
        return read_documents(origin, text);
    }
    let mut docs = Vec::new();
    let mut findings = Vec::new();
    for (part, first_line) in document_spans(text) {
        let (d, f) = read_documents(origin, part);
        let offset = first_line - 1;
        docs.extend(d.into_iter().map(|mut d| {
            d.first_line += offset;
            d
        }));
        findings.extend(f.into_iter().map(|mut f| {
            f.line += offset;
            f
        }));
    }
    (docs, findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicySnapshot;

    #[test]
    fn config_map_manifests_become_units_with_file_lines() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: team-a\n  namespace: nv\n  labels:\n    notebook-volumes.io/policy: \"true\"\ndata:\n  shares.yaml: |\n    kind: Share\n    name: a\n    claimName: a\n    mountPath: relative\n    level: public\n";
        let (units, findings) = units_from_text("cm.yaml", text, "nv");
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
    fn files_of_manifests_are_capped_and_read_per_document_beyond_one_source() {
        let huge = format!("# {}\n", "x".repeat(bounds::MAX_FILE_BYTES));
        let (units, findings) = units_from_text("huge.yaml", &huge, "nv");
        assert!(units.is_empty());
        assert!(findings[0].message.contains("more than"), "{findings:?}");
        // Above one source's limit, each document is read on its own, keeping its lines.
        let cm = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels: {notebook-volumes.io/policy: \"true\"}\ndata:\n  p.yaml: |\n    kind: Groups\n    groups: {a: [b]}\n";
        let filler = format!("---\n# {}\n", "x".repeat(bounds::MAX_SOURCE_BYTES / 2));
        let text = format!("{filler}{filler}{cm}---\nkind: Groups\ngroups: [\n");
        let (units, findings) = units_from_text("big.yaml", &text, "nv");
        assert!(findings.is_empty(), "{findings:?}");
        assert_eq!(units.len(), 2);
        let snap = PolicySnapshot::compile(&units);
        let f = snap
            .findings()
            .next()
            .expect("the broken document is reported");
        assert_eq!(f.line, 17, "{f}");
    }

    #[test]
    fn unlabelled_config_maps_are_skipped_with_a_warning() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: kube-root-ca.crt, namespace: nv}\n  data: {ca.crt: x}\n";
        let (units, findings) = units_from_text("list.yaml", text, "nv");
        assert!(units.is_empty());
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::Warning);
    }

    #[test]
    fn plain_documents_keep_their_lines_beside_config_maps() {
        let text = "kind: Groups\ngroups: {a: [x]}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: {notebook-volumes.io/policy: \"true\"}}\ndata: {}\n---\nkind: Share\nname: Bad\nclaimName: a\nmountPath: /a\nlevel: public\n";
        let (units, _) = units_from_text("mixed.yaml", text, "nv");
        assert_eq!(units.len(), 2);
        let snap = PolicySnapshot::compile(&units);
        let f = snap.findings().next().unwrap();
        assert_eq!(f.line, 10);
    }
}
