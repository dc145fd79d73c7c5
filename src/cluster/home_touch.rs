//! The last-used time of home claims (`notebook-volumes.io/last-used`), for `homes` and the
//! administrators deciding about homes of users who left. Written at most once a day per claim,
//! never on the admission's critical path: launches offer a claim to a bounded queue that one
//! background task drains; when the queue is full the offer is dropped (a metric counts it) and
//! the next launch offers again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use super::background_queue::{BackgroundQueue, Started};
use crate::keys;
use crate::metrics::Metrics;

/// Claims waiting for their stamp; beyond this, offers are dropped.
pub const QUEUE: usize = 256;
/// Claims remembered as stamped today; the memory is cleared when it grows past this.
const REMEMBERED: usize = 100_000;

/// A claim to stamp: namespace and name.
type Job = (String, String);

/// The launch side of the queue; cheap to clone.
#[derive(Clone)]
pub struct HomeTouch {
    queue: BackgroundQueue<Job>,
    /// Claim → the day (`YYYY-MM-DD`, UTC) it was last offered.
    offered: Arc<Mutex<HashMap<Job, String>>>,
    metrics: Arc<Metrics>,
}

/// The day of `now`, as the annotation's first ten characters.
fn day(now: Timestamp) -> String {
    now.to_string().chars().take(10).collect()
}

impl HomeTouch {
    /// The queue and the task that writes the stamps.
    pub fn start(client: Client, metrics: Arc<Metrics>) -> Started<HomeTouch> {
        let (queue, task) = BackgroundQueue::start(QUEUE, client, metrics.clone(), stamp);
        let touch = HomeTouch {
            queue,
            offered: Arc::new(Mutex::new(HashMap::new())),
            metrics,
        };
        (touch, task)
    }

    /// After a launch mounting home `claim`, whose annotation says `stamped`: queues a stamp
    /// unless the claim already has today's, or was offered today. Never waits.
    pub fn offer(&self, namespace: &str, claim: &str, stamped: Option<&str>) {
        let today = day(Timestamp::now());
        if stamped.is_some_and(|s| s.starts_with(&today)) {
            return;
        }
        let job: Job = (namespace.to_string(), claim.to_string());
        {
            let Ok(mut offered) = self.offered.lock() else {
                return;
            };
            if offered.get(&job) == Some(&today) {
                return;
            }
            if offered.len() >= REMEMBERED {
                offered.clear();
            }
            offered.insert(job.clone(), today);
        }
        if !self.queue.offer(job.clone()) {
            self.metrics.home_touch_dropped();
            // Forgotten, so that the next launch offers it again.
            if let Ok(mut offered) = self.offered.lock() {
                offered.remove(&job);
            }
        }
    }
}

/// Writes one claim's stamp with a merge patch of the one annotation.
async fn stamp(client: Client, metrics: Arc<Metrics>, (namespace, claim): Job) {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &namespace);
    let now = Timestamp::now().to_string();
    let patch = json!({"metadata": {"annotations": {keys::LAST_USED_ANNOTATION: now}}});
    match api
        .patch(&claim, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => metrics.home_touched(),
        Err(error) => tracing::warn!(
            %namespace, %claim, %error,
            "cannot record the home claim's last use; check that the webhook may patch persistentvolumeclaims"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_is_the_utc_date() {
        let t: Timestamp = "2026-11-28T23:59:59Z".parse().unwrap();
        assert_eq!(day(t), "2026-11-28");
    }
}
