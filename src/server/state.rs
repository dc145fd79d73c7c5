//! What every request handler reads: the current policy (swapped atomically on change), readiness,
//! metrics and, when running against a cluster, the caches and client.

use crate::admission::stamp::StampKey;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::{ArcSwap, ArcSwapOption};

use super::limits::RequestLimits;
use super::metrics::Metrics;
use crate::cluster::ClusterView;
use crate::policy::{PolicySnapshot, Protection, Unit};

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
        let snapshot = PolicySnapshot::compile_with(&units, &self.last_accepted);
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

/// Initial syncs the webhook waits for before it is ready.
#[derive(Debug, Default)]
pub struct Readiness {
    config_maps: AtomicBool,
    namespaces: AtomicBool,
    home_claims: AtomicBool,
    stamp_key: AtomicBool,
}

impl Readiness {
    /// Ready from the start (policy loaded from files).
    pub fn ready() -> Readiness {
        let r = Readiness::default();
        r.config_maps_synced();
        r.namespaces_synced();
        r.home_claims_synced();
        r.stamp_key_loaded();
        r
    }

    pub fn stamp_key_loaded(&self) {
        self.stamp_key.store(true, Ordering::Release);
    }

    pub fn config_maps_synced(&self) {
        self.config_maps.store(true, Ordering::Release);
    }

    pub fn namespaces_synced(&self) {
        self.namespaces.store(true, Ordering::Release);
    }

    pub fn home_claims_synced(&self) {
        self.home_claims.store(true, Ordering::Release);
    }

    /// The caches not listed yet.
    pub fn pending(&self) -> Vec<&'static str> {
        [
            (&self.config_maps, "policy ConfigMaps"),
            (&self.namespaces, "namespaces"),
            (&self.home_claims, "home PersistentVolumeClaims"),
            (&self.stamp_key, "the stamp key Secret"),
        ]
        .into_iter()
        .filter(|(flag, _)| !flag.load(Ordering::Acquire))
        .map(|(_, name)| name)
        .collect()
    }

    pub fn is_ready(&self) -> bool {
        self.pending().is_empty()
    }
}

/// Shared by both listeners and every worker thread; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub policy: Arc<ArcSwap<Policy>>,
    pub readiness: Arc<Readiness>,
    pub metrics: Arc<Metrics>,
    /// Namespace whose labelled ConfigMaps hold the policy (the trust root).
    pub policy_namespace: String,
    /// `None` when serving from local files: no namespace labels, no claim lookups or creation.
    pub cluster: Option<ClusterView>,
    /// Body deadline and the bound on CPU-heavy jobs, shared by every worker.
    pub limits: RequestLimits,
    /// The key of the stamps on StatefulSets and Notebooks: the cluster's shared Secret, or a key
    /// of this process alone when serving from files.
    pub stamp_key: Arc<ArcSwapOption<StampKey>>,
}

impl AppState {
    /// State for serving from policy units without a cluster (files, tests).
    pub fn offline(units: Vec<Unit>, policy_namespace: impl Into<String>) -> AppState {
        let policy = Policy::compile(units);
        let metrics = Metrics::new();
        metrics.policy_reloaded(policy.snapshot.rejected_units().count());
        AppState {
            policy: Arc::new(ArcSwap::from_pointee(policy)),
            readiness: Arc::new(Readiness::ready()),
            metrics: Arc::new(metrics),
            policy_namespace: policy_namespace.into(),
            cluster: None,
            limits: RequestLimits::default(),
            stamp_key: Arc::new(ArcSwapOption::new(
                StampKey::generate()
                    .ok()
                    .and_then(|bytes| StampKey::new(&bytes).ok())
                    .map(Arc::new),
            )),
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
