//! The body deadline of the webhook routes (`RequestLimits::body_timeout`): a request body still
//! incomplete when it passes is answered 408 and its connection closed.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, web};
use futures::Stream;
use tokio::time::Sleep;

use super::state::AppState;

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
