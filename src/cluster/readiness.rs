//! Which of the cluster caches have made their initial list: the webhook is ready once all have.

use std::sync::atomic::{AtomicBool, Ordering};

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
