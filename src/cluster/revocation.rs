//! After every policy change, the running notebooks that now mount more than it grants: a gauge
//! per share, one log line per notebook and share, and (only with --delete-exceeding-pods) the
//! notebooks deleted so their spawner restarts them with current rights.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kube::Client;
use tokio::sync::Mutex;

use super::live;
use crate::metrics::Metrics;
use crate::policy::in_force::Policy;

/// Scans one policy at a time; a change arriving during a scan is scanned after it (the latest
/// policy wins, intermediate ones are skipped).
pub struct Revocation {
    client: Client,
    delete: bool,
    running: Arc<Mutex<()>>,
    latest: Arc<std::sync::Mutex<Option<Arc<Policy>>>>,
}

impl Revocation {
    pub fn new(client: Client, delete: bool) -> Revocation {
        Revocation {
            client,
            delete,
            running: Arc::new(Mutex::new(())),
            latest: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// Starts a scan against `policy` in the background.
    pub fn scan(&self, policy: Arc<Policy>, metrics: Arc<Metrics>) {
        if let Ok(mut latest) = self.latest.lock() {
            *latest = Some(policy);
        }
        let (client, delete) = (self.client.clone(), self.delete);
        let (running, latest) = (Arc::clone(&self.running), Arc::clone(&self.latest));
        tokio::spawn(async move {
            let _one_at_a_time = running.lock().await;
            let Some(policy) = latest.lock().ok().and_then(|mut l| l.take()) else {
                return; // A scan that started after this one already took the latest policy.
            };
            match live::exceeding_pods(&client, &policy.snapshot, None).await {
                Ok(found) => {
                    let mut pods: BTreeMap<&str, BTreeSet<(&str, &str)>> = BTreeMap::new();
                    for e in &found {
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
                        pods.entry(&e.share)
                            .or_default()
                            .insert((&e.namespace, &e.pod));
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
