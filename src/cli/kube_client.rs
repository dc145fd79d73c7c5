//! The API client of the commands that read the cluster (`adopt`, `homes`, `audit --live`),
//! from a kubeconfig or the usual lookup (`KUBECONFIG`, `~/.kube/config`, in-cluster).

use std::future::Future;
use std::path::PathBuf;

/// A client for `kubeconfig`, or the inferred configuration.
pub async fn client(kubeconfig: Option<&PathBuf>) -> Result<kube::Client, String> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("cannot read kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?
        }
        None => kube::Config::infer().await.map_err(|e| {
            format!("no cluster configuration: {e}; pass --kubeconfig or set KUBECONFIG")
        })?,
    };
    kube::Client::try_from(config).map_err(|e| format!("cannot build the API client: {e}"))
}

/// Runs `work` with a client for `kubeconfig` on a single-threaded runtime: the commands make
/// their calls one after the other.
pub fn with_client<T, F, Fut>(kubeconfig: Option<&PathBuf>, work: F) -> Result<T, String>
where
    F: FnOnce(kube::Client) -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async { work(client(kubeconfig).await?).await })
}
