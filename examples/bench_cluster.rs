//! `make bench-cluster`: what the webhook adds to pod creation in a real cluster. Through the
//! test API server (its default settings: HTTP/2 to webhooks when they offer it) with the
//! controllers, as JupyterHub's hub:
//!
//! - pod CREATE latency (client side, over TLS), 1 and 8 concurrent clients, `BENCH_PODS` pods
//!   per series (default 1,000): with the webhook registered, first launches (the webhook creates
//!   the user's home claim) and later launches (it exists); with no webhook, for the plain pod
//!   and for the pod as the webhook leaves it (what the larger pod alone costs); and with the no-op
//!   webhook of benches/noop (same actix-web + rustls stack and certificate, fixed one-operation
//!   patch), the floor any webhook on this stack pays. These pods are bound to a node that does
//!   not exist, so nothing runs and only the API path is measured;
//! - create-to-Running on the real node (`BENCH_RUNNING` pods per series, default 10, one at a
//!   time; 0 skips it and the node): a notebook's first launch (home claim created and
//!   provisioned), a later launch, and the same pod in a namespace without the webhook.
//!
//! Prints Markdown tables for BENCHMARKS.md: p50/p90/p99, the creations over 30 ms, and the
//! added latency against the series without a webhook.

#[path = "../benches/noop/server.rs"]
mod noop;
use nv_test_support as support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::env::{Env, ready_claims};
use support::node::*;
use support::webhook::*;
use support::{DeleteOnDrop, TestCluster, TestNamespace};

const CLIENTS: [usize; 2] = [1, 8];
/// A creation slower than this is counted: a stall, not queueing, at these loads.
const SLOW_MS: f64 = 30.0;

const CLAIMS: &[&str] = &[
    "shared-datasets",
    "team-notebooks",
    "finance-data",
    "mergers-data",
    "apps",
];

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    // RUST_LOG set: the in-process webhook's logs (one line per admission, with its own
    // latency) on stderr.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let pods_per_series = env_number("BENCH_PODS", 1000);
    let running = env_number("BENCH_RUNNING", 10);
    let running_rows = if running > 0 {
        eprintln!("starting the test cluster with a node");
        TestCluster::shared_with_node();
        to_running_series(running).await
    } else {
        Vec::new()
    };
    let rows = create_latency(pods_per_series, running > 0).await;
    print_tables(pods_per_series, &rows, running, &running_rows);
}

/// Create-to-Running of `running` pods per row on the node.
async fn to_running_series(running: usize) -> Vec<(&'static str, Vec<Duration>)> {
    // Create-to-Running on the node, with real volumes. First: the thousand home claims the
    // latency series leave behind (of a class nobody provisions) would keep the PV controller
    // busy and delay the provisioning measured here. The share claims are bound for real below.
    let run = Env::start_without_claims().await;
    let data = tempfile::Builder::new()
        .prefix("nv-bench-data-")
        .tempdir()
        .expect("data directory");
    install_library(&data.path().join("apps"), "/opt/apps");
    let _volumes = bind_claims(&run.admin, run.ns.name(), data.path(), CLAIMS).await;
    let plain_ns = TestNamespace::new("nv-bench-plain").await;
    let run_hub = run.pods_as(HUB);
    let run_admin = run.pods_as_admin();
    let mut first = Vec::new();
    let mut later = Vec::new();
    let mut none = Vec::new();
    let plain_pods: Api<Pod> = Api::namespaced(run.admin.clone(), plain_ns.name());
    for i in 0..running {
        let user = format!("runner{i}");
        first.push(to_running(&run_hub, &run_admin, running_pod(&format!("a{i}"), &user)).await);
        later.push(to_running(&run_hub, &run_admin, running_pod(&format!("b{i}"), &user)).await);
        none.push(
            to_running(
                &plain_pods,
                &plain_pods,
                running_pod(&format!("c{i}"), &user),
            )
            .await,
        );
    }
    run.stop().await;
    vec![
        (
            "webhook, first launch (home created and provisioned)",
            first,
        ),
        ("webhook, later launch", later),
        ("no webhook", none),
    ]
}

/// CREATE latency series: the webhook (first and later launches), no webhook, the no-op webhook.
async fn create_latency(pods_per_series: usize, controllers: bool) -> Vec<(String, Vec<Duration>)> {
    // CREATE latency: home claims of a storage class nobody provisions (nothing to do for the
    // controllers), share claims Bound (the webhook skips unusable ones), pods bound to a node
    // that does not exist.
    let mut lat = Env::start_without_claims().await;
    let mut policy = example_policy(lat.ns.name());
    if let Some(storage) = policy.get_mut("storage.yaml") {
        *storage = storage.replace(
            "  size: 2Gi\n",
            "  size: 2Gi\n  storageClassName: bench-unprovisioned\n",
        );
    }
    Api::<ConfigMap>::namespaced(lat.admin.clone(), lat.policy_ns.name())
        .patch(
            "policy",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": policy})),
        )
        .await
        .expect("policy updated");
    // With the controllers running, the PV controller would reset a status set by hand: bind
    // the share claims to volumes for real (nothing mounts them: the pods never run).
    let data = tempfile::Builder::new()
        .prefix("nv-bench-shares-")
        .tempdir()
        .expect("data directory");
    let _volumes = if controllers {
        bind_claims(&lat.admin, lat.ns.name(), data.path(), CLAIMS).await
    } else {
        ready_claims(&lat.admin, lat.ns.name(), CLAIMS, "ReadWriteMany").await;
        Vec::new()
    };
    // The webhook picks the policy change up from its watch.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let hub = lat.pods_as(HUB);
    // What is measured is a full admission: the probe pod gets the public share and the library.
    let probe = hub
        .create(&dry_run(), &notebook_pod("bench-probe", "alice", &[]))
        .await
        .expect("probe pod");
    let claims: Vec<String> = probe
        .spec
        .clone()
        .and_then(|s| s.volumes)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| Some(v.persistent_volume_claim?.claim_name))
        .collect();
    for wanted in ["shared-datasets", "apps"] {
        assert!(
            claims.iter().any(|c| c == wanted),
            "the probe pod lacks claim {wanted} ({claims:?}): the share claims are not usable"
        );
    }
    let mut rows = Vec::new();
    for clients in CLIENTS {
        let first = create_series(&hub, pods_per_series, clients, &format!("first{clients}")).await;
        let later = create_series(&hub, pods_per_series, clients, &format!("first{clients}")).await;
        rows.push((
            format!("webhook, first launch (home created), {clients} client(s)"),
            first,
        ));
        rows.push((format!("webhook, later launch, {clients} client(s)"), later));
    }
    let homes = lat
        .claims()
        .list(&Default::default())
        .await
        .expect("claims")
        .items
        .len();
    eprintln!(
        "home claims created by the webhook: {}",
        homes - CLAIMS.len()
    );

    // Deregistered: the API server no longer calls the webhook for this namespace.
    lat._registrations.clear();
    wait_until(
        "the webhook is no longer called",
        Duration::from_secs(30),
        || {
            let hub = hub.clone();
            async move {
                let probe = notebook_pod("probe", "alice", &[]);
                match hub.create(&dry_run(), &probe).await {
                    Ok(p) => annotation(&p, notebook_volumes::keys::USER_ANNOTATION).is_none(),
                    Err(_) => false,
                }
            }
        },
    )
    .await;
    for clients in CLIENTS {
        let none = create_series(&hub, pods_per_series, clients, &format!("plain{clients}")).await;
        rows.push((format!("no webhook, {clients} client(s)"), none));
        // The same CREATE of the pod as the webhook leaves it (its volumes, mounts, environment
        // and annotations) without any webhook: what the larger pod alone costs the API server.
        let shaped = create_series_of(&hub, pods_per_series, clients, "shaped", Some(&probe)).await;
        rows.push((
            format!("no webhook, the pod as the webhook leaves it, {clients} client(s)"),
            shaped,
        ));
    }

    // The no-op webhook: same certificate files, registered for pods in the same namespace.
    let noop = noop::Noop::start(
        "127.0.0.1:0".parse().expect("address"),
        &lat.certs.path().join("tls.crt"),
        &lat.certs.path().join("tls.key"),
        2,
        noop::PATCH,
    )
    .expect("the no-op webhook starts");
    let _noop_registration = register_noop(&lat, noop.addr.port()).await;
    wait_until(
        "the no-op webhook is called",
        Duration::from_secs(30),
        || {
            let hub = hub.clone();
            async move {
                let probe = notebook_pod("probe", "alice", &[]);
                match hub.create(&dry_run(), &probe).await {
                    Ok(p) => annotation(&p, "noop.notebook-volumes.io/seen").is_some(),
                    Err(_) => false,
                }
            }
        },
    )
    .await;
    let before = noop.counts.get();
    for clients in CLIENTS {
        let noop = create_series(&hub, pods_per_series, clients, &format!("noop{clients}")).await;
        rows.push((format!("no-op webhook, {clients} client(s)"), noop));
    }
    let (requests, http2) = noop.counts.get();
    eprintln!(
        "the no-op webhook answered {} admissions, {} of them over HTTP/2",
        requests - before.0,
        http2 - before.1
    );
    drop(_noop_registration);
    drop(noop);
    lat.stop().await;
    rows
}

/// A MutatingWebhookConfiguration sending the pods of `env`'s namespace to the no-op webhook.
async fn register_noop(env: &Env, port: u16) -> DeleteOnDrop {
    let name = format!("noop-{}", env.ns.name());
    let config = MutatingWebhookConfiguration {
        metadata: kube::api::ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        webhooks: Some(vec![MutatingWebhook {
            name: "noop.notebook-volumes.io".into(),
            client_config: WebhookClientConfig {
                url: Some(format!("https://127.0.0.1:{port}/mutate")),
                ca_bundle: Some(ByteString(env.ca_bundle.as_bytes().to_vec())),
                service: None,
            },
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(vec![String::new()]),
                api_versions: Some(vec!["v1".into()]),
                operations: Some(vec!["CREATE".into()]),
                resources: Some(vec!["pods".into()]),
                scope: None,
            }]),
            namespace_selector: Some(LabelSelector {
                match_labels: Some(
                    [(
                        "kubernetes.io/metadata.name".to_string(),
                        env.ns.name().to_string(),
                    )]
                    .into(),
                ),
                ..Default::default()
            }),
            side_effects: "None".into(),
            failure_policy: Some("Fail".into()),
            timeout_seconds: Some(15),
            admission_review_versions: vec!["v1".into()],
            ..Default::default()
        }]),
    };
    Api::<MutatingWebhookConfiguration>::all(env.admin.clone())
        .create(&PostParams::default(), &config)
        .await
        .expect("no-op MutatingWebhookConfiguration accepted");
    DeleteOnDrop::cluster_scoped::<MutatingWebhookConfiguration>(&name)
}

fn print_tables(
    pods_per_series: usize,
    rows: &[(String, Vec<Duration>)],
    running: usize,
    running_rows: &[(&str, Vec<Duration>)],
) {
    println!(
        "\n| pod CREATE ({pods_per_series} pods per row) | p50 | p90 | p99 | > {SLOW_MS:.0} ms | added p50 / p90 / p99 |"
    );
    println!("|---|---|---|---|---|---|");
    let baseline: BTreeMap<usize, Stats> = CLIENTS
        .iter()
        .filter_map(|c| {
            rows.iter()
                .find(|(name, _)| name == &format!("no webhook, {c} client(s)"))
                .map(|(_, d)| (*c, Stats::of(d)))
        })
        .collect();
    for (name, durations) in rows {
        let s = Stats::of(durations);
        let clients = CLIENTS
            .iter()
            .copied()
            .find(|c| name.ends_with(&format!(" {c} client(s)")))
            .unwrap_or(1);
        let added = match (name.starts_with("no webhook"), baseline.get(&clients)) {
            (false, Some(b)) => format!(
                "+{:.1} / +{:.1} / +{:.1} ms",
                s.p50 - b.p50,
                s.p90 - b.p90,
                s.p99 - b.p99
            ),
            _ => "–".into(),
        };
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms | {} of {} | {added} |",
            s.p50,
            s.p90,
            s.p99,
            s.slow,
            durations.len()
        );
    }
    if running == 0 {
        return;
    }
    println!("\n| create to Running ({running} pods per row, one at a time) | p50 | max | mean |");
    println!("|---|---|---|---|");
    for (name, durations) in running_rows {
        let s = Stats::of(durations);
        println!(
            "| {name} | {:.0} ms | {:.0} ms | {:.0} ms |",
            s.p50, s.max, s.mean
        );
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Creates `n` notebook pods of users `<prefix>-u<i>` with `clients` concurrent clients and
/// returns each CREATE's latency. Pod names are unique per call.
async fn create_series(pods: &Api<Pod>, n: usize, clients: usize, users: &str) -> Vec<Duration> {
    create_series_of(pods, n, clients, users, None).await
}

/// `create_series`, with copies of `shape` (renamed) instead of fresh notebook pods when given.
async fn create_series_of(
    pods: &Api<Pod>,
    n: usize,
    clients: usize,
    users: &str,
    shape: Option<&Pod>,
) -> Vec<Duration> {
    static SERIES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let series = SERIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let pods = pods.clone();
        let users = users.to_owned();
        let shape = shape.cloned();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in (c..n).step_by(clients) {
                let name = format!("s{series}-{i}");
                let mut pod = match &shape {
                    Some(shape) => renamed(shape, &name),
                    None => notebook_pod(&name, &format!("{users}-u{i}"), &[]),
                };
                if let Some(spec) = pod.spec.as_mut() {
                    spec.node_name = Some("bench-nowhere".into());
                }
                let start = Instant::now();
                pods.create(&PostParams::default(), &pod)
                    .await
                    .expect("pod created");
                out.push(start.elapsed());
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    all
}

/// A copy of a stored pod to create again under `name`: what the server set is cleared.
fn renamed(stored: &Pod, name: &str) -> Pod {
    let mut pod = stored.clone();
    pod.status = None;
    let meta = &mut pod.metadata;
    meta.name = Some(name.into());
    meta.uid = None;
    meta.resource_version = None;
    meta.creation_timestamp = None;
    meta.managed_fields = None;
    meta.generation = None;
    pod
}

fn running_pod(name: &str, user: &str) -> Pod {
    let mut pod = notebook_pod(name, user, &[]);
    let spec = pod.spec.as_mut().expect("spec");
    spec.termination_grace_period_seconds = Some(0);
    let c = &mut spec.containers[0];
    c.image = Some(NOTEBOOK_IMAGE.into());
    c.image_pull_policy = Some("Never".into());
    c.command = Some(vec!["sleep".into(), "3600".into()]);
    pod
}

/// Creates `pod` through `create` and returns the time until it is Running; then deletes it.
async fn to_running(create: &Api<Pod>, admin: &Api<Pod>, pod: Pod) -> Duration {
    let name = pod.metadata.name.clone().expect("name");
    let start = Instant::now();
    create
        .create(&PostParams::default(), &pod)
        .await
        .expect("pod created");
    loop {
        let p = admin.get(&name).await.expect("pod");
        if let Some(problem) = cannot_run(&p) {
            panic!("pod {name} cannot run: {problem}");
        }
        if p.status.and_then(|s| s.phase).as_deref() == Some("Running") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "pod {name} not Running after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed();
    let _ = admin
        .delete(
            &name,
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await;
    elapsed
}

struct Stats {
    p50: f64,
    p90: f64,
    p99: f64,
    /// Creations over `SLOW_MS`.
    slow: usize,
    mean: f64,
    max: f64,
}

impl Stats {
    fn of(durations: &[Duration]) -> Stats {
        let mut ms: Vec<f64> = durations.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let i = ((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1;
            ms[i]
        };
        Stats {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            slow: ms.iter().filter(|&&m| m > SLOW_MS).count(),
            mean: ms.iter().sum::<f64>() / ms.len() as f64,
            max: ms.last().copied().unwrap_or_default(),
        }
    }
}
