//! The API client of the administrator's commands (`adopt`, `homes`), from a kubeconfig or the
//! usual lookup (`KUBECONFIG`, `~/.kube/config`, in-cluster).

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
