//! `check`: validate policy before it reaches the cluster.

use std::path::PathBuf;

use super::policy_args::{PolicyNamespace, load_report, protected_lines};
use crate::policy::Severity;

pub fn run(paths: &[PathBuf], namespace: &PolicyNamespace) -> Result<i32, String> {
    let report = load_report(paths, namespace)?;
    let (snapshot, findings) = (&report.snapshot, &report.findings);
    for f in findings {
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
        report.files,
        report.units,
        snapshot.shares().len(),
        snapshot.libraries().len(),
    );
    if !rejected.is_empty() {
        out!(
            "rejected (its documents would be absent and the claims it names protected): {}",
            rejected.join(", ")
        );
    }
    for line in protected_lines(snapshot) {
        out!("{line}");
    }
    Ok(if errors > 0 { 1 } else { 0 })
}
