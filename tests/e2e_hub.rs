//! The users' view, with the real spawner: JupyterHub with KubeSpawner spawns notebook servers
//! (jupyterhub-singleuser, JupyterLab) into a namespace the webhook guards, as the hub's own
//! service account, onto the test node; users log in through the hub's REST API and work through
//! the proxy with the Jupyter contents and kernels APIs, as JupyterLab does. Every assertion is on
//! what those APIs answer, not on pod specs. The policy is the example set (examples/policies).
//!
//! With `NOTEBOOK_VOLUMES_HUB_SCREENSHOT=<file.png>` (`make hub`), it also takes a headless
//! Chromium screenshot of alice's JupyterLab file browser.

use nv_test_support as support;

use serde_json::{Value, json};
use std::path::Path;
use support::TestCluster;
use support::env::Env;
use support::hub::{Hub, User};
use support::node::{bind_claims, install_library};

/// Where the example policy mounts the home and the library.
const HOME: &str = "/opt/app-root/src";
const LIBRARY: &str = "/opt/apps";
/// Claims the example policy refers to: shares and the library.
const CLAIMS: &[&str] = &[
    "shared-datasets",
    "team-notebooks",
    "finance-data",
    "mergers-data",
    "apps",
];
/// Where JupyterLab saves: paths relative to the server's root (the home).
const DATASETS: &str = "shares/datasets";
const FINANCE: &str = "shares/finance";
const MERGERS: &str = "shares/mergers";
const TEAM: &str = "shares/notebooks";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_work_through_jupyterhub_and_kubespawner() {
    TestCluster::shared_with_node();
    let env = Env::start_without_claims().await;
    let data = tempfile::Builder::new()
        .prefix("nv-hub-data-")
        .tempdir()
        .expect("data directory");
    install_library(&data.path().join("apps"), LIBRARY);
    let _volumes = bind_claims(&env.admin, env.ns.name(), data.path(), CLAIMS).await;
    std::fs::write(
        data.path().join("shared-datasets/README.md"),
        "# Datasets\nCurated by the data stewards.\n",
    )
    .expect("public share file");
    let hub = Hub::start(&env.admin, env.ns.name(), &["alice", "bob"], HOME).await;

    // alice (finance-admins, mergers-team): her home persists across a server restart.
    let alice = hub.login("alice").await;
    hub.start_server(&alice, None).await;
    let notebook = notebook_with("print('written through JupyterHub')");
    created(alice.save_notebook("analysis.ipynb", &notebook).await);
    hub.stop_server(&alice).await;
    hub.start_server(&alice, None).await;
    let reopened = ok(alice.open("analysis.ipynb").await);
    assert_eq!(
        reopened["content"]["cells"][0]["source"], "print('written through JupyterHub')",
        "the notebook saved before the restart reads back: {reopened}"
    );

    // The public share: readable, not writable, with the error JupyterLab shows.
    let readme = ok(alice.open(&format!("{DATASETS}/README.md")).await);
    assert_eq!(
        readme["content"],
        "# Datasets\nCurated by the data stewards.\n"
    );
    let refused = alice
        .save_text(&format!("{DATASETS}/alice.txt"), "not here")
        .await;
    assert_read_only_refusal(&refused, &format!("{DATASETS}/alice.txt"));

    // A share she may write (finance: writers alice and finance-admins).
    created(
        alice
            .save_text(&format!("{FINANCE}/q3.txt"), "Q3 figures\n")
            .await,
    );

    // The library: Lmod from the library volume, in a kernel of her running server.
    let printed = alice
        .run_in_kernel(
            "import subprocess\nprint(subprocess.run(['bash', '-c', 'module load hello && echo \"HELLO=$HELLO_LIBRARY\"'], capture_output=True, text=True))",
        )
        .await;
    assert!(
        printed.contains("HELLO=hello from the library"),
        "module load in alice's kernel: {printed}"
    );

    // bob (analysts: reader of finance) reads alice's file and cannot change it.
    let bob = hub.login("bob").await;
    hub.start_server(&bob, None).await;
    let q3 = ok(bob.open(&format!("{FINANCE}/q3.txt")).await);
    assert_eq!(q3["content"], "Q3 figures\n");
    let refused = bob
        .save_text(&format!("{FINANCE}/q3.txt"), "changed by bob")
        .await;
    assert_read_only_refusal(&refused, &format!("{FINANCE}/q3.txt"));
    assert_eq!(
        ok(alice.open(&format!("{FINANCE}/q3.txt")).await)["content"],
        "Q3 figures\n",
        "bob's refused save left alice's file as it was"
    );
    hub.stop_server(&bob).await;
    // bob is not entitled to the secret share: its profile's notebook is refused.
    let log = hub.start_refused(&bob, "mergers").await;
    assert!(
        log.contains("secret share 'mergers' was requested"),
        "the hub should report the webhook's refusal of bob's mergers notebook:\n{}",
        hub.log_tail()
    );

    // The secret-share profile: the mergers share writable, every other share read-only (no
    // write-down), the home still writable.
    hub.stop_server(&alice).await;
    hub.start_server(&alice, Some("mergers")).await;
    created(
        alice
            .save_text(&format!("{MERGERS}/target.txt"), "secret\n")
            .await,
    );
    assert_eq!(
        ok(alice.open(&format!("{MERGERS}/target.txt")).await)["content"],
        "secret\n"
    );
    for share in [FINANCE, TEAM] {
        let path = format!("{share}/leak.txt");
        assert_read_only_refusal(&alice.save_text(&path, "secret\n").await, &path);
    }
    created(alice.save_text("notes.txt", "home stays writable\n").await);

    if let Some(png) = std::env::var_os("NOTEBOOK_VOLUMES_HUB_SCREENSHOT") {
        screenshot(&hub, &alice, Path::new(&png)).await;
    }
    hub.stop_server(&alice).await;
    drop(hub);
    env.stop().await;
}

/// A one-cell notebook (nbformat 4).
fn notebook_with(source: &str) -> Value {
    json!({
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [{"cell_type": "code", "id": "c1", "source": source, "metadata": {},
                   "outputs": [], "execution_count": null}]
    })
}

fn created(r: support::http::Response) {
    assert_eq!(r.status, 201, "save should succeed: {}", r.body);
}

fn ok(r: support::http::Response) -> Value {
    assert_eq!(r.status, 200, "open should succeed: {}", r.body);
    r.json()
}

/// The answer JupyterLab turns into its "File Save Error" dialog. The server runs as root, so
/// only the read-only mount can refuse: a new file fails with the file system's error
/// (`Read-only file system`), an existing one earlier, when the server finds it not writable
/// (403 `Permission denied: <path>`).
fn assert_read_only_refusal(r: &support::http::Response, path: &str) {
    let message = r.json()["message"].as_str().unwrap_or_default().to_owned();
    let read_only = r.status == 500 && message.contains("Read-only file system");
    let not_writable = r.status == 403 && message == format!("Permission denied: {path}");
    assert!(
        read_only || not_writable,
        "saving {path} should be refused as read-only, got {} {}",
        r.status,
        r.body
    );
}

/// Headless Chromium on alice's JupyterLab, file browser open at her home (shares and the
/// library, linked into the home by a kernel, in view).
async fn screenshot(hub: &Hub, alice: &User, png: &Path) {
    let linked = alice
        .run_in_kernel(&format!(
            "import os\nif not os.path.islink('library'): os.symlink('{LIBRARY}', 'library')\nprint(sorted(os.listdir('.')))"
        ))
        .await;
    assert!(linked.contains("library"), "library link: {linked}");
    let url = format!("http://{}/user/alice/lab?token={}", hub.proxy, alice.token);
    let profile = tempfile::tempdir().expect("chromium profile");
    let mut chromium = std::process::Command::new("chromium");
    chromium
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,800",
            "--virtual-time-budget=20000",
            "--timeout=60000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(url);
    let status = tokio::task::spawn_blocking(move || chromium.status())
        .await
        .expect("chromium task")
        .expect("run chromium");
    assert!(status.success(), "chromium failed");
    assert!(png.exists(), "no screenshot at {}", png.display());
}
