//! Which of the cluster caches have made their initial list (the webhook is ready once all have),
//! and which are reconnecting after a watch error.

use std::sync::atomic::{AtomicBool, Ordering};

/// The caches the webhook waits for before it is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    ConfigMaps,
    Namespaces,
    HomeClaims,
    VolumeClaims,
    /// Listed, or known not to be needed (the Settings do not use them, or the API server does
    /// not serve them).
    OpenShiftGroups,
}

impl Cache {
    pub const ALL: [Cache; 5] = [
        Cache::ConfigMaps,
        Cache::Namespaces,
        Cache::HomeClaims,
        Cache::VolumeClaims,
        Cache::OpenShiftGroups,
    ];

    /// As `/readyz` and the logs name it.
    pub fn name(self) -> &'static str {
        match self {
            Cache::ConfigMaps => "policy ConfigMaps",
            Cache::Namespaces => "namespaces",
            Cache::HomeClaims => "home PersistentVolumeClaims",
            Cache::VolumeClaims => "PersistentVolumeClaims",
            Cache::OpenShiftGroups => "OpenShift Groups",
        }
    }
}

/// Initial syncs the webhook waits for before it is ready, and which caches are re-watching
/// after a watch error (an API server restart, a network cut).
#[derive(Debug, Default)]
pub struct Readiness {
    /// Per cache (in `Cache::ALL` order): its first complete list has arrived.
    listed: [AtomicBool; 5],
    /// Per cache: a watch failed and no event has arrived since.
    stale: [AtomicBool; 5],
    /// The stamp key Secret has been read (or created).
    stamp_key: AtomicBool,
}

impl Readiness {
    /// Ready from the start (policy loaded from files).
    pub fn ready() -> Readiness {
        let r = Readiness::default();
        for cache in Cache::ALL {
            r.synced(cache);
        }
        r.stamp_key_loaded();
        r
    }

    pub fn stamp_key_loaded(&self) {
        self.stamp_key.store(true, Ordering::Release);
    }

    /// The first complete list of `cache` has arrived.
    pub fn synced(&self, cache: Cache) {
        self.listed[cache as usize].store(true, Ordering::Release);
    }

    /// Whether the policy ConfigMaps have been listed (the Settings are known).
    pub fn config_maps_listed(&self) -> bool {
        self.listed[Cache::ConfigMaps as usize].load(Ordering::Acquire)
    }

    /// The caches not listed yet.
    pub fn pending(&self) -> Vec<&'static str> {
        let mut pending = self.named(&self.listed, false);
        if !self.stamp_key.load(Ordering::Acquire) {
            pending.push("the stamp key Secret");
        }
        pending
    }

    pub fn is_ready(&self) -> bool {
        self.pending().is_empty()
    }

    /// The watch of `cache` failed: until its next event, admissions use the last complete list
    /// of it.
    pub fn watch_failed(&self, cache: Cache) {
        self.stale[cache as usize].store(true, Ordering::Release);
    }

    /// An event arrived on the watch of `cache`: it is current again.
    pub fn watch_ok(&self, cache: Cache) {
        self.stale[cache as usize].store(false, Ordering::Release);
    }

    /// Whether the home claims' watch failed and has not delivered an event since.
    pub fn home_claims_stale(&self) -> bool {
        self.stale[Cache::HomeClaims as usize].load(Ordering::Acquire)
    }

    /// The caches whose watch failed and has not delivered an event since.
    pub fn stale(&self) -> Vec<&'static str> {
        self.named(&self.stale, true)
    }

    /// The names of the caches whose flag is `set`.
    fn named(&self, flags: &[AtomicBool; 5], set: bool) -> Vec<&'static str> {
        Cache::ALL
            .iter()
            .zip(flags)
            .filter(|(_, flag)| flag.load(Ordering::Acquire) == set)
            .map(|(cache, _)| cache.name())
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
        r.watch_failed(Cache::Namespaces);
        r.watch_failed(Cache::ConfigMaps);
        assert_eq!(r.stale(), ["policy ConfigMaps", "namespaces"]);
        assert!(
            r.is_ready(),
            "stale caches do not make a listed replica unready"
        );
        r.watch_ok(Cache::ConfigMaps);
        assert_eq!(r.stale(), ["namespaces"]);
        assert!(!r.home_claims_stale());
        r.watch_failed(Cache::HomeClaims);
        assert!(r.home_claims_stale());
    }

    #[test]
    fn the_openshift_groups_are_waited_for_like_the_caches() {
        let r = Readiness::default();
        for cache in [
            Cache::ConfigMaps,
            Cache::Namespaces,
            Cache::HomeClaims,
            Cache::VolumeClaims,
        ] {
            r.synced(cache);
        }
        r.stamp_key_loaded();
        assert!(r.config_maps_listed());
        assert_eq!(r.pending(), ["OpenShift Groups"]);
        r.synced(Cache::OpenShiftGroups);
        assert!(r.is_ready());
        r.watch_failed(Cache::OpenShiftGroups);
        assert_eq!(r.stale(), ["OpenShift Groups"]);
    }
}
