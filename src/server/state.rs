//! What every request handler reads: the current policy (swapped atomically on change), readiness,
//! metrics and, when running against a cluster, the caches and client.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;

use super::limits::RequestLimits;
use super::metrics::Metrics;
use crate::cluster::ClusterView;
use crate::policy::{PolicySnapshot, Unit};

/// One compiled policy set with the units it came from (the validating webhook recompiles them
/// with a candidate ConfigMap).
#[derive(Debug, Default)]
pub struct Policy {
    pub snapshot: PolicySnapshot,
    pub units: Vec<Unit>,
}

impl Policy {
    pub fn compile(units: Vec<Unit>) -> Policy {
        Policy {
            snapshot: PolicySnapshot::compile(&units),
            units,
        }
    }
}

/// Initial syncs the webhook waits for before it is ready.
#[derive(Debug, Default)]
pub struct Readiness {
    config_maps: AtomicBool,
    namespaces: AtomicBool,
    home_claims: AtomicBool,
}

impl Readiness {
    /// Ready from the start (policy loaded from files).
    pub fn ready() -> Readiness {
        let r = Readiness::default();
        r.config_maps_synced();
        r.namespaces_synced();
        r.home_claims_synced();
        r
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
        }
    }
}
