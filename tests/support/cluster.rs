//! One Kubernetes API server per test binary, shared by all its tests.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::process::{self, ClusterProcess, NodeInfo};

/// Names a kubeconfig of an already running cluster to test against
/// instead of starting one (for example one from `make cluster`).
pub const KUBECONFIG_ENV: &str = "NOTEBOOK_VOLUMES_TEST_KUBECONFIG";

/// A running API server and an admin `kube::Config` for it.
///
/// The static holds no `kube::Client`: a client is bound to the tokio runtime
/// that created it, and every `#[tokio::test]` has its own runtime. Make
/// clients per test with [`TestCluster::admin_client`] and friends.
pub struct TestCluster {
    config: kube::Config,
    kubeconfig: PathBuf,
    /// `None` when testing against an external cluster.
    process: Option<Mutex<ClusterProcess>>,
    /// The node, when started with one.
    node: Option<NodeInfo>,
}

static SHARED: OnceLock<Result<TestCluster, String>> = OnceLock::new();
/// Set by [`TestCluster::use_external`]: wins over `$NOTEBOOK_VOLUMES_TEST_KUBECONFIG`.
static EXTERNAL: OnceLock<PathBuf> = OnceLock::new();
/// Set by [`TestCluster::shared_with_node`] before the cluster starts.
static WITH_NODE: AtomicBool = AtomicBool::new(false);

impl TestCluster {
    /// The cluster of this test binary: started on first use, or the one
    /// named by `$NOTEBOOK_VOLUMES_TEST_KUBECONFIG`.
    ///
    /// The child process stops when this process exits (its stdin closes),
    /// so no API server outlives the tests, even after a panic or a kill.
    ///
    /// # Panics
    /// If the cluster cannot be built, started or reached; every test that
    /// asks gets the same message.
    pub fn shared() -> &'static TestCluster {
        Self::shared_with_apiserver_args(&[])
    }

    /// As `shared`, with extra kube-apiserver flags for the whole test binary (the first
    /// caller's flags win). Needs a cluster of its own: refuses `$NOTEBOOK_VOLUMES_TEST_KUBECONFIG`.
    pub fn shared_with_apiserver_args(args: &[String]) -> &'static TestCluster {
        match SHARED.get_or_init(|| Self::start(args)) {
            Ok(cluster) => cluster,
            Err(message) => panic!("{message}"),
        }
    }

    /// The cluster of this test binary with a real node: containerd, a
    /// kubelet, kube-controller-manager and kube-scheduler (`testcluster
    /// -node`). Call it before anything else touches the cluster; later
    /// [`TestCluster::shared`] calls return the same cluster.
    ///
    /// # Panics
    /// If the node cannot start (the message says why), or the cluster
    /// already started without one.
    pub fn shared_with_node() -> &'static TestCluster {
        WITH_NODE.store(true, Ordering::SeqCst);
        let cluster = Self::shared();
        assert!(
            cluster.node.is_some() || cluster.process.is_none(),
            "this test binary's cluster started without a node: call TestCluster::shared_with_node() first"
        );
        cluster
    }

    /// The node, when this test binary started the cluster with one.
    pub fn node(&self) -> Option<&NodeInfo> {
        self.node.as_ref()
    }

    /// Makes the cluster of `kubeconfig`, which the caller started and manages (the fault suite
    /// restarts its own), the shared cluster of this process, as
    /// `$NOTEBOOK_VOLUMES_TEST_KUBECONFIG` would. Call it before anything touches the cluster;
    /// false when too late.
    pub fn use_external(kubeconfig: PathBuf) -> bool {
        EXTERNAL.set(kubeconfig).is_ok() && SHARED.get().is_none()
    }

    fn start(apiserver_args: &[String]) -> Result<TestCluster, String> {
        let external = EXTERNAL
            .get()
            .map(|p| p.clone().into_os_string())
            .or_else(|| std::env::var_os(KUBECONFIG_ENV));
        if let Some(path) = external {
            if !apiserver_args.is_empty() {
                return Err(format!(
                    "this test binary starts its own API server with {apiserver_args:?}; unset {KUBECONFIG_ENV}"
                ));
            }
            let kubeconfig = PathBuf::from(path);
            let config = load_config(&kubeconfig)?;
            eprintln!(
                "testcluster: using the cluster at {} ({KUBECONFIG_ENV}={})",
                config.cluster_url,
                kubeconfig.display()
            );
            return Ok(TestCluster {
                config,
                kubeconfig,
                process: None,
                node: None,
            });
        }

        let bin = process::locate_binary()?;
        let images = if WITH_NODE.load(Ordering::SeqCst) {
            Some(process::locate_images()?)
        } else {
            None
        };
        let started = Instant::now();
        let mut child = process::start(&bin, images.as_deref(), apiserver_args)?;
        let info = &child.info;
        eprintln!(
            "testcluster: Kubernetes {} API server ready at {} in {:.1}s (log: {})",
            info.version,
            info.server,
            started.elapsed().as_secs_f64(),
            info.log_file.display()
        );
        if let Some(node) = &info.node {
            eprintln!(
                "testcluster: node {} ready in {:.1}s (logs: {})",
                node.name,
                node.start_seconds,
                node.log_dir.display()
            );
        }
        let node = info.node.clone();
        let kubeconfig = info.kubeconfig.clone();
        let config = match load_config(&kubeconfig) {
            Ok(config) => config,
            Err(e) => {
                child.stop();
                return Err(e);
            }
        };
        Ok(TestCluster {
            config,
            kubeconfig,
            process: Some(Mutex::new(child)),
            node,
        })
    }

    /// The admin kubeconfig file (group `system:masters`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The API server's URL, for example `https://127.0.0.1:41234`.
    pub fn server_url(&self) -> String {
        self.config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_owned()
    }

    /// The API server's log file, when this test binary started it.
    pub fn log_file(&self) -> Option<PathBuf> {
        let process = self.process.as_ref()?;
        Some(process.lock().unwrap().info.log_file.clone())
    }

    /// The API server's audit log, when this test binary started it.
    pub fn audit_log(&self) -> Option<PathBuf> {
        let process = self.process.as_ref()?;
        Some(process.lock().unwrap().info.audit_log.clone())
    }

    /// A copy of the admin `kube::Config`, to adjust before making a client.
    pub fn admin_config(&self) -> kube::Config {
        self.config.clone()
    }

    /// A client with full rights. Call it inside the test's tokio runtime.
    pub fn admin_client(&self) -> kube::Client {
        client_from(self.admin_config())
    }

    /// A client that impersonates `user` in `groups`. The API server adds
    /// `system:authenticated` itself; RBAC applies as for that user.
    pub fn client_as(&self, user: &str, groups: &[&str]) -> kube::Client {
        let mut config = self.admin_config();
        config.auth_info.impersonate = Some(user.to_owned());
        config.auth_info.impersonate_groups =
            Some(groups.iter().map(|g| (*g).to_owned()).collect());
        client_from(config)
    }

    /// A client that acts as the ServiceAccount `namespace/name`, with the
    /// groups a real token of that ServiceAccount carries.
    pub fn client_as_service_account(&self, namespace: &str, name: &str) -> kube::Client {
        self.client_as(
            &format!("system:serviceaccount:{namespace}:{name}"),
            &[
                "system:serviceaccounts",
                &format!("system:serviceaccounts:{namespace}"),
                "system:authenticated",
            ],
        )
    }
}

fn client_from(config: kube::Config) -> kube::Client {
    kube::Client::try_from(config).expect(
        "cannot build a kube::Client for the test cluster (is this inside a tokio runtime?)",
    )
}

/// Loads the current context of a kubeconfig file. Nothing in it needs I/O
/// beyond reading the file (certificates are embedded), so no runtime is
/// needed.
fn load_config(path: &Path) -> Result<kube::Config, String> {
    let kubeconfig = Kubeconfig::read_from(path)
        .map_err(|e| format!("cannot read kubeconfig {}: {e}", path.display()))?;
    futures::executor::block_on(kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &KubeConfigOptions::default(),
    ))
    .map_err(|e| format!("cannot use kubeconfig {}: {e}", path.display()))
}
