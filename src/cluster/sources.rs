//! Reflectors on the policy ConfigMaps (label `notebook-volumes.io/policy=true` in the policy
//! namespace), on namespaces and on home claims. Every ConfigMap change compiles a new immutable
//! snapshot, swapped atomically: admissions never wait for the API server to read policy.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use tokio::task::JoinHandle;

use super::ClusterView;
use super::drive::{drive, drive_with};
use super::events::PolicyEvents;
use super::off_workers::off_workers;
use super::readiness::{Cache, Readiness};
use crate::keys;
use crate::metrics::Metrics;
use crate::policy::in_force::Policy;
use crate::policy::openshift_groups::OpenShiftGroups;
use crate::policy::{Severity, unit_from_config_map};

/// Background tasks feeding the caches; abort them on shutdown.
pub struct Sources {
    pub view: ClusterView,
    pub tasks: Vec<JoinHandle<()>>,
}

/// Starts the three reflectors. `policy` is replaced on every ConfigMap change; `readiness`
/// records each initial list.
pub fn start(
    client: Client,
    policy_namespace: &str,
    policy: Arc<ArcSwap<Policy>>,
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
    delete_exceeding: bool,
    events: Option<super::user_events::UserEvents>,
) -> Sources {
    let mut tasks = Vec::new();
    let provisioner = super::provisioner::Provisioner::new();

    let cm_api: Api<ConfigMap> = Api::namespaced(client.clone(), policy_namespace);
    let cm_config = watcher::Config::default().labels(&format!("{}=true", keys::POLICY_LABEL));
    let (cm_store, cm_writer) = reflector::store();
    let cm_stream = reflector::reflector(cm_writer, watcher(cm_api, cm_config).default_backoff());
    let compiler_policy = Arc::clone(&policy);
    let mut compiler = Compiler {
        store: cm_store,
        policy,
        metrics: metrics.clone(),
        events: PolicyEvents::new(client.clone()),
        reported: HashMap::new(),
        revocation: super::revocation::Revocation::new(client.clone(), delete_exceeding, events),
        provisioner: provisioner.clone(),
        openshift: Arc::default(),
    };
    let (mut groups_feed, groups_task) = super::openshift_groups::start(
        client.clone(),
        Arc::clone(&compiler_policy),
        readiness.clone(),
        metrics.clone(),
    );
    tasks.push(groups_task);
    let ready = readiness.clone();
    tasks.push(tokio::spawn(async move {
        let mut stream = std::pin::pin!(cm_stream);
        let mut listed = false;
        loop {
            tokio::select! {
                item = stream.next() => match item {
                    Some(Ok(event)) => {
                        ready.watch_ok(Cache::ConfigMaps);
                        if matches!(
                            event,
                            watcher::Event::Apply(_)
                                | watcher::Event::Delete(_)
                                | watcher::Event::InitDone
                        ) {
                            compiler.recompile().await;
                        }
                        if matches!(event, watcher::Event::InitDone) {
                            listed = true;
                            ready.synced(Cache::ConfigMaps);
                        }
                    }
                    Some(Err(error)) => {
                        ready.watch_failed(Cache::ConfigMaps);
                        tracing::warn!(
                            %error,
                            "watching policy ConfigMaps failed; retrying with backoff"
                        )
                    }
                    None => break,
                },
                Ok(()) = groups_feed.changed() => {
                    let groups = groups_feed.borrow_and_update().clone();
                    // Known only once the Settings are (the ConfigMaps listed).
                    if let Some(groups) = groups
                        && listed
                    {
                        // The feed changes only with the index; an empty one the policy
                        // already has (the Groups off, or not served) needs no compile.
                        if !(groups.is_empty() && compiler.openshift.is_empty()) {
                            compiler.openshift = groups;
                            compiler.recompile().await;
                        }
                        // A snapshot with the complete list is in force.
                        ready.synced(Cache::OpenShiftGroups);
                    }
                }
            }
        }
    }));

    let ns_api: Api<Namespace> = Api::all(client.clone());
    let (ns_store, ns_writer) = reflector::store();
    let ns_stream = reflector::reflector(
        ns_writer,
        watcher(ns_api, watcher::Config::default()).default_backoff(),
    );
    let nudge = provisioner.clone();
    tasks.push(tokio::spawn(drive_with(
        ns_stream,
        Cache::Namespaces,
        readiness.clone(),
        // A namespace labelled (or created labelled) gets its provisioned claims.
        move |event| {
            if !matches!(event, watcher::Event::Init | watcher::Event::InitApply(_)) {
                nudge.nudge();
            }
        },
    )));

    let pvc_api: Api<PersistentVolumeClaim> = Api::all(client.clone());
    let pvc_config = watcher::Config::default().labels(&format!("{}=true", keys::HOME_LABEL));
    let (pvc_store, pvc_writer) = reflector::store();
    let pvc_stream =
        reflector::reflector(pvc_writer, watcher(pvc_api, pvc_config).default_backoff());
    tasks.push(tokio::spawn(drive(
        pvc_stream,
        Cache::HomeClaims,
        readiness.clone(),
    )));

    let (volume_store, volume_task) =
        super::volume_claims::start(client.clone(), readiness.clone(), provisioner.clone());
    tasks.push(volume_task);
    tasks.push(provisioner.start(super::provisioner::Inputs {
        client: client.clone(),
        policy: compiler_policy,
        namespaces: ns_store.clone(),
        claims: volume_store.clone(),
        own_namespace: policy_namespace.to_string(),
        readiness,
        metrics: metrics.clone(),
    }));

    let (home_touch, toucher) =
        super::home_touch::HomeTouch::start(client.clone(), metrics.clone());
    tasks.push(toucher);
    let (home_growth, grower) = super::home_growth::HomeGrowth::start(client.clone(), metrics);
    tasks.push(grower);
    Sources {
        view: ClusterView {
            client,
            namespaces: ns_store,
            home_claims: pvc_store,
            volume_claims: volume_store,
            webhook_user: None,
            home_touch,
            home_growth,
        },
        tasks,
    }
}

/// Turns the cached ConfigMaps into a snapshot and reports newly invalid ones.
struct Compiler {
    store: Store<ConfigMap>,
    policy: Arc<ArcSwap<Policy>>,
    metrics: Arc<Metrics>,
    events: PolicyEvents,
    /// Unit name → resourceVersion already reported as invalid (one Event per version).
    reported: HashMap<String, String>,
    /// Running notebooks against each new policy.
    revocation: super::revocation::Revocation,
    /// Provisioned claims for each new policy.
    provisioner: super::provisioner::Provisioner,
    /// The OpenShift Group members each snapshot is compiled with.
    openshift: Arc<OpenShiftGroups>,
}

impl Compiler {
    /// Compiles on a blocking thread (thousands of shares take a noticeable fraction of a second),
    /// so admissions on the async workers never wait behind it.
    async fn recompile(&mut self) {
        let mut config_maps = self.store.state();
        // First come, first served: older ConfigMaps win conflicts.
        config_maps.sort_by(|a, b| {
            (&a.metadata.creation_timestamp, &a.metadata.name)
                .cmp(&(&b.metadata.creation_timestamp, &b.metadata.name))
        });
        let units: Vec<_> = config_maps
            .iter()
            .map(|cm| unit_from_config_map(cm))
            .collect();
        let by_unit: HashMap<String, &Arc<ConfigMap>> = units
            .iter()
            .map(|u| u.name.clone())
            .zip(config_maps.iter())
            .collect();
        let previous = self.policy.load_full();
        let openshift = Arc::clone(&self.openshift);
        let failed = "compiling the policy failed";
        let then = "the previous policy stays in force";
        let compiled = off_workers(failed, then, move || {
            previous.recompile_with(units, openshift)
        });
        let Some(policy) = compiled.await else {
            return;
        };
        let mut still_invalid = HashMap::new();
        for report in policy.snapshot.rejected_units() {
            let Some(cm) = by_unit.get(&report.unit) else {
                continue;
            };
            let version = cm.meta().resource_version.clone().unwrap_or_default();
            let findings: Vec<String> = report
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .map(ToString::to_string)
                .collect();
            if self.reported.get(&report.unit) != Some(&version) {
                tracing::error!(
                    unit = %report.unit,
                    findings = %findings.join("; "),
                    "invalid policy ConfigMap: its documents are absent and the claims it names protected until it is fixed"
                );
                self.metrics.invalid_policy_seen();
                let events = self.events.clone();
                let cm = Arc::clone(cm);
                let note = findings.join("\n");
                tokio::spawn(async move { events.invalid_policy(&cm, &note).await });
            }
            still_invalid.insert(report.unit.clone(), version);
        }
        self.reported = still_invalid;
        let invalid = self.reported.len();
        tracing::info!(
            config_maps = config_maps.len(),
            invalid,
            shares = policy.snapshot.shares().len(),
            "policy reloaded"
        );
        self.metrics.policy_reloaded(invalid);
        let policy = Arc::new(policy);
        self.policy.store(Arc::clone(&policy));
        self.revocation.scan(policy, Arc::clone(&self.metrics));
        self.provisioner.nudge();
    }
}
