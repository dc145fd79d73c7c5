//! CPU-heavy work of the background loops (compiling the policy, planning provisioned claims,
//! indexing OpenShift Groups) runs on blocking threads, so the async workers keep answering
//! admissions meanwhile.

/// Runs `job` on a blocking thread. A job that panicked is logged as `failed` followed by what
/// happens next (`then`), and gives `None`: the loop keeps what it had.
pub async fn off_workers<T, F>(failed: &str, then: &str, job: F) -> Option<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(job).await {
        Ok(done) => Some(done),
        Err(error) => {
            tracing::error!(%error, "{failed}; {then}");
            None
        }
    }
}
