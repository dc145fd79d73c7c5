//! `check`: validate policy before it reaches the cluster.

use std::path::PathBuf;

use super::policy_args::{PolicyNamespace, protected_lines};
use crate::files::load_policies_in;
use crate::policy::{PolicySnapshot, Severity};

pub fn run(paths: &[PathBuf], namespace: &PolicyNamespace) -> Result<i32, String> {
    let loaded = load_policies_in(paths, &namespace.policy_namespace).map_err(|e| e.to_string())?;
    let snapshot = PolicySnapshot::compile(&loaded.units);
    let findings: Vec<_> = loaded.findings.iter().chain(snapshot.findings()).collect();
    for f in &findings {
        out!("{f}");
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    let rejected: Vec<&str> = snapshot.rejected_units().map(|r| r.unit.as_str()).collect();
    out!(
        "{} file(s), {} unit(s): {} share(s), {} library(ies); {errors} error(s), {warnings} warning(s)",
        loaded.files,
        loaded.units.len(),
        snapshot.shares().len(),
        snapshot.libraries().len(),
    );
    if !rejected.is_empty() {
        out!(
            "rejected (its documents would be absent and the claims it names protected): {}",
            rejected.join(", ")
        );
    }
    for line in protected_lines(&snapshot) {
        out!("{line}");
    }
    Ok(if errors > 0 { 1 } else { 0 })
}
