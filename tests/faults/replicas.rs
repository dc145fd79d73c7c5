//! Webhook replicas as real processes (`notebook-volumes serve`), so they can be killed, and the
//! Secret volume they read their serving pair from, updated the way the kubelet updates it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::io::{BufRead, BufReader};
use std::process::{Child, Command};

use notebook_volumes::certs::GeneratedCerts;

/// A Secret volume: `tls.crt` and `tls.key` are symlinks through `..data`, which points at a
/// timestamped directory; an update writes a new directory and renames a new `..data` link over
/// the old one (one atomic rename, as the kubelet's AtomicWriter does).
pub struct SecretVolume {
    dir: tempfile::TempDir,
    version: u32,
}

impl SecretVolume {
    pub fn new(pair: &GeneratedCerts) -> SecretVolume {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut volume = SecretVolume { dir, version: 0 };
        volume.update(pair);
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(Path::new("..data").join(name), volume.path().join(name))
                .expect("symlink");
        }
        volume
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Swaps in a new serving pair.
    pub fn update(&mut self, pair: &GeneratedCerts) {
        self.version += 1;
        let name = format!("..2026_v{}", self.version);
        let target = self.path().join(&name);
        std::fs::create_dir(&target).expect("secret version directory");
        std::fs::write(target.join("tls.crt"), &pair.cert_pem).expect("tls.crt");
        std::fs::write(target.join("tls.key"), &pair.key_pem).expect("tls.key");
        let tmp = self.path().join("..data_tmp");
        std::os::unix::fs::symlink(&name, &tmp).expect("..data_tmp");
        std::fs::rename(&tmp, self.path().join("..data")).expect("rename ..data");
    }
}

/// What a replica needs to start.
#[derive(Clone)]
pub struct ReplicaConfig {
    pub kubeconfig: PathBuf,
    pub policy_namespace: String,
    pub certs: PathBuf,
    /// `--shutdown-timeout`.
    pub shutdown_timeout: Duration,
}

/// One `notebook-volumes serve` process on loopback ports.
pub struct Replica {
    pub name: String,
    pub webhook: SocketAddr,
    pub probe: SocketAddr,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Replica {
    /// Starts the process and waits until it listens (not until it is ready).
    pub async fn start(name: &str, config: &ReplicaConfig) -> Replica {
        let mut child = Command::new(env!("CARGO_BIN_EXE_notebook-volumes"))
            .arg("serve")
            .arg("--tls-cert")
            .arg(config.certs.join("tls.crt"))
            .arg("--tls-key")
            .arg(config.certs.join("tls.key"))
            .args(["--listen", "127.0.0.1:0", "--probe-listen", "127.0.0.1:0"])
            .arg("--policy-namespace")
            .arg(&config.policy_namespace)
            .arg("--kubeconfig")
            .arg(&config.kubeconfig)
            .arg("--shutdown-timeout")
            .arg(config.shutdown_timeout.as_secs().to_string())
            .env("NOTEBOOK_VOLUMES_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start notebook-volumes serve");
        let log: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
        let (addrs_tx, addrs_rx) = tokio::sync::oneshot::channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        // Threads drain both pipes, so the process never blocks on a full one.
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut addrs_tx = Some(addrs_tx);
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(addrs) = listening(&line)
                        && let Some(tx) = addrs_tx.take()
                    {
                        let _ = tx.send(addrs);
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
        }
        let (webhook, probe) = match tokio::time::timeout(Duration::from_secs(60), addrs_rx).await {
            Ok(Ok(addrs)) => addrs,
            _ => panic!(
                "replica {name} did not start listening; its log:\n{}",
                log.lock().unwrap().join("\n")
            ),
        };
        Replica {
            name: name.into(),
            webhook,
            probe,
            child,
            log,
        }
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        let start = Instant::now();
        while crate::support::webhook::http_get(self.probe, "/readyz")
            .await
            .0
            != 200
        {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "replica {} not ready after 60 s",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, as the kubelet sends after the preStop hook.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -TERM {}", self.pid());
    }

    /// SIGKILL: the process dies mid-request.
    pub async fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    /// Waits for the process to exit; how long it took and how it ended.
    pub async fn wait_exit(&mut self, limit: Duration) -> (Duration, std::process::ExitStatus) {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (start.elapsed(), status);
            }
            assert!(
                start.elapsed() < limit,
                "replica {} still running {limit:?} after SIGTERM; its log:\n{}",
                self.name,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Lines of its log that report a panic.
    pub fn panics(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("panicked"))
            .cloned()
            .collect()
    }

    /// The replica's metrics text (empty once it stopped).
    pub async fn metrics(&self) -> String {
        crate::support::webhook::http_get(self.probe, "/metrics")
            .await
            .1
    }
}

impl Drop for Replica {
    /// A replica never outlives its test.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The addresses in the "listening" log line.
fn listening(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    if value["message"] != "notebook-volumes webhook listening" {
        return None;
    }
    let webhook = value["webhook_addr"].as_str()?.parse().ok()?;
    let probe = value["probe_addr"].as_str()?.parse().ok()?;
    Some((webhook, probe))
}

/// Sum of a counter's samples whose line contains `filter`.
pub fn counter(metrics: &str, name: &str, filter: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
