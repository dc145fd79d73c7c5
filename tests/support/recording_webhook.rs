//! An HTTPS admission webhook for tests: records every AdmissionReview the
//! API server sends, allows it, and marks the object with an annotation so a
//! test can see that the API server applied the webhook's patch.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};

use super::TestTls;

/// The annotation the webhook adds to every object it admits.
pub const WEBHOOK_ANNOTATION: &str = "notebook-volumes.test/recording-webhook";

/// One call the API server made to the webhook.
#[derive(Debug, Clone)]
pub struct AdmissionCall {
    pub uid: String,
    pub operation: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub dry_run: bool,
    pub user: Option<String>,
    /// The AdmissionReview exactly as the API server sent it.
    pub review: serde_json::Value,
}

/// A running webhook on `https://127.0.0.1:<port>`, stopped on drop.
pub struct RecordingWebhook {
    port: u16,
    calls: Arc<Mutex<Vec<AdmissionCall>>>,
    handle: ServerHandle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl RecordingWebhook {
    /// Serves `POST /mutate` on a free loopback port with `tls`' certificate.
    /// It runs on an actix system in a thread of its own, independent of the
    /// test's tokio runtime.
    pub fn start(tls: &TestTls) -> RecordingWebhook {
        let config = tls.server_config();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&calls);
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::new(Arc::clone(&recorded)))
                        .app_data(web::PayloadConfig::new(4 << 20))
                        .route("/mutate", web::post().to(mutate))
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1)
                .bind_rustls_0_23(("127.0.0.1", 0), config)?;
                let port = server.addrs()[0].port();
                let server = server.run();
                let _ = started_tx.send((port, server.handle()));
                server.await
            })
        });
        let (port, handle) = started_rx
            .recv()
            .expect("the recording webhook failed to start (could not bind 127.0.0.1)");
        RecordingWebhook {
            port,
            calls,
            handle,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL for a webhook configuration's `clientConfig.url`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}/mutate", self.port)
    }

    /// The calls received so far, oldest first.
    pub fn calls(&self) -> Vec<AdmissionCall> {
        self.calls.lock().unwrap().clone()
    }
}

impl Drop for RecordingWebhook {
    fn drop(&mut self) {
        futures::executor::block_on(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn mutate(
    calls: web::Data<Arc<Mutex<Vec<AdmissionCall>>>>,
    body: web::Bytes,
) -> HttpResponse {
    let raw: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(raw) => raw,
        Err(e) => return HttpResponse::BadRequest().body(format!("not JSON: {e}")),
    };
    let review: AdmissionReview<DynamicObject> = match serde_json::from_value(raw.clone()) {
        Ok(review) => review,
        Err(e) => return HttpResponse::BadRequest().body(format!("not an AdmissionReview: {e}")),
    };
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(request) => request,
        Err(e) => {
            return HttpResponse::BadRequest().body(format!("not an AdmissionReview request: {e}"));
        }
    };
    calls.lock().unwrap().push(AdmissionCall {
        uid: request.uid.clone(),
        operation: format!("{:?}", request.operation).to_uppercase(),
        kind: request.kind.kind.clone(),
        namespace: request.namespace.clone(),
        name: request.name.clone(),
        dry_run: request.dry_run,
        user: request.user_info.username.clone(),
        review: raw,
    });

    let has_annotations = request
        .object
        .as_ref()
        .is_some_and(|o| o.metadata.annotations.is_some());
    let patch = if has_annotations {
        serde_json::json!([{
            "op": "add",
            "path": format!("/metadata/annotations/{}", WEBHOOK_ANNOTATION.replace('/', "~1")),
            "value": request.uid,
        }])
    } else {
        serde_json::json!([{
            "op": "add",
            "path": "/metadata/annotations",
            "value": { WEBHOOK_ANNOTATION: request.uid },
        }])
    };
    let patch: json_patch::Patch = serde_json::from_value(patch).expect("a valid JSON patch");
    let response = AdmissionResponse::from(&request)
        .with_patch(patch)
        .expect("serialize the JSON patch");
    HttpResponse::Ok().json(response.into_review())
}
