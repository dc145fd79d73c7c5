//! Which of the cluster caches have made their initial list (the webhook is ready once all have),
//! and which are reconnecting after a watch error.

use std::sync::atomic::{AtomicBool, Ordering};

/// Initial syncs the webhook waits for before it is ready, and which caches are re-watching
/// after a watch error (an API server restart, a network cut).
#[derive(Debug, Default)]
pub struct Readiness {
    config_maps: AtomicBool,
    namespaces: AtomicBool,
    home_claims: AtomicBool,
    volume_claims: AtomicBool,
    /// OpenShift Groups listed, or known not to be needed (the Settings do not use them, or the
    /// API server does not serve them).
    openshift_groups: AtomicBool,
    /// Per cache (in `CACHES` order): a watch failed and no event has arrived since.
    stale: [AtomicBool; 5],
    /// The stamp key Secret has been read (or created).
    stamp_key: AtomicBool,
}

/// The caches, as `/readyz` names them.
pub const CACHES: [&str; 5] = [
    "policy ConfigMaps",
    "namespaces",
    "home PersistentVolumeClaims",
    "PersistentVolumeClaims",
    "OpenShift Groups",
];

impl Readiness {
    /// Ready from the start (policy loaded from files).
    pub fn ready() -> Readiness {
        let r = Readiness::default();
        r.config_maps_synced();
        r.namespaces_synced();
        r.home_claims_synced();
        r.volume_claims_synced();
        r.openshift_groups_synced();
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

    pub fn volume_claims_synced(&self) {
        self.volume_claims.store(true, Ordering::Release);
    }

    pub fn openshift_groups_synced(&self) {
        self.openshift_groups.store(true, Ordering::Release);
    }

    /// Whether the policy ConfigMaps have been listed (the Settings are known).
    pub fn config_maps_listed(&self) -> bool {
        self.config_maps.load(Ordering::Acquire)
    }

    /// The caches not listed yet.
    pub fn pending(&self) -> Vec<&'static str> {
        let mut pending: Vec<&'static str> = [
            &self.config_maps,
            &self.namespaces,
            &self.home_claims,
            &self.volume_claims,
            &self.openshift_groups,
        ]
        .into_iter()
        .zip(CACHES)
        .filter(|(flag, _)| !flag.load(Ordering::Acquire))
        .map(|(_, name)| name)
        .collect();
        if !self.stamp_key.load(Ordering::Acquire) {
            pending.push("the stamp key Secret");
        }
        pending
    }

    pub fn is_ready(&self) -> bool {
        self.pending().is_empty()
    }

    /// The watch of `cache` (one of `CACHES`) failed: until its next event, admissions use the
    /// last complete list of it.
    pub fn watch_failed(&self, cache: &str) {
        if let Some(i) = CACHES.iter().position(|c| *c == cache) {
            self.stale[i].store(true, Ordering::Release);
        }
    }

    /// An event arrived on the watch of `cache`: it is current again.
    pub fn watch_ok(&self, cache: &str) {
        if let Some(i) = CACHES.iter().position(|c| *c == cache) {
            self.stale[i].store(false, Ordering::Release);
        }
    }

    /// Whether the home claims' watch failed and has not delivered an event since.
    pub fn home_claims_stale(&self) -> bool {
        self.stale[2].load(Ordering::Acquire)
    }

    /// The caches whose watch failed and has not delivered an event since.
    pub fn stale(&self) -> Vec<&'static str> {
        CACHES
            .iter()
            .zip(&self.stale)
            .filter(|(_, flag)| flag.load(Ordering::Acquire))
            .map(|(name, _)| *name)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_watch_is_stale_until_its_next_event() {
        let r = Readiness::ready();
        assert!(r.stale().is_empty());
        r.watch_failed("namespaces");
        r.watch_failed("policy ConfigMaps");
        assert_eq!(r.stale(), ["policy ConfigMaps", "namespaces"]);
        assert!(
            r.is_ready(),
            "stale caches do not make a listed replica unready"
        );
        r.watch_ok("policy ConfigMaps");
        assert_eq!(r.stale(), ["namespaces"]);
        r.watch_failed("no such cache");
        assert_eq!(r.stale(), ["namespaces"]);
        assert!(!r.home_claims_stale());
        r.watch_failed("home PersistentVolumeClaims");
        assert!(r.home_claims_stale());
    }

    #[test]
    fn the_openshift_groups_are_waited_for_like_the_caches() {
        let r = Readiness::default();
        r.config_maps_synced();
        r.namespaces_synced();
        r.home_claims_synced();
        r.volume_claims_synced();
        r.stamp_key_loaded();
        assert!(r.config_maps_listed());
        assert_eq!(r.pending(), ["OpenShift Groups"]);
        r.openshift_groups_synced();
        assert!(r.is_ready());
        r.watch_failed("OpenShift Groups");
        assert_eq!(r.stale(), ["OpenShift Groups"]);
    }
}
