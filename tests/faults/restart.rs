//! Scenario 3: the API server (with its etcd) restarted mid-stream on the same data and address.
//! The replicas keep serving from their last complete lists, `/readyz` says so while their
//! watches reconnect, the watches resume (a policy change after the restart takes effect), every
//! admitted pod got the whole policy, and nothing panics.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use notebook_volumes::keys;

use super::stream::{self, Row};
use super::support::pod::{annotation, mounts};
use super::support::process::{self, ClusterProcess};
use super::support::webhook::{dry_run, http_get, notebook_pod, policy_config_map, wait_until};
use super::{Report, Scale, Setup, notebooks};

/// A test API server this process can stop and start again on the same data directory and
/// port (its PKI is reused, so clients and kubeconfigs stay valid).
pub struct OwnCluster {
    bin: PathBuf,
    args: Vec<String>,
    process: Option<ClusterProcess>,
    _dir: tempfile::TempDir,
}

impl OwnCluster {
    pub fn start() -> Result<OwnCluster, String> {
        let bin = process::locate_binary()?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let args = vec![
            "-data-dir".to_string(),
            dir.path().join("cluster").display().to_string(),
            "-port".to_string(),
            port.to_string(),
        ];
        let process = process::start_with_args(&bin, &args)?;
        Ok(OwnCluster {
            bin,
            args,
            process: Some(process),
            _dir: dir,
        })
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.process
            .as_ref()
            .map(|p| p.info.kubeconfig.clone())
            .unwrap_or_default()
    }

    /// Stops the API server and its etcd, starts them again; how long the API was gone.
    pub fn restart(&mut self) -> Duration {
        let start = Instant::now();
        if let Some(mut old) = self.process.take() {
            old.stop();
        }
        let started = process::start_with_args(&self.bin, &self.args)
            .unwrap_or_else(|e| panic!("the API server did not start again: {e}"));
        self.process = Some(started);
        start.elapsed()
    }
}

pub async fn run(scale: Scale, report: &mut Report, cluster: Option<&mut OwnCluster>) {
    let Some(cluster) = cluster else {
        report.note("3: skipped: the suite runs against an external cluster it cannot restart");
        return;
    };
    let setup = Setup::start(2, &[]).await;
    // Every pod of the example policy gets the same mounts, whoever the user.
    let probe = setup
        .pods()
        .create(&dry_run(), &notebook_pod("probe", "user0", &[]))
        .await
        .expect("probe pod");
    let whole = annotation(&probe, keys::MOUNTS_ANNOTATION).expect("mounts annotation");

    // What /readyz of the first replica says, throughout.
    let bodies = Arc::new(Mutex::new(Vec::<String>::new()));
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (bodies, watching) = (Arc::clone(&bodies), Arc::clone(&watching));
        let probe_addr = setup.replicas[0].probe;
        tokio::spawn(async move {
            while watching.load(Ordering::Relaxed) {
                let (status, body) = http_get(probe_addr, "/readyz").await;
                bodies
                    .lock()
                    .unwrap()
                    .push(format!("{status} {}", body.trim()));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let load = scale.load;
    let running = stream::start(
        setup.pods(),
        load.lasting(load.duration * 2),
        notebooks("restart"),
    );
    tokio::time::sleep(load.duration / 3).await;
    let down = tokio::task::block_in_place(|| cluster.restart());
    let back = Instant::now();
    // The watches resume: a policy change made now reaches admissions.
    Api::<ConfigMap>::namespaced(setup.admin.clone(), setup.policy_ns.name())
        .create(
            &PostParams::default(),
            &policy_config_map(
                "after-restart",
                [(
                    "after.yaml".to_string(),
                    format!(
                        "kind: Share\nname: after-restart\nnamespaces: [{}]\nclaimName: after\nmountPath: /srv/after-restart\nlevel: public\n",
                        setup.ns.name()
                    ),
                )]
                .into(),
            ),
        )
        .await
        .expect("policy ConfigMap after the restart");
    wait_until(
        "a policy change after the restart takes effect",
        Duration::from_secs(60),
        || {
            let pods = setup.pods();
            async move {
                pods.create(&dry_run(), &notebook_pod("probe", "user0", &[]))
                    .await
                    .is_ok_and(|p| {
                        mounts(&p, "notebook")
                            .iter()
                            .any(|(path, _)| path == "/srv/after-restart")
                    })
            }
        },
    )
    .await;
    let policy_back = back.elapsed();
    // And /readyz is plain "ready" again.
    let mut current = None;
    for _ in 0..300 {
        if http_get(setup.replicas[0].probe, "/readyz").await.1 == "ready\n" {
            current = Some(back.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let samples = running.finish().await;
    watching.store(false, Ordering::Relaxed);
    let _ = watcher.await;

    let webhook_failures = samples
        .iter()
        .filter(|s| s.result.as_ref().is_err_and(|e| e.contains("webhook")))
        .count();
    let partial: Vec<String> = samples
        .iter()
        .filter_map(|s| s.result.as_ref().ok())
        .filter_map(|p| annotation(p, keys::MOUNTS_ANNOTATION))
        .filter(|m| {
            let base: Vec<&str> = m
                .split(',')
                .filter(|e| !e.starts_with("after-restart"))
                .collect();
            base.join(",") != whole
        })
        .collect();
    let bodies = bodies.lock().unwrap().clone();
    let said_stale = bodies.iter().filter(|b| b.contains("reconnecting")).count();
    let unready = bodies.iter().filter(|b| !b.starts_with("200")).count();
    let row = Row::of(
        "3  API server restarted mid-stream",
        &samples,
        format!(
            "API down {:.1} s: {} could not reach it, {} failed calling the webhook; policy change live {:.1} s after; /readyz said stale {} times, unready {} times",
            down.as_secs_f64(),
            samples.iter().filter(|s| s.result.is_err()).count() - webhook_failures,
            webhook_failures,
            policy_back.as_secs_f64(),
            said_stale,
            unready
        ),
    );
    report.goal(
        webhook_failures == 0,
        format!("3: {webhook_failures} creations failed calling the webhook"),
    );
    report.goal(
        partial.is_empty(),
        format!(
            "3: pods admitted with a partial policy (expected {whole}): {:?}",
            partial.iter().take(3).collect::<Vec<_>>()
        ),
    );
    report.goal(
        said_stale > 0,
        format!("3: /readyz never said the caches were reconnecting: {bodies:?}"),
    );
    report.goal(
        current.is_some(),
        "3: /readyz still reports stale caches 30 s after the policy change took effect",
    );
    report.row(row);
    let panics = setup.panics();
    report.goal(panics.is_empty(), format!("3: panics: {panics:?}"));
}
