//! Running notebooks against current policy, read from the cluster: `audit --live` with the
//! caller's credentials, and the server after every policy change. Pods are listed a page at a
//! time per enabled namespace; the judging itself is `admission::revocation`.

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Client};

use crate::admission::revocation::{Excess, exceeding};
use crate::keys;
use crate::policy::{NamespaceInfo, PolicySnapshot};

/// Pods read per request.
const PAGE: u32 = 500;

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "cannot list {what}: {source}; the caller needs list on namespaces and pods (e.g. the `view` ClusterRole)"
    )]
    List {
        what: String,
        #[source]
        source: Box<kube::Error>,
    },
}

/// Every share mounted beyond current policy by a running notebook in the enabled namespaces
/// (or only `namespace`).
pub async fn exceeding_pods(
    client: &Client,
    policy: &PolicySnapshot,
    namespace: Option<&str>,
) -> Result<Vec<Excess>, LiveError> {
    let namespaces: Vec<NamespaceInfo> = {
        let api: Api<Namespace> = Api::all(client.clone());
        let selector = format!("{}={}", keys::INJECT_LABEL, keys::INJECT_ENABLED);
        let list = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| LiveError::List {
                what: "namespaces".into(),
                source: Box::new(source),
            })?;
        list.items
            .into_iter()
            .map(|ns| NamespaceInfo {
                name: ns.metadata.name.unwrap_or_default(),
                labels: ns.metadata.labels.unwrap_or_default(),
            })
            .filter(|ns| namespace.is_none_or(|n| n == ns.name))
            .collect()
    };
    let mut found = Vec::new();
    for ns in &namespaces {
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
        let mut params = ListParams::default().limit(PAGE);
        loop {
            let page = api.list(&params).await.map_err(|source| LiveError::List {
                what: format!("pods in namespace '{}'", ns.name),
                source: Box::new(source),
            })?;
            for pod in page.items.iter().filter(|p| running(p)) {
                found.extend(exceeding(policy, ns, pod));
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
    }
    Ok(found)
}

/// Not finished and not being deleted.
fn running(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// Deletes the notebooks of `found` (once each), so their spawner starts them again with current
/// rights; returns how many deletions the API server accepted.
pub async fn delete_pods(client: &Client, found: &[Excess]) -> usize {
    let mut pods: Vec<(&str, &str)> = found
        .iter()
        .map(|e| (e.namespace.as_str(), e.pod.as_str()))
        .collect();
    pods.sort_unstable();
    pods.dedup();
    let mut deleted = 0;
    for (namespace, name) in pods {
        let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                deleted += 1;
                tracing::warn!(%namespace, pod = %name, "deleted a notebook that mounts more than current policy grants");
            }
            Err(error) => {
                tracing::error!(%namespace, pod = %name, %error, "could not delete a notebook that mounts more than current policy grants")
            }
        }
    }
    deleted
}
