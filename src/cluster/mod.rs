//! The cluster edge of the server: reflector caches of policy ConfigMaps, namespaces and home
//! claims, home claim I/O, and Events on invalid policy. The decision itself stays pure.

pub(crate) mod background_queue;
pub(crate) mod claims;
pub(crate) mod drive;
pub(crate) mod events;
pub(crate) mod home_growth;
pub(crate) mod home_touch;
pub(crate) mod identity;
pub mod live;
pub(crate) mod off_workers;
pub(crate) mod openshift_groups;
pub(crate) mod provisioner;
pub(crate) mod readiness;
pub(crate) mod revocation;
pub(crate) mod sources;
pub mod stamp_key;
pub mod user_events;
pub(crate) mod volume_claims;

use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};

use crate::policy::NamespaceInfo;

/// The cluster side as request handlers see it: a client and the caches kept by `sources`.
#[derive(Clone)]
pub struct ClusterView {
    pub client: Client,
    pub namespaces: Store<Namespace>,
    pub home_claims: Store<PersistentVolumeClaim>,
    /// Every claim, slimmed to what `claim_ready` reads: whether share and library claims exist,
    /// are Bound and shareable in a namespace.
    pub volume_claims: Store<PersistentVolumeClaim>,
    /// The webhook's own username (it passes its own claim guard when it creates home claims).
    pub webhook_user: Option<String>,
    /// The queue of last-used stamps on home claims.
    pub home_touch: home_touch::HomeTouch,
    /// The queue of home claims to grow.
    pub home_growth: home_growth::HomeGrowth,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot read namespace '{namespace}': {source}; check that the webhook may get namespaces, then retry"
)]
pub struct NamespaceError {
    pub namespace: String,
    #[source]
    pub source: kube::Error,
}

impl ClusterView {
    /// The namespace's labels, from the cache; a GET only when the namespace is newer than the
    /// cache (created a moment ago).
    pub async fn namespace_info(&self, name: &str) -> Result<NamespaceInfo, NamespaceError> {
        if let Some(ns) = self.namespaces.get(&ObjectRef::new(name)) {
            return Ok(info(&ns));
        }
        let api: Api<Namespace> = Api::all(self.client.clone());
        match api.get_opt(name).await {
            Ok(Some(ns)) => Ok(info(&ns)),
            Ok(None) => Ok(NamespaceInfo::new(name)),
            Err(source) => Err(NamespaceError {
                namespace: name.to_string(),
                source,
            }),
        }
    }
}

fn info(ns: &Namespace) -> NamespaceInfo {
    NamespaceInfo {
        name: ns.metadata.name.clone().unwrap_or_default(),
        labels: ns.metadata.labels.clone().unwrap_or_default(),
    }
}
