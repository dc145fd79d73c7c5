//! What a caller of the webhook port can make the server spend: a body must arrive within a
//! deadline, and CPU-heavy work (a policy ConfigMap check, a large pod) runs on blocking threads,
//! a bounded number at a time, so the I/O workers keep answering ordinary pods. The connection
//! cap itself is set on the listener (`server::start`).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, web};
use futures::Stream;
use tokio::sync::Semaphore;
use tokio::time::Sleep;

use super::state::AppState;

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

/// Middleware of the webhook routes: the request body must arrive within
/// `RequestLimits::body_timeout` of the handler being reached. A body still incomplete then is
/// answered 408 and the connection closed, whichever extractor was reading it.
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(timeout) = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.limits.body_timeout)
    else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let expired = Arc::new(AtomicBool::new(false));
    let inner = req.take_payload();
    req.set_payload(Payload::Stream {
        payload: Box::pin(DeadlinePayload {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            expired: Arc::clone(&expired),
            done: false,
        }),
    });
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let res = next.call(req).await?;
    if !expired.load(Ordering::Acquire) {
        return Ok(res.map_into_boxed_body());
    }
    let path = res.request().path().to_string();
    tracing::warn!(
        %path,
        peer = ?res.request().peer_addr(),
        ?timeout,
        "request body not received in time; connection closed"
    );
    if let Some(state) = state {
        state.metrics.request_rejected("body_timeout");
    }
    let message = format!("request body not received within {timeout:?}; the connection is closed");
    let response = HttpResponse::RequestTimeout()
        .force_close()
        .content_type("text/plain; charset=utf-8")
        .body(message);
    Ok(ServiceResponse::new(res.request().clone(), response))
}

/// A request body that ends with an error once its deadline passes.
struct DeadlinePayload {
    inner: Payload,
    deadline: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
    done: bool,
}

impl Stream for DeadlinePayload {
    type Item = Result<web::Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.done = true;
            self.expired.store(true, Ordering::Release);
            let error = std::io::Error::new(std::io::ErrorKind::TimedOut, "request body timeout");
            return Poll::Ready(Some(Err(PayloadError::Io(error))));
        }
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(None) = polled {
            self.done = true;
        }
        polled
    }
}
