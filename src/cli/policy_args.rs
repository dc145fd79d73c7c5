//! What the offline commands share: which manifests are policy, namespace labels from flags, and
//! loading policy paths with the report on stderr.

use std::path::PathBuf;

/// Which ConfigMap manifests are policy: as the server reads them, labelled ones in this namespace.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyNamespace {
    /// Namespace whose labelled ConfigMaps are policy; manifests in other namespaces are skipped,
    /// manifests without a namespace count as in this one.
    #[arg(long = "policy-namespace", default_value = crate::policy::DEFAULT_POLICY_NAMESPACE)]
    pub policy_namespace: String,
}

/// Parses `k=v,k2=v2` (used for namespace labels).
pub fn parse_labels(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => Err(format!("'{pair}' is not key=value")),
        })
        .collect()
}

/// The namespace `audit` and `access` answer for: one pair of flags, so both read it alike.
#[derive(Debug, Clone, clap::Args)]
pub struct NamespaceArgs {
    /// The namespace to answer for: the pod's for `audit` (default: the pod's own, else
    /// `default`); for `access`, only the shares that reach it (default: every share).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Labels of that namespace, k=v,k2=v2 (for namespaceSelector scopes).
    #[arg(long, value_parser = parse_labels)]
    pub namespace_labels: Option<Vec<(String, String)>>,
}

impl NamespaceArgs {
    /// The namespace `name` with the labels of `--namespace-labels`.
    pub fn info(&self, name: &str) -> crate::policy::NamespaceInfo {
        crate::policy::NamespaceInfo {
            name: name.to_string(),
            labels: self.namespace_labels.iter().flatten().cloned().collect(),
        }
    }
}

/// Policy paths loaded and compiled: the snapshot, and every finding in order (the first `read`
/// of reading the files, then those of compiling).
pub struct Report {
    pub files: usize,
    pub units: usize,
    pub snapshot: crate::policy::PolicySnapshot,
    pub findings: Vec<crate::policy::Finding>,
    pub read: usize,
}

/// Loads and compiles policy paths: the one way `check`, `audit` and `access` read policy.
pub fn load_report(paths: &[PathBuf], namespace: &PolicyNamespace) -> Result<Report, String> {
    let loaded = crate::files::load_policies_in(paths, &namespace.policy_namespace)
        .map_err(|e| e.to_string())?;
    let snapshot = crate::policy::PolicySnapshot::compile(&loaded.units);
    let read = loaded.findings.len();
    let findings = loaded
        .findings
        .into_iter()
        .chain(snapshot.findings().cloned())
        .collect();
    Ok(Report {
        files: loaded.files,
        units: loaded.units.len(),
        snapshot,
        findings,
        read,
    })
}

/// `load_snapshot` when policy paths are given (the commands where policy is optional).
pub fn optional_snapshot(
    paths: &[PathBuf],
    namespace: &PolicyNamespace,
) -> Result<Option<crate::policy::PolicySnapshot>, String> {
    if paths.is_empty() {
        return Ok(None);
    }
    load_snapshot(paths, namespace).map(Some)
}

/// Loads and compiles policy paths, printing on stderr the ConfigMaps skipped, the errors, and
/// what rejected units keep protected (rejected units are absent and their claims protected, as
/// in the server).
pub fn load_snapshot(
    paths: &[PathBuf],
    namespace: &PolicyNamespace,
) -> Result<crate::policy::PolicySnapshot, String> {
    let report = load_report(paths, namespace)?;
    // Compile warnings (undefined groups) belong to `check`; file warnings (skipped ConfigMaps)
    // explain what is missing from the answer.
    let shown = report
        .findings
        .iter()
        .enumerate()
        .filter(|(i, f)| *i < report.read || f.severity == crate::policy::Severity::Error);
    for (_, f) in shown {
        eprintln!("{f}");
    }
    for line in protected_lines(&report.snapshot) {
        eprintln!("{line}");
    }
    Ok(report.snapshot)
}

/// One line per rejected unit: the claims and home claims it keeps protected until it is fixed.
pub fn protected_lines(policy: &crate::policy::PolicySnapshot) -> Vec<String> {
    policy
        .rejected_protection()
        .iter()
        .map(|(unit, p)| {
            let mut what = Vec::new();
            if !p.claims.is_empty() {
                let claims: Vec<&str> = p.claims.iter().map(String::as_str).collect();
                what.push(format!("claims {}", claims.join(", ")));
            }
            if !p.home_templates.is_empty() {
                let templates: Vec<&str> = p.home_templates.iter().map(String::as_str).collect();
                what.push(format!("home claims of {}", templates.join(", ")));
            }
            if what.is_empty() {
                format!("rejected {unit}: names no claim that could be protected")
            } else {
                format!(
                    "rejected {unit}: protected until it is fixed (every pod that references them is denied): {}",
                    what.join("; ")
                )
            }
        })
        .collect()
}
