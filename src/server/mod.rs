//! `notebook-volumes serve`: the webhook over TLS and the probe port, started in-process by `start`
//! (the binary and the tests use the same entry point).

pub mod app;
pub(crate) mod client_auth;
pub(crate) mod deadline;
pub mod limits;
pub mod probes;
pub(crate) mod scope;
pub(crate) mod state;
pub(crate) mod tls;
pub(crate) mod tls_config;
pub(crate) mod tls_files;
pub mod wire;
#[cfg(test)]
mod wire_props;
pub(crate) mod workloads;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer};
use tokio::task::JoinHandle;

use crate::cluster::sources;
use crate::files::{LoadError, load_policies_in};
use crate::policy::Severity;
pub use state::{AppState, Cache, Policy, Readiness};

/// Where policy comes from.
pub enum PolicySource {
    /// Local files or directories: no cluster at all (no namespace labels, claims treated as
    /// absent, nothing created).
    /// `namespace` is the one whose ConfigMaps `/validate` checks.
    Files {
        paths: Vec<PathBuf>,
        namespace: String,
    },
    /// Labelled ConfigMaps of `namespace`, through reflectors on this client.
    Cluster {
        client: kube::Client,
        namespace: String,
    },
}

/// Default connection cap: far below the usual 1024 file descriptors, far above what API
/// servers open (a few pooled connections each).
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

pub struct Config {
    pub listen: SocketAddr,
    pub probe_listen: SocketAddr,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub source: PolicySource,
    /// How often the certificate files are re-read.
    pub cert_poll: Duration,
    /// Grace period for in-flight requests on SIGTERM or `Handle::stop`.
    pub shutdown_timeout: Duration,
    /// Worker threads per listener (0: one per core).
    pub workers: usize,
    /// The webhook's own username; learnt from the API server (SelfSubjectReview) when unset.
    pub webhook_user: Option<String>,
    /// CA whose certificates clients of the TLS port must present (the API server's webhook
    /// client certificate); `None` accepts any client.
    pub client_ca: Option<PathBuf>,
    /// Time a request body may take to arrive once its headers are read.
    pub body_timeout: Duration,
    /// Connections open at once on the TLS port, across workers; further ones wait in the
    /// kernel's accept queue until one closes.
    pub max_connections: usize,
    /// CPU-heavy decisions (policy checks, large pods) running at once (0: one per core).
    pub blocking_jobs: usize,
    /// After a policy change, delete running notebooks that mount more than it grants (their
    /// spawner restarts them with current rights). Off: they are only counted and logged.
    pub delete_exceeding_pods: bool,
}

impl Config {
    pub fn new(tls_cert: PathBuf, tls_key: PathBuf, source: PolicySource) -> Config {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            probe_listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            tls_cert,
            tls_key,
            source,
            cert_poll: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(25),
            workers: 0,
            webhook_user: None,
            client_ca: None,
            body_timeout: Duration::from_secs(10),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            blocking_jobs: 0,
            delete_exceeding_pods: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Tls(#[from] tls_files::TlsError),
    #[error(transparent)]
    Policy(#[from] LoadError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Server(#[source] std::io::Error),
    #[error("server task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Identity(#[from] crate::cluster::identity::IdentityError),
}

/// A running server: its bound addresses, its state, and how to stop it.
pub struct Handle {
    /// The TLS (webhook) address actually bound (port 0 resolved).
    pub webhook_addr: SocketAddr,
    /// The plain probe address actually bound.
    pub probe_addr: SocketAddr,
    pub state: AppState,
    webhook: ServerHandle,
    probes: ServerHandle,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
    background: Vec<JoinHandle<()>>,
}

impl Handle {
    /// Stops both listeners (gracefully: in-flight requests finish within the shutdown timeout)
    /// and the background tasks.
    pub async fn stop(self, graceful: bool) -> Result<(), ServeError> {
        self.webhook.stop(graceful).await;
        self.probes.stop(graceful).await;
        self.wait().await
    }

    /// Waits until the servers stop (SIGTERM / SIGINT, or `stop`).
    pub async fn wait(self) -> Result<(), ServeError> {
        let mut result = Ok(());
        for server in self.servers {
            match server.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(ServeError::Server(e)),
                Err(e) => result = Err(ServeError::Join(e)),
            }
        }
        for task in self.background {
            task.abort();
        }
        result
    }
}

/// The TLS configuration `start` serves the pair at `cert`/`key` with (no client certificate
/// required), so that the benchmarks' no-op baseline runs exactly the server's TLS.
pub fn tls_server_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<rustls::ServerConfig, ServeError> {
    let reloader = tls::CertReloader::load(cert, key)?;
    Ok(tls_config::server_config(reloader.resolver(), None)?)
}

/// Loads the certificate, starts the policy source and both listeners. Must run inside a
/// multi-threaded tokio runtime; the background tasks are spawned on it.
pub async fn start(config: Config) -> Result<Handle, ServeError> {
    let reloader = tls::CertReloader::load(&config.tls_cert, &config.tls_key)?;
    let client_ca = match &config.client_ca {
        Some(path) => Some(client_auth::ClientCaReloader::load(path)?),
        None => None,
    };
    let tls_config = tls_config::server_config(
        reloader.resolver(),
        client_ca.as_ref().map(|c| c.verifier()),
    )?;
    let mut background = Vec::new();
    let mut state = match config.source {
        PolicySource::Files { paths, namespace } => {
            let loaded = load_policies_in(&paths, &namespace)?;
            let state = AppState::offline(loaded.units, namespace);
            let policy = state.policy.load();
            for f in loaded.findings.iter().chain(policy.snapshot.findings()) {
                match f.severity {
                    Severity::Error => tracing::error!(finding = %f, "invalid policy"),
                    Severity::Warning => tracing::warn!(finding = %f, "policy warning"),
                }
            }
            tracing::info!(
                files = loaded.files,
                shares = policy.snapshot.shares().len(),
                "serving policy from local files; no cluster access"
            );
            state
        }
        PolicySource::Cluster { client, namespace } => {
            let webhook_user = match config.webhook_user.clone() {
                Some(user) => user,
                None => crate::cluster::identity::whoami(&client).await?,
            };
            tracing::info!(%webhook_user, "the webhook's own identity");
            let mut state = AppState::offline(Vec::new(), namespace.clone());
            state.readiness = Arc::new(Readiness::default());
            state.stamp_key.store(None);
            background.push(tokio::spawn(load_stamp_key(
                client.clone(),
                namespace.clone(),
                state.stamp_key.clone(),
                state.readiness.clone(),
            )));
            let (events, writer) =
                crate::cluster::user_events::UserEvents::new(client.clone(), state.metrics.clone());
            background.push(tokio::spawn(writer));
            state.events = Some(events.clone());
            let started = sources::start(
                client,
                &namespace,
                state.policy.clone(),
                state.readiness.clone(),
                state.metrics.clone(),
                config.delete_exceeding_pods,
                Some(events),
            );
            background.extend(started.tasks);
            let mut view = started.view;
            view.webhook_user = Some(webhook_user);
            state.cluster = Some(view);
            state
        }
    };
    background.push(tokio::spawn(
        reloader.watch(config.cert_poll, state.metrics.clone()),
    ));
    if let Some(client_ca) = client_ca {
        background.push(tokio::spawn(
            client_ca.watch(config.cert_poll, state.metrics.clone()),
        ));
    }
    let blocking_jobs = match config.blocking_jobs {
        0 => limits::default_blocking_jobs(),
        n => n,
    };
    state.limits = limits::RequestLimits::new(config.body_timeout, blocking_jobs);
    let workers = match config.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    // actix caps connections per worker; the flag is the total.
    let per_worker = config.max_connections.max(1).div_ceil(workers);

    // HTTP/1.1 only (actix-web without its `http2` feature, so ALPN offers no `h2`). On SIGTERM,
    // HTTP/1.1 connections drain: a request in flight is answered with `Connection: close`, idle
    // keep-alive connections are closed, and the API server opens new ones, which the Service
    // sends to another replica. An HTTP/2 connection would carry all of an API server's requests
    // and stay open (actix sends no GOAWAY) until the shutdown timeout cut it with requests in
    // flight: the pinned connections of kubernetes#127335.
    let timeout = config.shutdown_timeout.as_secs();
    let webhook_state = state.clone();
    let webhook =
        HttpServer::new(move || App::new().configure(|cfg| app::configure(cfg, &webhook_state)))
            .shutdown_timeout(timeout)
            .client_disconnect_timeout(Duration::from_secs(5))
            // Slow callers: headers within 5 s, the TLS handshake within 3 s; the body deadline
            // is `app::configure`'s middleware.
            .client_request_timeout(Duration::from_secs(5))
            .tls_handshake_timeout(Duration::from_secs(3))
            // An answer leaves in several small TLS writes; with Nagle's algorithm the last one
            // waits for the API server's delayed ACK (about 40 ms), a third of notebook starts.
            .tcp_nodelay(true)
            .workers(workers)
            .max_connections(per_worker)
            // A TLS handshake holds a connection too: at most the cap at once.
            .max_connection_rate(per_worker);
    let probe_state = state.clone();
    let probes =
        HttpServer::new(move || App::new().configure(|cfg| probes::configure(cfg, &probe_state)))
            .shutdown_timeout(timeout)
            .workers(1);
    let webhook = webhook
        .bind_rustls_0_23(config.listen, tls_config)
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let probes = probes
        .bind(config.probe_listen)
        .map_err(|source| ServeError::Bind {
            addr: config.probe_listen,
            source,
        })?;
    let webhook_addr = webhook.addrs().first().copied().unwrap_or(config.listen);
    let probe_addr = probes
        .addrs()
        .first()
        .copied()
        .unwrap_or(config.probe_listen);
    let webhook = webhook.run();
    let probes = probes.run();
    let handles = (webhook.handle(), probes.handle());
    let servers = vec![tokio::spawn(webhook), tokio::spawn(probes)];
    tracing::info!(%webhook_addr, %probe_addr, "notebook-volumes webhook listening");
    Ok(Handle {
        webhook_addr,
        probe_addr,
        state,
        webhook: handles.0,
        probes: handles.1,
        servers,
        background,
    })
}

/// Reads (or creates) the stamp key Secret, retrying until the webhook may: not ready before.
async fn load_stamp_key(
    client: kube::Client,
    namespace: String,
    slot: Arc<arc_swap::ArcSwapOption<crate::admission::stamp::StampKey>>,
    readiness: Arc<Readiness>,
) {
    loop {
        match crate::cluster::stamp_key::load_or_create(&client, &namespace).await {
            Ok(key) => {
                slot.store(Some(Arc::new(key)));
                readiness.stamp_key_loaded();
                tracing::info!("stamp key loaded");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "stamp key not available yet; not ready");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}
