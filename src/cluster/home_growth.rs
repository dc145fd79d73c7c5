//! Growing home claims when the policy gives their user a larger size (`Home.create.size`,
//! `Home.sizes`), off the admission's critical path: the decision queues the growth, one
//! background task performs it. A claim is grown only when its StorageClass allows volume
//! expansion; otherwise (or when the API server refuses) the reason is written in the claim's
//! `notebook-volumes.io/growth-refused` annotation, which the next launch turns into a warning.
//! Nothing is ever shrunk: the decision asks only for a strictly larger size.

use std::sync::Arc;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use super::background_queue::{BackgroundQueue, Started};
use crate::keys;
use crate::metrics::Metrics;

/// Growths waiting; beyond this, they are dropped (the next launch asks again).
pub const QUEUE: usize = 64;

/// A claim to grow: namespace, name and the size to request.
type Job = (String, String, String);

/// The decision side of the queue; cheap to clone.
#[derive(Clone)]
pub struct HomeGrowth {
    queue: BackgroundQueue<Job>,
    metrics: Arc<Metrics>,
}

impl HomeGrowth {
    pub fn start(client: Client, metrics: Arc<Metrics>) -> Started<HomeGrowth> {
        let (queue, task) = BackgroundQueue::start(QUEUE, client, metrics.clone(), grow_and_record);
        (HomeGrowth { queue, metrics }, task)
    }

    /// Queues a growth; never waits.
    pub fn offer(&self, namespace: &str, claim: &str, size: &str) {
        let job = (namespace.to_string(), claim.to_string(), size.to_string());
        if !self.queue.offer(job) {
            self.metrics.home_growth("dropped");
        }
    }
}

/// Grows one claim and records the outcome: the metric, the claim's annotation, a log line.
async fn grow_and_record(client: Client, metrics: Arc<Metrics>, (namespace, claim, size): Job) {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &namespace);
    let result = grow(&client, &claims, &claim, &size).await;
    let (outcome, note) = match result {
        Ok(()) => ("grown", None),
        Err(reason) => ("refused", Some(format!("{size}: {reason}"))),
    };
    metrics.home_growth(outcome);
    let annotation = note
        .clone()
        .map_or(serde_json::Value::Null, serde_json::Value::from);
    let patch = json!({"metadata": {"annotations": {keys::GROWTH_REFUSED_ANNOTATION: annotation}}});
    if let Err(error) = claims
        .patch(&claim, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(%namespace, %claim, %error, "cannot record the home claim's growth");
    }
    match note {
        None => tracing::info!(%namespace, %claim, %size, "home claim grown"),
        Some(note) => tracing::warn!(%namespace, %claim, %note, "home claim not grown"),
    }
}

/// Requests `size` for the claim when its StorageClass allows expansion; `Err` says why not.
async fn grow(
    client: &Client,
    claims: &Api<PersistentVolumeClaim>,
    claim: &str,
    size: &str,
) -> Result<(), String> {
    let pvc = claims
        .get_opt(claim)
        .await
        .map_err(|e| format!("cannot read the claim: {e}"))?
        .ok_or("the claim no longer exists")?;
    let class = pvc
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .filter(|c| !c.is_empty())
        .ok_or("the claim names no StorageClass, so it cannot be expanded")?;
    let classes: Api<StorageClass> = Api::all(client.clone());
    let sc = classes
        .get_opt(&class)
        .await
        .map_err(|e| format!("cannot read StorageClass '{class}': {e}"))?
        .ok_or_else(|| format!("StorageClass '{class}' does not exist"))?;
    if sc.allow_volume_expansion != Some(true) {
        return Err(format!(
            "StorageClass '{class}' does not allow volume expansion (allowVolumeExpansion); an administrator can move the data to a larger claim"
        ));
    }
    let patch = json!({"spec": {"resources": {"requests": {"storage": size}}}});
    claims
        .patch(claim, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| format!("the API server refused the expansion: {e}"))?;
    Ok(())
}
