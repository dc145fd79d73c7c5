//! Writes the Events users see (`admission::notices`) off the admission path: handlers offer
//! finished notices to a bounded queue without waiting; one background task records them at a
//! bounded rate. A full queue or an empty rate budget drops the notice and counts it
//! (`notebook_volumes_events_dropped_total`): an Event is a courtesy, admission never waits for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::events::truncate;
use crate::admission::notices::Notice;
use crate::metrics::Metrics;

/// Notices waiting to be written; beyond this, new ones are dropped.
pub const QUEUE: usize = 512;
/// Sustained Events per second, and the burst above it.
const RATE: f64 = 10.0;
const BURST: f64 = 50.0;
/// How long the writer waits for a pod being created to exist (then drops its Events).
const POD_WAIT: Duration = Duration::from_secs(2);
const POD_POLL: Duration = Duration::from_millis(100);
/// Pods whose uid was looked up recently (several Events of one pod look it up once).
const UID_CACHE: usize = 256;
/// The Events API caps the note at 1 kB.
const MAX_NOTE: usize = 1000;

/// The handlers' end of the queue; cheap to clone.
#[derive(Clone)]
pub struct UserEvents {
    tx: mpsc::Sender<Notice>,
    metrics: Arc<Metrics>,
}

impl UserEvents {
    /// The queue and its writer task (to be spawned).
    pub fn new(
        client: Client,
        metrics: Arc<Metrics>,
    ) -> (UserEvents, impl std::future::Future<Output = ()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = write(rx, client, metrics.clone());
        (UserEvents { tx, metrics }, writer)
    }

    /// Hands notices to the writer without waiting; those that do not fit are dropped.
    pub fn offer(&self, notices: Vec<Notice>) {
        for notice in notices {
            match self.tx.try_send(notice) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => self.metrics.event_dropped("queue_full"),
                Err(TrySendError::Closed(_)) => self.metrics.event_dropped("writer_stopped"),
            }
        }
    }
}

/// A token bucket: `RATE` per second, at most `BURST` saved up.
#[derive(Debug)]
struct Budget {
    tokens: f64,
    last: Instant,
}

impl Budget {
    fn new(now: Instant) -> Self {
        Budget {
            tokens: BURST,
            last: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * RATE).min(BURST);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

async fn write(mut rx: mpsc::Receiver<Notice>, client: Client, metrics: Arc<Metrics>) {
    let reporter = Reporter {
        controller: "notebook-volumes".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    // The recorder folds repeats of one Event into a series (a count), so a controller retrying
    // a denied pod updates one Event instead of adding one per try.
    let recorder = Recorder::new(client.clone(), reporter);
    let mut budget = Budget::new(Instant::now());
    let mut uids: HashMap<(String, String), Option<String>> = HashMap::new();
    while let Some(notice) = rx.recv().await {
        if !budget.take(Instant::now()) {
            metrics.event_dropped("rate_limited");
            continue;
        }
        let mut regarding = notice.regarding.clone();
        if notice.wait_for_pod {
            match pod_uid(&client, &regarding, &mut uids).await {
                Some(uid) => regarding.uid = Some(uid),
                None => {
                    metrics.event_dropped("pod_absent");
                    continue;
                }
            }
        }
        let event = Event {
            type_: if notice.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: notice.reason.into(),
            note: Some(truncate(&notice.note, MAX_NOTE)),
            action: "Admit".into(),
            secondary: None,
        };
        match recorder.publish(&event, &regarding).await {
            Ok(()) => metrics.event_written(),
            Err(error) => {
                tracing::warn!(%error, reason = notice.reason, object = ?regarding.name, "cannot record an Event");
                metrics.event_dropped("write_failed");
            }
        }
    }
}

/// The uid of the pod `regarding` names, once it exists (it is created after the answer).
async fn pod_uid(
    client: &Client,
    regarding: &ObjectReference,
    cache: &mut HashMap<(String, String), Option<String>>,
) -> Option<String> {
    let namespace = regarding.namespace.clone().unwrap_or_default();
    let name = regarding.name.clone().unwrap_or_default();
    let key = (namespace.clone(), name.clone());
    if let Some(known) = cache.get(&key) {
        return known.clone();
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let deadline = Instant::now() + POD_WAIT;
    let uid = loop {
        match pods.get_opt(&name).await {
            Ok(Some(pod)) => break pod.metadata.uid,
            Ok(None) if Instant::now() < deadline => tokio::time::sleep(POD_POLL).await,
            Ok(None) => break None,
            Err(error) => {
                tracing::debug!(%error, pod = %name, "cannot read the pod an Event is about");
                break None;
            }
        }
    };
    if cache.len() >= UID_CACHE {
        cache.clear();
    }
    cache.insert(key, uid.clone());
    uid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut budget = Budget::new(start);
        let burst = (0..200).filter(|_| budget.take(start)).count();
        assert_eq!(burst, BURST as usize);
        assert!(!budget.take(start));
        let later = start + Duration::from_millis(500);
        let refilled = (0..200).filter(|_| budget.take(later)).count();
        assert_eq!(refilled, (RATE / 2.0) as usize);
    }

    /// With the writer stalled, offers beyond the queue are dropped at once and counted.
    #[tokio::test]
    async fn a_full_queue_drops_and_counts_without_waiting() {
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("url"));
        let client = Client::try_from(config).expect("client");
        let metrics = Arc::new(Metrics::new());
        let (events, _writer_not_running) = UserEvents::new(client, metrics.clone());
        let notice = Notice {
            regarding: ObjectReference::default(),
            wait_for_pod: false,
            warning: true,
            reason: "Test",
            note: String::new(),
        };
        // `offer` is not async: it cannot wait for the writer.
        events.offer(vec![notice; QUEUE + 7]);
        let text = metrics.render();
        assert!(
            text.contains("notebook_volumes_events_dropped_total{reason=\"queue_full\"} 7"),
            "{text}"
        );
    }
}
