//! `check`: validate policy before it reaches the cluster.

use std::path::PathBuf;

use crate::files::load_policies;
use crate::policy::{PolicySnapshot, Severity};

pub fn run(paths: &[PathBuf]) -> Result<i32, String> {
    let loaded = load_policies(paths).map_err(|e| e.to_string())?;
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
            "rejected (its shares would be absent and their claims protected): {}",
            rejected.join(", ")
        );
    }
    Ok(if errors > 0 { 1 } else { 0 })
}
