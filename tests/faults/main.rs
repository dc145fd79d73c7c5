//! Fault suite: a steady stream of notebook pod creations through the real API server while a
//! webhook replica is killed or stopped, the serving certificate rotates, the API server
//! restarts, the policy churns, a user's notebooks race for their home claim, and the webhook is
//! down. Prints, per scenario, creations attempted / failed / latency, and fails when a goal
//! does not hold.
//!
//! Short form by default (`make test`); `NOTEBOOK_VOLUMES_FAULTS=full` (`make faults`) runs
//! longer streams and more users.

use nv_test_support as support;

mod balancer;
mod churn;
mod down;
mod failover;
mod races;
mod replicas;
mod restart;
mod rotation;
mod stream;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod};
use kube::api::PostParams;
use kube::{Api, Client};
use notebook_volumes::certs::GeneratedCerts;
use notebook_volumes::keys;

use balancer::Balancer;
use replicas::{Replica, ReplicaConfig, SecretVolume};
use stream::{Load, Row};
use support::webhook::*;
use support::{DeleteOnDrop, TestCluster, TestNamespace, install_crypto_provider};

/// How long and how hard.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub load: Load,
    /// Users racing for their home claims (two notebooks each).
    pub racing_users: usize,
    /// The preStop sleep before SIGTERM (10 s in the shipped Deployment).
    pub pre_stop: Duration,
    pub full: bool,
}

impl Scale {
    fn from_env() -> Scale {
        let full = std::env::var("NOTEBOOK_VOLUMES_FAULTS").is_ok_and(|v| v == "full");
        let duration = Duration::from_secs(if full { 30 } else { 6 });
        Scale {
            load: Load {
                clients: 4,
                per_second: 20.0,
                duration,
            },
            racing_users: if full { 50 } else { 10 },
            pre_stop: Duration::from_secs(if full { 5 } else { 2 }),
            full,
        }
    }
}

/// Results and broken goals, collected across scenarios.
#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
    pub broken: Vec<String>,
}

impl Report {
    pub fn row(&mut self, row: Row) {
        row.print();
        self.rows.push(row);
    }

    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        println!("  {note}");
        self.notes.push(note);
    }

    /// Records a goal: `ok` or the reason it does not hold.
    pub fn goal(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            let what = what.into();
            println!("  GOAL NOT MET: {what}");
            self.broken.push(what);
        }
    }
}

/// Webhook replicas behind the balancer, registered for one notebook namespace as the shipped
/// manifests register the webhook (every webhook `failurePolicy: Fail`).
pub struct Setup {
    pub admin: Client,
    pub ns: TestNamespace,
    pub policy_ns: TestNamespace,
    pub volume: SecretVolume,
    pub pair: GeneratedCerts,
    pub balancer: Balancer,
    pub replicas: Vec<Replica>,
    pub config: ReplicaConfig,
    pub registration: String,
    pub registrations: Vec<DeleteOnDrop>,
    started: usize,
}

impl Setup {
    /// The example policy (plus `extra` ConfigMaps) and `replicas` ready replicas.
    pub async fn start(replicas: usize, extra: &[(&str, BTreeMap<String, String>)]) -> Setup {
        install_crypto_provider();
        let cluster = TestCluster::shared();
        let admin = cluster.admin_client();
        let ns =
            TestNamespace::with_labels("nb", &[(keys::INJECT_LABEL, keys::INJECT_ENABLED)]).await;
        let policy_ns = TestNamespace::new("nv-policy").await;
        let config_maps = Api::<ConfigMap>::namespaced(admin.clone(), policy_ns.name());
        let mut all = vec![("policy", example_policy(ns.name()))];
        all.extend(extra.iter().map(|(n, d)| (*n, d.clone())));
        for (name, data) in all {
            config_maps
                .create(&PostParams::default(), &policy_config_map(name, data))
                .await
                .expect("policy ConfigMap");
        }
        allow_everyone_to_edit(&admin, ns.name()).await;
        allow_everyone_to_edit_claims(&admin, ns.name()).await;
        // Every share's claim exists and is bound, so notebooks get each share the policy names
        // (the example's, the churned ones and the one added after the restart).
        let claims: Vec<&str> = support::env::EXAMPLE_CLAIMS
            .iter()
            .copied()
            .chain(["churn-a", "churn-b", "churn-c", "after"])
            .collect();
        support::env::ready_claims(&admin, ns.name(), &claims, "ReadWriteMany").await;
        let pair = loopback_certificates();
        let volume = SecretVolume::new(&pair);
        let config = ReplicaConfig {
            kubeconfig: cluster.kubeconfig_path().to_path_buf(),
            policy_namespace: policy_ns.name().into(),
            certs: volume.path().to_path_buf(),
            shutdown_timeout: Duration::from_secs(5),
        };
        let balancer = Balancer::start().await;
        let registration = format!("nv-{}", ns.name());
        let mut setup = Setup {
            admin,
            ns,
            policy_ns,
            volume,
            pair,
            balancer,
            replicas: Vec::new(),
            config,
            registration,
            registrations: Vec::new(),
            started: 0,
        };
        for _ in 0..replicas {
            setup.add_replica().await;
        }
        setup.register().await;
        setup
    }

    pub async fn register(&mut self) {
        let base = format!("https://127.0.0.1:{}", self.balancer.addr.port());
        self.registrations = register_webhooks(
            &self.admin,
            &self.registration,
            &base,
            &self.pair.ca_cert_pem,
            self.ns.name(),
            self.policy_ns.name(),
        )
        .await;
        wait_for_injection(self.pods()).await;
    }

    /// Starts one more replica and puts it in rotation once ready; its index.
    pub async fn add_replica(&mut self) -> usize {
        self.started += 1;
        let name = format!("replica-{}", self.started);
        let replica = Replica::start(&name, &self.config).await;
        replica.wait_ready().await;
        self.balancer.add(&name, replica.webhook, replica.probe);
        self.balancer.wait_ready(&name).await;
        self.replicas.push(replica);
        self.replicas.len() - 1
    }

    /// Notebook pods as JupyterHub's hub creates them.
    pub fn pods(&self) -> Api<Pod> {
        pods_in(self.ns.name())
    }

    pub fn claims(&self) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.admin.clone(), self.ns.name())
    }

    /// Panics seen in any replica's log.
    pub fn panics(&self) -> Vec<String> {
        self.replicas.iter().flat_map(|r| r.panics()).collect()
    }
}

/// Pods in `ns` as JupyterHub's hub creates them.
pub fn pods_in(ns: &str) -> Api<Pod> {
    let client = TestCluster::shared().client_as_service_account(HUB.0, HUB.1);
    Api::namespaced(client, ns)
}

/// Notebook pods named `<prefix>-<client>-<i>` for 16 users in turn.
pub fn notebooks(prefix: &str) -> Arc<dyn Fn(usize, usize) -> Pod + Send + Sync> {
    let prefix = prefix.to_string();
    Arc::new(move |client, i| {
        notebook_pod(
            &format!("{prefix}-{client}-{i}"),
            &format!("user{}", (client * 5 + i) % 16),
            &[],
        )
    })
}

/// Every scenario in turn (they share the API server; one of them restarts it), then the table
/// and the goals.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults() {
    let scale = Scale::from_env();
    let mut report = Report::default();
    // Our own API server, which scenario 3 restarts; every scenario uses it, unless
    // $NOTEBOOK_VOLUMES_TEST_KUBECONFIG names an external cluster.
    let mut own = None;
    if std::env::var_os(support::KUBECONFIG_ENV).is_none() {
        let cluster = restart::OwnCluster::start().expect("test API server");
        assert!(TestCluster::use_external(cluster.kubeconfig()));
        own = Some(cluster);
    }
    println!(
        "fault suite ({} form): {} clients, {}/s, {:?} per stream",
        if scale.full { "full" } else { "short" },
        scale.load.clients,
        scale.load.per_second,
        scale.load.duration
    );
    stream::print_header();
    // NOTEBOOK_VOLUMES_FAULTS_ONLY=1,4 runs some scenarios only (while working on one).
    let only = std::env::var("NOTEBOOK_VOLUMES_FAULTS_ONLY").unwrap_or_default();
    let wanted = |n: &str| only.is_empty() || only.split(',').any(|o| o.trim() == n);
    if wanted("1") {
        failover::run(scale, &mut report).await;
    }
    if wanted("2") {
        rotation::run(scale, &mut report).await;
    }
    if wanted("4") {
        churn::run(scale, &mut report).await;
    }
    if wanted("5") {
        races::run(scale, &mut report).await;
    }
    if wanted("6") {
        down::run(scale, &mut report).await;
    }
    // Last: it restarts the API server under everything.
    if wanted("3") {
        restart::run(scale, &mut report, own.as_mut()).await;
    }

    println!("\nsummary");
    stream::print_header();
    for row in &report.rows {
        row.print();
    }
    for note in &report.notes {
        println!("  {note}");
    }
    assert!(
        report.broken.is_empty(),
        "goals not met:\n{}",
        report.broken.join("\n")
    );
}
