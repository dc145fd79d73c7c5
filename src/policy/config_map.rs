//! Policy units from ConfigMaps, whether they come from the cluster or from manifests in files
//! (as `kubectl get cm -o yaml` prints them).

use k8s_openapi::api::core::v1::ConfigMap;

use super::bounds;
use super::origin::{Finding, Origin, Severity, config_map_unit};
use super::parse::{RawDoc, Source, document_spans, read_documents};
use super::snapshot::Unit;
use super::yaml::Node;
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
    // The `---` parts of plain documents, by their first line.
    let mut plain: Vec<(&str, usize)> = Vec::new();
    // What could not be read (a syntax error and everything after it) stays in the file's own
    // unit: its errors are reported there, and what it names is protected like any rejected unit.
    if !read_errors.is_empty() {
        let read: std::collections::HashSet<usize> = docs.iter().map(|d| d.first_line).collect();
        plain.extend(
            document_spans(text)
                .into_iter()
                .filter(|(span, line)| !read.contains(line) && has_content(span)),
        );
    }
    let mut manifests = false;
    for raw in docs {
        match raw.node.get("kind").and_then(Node::as_str) {
            Some("ConfigMap" | "List") => {
                manifests = true;
                units.extend(config_map_units(
                    path,
                    &raw,
                    policy_namespace,
                    &mut findings,
                ));
            }
            _ => plain.push((raw.text, raw.first_line)),
        }
    }
    if !plain.is_empty() {
        // A file of policy documents is one source; beside ConfigMaps, each plain document is a
        // source of its own that knows the file line it starts at.
        let sources = if manifests {
            plain.sort_by_key(|(_, line)| *line);
            plain
                .into_iter()
                .map(|(span, first_line)| Source {
                    origin: Origin {
                        file: Some((path.to_string(), first_line - 1)),
                        ..file_origin.clone()
                    },
                    text: span.to_string(),
                })
                .collect()
        } else {
            vec![Source {
                origin: file_origin,
                text: text.to_string(),
            }]
        };
        units.insert(
            0,
            Unit {
                name: path.to_string(),
                sources,
            },
        );
    }
    (units, findings)
}

/// The policy units of one ConfigMap or List manifest, with the file line of each data key.
fn config_map_units(
    path: &str,
    raw: &RawDoc<'_>,
    policy_namespace: &str,
    findings: &mut Vec<Finding>,
) -> Vec<Unit> {
    let file_origin = Origin::file(path);
    let mut units = Vec::new();
    for item in raw.node.manifest_objects() {
        if item.get("kind").and_then(Node::as_str) != Some("ConfigMap") {
            continue;
        }
        let at = |line: usize, severity: Severity, message: String| Finding {
            severity,
            origin: file_origin.clone(),
            line,
            field: None,
            message,
        };
        let mut cm = match serde_json::from_value::<ConfigMap>(item.to_json()) {
            Ok(cm) => cm,
            Err(e) => {
                findings.push(at(
                    item.line,
                    Severity::Error,
                    format!("not a valid ConfigMap: {e}"),
                ));
                continue;
            }
        };
        let name = cm.metadata.name.clone().unwrap_or_default();
        let skip = |why: String| {
            at(
                item.line,
                Severity::Warning,
                format!("ConfigMap {name} skipped: {why}"),
            )
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
        let data = item.get("data");
        for source in &mut unit.sources {
            let key = source.origin.key.clone().unwrap_or_default();
            // A block scalar starts on the line after its key.
            let key_line = data
                .and_then(|d| d.entry(&key))
                .map_or(item.line, |(k, _)| k.line);
            source.origin.file = Some((path.to_string(), key_line));
        }
        units.push(unit);
    }
    units
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
            d.node.shift_lines(offset);
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
        for part in [
            "cm.yaml:13",
            "ConfigMap nv/team-a, key shares.yaml, line 4",
            "field 'mountPath'",
        ] {
            assert!(f.contains(part), "{f}");
        }
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
        assert_eq!(f.line, 3, "{f}");
        assert!(f.to_string().starts_with("big.yaml:17:"), "{f}");
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
        assert!(f.to_string().starts_with("mixed.yaml:10: "), "{f}");
    }
}
