//! `serve`: flags (with environment fallbacks for the Deployment), logging, and the runtime around
//! `server::start`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::server::{self, Config, PolicySource};

/// Policy namespace `/validate` assumes with `--policies` and no `--policy-namespace`.
pub const DEFAULT_POLICY_NAMESPACE: &str = "notebook-volumes";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Serving certificate chain (PEM); re-read when it changes on disk.
    #[arg(long, env = "NOTEBOOK_VOLUMES_TLS_CERT")]
    pub tls_cert: PathBuf,
    /// Private key of the serving certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "NOTEBOOK_VOLUMES_TLS_KEY")]
    pub tls_key: PathBuf,
    /// Address of the TLS webhook port (/mutate, /validate).
    #[arg(long, env = "NOTEBOOK_VOLUMES_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Address of the plain probe port (/healthz, /readyz, /metrics).
    #[arg(long, env = "NOTEBOOK_VOLUMES_PROBE_LISTEN")]
    #[arg(default_value = "0.0.0.0:8080")]
    pub probe_listen: SocketAddr,
    /// Namespace holding the policy ConfigMaps (default: the webhook's own, from POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE")]
    pub policy_namespace: Option<String>,
    /// Serve policy from local files or directories instead of the cluster. No API server is
    /// contacted then: namespaces have no labels, home claims count as absent and none is
    /// created. For development and demos.
    #[arg(
        long = "policies",
        env = "NOTEBOOK_VOLUMES_POLICIES",
        value_delimiter = ','
    )]
    pub policies: Vec<PathBuf>,
    /// Kubeconfig to use (default: in-cluster service account, then KUBECONFIG / ~/.kube/config).
    #[arg(long, env = "NOTEBOOK_VOLUMES_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Log lines as text for people or as JSON for a log pipeline.
    #[arg(long, value_enum, env = "NOTEBOOK_VOLUMES_LOG_FORMAT")]
    #[arg(default_value = "text")]
    pub log_format: LogFormat,
    /// CA certificate (PEM) that signs the API server's webhook client certificate. When set,
    /// the TLS port accepts only clients presenting a certificate chained to it; re-read when
    /// it changes on disk. Unset: any client may connect (see docs/security.md).
    #[arg(long, env = "NOTEBOOK_VOLUMES_CLIENT_CA_FILE")]
    pub client_ca_file: Option<PathBuf>,
    /// Seconds a request body may take to arrive after its headers (slower: 408, connection
    /// closed).
    #[arg(long, env = "NOTEBOOK_VOLUMES_BODY_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub body_timeout: u64,
    /// Connections open at once on the TLS port; more wait in the accept queue until one
    /// closes.
    #[arg(long, env = "NOTEBOOK_VOLUMES_MAX_CONNECTIONS", default_value_t = server::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    pub max_connections: usize,
    /// CPU-heavy checks (policy ConfigMaps, pods over 64 KiB) running at once (0: one per core).
    #[arg(long, env = "NOTEBOOK_VOLUMES_MAX_BLOCKING_JOBS", default_value_t = 0)]
    pub max_blocking_jobs: usize,
    /// After a policy change, delete running notebooks that mount more than it grants, so their
    /// spawner restarts them with current rights (unsaved work in them is lost; needs pods
    /// delete in RBAC). Off: they are counted (notebook_volumes_pods_exceeding_policy) and logged.
    #[arg(long)]
    pub delete_exceeding_pods: bool,
    /// Seconds in-flight requests get to finish after SIGTERM.
    #[arg(long, env = "NOTEBOOK_VOLUMES_SHUTDOWN_TIMEOUT", default_value_t = 25)]
    pub shutdown_timeout: u64,
    /// The webhook's own username (it creates home claims and passes its own claim guard).
    /// Default: asked from the API server with a SelfSubjectReview at start-up.
    #[arg(long, env = "NOTEBOOK_VOLUMES_WEBHOOK_USERNAME")]
    pub webhook_username: Option<String>,
}

#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(
        "no policy namespace: pass --policy-namespace or set POD_NAMESPACE (downward API fieldRef metadata.namespace)"
    )]
    NoNamespace,
    #[error("cannot read kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error(
        "cannot configure the Kubernetes client: {0}; run in a pod with a service account, pass --kubeconfig, or use --policies for a cluster-less demo"
    )]
    Client(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Serve(#[from] server::ServeError),
}

/// Installs the tracing subscriber (RUST_LOG overrides the default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        // The admission's span once (`span`), not again as a list of one (`spans`).
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .try_init(),
    };
    if let Err(e) = result {
        eprintln!("warning: logging already initialised: {e}");
    }
}

pub fn run(args: ServeArgs) -> Result<i32, String> {
    init_logging(args.log_format);
    // Process-wide default for the Kubernetes client; the server config names ring explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| StartError::Runtime(e).to_string())?;
    runtime
        .block_on(serve(args))
        .map(|()| 0)
        .map_err(|e| e.to_string())
}

async fn serve(args: ServeArgs) -> Result<(), StartError> {
    let source = if args.policies.is_empty() {
        let namespace = args
            .policy_namespace
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or(StartError::NoNamespace)?;
        let client = client(args.kubeconfig.as_ref()).await?;
        PolicySource::Cluster { client, namespace }
    } else {
        PolicySource::Files {
            paths: args.policies.clone(),
            namespace: args
                .policy_namespace
                .clone()
                .unwrap_or_else(|| DEFAULT_POLICY_NAMESPACE.into()),
        }
    };
    let mut config = Config::new(args.tls_cert, args.tls_key, source);
    config.listen = args.listen;
    config.probe_listen = args.probe_listen;
    config.shutdown_timeout = Duration::from_secs(args.shutdown_timeout);
    config.webhook_user = args.webhook_username;
    config.client_ca = args.client_ca_file;
    config.body_timeout = Duration::from_secs(args.body_timeout);
    config.max_connections = args.max_connections;
    config.blocking_jobs = args.max_blocking_jobs;
    config.delete_exceeding_pods = args.delete_exceeding_pods;
    let handle = server::start(config).await?;
    handle.wait().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn client(kubeconfig: Option<&PathBuf>) -> Result<kube::Client, StartError> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|source| {
                StartError::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                }
            })?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| StartError::Client(e.to_string()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| StartError::Client(e.to_string()))?,
    };
    kube::Client::try_from(config).map_err(|e| StartError::Client(e.to_string()))
}
