//! The helm binary the chart tests run: built once from the Go module proxy by
//! `tests/helm/build.sh` (cached outside the repository, like the test API server), and run with
//! its cache, configuration and data in a temporary directory, so nothing of the user's Helm
//! setup (repositories, plugins, registry logins) takes part.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Names a prebuilt helm v3 binary, skipping the build script (which honours it too).
pub const HELM_BIN_ENV: &str = "NOTEBOOK_VOLUMES_HELM_BIN";

/// What one helm command did.
#[derive(Debug)]
pub struct HelmOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// A helm binary with a private home.
pub struct Helm {
    bin: PathBuf,
    home: tempfile::TempDir,
}

impl Helm {
    /// Locates (building on first use) the helm binary.
    pub fn new() -> Result<Helm, String> {
        let bin = crate::process::built_binary(
            "tests/helm/build.sh",
            |status| {
                format!(
                    "building helm failed ({status}); run `make helm-bin` to see why, or set {HELM_BIN_ENV} to a helm v3 binary"
                )
            },
            |bin| format!("helm binary not found at {}", bin.display()),
        )?;
        let home = tempfile::tempdir().map_err(|e| format!("a home for helm: {e}"))?;
        Ok(Helm { bin, home })
    }

    /// Runs helm with `args`; with `kubeconfig`, against that cluster (otherwise with none, so
    /// `lookup` finds nothing and nothing can reach a real cluster by accident).
    pub fn run<I, S>(&self, args: I, kubeconfig: Option<&Path>) -> HelmOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let home = self.home.path();
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env(
                "KUBECONFIG",
                kubeconfig.map_or_else(|| home.join("no-kubeconfig"), Path::to_path_buf),
            )
            .stdin(Stdio::null());
        match command.output() {
            Ok(out) => HelmOutput {
                success: out.status.success(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
            Err(e) => HelmOutput {
                success: false,
                stdout: String::new(),
                stderr: format!("cannot run {}: {e}", self.bin.display()),
            },
        }
    }
}
