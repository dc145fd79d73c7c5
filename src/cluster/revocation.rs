//! After every policy change, the running notebooks that now mount more than it grants: a gauge
//! per share, one log line and one Warning Event (`ExceedsPolicy`, on the pod) per notebook and
//! share, and (only with --delete-exceeding-pods) the notebooks deleted so their spawner restarts
//! them with current rights. A notebook is told once per share and rule: a later, unrelated policy
//! change does not repeat it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use kube::Client;
use tokio::sync::Mutex;

use super::live;
use super::user_events::UserEvents;
use crate::admission::revocation::Excess;
use crate::metrics::Metrics;
use crate::policy::in_force::Policy;

/// Scans one policy at a time; a change arriving during a scan is scanned after it (the latest
/// policy wins, intermediate ones are skipped).
pub struct Revocation {
    client: Client,
    delete: bool,
    running: Arc<Mutex<()>>,
    latest: Arc<std::sync::Mutex<Option<Arc<Policy>>>>,
    /// The bounded, rate-limited queue of Events users see (none when the server has none).
    events: Option<UserEvents>,
    /// What was already logged and told (pod, share, mounted, granted, rule), as of the last scan.
    told: Arc<std::sync::Mutex<HashSet<Told>>>,
}

type Told = (String, String, String, String, String, String);

fn told(e: &Excess) -> Told {
    (
        e.namespace.clone(),
        e.uid.clone().unwrap_or_else(|| e.pod.clone()),
        e.share.clone(),
        e.mounted.clone(),
        e.granted.clone(),
        e.reason.clone(),
    )
}

impl Revocation {
    pub fn new(client: Client, delete: bool, events: Option<UserEvents>) -> Revocation {
        Revocation {
            client,
            delete,
            running: Arc::new(Mutex::new(())),
            latest: Arc::new(std::sync::Mutex::new(None)),
            events,
            told: Arc::new(std::sync::Mutex::new(HashSet::new())),
        }
    }

    /// Starts a scan against `policy` in the background.
    pub fn scan(&self, policy: Arc<Policy>, metrics: Arc<Metrics>) {
        if let Ok(mut latest) = self.latest.lock() {
            *latest = Some(policy);
        }
        let (client, delete) = (self.client.clone(), self.delete);
        let (running, latest) = (Arc::clone(&self.running), Arc::clone(&self.latest));
        let (events, told_before) = (self.events.clone(), Arc::clone(&self.told));
        tokio::spawn(async move {
            let _one_at_a_time = running.lock().await;
            let Some(policy) = latest.lock().ok().and_then(|mut l| l.take()) else {
                return; // A scan that started after this one already took the latest policy.
            };
            match live::exceeding_pods(&client, &policy.snapshot, None).await {
                Ok(found) => {
                    let mut pods: BTreeMap<&str, BTreeSet<(&str, &str)>> = BTreeMap::new();
                    let now: HashSet<Told> = found.iter().map(told).collect();
                    let before = told_before
                        .lock()
                        .map(|mut t| std::mem::replace(&mut *t, now))
                        .unwrap_or_default();
                    let mut notices = Vec::new();
                    for e in &found {
                        pods.entry(&e.share)
                            .or_default()
                            .insert((&e.namespace, &e.pod));
                        if before.contains(&told(e)) {
                            continue;
                        }
                        notices.push(e.notice());
                        tracing::warn!(
                            namespace = %e.namespace,
                            pod = %e.pod,
                            user = %e.user,
                            share = %e.share,
                            mounted = %e.mounted,
                            granted = %e.granted,
                            reason = %e.reason,
                            "a running notebook mounts more than current policy grants; it keeps that mount until it restarts"
                        );
                    }
                    if let Some(events) = &events {
                        events.offer(notices);
                    }
                    let counts: Vec<(String, usize)> = pods
                        .iter()
                        .map(|(share, p)| (share.to_string(), p.len()))
                        .collect();
                    metrics.set_exceeding(&counts);
                    if delete && !found.is_empty() {
                        live::delete_pods(&client, &found).await;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "could not check running notebooks against the new policy")
                }
            }
        });
    }
}
