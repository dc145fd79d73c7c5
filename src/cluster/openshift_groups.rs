//! OpenShift `Group` objects (`user.openshift.io/v1`, cluster-scoped) as a source of group
//! membership. Watched only while the policy's `Settings.openshiftGroups` is `auto` and the API
//! server serves the resource; whether it is served is asked again every minute, so Groups
//! installed after start are picked up. Each complete list is indexed (pure,
//! `policy::openshift_groups`) off the async workers and handed to the policy compiler, which
//! marks readiness once a snapshot with it is in force: no pod is decided with a partial list.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures::StreamExt;
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::discovery::{Scope, verbs};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::off_workers::off_workers;
use super::readiness::{Cache, Readiness};
use crate::metrics::Metrics;
use crate::policy::OpenShiftGroupsMode;
use crate::policy::in_force::Policy;
use crate::policy::openshift_groups::{MAX_GROUPS, OpenShiftGroups, Skipped};

const CACHE: Cache = Cache::OpenShiftGroups;
/// How often the Settings are looked at, and changed Groups re-indexed (changes in one tick
/// coalesce: a group sync touching hundreds of Groups costs one index and one compile).
const TICK: Duration = Duration::from_millis(500);
/// How often the start waits for the policy to be listed: readiness waits on this step.
const STARTING: Duration = Duration::from_millis(50);
/// How often the API server is asked again whether it serves Groups.
const REDISCOVER: Duration = Duration::from_secs(60);
/// Wait after a failed discovery (the Groups stay pending meanwhile).
const RETRY: Duration = Duration::from_secs(5);
/// Skipped Groups named in one log line.
const LOGGED_SKIPS: usize = 10;

/// What the compiler is handed: `None` until the Groups are known; then the complete index
/// (empty when the Settings do not use Groups or the API server does not serve them).
pub type GroupsFeed = watch::Receiver<Option<Arc<OpenShiftGroups>>>;

/// Starts the watcher task.
pub fn start(
    client: Client,
    policy: Arc<ArcSwap<Policy>>,
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
) -> (GroupsFeed, JoinHandle<()>) {
    let (tx, rx) = watch::channel(None);
    let source = Source {
        client,
        policy,
        readiness,
        metrics,
        tx,
        last_skipped: Vec::new(),
    };
    (rx, tokio::spawn(source.run()))
}

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot tell whether the API server serves groups.user.openshift.io: {0}; the webhook stays unready until it can (allow it to reach the API server's discovery endpoints, or set openshiftGroups: off in the Settings)"
)]
struct DiscoveryError(#[source] kube::Error);

struct Source {
    client: Client,
    policy: Arc<ArcSwap<Policy>>,
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
    tx: watch::Sender<Option<Arc<OpenShiftGroups>>>,
    last_skipped: Vec<Skipped>,
}

impl Source {
    fn mode(&self) -> OpenShiftGroupsMode {
        self.policy.load().snapshot.settings().openshift_groups
    }

    async fn run(mut self) {
        loop {
            // The Settings are known once the policy ConfigMaps are listed.
            if !self.readiness.config_maps_listed() {
                tokio::time::sleep(STARTING).await;
                continue;
            }
            if self.mode() == OpenShiftGroupsMode::Off {
                self.publish_none();
                tokio::time::sleep(TICK).await;
                continue;
            }
            match served(&self.client).await {
                Ok(Some(resource)) => {
                    self.readiness.watch_ok(CACHE);
                    self.watch(resource).await
                }
                Ok(None) => {
                    self.readiness.watch_ok(CACHE);
                    tracing::debug!("the API server serves no groups.user.openshift.io");
                    self.publish_none();
                    self.idle(REDISCOVER).await;
                }
                Err(error) => {
                    tracing::warn!(%error);
                    self.readiness.watch_failed(CACHE);
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }

    /// Waits `period`, or less if the Settings turn the Groups off.
    async fn idle(&self, period: Duration) {
        let until = Instant::now() + period;
        while Instant::now() < until && self.mode() == OpenShiftGroupsMode::Auto {
            tokio::time::sleep(TICK).await;
        }
    }

    /// Watches the Groups until the Settings turn them off or the API server stops serving
    /// them.
    async fn watch(&mut self, resource: ApiResource) {
        tracing::info!("watching OpenShift Groups for group membership");
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
        let writer = reflector::store::Writer::new(resource);
        let store = writer.as_reader();
        let stream = reflector::reflector(
            writer,
            watcher(api, watcher::Config::default()).default_backoff(),
        );
        let mut stream = std::pin::pin!(stream);
        let mut tick = tokio::time::interval(TICK);
        let mut listed = false;
        let mut changed = false;
        let mut failing_since: Option<Instant> = None;
        loop {
            tokio::select! {
                item = stream.next() => match item {
                    Some(Ok(event)) => {
                        self.readiness.watch_ok(CACHE);
                        failing_since = None;
                        match event {
                            watcher::Event::InitDone => {
                                listed = true;
                                self.index(&store).await;
                            }
                            watcher::Event::Apply(_) | watcher::Event::Delete(_) => changed = true,
                            watcher::Event::Init | watcher::Event::InitApply(_) => {}
                        }
                    }
                    Some(Err(error)) => {
                        self.readiness.watch_failed(CACHE);
                        failing_since.get_or_insert_with(Instant::now);
                        tracing::warn!(%error, "watching OpenShift Groups failed; retrying with backoff");
                    }
                    None => return,
                },
                _ = tick.tick() => {
                    if self.mode() == OpenShiftGroupsMode::Off {
                        tracing::info!("openshiftGroups is off: OpenShift Groups no longer grant");
                        self.publish_none();
                        return;
                    }
                    if changed && listed {
                        changed = false;
                        self.index(&store).await;
                    }
                    // A watch failing for long may mean the API is gone (CRD deleted).
                    if failing_since.is_some_and(|t| t.elapsed() >= REDISCOVER) {
                        failing_since = Some(Instant::now());
                        if let Ok(None) = served(&self.client).await {
                            tracing::info!("the API server no longer serves groups.user.openshift.io");
                            self.publish_none();
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Indexes the complete list in the store on a blocking thread and hands it on.
    async fn index(&mut self, store: &Store<DynamicObject>) {
        let objects = store.state();
        let last = self.tx.borrow().clone();
        // Comparing two large indexes is as heavy as building one: both off the async workers.
        let failed = "indexing OpenShift Groups failed";
        let built = off_workers(failed, "the previous index stays in force", move || {
            let (groups, skipped) = OpenShiftGroups::from_objects(objects.iter().map(Arc::as_ref));
            let changed = last.as_deref() != Some(&groups);
            (groups, skipped, changed)
        })
        .await;
        if let Some((groups, skipped, changed)) = built {
            self.publish(groups, skipped, changed);
        }
    }

    /// No Groups: the Settings do not use them, or the API server does not serve them. Cheap to
    /// compare (a non-empty index differs by its length).
    fn publish_none(&mut self) {
        let groups = OpenShiftGroups::default();
        let changed = self.tx.borrow().as_deref() != Some(&groups);
        self.publish(groups, Vec::new(), changed);
    }

    /// Hands a complete index to the compiler when it `changed` from the last one; skipped
    /// Groups are logged when they change and counted.
    fn publish(&mut self, groups: OpenShiftGroups, skipped: Vec<Skipped>, changed: bool) {
        self.metrics
            .set_openshift_groups(groups.len(), skipped.len());
        if skipped != self.last_skipped && !skipped.is_empty() {
            let named: Vec<String> = skipped
                .iter()
                .take(LOGGED_SKIPS)
                .map(|s| format!("'{}': {}", s.name, s.reason))
                .collect();
            tracing::warn!(
                skipped = skipped.len(),
                first = %named.join("; "),
                "OpenShift Groups skipped: they grant nothing until fixed"
            );
        }
        self.last_skipped = skipped;
        if changed {
            self.tx.send_replace(Some(Arc::new(groups)));
        }
    }
}

/// Objects asked for per list page by `list`.
const PAGE: u32 = 500;

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot list OpenShift Groups: {0}; the caller needs list on groups.user.openshift.io, or set openshiftGroups: off in the Settings"
)]
pub struct ListError(#[source] kube::Error);

/// Every Group the API server serves, indexed (`audit --live`); none where it serves no Groups.
/// Reads at most one page past the Group cap: the rest would be skipped anyway.
pub async fn list(client: &Client) -> Result<(OpenShiftGroups, Vec<Skipped>), String> {
    let Some(resource) = served(client).await.map_err(|e| e.to_string())? else {
        return Ok((OpenShiftGroups::default(), Vec::new()));
    };
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let mut objects = Vec::new();
    let mut params = kube::api::ListParams::default().limit(PAGE);
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|e| ListError(e).to_string())?;
        objects.extend(page.items);
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() && objects.len() <= MAX_GROUPS => {
                params = params.continue_token(&token);
            }
            _ => break,
        }
    }
    Ok(OpenShiftGroups::from_objects(objects.iter()))
}

/// The Group resource, when the API server serves it with list and watch. OpenShift's Groups
/// are cluster-scoped; a namespaced resource of that name (a CustomResourceDefinition someone
/// installed) is not them, and namespace roles may write it: it is taken as not served.
async fn served(client: &Client) -> Result<Option<ApiResource>, DiscoveryError> {
    let gvk = GroupVersionKind::gvk("user.openshift.io", "v1", "Group");
    match kube::discovery::pinned_kind(client, &gvk).await {
        Ok((_, caps)) if caps.scope != Scope::Cluster => {
            tracing::warn!(
                "groups.user.openshift.io is namespaced here, so it is not OpenShift's Group API and anyone who may write it in a namespace could grant groups: it is not read"
            );
            Ok(None)
        }
        Ok((resource, caps)) => Ok((caps.supports_operation(verbs::LIST)
            && caps.supports_operation(verbs::WATCH))
        .then_some(resource)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(kube::Error::Discovery(_)) => Ok(None),
        Err(error) => Err(DiscoveryError(error)),
    }
}
