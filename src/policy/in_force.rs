//! The policy in force: one compiled snapshot with the units it came from and what the last
//! accepted version of each unit protected. Pure; the server swaps it atomically on change.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::openshift_groups::OpenShiftGroups;

use super::protection::Protection;
use super::snapshot::{PolicySnapshot, Unit};

/// One compiled policy set with the units it came from (the validating webhook recompiles them
/// with a candidate ConfigMap), and what the last accepted version of each unit protected.
#[derive(Debug, Default)]
pub struct Policy {
    pub snapshot: PolicySnapshot,
    pub units: Vec<Unit>,
    /// Unit name → claims and Home templates of its last accepted version, so that a unit whose
    /// next version is rejected keeps them protected. Held in memory only: after a restart a
    /// rejected unit is protected by what a scan of its text finds.
    pub last_accepted: BTreeMap<String, Protection>,
}

impl Policy {
    /// Compiles units with no history (start-up, files, tests).
    pub fn compile(units: Vec<Unit>) -> Policy {
        Policy::default().recompile(units)
    }

    /// Compiles the current units knowing what this policy's units last protected. Units that
    /// are gone (ConfigMap deleted) are forgotten; accepted ones record their new protection.
    /// CPU-bound (5,000 shares take about 0.1 s): call it off the async workers.
    pub fn recompile(&self, units: Vec<Unit>) -> Policy {
        self.recompile_with(units, Arc::clone(self.snapshot.openshift_groups()))
    }

    /// `recompile` with new OpenShift Group members (the server's watch of them changed).
    pub fn recompile_with(&self, units: Vec<Unit>, openshift: Arc<OpenShiftGroups>) -> Policy {
        let snapshot = PolicySnapshot::compile_with(&units, &self.last_accepted)
            .with_openshift_groups(openshift);
        let mut last_accepted: BTreeMap<String, Protection> = units
            .iter()
            .filter_map(|u| {
                let p = self.last_accepted.get(&u.name)?;
                Some((u.name.clone(), p.clone()))
            })
            .collect();
        last_accepted.extend(snapshot.accepted_protection());
        Policy {
            snapshot,
            units,
            last_accepted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Origin, Source};

    fn unit(text: &str) -> Unit {
        Unit {
            name: "ConfigMap nv/team".into(),
            sources: vec![Source {
                origin: Origin::config_map("nv", "team", "p.yaml"),
                text: text.into(),
            }],
        }
    }

    const GOOD: &str =
        "kind: Share\nname: finance\nclaimName: finance-data\nmountPath: /f\nlevel: private\n";
    const BROKEN: &str = "kind: Share\n  name: : x\n";

    #[test]
    fn a_rejected_version_keeps_the_protection_of_the_last_accepted_one() {
        let accepted = Policy::compile(vec![unit(GOOD)]);
        let broken = accepted.recompile(vec![unit(BROKEN)]);
        assert_eq!(
            broken.snapshot.protected_claim("finance-data"),
            Some("ConfigMap nv/team")
        );
        // Still broken on the next change elsewhere: still protected.
        let again = broken.recompile(vec![unit(BROKEN)]);
        assert!(again.snapshot.protected_claim("finance-data").is_some());
        // Fixed, then deleted: nothing left to protect.
        let fixed = again.recompile(vec![unit(GOOD)]);
        assert!(fixed.snapshot.protected_claim("finance-data").is_none());
        assert!(fixed.recompile(Vec::new()).last_accepted.is_empty());
        // Without history (a restart) only the scan protects, and it finds nothing here.
        let restarted = Policy::compile(vec![unit(BROKEN)]);
        assert!(restarted.snapshot.protected_claim("finance-data").is_none());
    }
}
