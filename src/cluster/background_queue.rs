//! A bounded queue that one background task drains, for work the admission must not wait for
//! (home claims' last use and growth): offering never waits, and what does not fit is dropped
//! for the caller to count; the next launch offers it again.

use std::future::Future;
use std::sync::Arc;

use kube::Client;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;

/// The offering end; cheap to clone. The task ends when every clone is dropped.
/// A started queue's sending end and the task that drains it.
pub type Started<T> = (T, JoinHandle<()>);

pub struct BackgroundQueue<J> {
    tx: mpsc::Sender<J>,
}

// Derived `Clone` would ask `J: Clone`; only the sender is cloned.
impl<J> Clone for BackgroundQueue<J> {
    fn clone(&self) -> Self {
        BackgroundQueue {
            tx: self.tx.clone(),
        }
    }
}

impl<J: Send + 'static> BackgroundQueue<J> {
    /// A queue of at most `capacity` jobs, and the task running `work` on each in turn with
    /// the cluster client and the metrics.
    pub fn start<F, Fut>(
        capacity: usize,
        client: Client,
        metrics: Arc<Metrics>,
        work: F,
    ) -> Started<Self>
    where
        F: Fn(Client, Arc<Metrics>, J) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let (tx, mut rx) = mpsc::channel(capacity);
        let task = tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                work(client.clone(), metrics.clone(), job).await;
            }
        });
        (BackgroundQueue { tx }, task)
    }

    /// Queues `job` without waiting; `false` when it was dropped (the queue is full).
    pub fn offer(&self, job: J) -> bool {
        self.tx.try_send(job).is_ok()
    }
}
