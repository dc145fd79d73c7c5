//! What a caller of the webhook port can make the server spend: a body must arrive within a
//! deadline, and CPU-heavy work (a policy ConfigMap check, a large pod) runs on blocking threads,
//! a bounded number at a time, so the I/O workers keep answering ordinary pods. The connection
//! cap itself is set on the listener (`server::start`); the body deadline is `deadline`'s.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use tokio::sync::Semaphore;

/// Request bodies up to this size are decided on the I/O worker: a pod of this size is decoded
/// and reviewed in well under a millisecond. Larger ones go to a blocking thread.
pub const INLINE_BODY: usize = 64 * 1024;

/// A blocking job that did not produce its result (it panicked); answered 500.
#[derive(Debug, thiserror::Error)]
#[error("the {0} check failed unexpectedly; retry, and report it if it persists")]
pub struct JobFailed(pub &'static str);

/// Per-server request limits, shared by every worker.
#[derive(Debug, Clone)]
pub struct RequestLimits {
    /// Time the whole body may take to arrive once the headers are read (slow headers are
    /// timed out by the listener itself).
    pub body_timeout: Duration,
    heavy: Arc<Semaphore>,
}

/// One CPU-heavy job per core by default: more would only queue on the CPU.
pub fn default_blocking_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits::new(Duration::from_secs(10), default_blocking_jobs())
    }
}

impl RequestLimits {
    /// `blocking_jobs` is raised to 1 at least.
    pub fn new(body_timeout: Duration, blocking_jobs: usize) -> RequestLimits {
        RequestLimits {
            body_timeout,
            heavy: Arc::new(Semaphore::new(blocking_jobs.max(1))),
        }
    }

    /// Runs `job` on a blocking thread once one of the permits is free; the permit is held
    /// until the job ends, even if the caller has gone away meanwhile.
    pub async fn run_heavy<T, F>(&self, what: &'static str, job: F) -> Result<T, JobFailed>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.heavy)
            .acquire_owned()
            .await
            .map_err(|_| JobFailed(what))?;
        web::block(move || {
            let result = job();
            drop(permit);
            result
        })
        .await
        .map_err(|_| JobFailed(what))
    }

    /// Jobs that may start now without waiting.
    pub fn idle_blocking_jobs(&self) -> usize {
        self.heavy.available_permits()
    }
}
