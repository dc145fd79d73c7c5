//! Builds (once, cached) and starts the `testcluster` binary: kube-apiserver
//! with etcd embedded, in one child process.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

/// Names a prebuilt testcluster binary, skipping the build script.
pub const BIN_ENV: &str = "NOTEBOOK_VOLUMES_TESTCLUSTER_BIN";

/// Names a directory under which each test binary's cluster keeps its data
/// directory (certificates, kubeconfig, `apiserver.log`) after the tests,
/// for debugging. Unset, the data directory is temporary and removed.
pub const DATA_DIR_ENV: &str = "NOTEBOOK_VOLUMES_TESTCLUSTER_DATA_DIR";

/// How long a started API server may take to report ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// With a node: it may first wait for another test node on this machine to stop.
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(900);

/// The JSON line testcluster prints on stdout once `/readyz` is OK.
#[derive(Debug, Clone, Deserialize)]
pub struct ReadyInfo {
    pub kubeconfig: PathBuf,
    pub server: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log_file: PathBuf,
    /// The API server's audit log (JSON lines; pod requests at Metadata level).
    pub audit_log: PathBuf,
    pub pid: u32,
    pub version: String,
    pub startup_seconds: f64,
    /// Present when a node was asked for.
    #[serde(default)]
    pub node: Option<NodeInfo>,
}

/// The node next to the API server (`testcluster -node`).
#[derive(Debug, Clone, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    /// Image names pods can use with `imagePullPolicy: Never`.
    pub images: Vec<String>,
    /// The images' directory (tests/cluster/images.sh), which also holds Debian's Lmod unpacked.
    pub images_dir: PathBuf,
    /// Directory with the logs of containerd, the kubelet and the controllers.
    pub log_dir: PathBuf,
    /// The default StorageClass (host-path provisioner).
    pub storage_class: String,
    pub start_seconds: f64,
}

/// A running testcluster child.
///
/// Its stdin is a pipe that nothing writes to: when this process exits, for
/// whatever reason, the pipe closes and testcluster shuts down.
pub struct ClusterProcess {
    pub info: ReadyInfo,
    child: Child,
}

impl ClusterProcess {
    /// Stops the child by closing its stdin, and waits for it.
    pub fn stop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Path of the testcluster binary: `$NOTEBOOK_VOLUMES_TESTCLUSTER_BIN`, or
/// the output of the build script, which builds it on first use and
/// afterwards only prints the cached path.
pub fn locate_binary() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os(BIN_ENV) {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!(
                "{BIN_ENV}={} is not a file; unset it to build the test API server with `make cluster-bin`",
                bin.display()
            ))
        };
    }
    built_binary(
        "tests/cluster/build.sh",
        |status| {
            format!(
                "building the test API server failed ({status}); run `make cluster-bin` to see why"
            )
        },
        |bin| {
            format!(
                "testcluster binary not found at {}: run `make cluster-bin`",
                bin.display()
            )
        },
    )
}

/// Renders the kustomization in `dir` with `testcluster kustomize DIR` (the
/// kustomize library kubectl embeds) and returns the multi-document YAML.
pub fn kustomize(dir: &Path) -> Result<String, String> {
    let bin = locate_binary()?;
    let output = Command::new(&bin)
        .arg("kustomize")
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !output.status.success() {
        return Err(format!(
            "`testcluster kustomize {}` failed ({}): {}\n(a testcluster binary from before the kustomize mode? rebuild with `make cluster-bin`)",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    String::from_utf8(output.stdout).map_err(|e| format!("kustomize output is not UTF-8: {e}"))
}

/// Renders the base manifests with the kustomize `component` (a path in the repository) added,
/// through a temporary kustomization: kustomize takes relative paths only, so each path goes up
/// from the temporary directory to `/` and down again.
pub fn kustomize_base_with(component: &str) -> Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let up = "../".repeat(dir.path().components().count().saturating_sub(1));
    let relative = |path: &str| -> Result<String, String> {
        let absolute = crate::repo(path)
            .canonicalize()
            .map_err(|e| format!("{path}: {e}"))?;
        Ok(format!(
            "{up}{}",
            absolute.display().to_string().trim_start_matches('/')
        ))
    };
    let kustomization = format!(
        "resources: [{}]\ncomponents: [{}]\n",
        relative("manifests/base")?,
        relative(component)?
    );
    std::fs::write(dir.path().join("kustomization.yaml"), kustomization)
        .map_err(|e| format!("writing the kustomization: {e}"))?;
    kustomize(dir.path())
}

/// Directory of the test node's image tarballs: the output of
/// `tests/cluster/images.sh`, which builds them on first use from the Debian
/// packages `make node-deps` downloads.
pub fn locate_images() -> Result<PathBuf, String> {
    match run_script("tests/cluster/images.sh")? {
        (status, Some(dir)) if status.success() => Ok(PathBuf::from(dir)),
        (status, _) => Err(format!(
            "building the test node's images failed ({status}); run `make node-deps` (as root) and see the messages above"
        )),
    }
}

/// The binary a build script of the repository makes (or finds) and names on its last line;
/// `failed` and `missing` word the errors when the script fails or names no file.
pub(crate) fn built_binary(
    script: &str,
    failed: impl FnOnce(std::process::ExitStatus) -> String,
    missing: impl FnOnce(&Path) -> String,
) -> Result<PathBuf, String> {
    let (status, last) = run_script(script)?;
    if !status.success() {
        return Err(failed(status));
    }
    let bin = last
        .map(PathBuf::from)
        .ok_or_else(|| format!("{script} printed no binary path"))?;
    if !bin.is_file() {
        return Err(missing(&bin));
    }
    Ok(bin)
}

/// Runs a script of the repository with its stderr shown (a first build takes minutes and
/// shows progress): its exit status and the last line it printed.
pub(crate) fn run_script(path: &str) -> Result<(std::process::ExitStatus, Option<String>), String> {
    let script = crate::repo(path);
    let output = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string());
    Ok((output.status, last))
}

/// Starts testcluster (with a node when `images` is given) and waits until
/// it reports ready; `apiserver_args` go to kube-apiserver (after `--`).
pub fn start(
    bin: &PathBuf,
    images: Option<&Path>,
    apiserver_args: &[String],
) -> Result<ClusterProcess, String> {
    let mut command = Command::new(bin);
    if let Some(images) = images {
        command.arg("-node").arg("-images").arg(images);
    }
    if let Some(root) = std::env::var_os(DATA_DIR_ENV) {
        let test_binary = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "tests".to_owned());
        let dir = PathBuf::from(root).join(format!("{test_binary}-{}", std::process::id()));
        command.arg("-data-dir").arg(dir);
    }
    if !apiserver_args.is_empty() {
        command.arg("--").args(apiserver_args);
    }
    let timeout = if images.is_some() {
        NODE_READY_TIMEOUT
    } else {
        READY_TIMEOUT
    };
    spawn_until_ready(command, bin, timeout)
}

/// Starts testcluster with `args` (for example `-data-dir` and `-port`, to start it again on
/// the same data and address) and waits until it reports ready.
pub fn start_with_args(bin: &Path, args: &[String]) -> Result<ClusterProcess, String> {
    let mut command = Command::new(bin);
    command.args(args);
    spawn_until_ready(command, bin, READY_TIMEOUT)
}

fn spawn_until_ready(
    mut command: Command,
    bin: &Path,
    timeout: Duration,
) -> Result<ClusterProcess, String> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start testcluster binary {}: {e}", bin.display()))?;

    // Keep the last lines of stderr for error messages; draining both pipes
    // in threads means the child never blocks on a full pipe.
    let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
    let stderr = child.stderr.take().expect("stderr is piped");
    let tail = Arc::clone(&stderr_tail);
    let stderr_reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut tail = tail.lock().unwrap();
            if tail.len() == 60 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    });
    let (ready_tx, ready_rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout is piped");
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        for line in lines.by_ref() {
            if line.trim_start().starts_with('{') {
                let _ = ready_tx.send(line);
                break;
            }
        }
        lines.for_each(drop);
    });

    let failure = |mut child: Child, what: String| {
        let _ = child.kill();
        let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
        let _ = stderr_reader.join(); // the pipe closed with the child
        let tail: Vec<String> = stderr_tail.lock().unwrap().iter().cloned().collect();
        format!(
            "test API server {what} ({status}); its last messages:\n{}",
            tail.join("\n")
        )
    };
    let line = match ready_rx.recv_timeout(timeout) {
        Ok(line) => line,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            return Err(failure(
                child,
                format!("not ready after {}s", timeout.as_secs()),
            ));
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            return Err(failure(child, "exited before it was ready".into()));
        }
    };
    let info: ReadyInfo = match serde_json::from_str(&line) {
        Ok(info) => info,
        Err(e) => {
            return Err(failure(
                child,
                format!("printed an unreadable ready line {line:?}: {e}"),
            ));
        }
    };
    Ok(ClusterProcess { info, child })
}
