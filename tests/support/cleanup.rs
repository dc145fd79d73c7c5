//! Best-effort deletion of test objects when their guard is dropped, also
//! when the test panics.

use std::fmt::Debug;
use std::time::Duration;

use futures::future::BoxFuture;
use kube::api::DeleteParams;
use kube::core::{ClusterResourceScope, NamespaceResourceScope};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use super::TestCluster;

type Delete = Box<dyn FnOnce(Client) -> BoxFuture<'static, kube::Result<()>> + Send>;

/// Deletes one object on drop. For cluster-scoped objects a test creates
/// (webhook configurations, ClusterRoles), which no namespace deletion
/// would remove.
pub struct DeleteOnDrop {
    what: String,
    delete: Option<Delete>,
}

impl DeleteOnDrop {
    pub fn cluster_scoped<K>(name: &str) -> Self
    where
        K: Resource<Scope = ClusterResourceScope, DynamicType = ()>,
        K: Clone + DeserializeOwned + Debug + Send + 'static,
    {
        let name = name.to_owned();
        DeleteOnDrop {
            what: format!("{} {name}", K::kind(&())),
            delete: Some(Box::new(move |client| {
                Box::pin(async move {
                    let api = Api::<K>::all(client);
                    api.delete(&name, &DeleteParams::background())
                        .await
                        .map(drop)
                })
            })),
        }
    }

    pub fn namespaced<K>(namespace: &str, name: &str) -> Self
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
        K: Clone + DeserializeOwned + Debug + Send + 'static,
    {
        let (namespace, name) = (namespace.to_owned(), name.to_owned());
        DeleteOnDrop {
            what: format!("{} {namespace}/{name}", K::kind(&())),
            delete: Some(Box::new(move |client| {
                Box::pin(async move {
                    let api = Api::<K>::namespaced(client, &namespace);
                    api.delete(&name, &DeleteParams::background())
                        .await
                        .map(drop)
                })
            })),
        }
    }
}

impl Drop for DeleteOnDrop {
    /// Deletes from a thread of its own with its own runtime: drop may run
    /// while the test's runtime shuts down or unwinds, and clients are bound
    /// to the runtime that made them. Waits at most 10s.
    fn drop(&mut self) {
        let Some(delete) = self.delete.take() else {
            return;
        };
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let client = TestCluster::shared().admin_client();
                match tokio::time::timeout(Duration::from_secs(10), delete(client)).await {
                    Ok(Ok(())) => Some(()),
                    Ok(Err(kube::Error::Api(status))) if status.is_not_found() => Some(()),
                    _ => None,
                }
            })
        })
        .join();
        if !matches!(deleted, Ok(Some(()))) {
            eprintln!("note: could not delete {}", self.what);
        }
    }
}
