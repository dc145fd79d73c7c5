//! What every request handler reads: the current policy (swapped atomically on change), readiness,
//! metrics and, when running against a cluster, the caches and client.

use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::admission::stamp::StampKey;

use super::limits::RequestLimits;
use crate::cluster::ClusterView;
pub use crate::cluster::readiness::{Cache, Readiness};
use crate::cluster::user_events::UserEvents;
use crate::metrics::Metrics;
use crate::policy::Unit;
pub use crate::policy::in_force::Policy;

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
    /// The queue of Events users see; `None` when serving from files.
    pub events: Option<UserEvents>,
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
            events: None,
        }
    }
}
