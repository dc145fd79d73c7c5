//! Which namespaces the webhook acts in, checked by the webhook itself. The webhook
//! configurations' `namespaceSelector` keeps the API server from sending other reviews, but any
//! client that reaches the TLS port can send one: a review for a namespace that is not enabled
//! is denied without any effect (no claim lookup, no claim creation).

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;

pub use crate::admission::namespace_scope::{OutOfScope, in_scope};
use crate::cluster::ClusterView;
use crate::policy::NamespaceInfo;

/// `in_scope` on the cached namespace; when the cache says "not enabled", the namespace is read
/// once from the API server, since it may have been labelled a moment ago (the API server's own
/// view, which sent the review, can be newer than the cache). The live read decides.
pub async fn confirm_in_scope(
    cluster: &ClusterView,
    cached: NamespaceInfo,
    own_namespace: &str,
) -> Result<NamespaceInfo, String> {
    match in_scope(&cached, own_namespace) {
        Ok(()) => return Ok(cached),
        Err(OutOfScope::Excluded(name)) => return Err(OutOfScope::Excluded(name).to_string()),
        Err(OutOfScope::NotEnabled(_)) => {}
    }
    let api: Api<Namespace> = Api::all(cluster.client.clone());
    let live = match api.get_opt(&cached.name).await {
        Ok(Some(ns)) => NamespaceInfo {
            name: ns.metadata.name.unwrap_or_default(),
            labels: ns.metadata.labels.unwrap_or_default(),
        },
        Ok(None) => NamespaceInfo::new(cached.name.clone()),
        Err(e) => {
            return Err(format!(
                "cannot read namespace '{}': {e}; check that the webhook may get namespaces, then retry",
                cached.name
            ));
        }
    };
    in_scope(&live, own_namespace)
        .map(|()| live)
        .map_err(|e| e.to_string())
}
