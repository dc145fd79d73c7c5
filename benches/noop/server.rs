//! A no-op admission webhook on the server's own stack (actix-web, rustls with the same TLS
//! configuration and certificate files, `TCP_NODELAY`): it parses the body as a
//! `serde_json::Value` and allows every request with one fixed JSON patch. The floor the real
//! server is compared against, in `make load` and `make bench-cluster`. Given the patch the real
//! server answers a pod with, it also shows what sending an answer of that size costs alone.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use actix_web::http::Version;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use notebook_volumes::server;

/// The one operation every answer carries by default: an annotation (notebook pods always have
/// annotations, so `add` below `/metadata/annotations` applies).
pub const PATCH: &str = r#"[{"op":"add","path":"/metadata/annotations/noop.notebook-volumes.io~1seen","value":"true"}]"#;

#[derive(Default)]
pub struct Counts {
    pub requests: AtomicUsize,
    pub http2: AtomicUsize,
}

impl Counts {
    // Read by the cluster benchmark, not by the standalone process.
    #[allow(dead_code)]
    pub fn get(&self) -> (usize, usize) {
        (
            self.requests.load(Ordering::Relaxed),
            self.http2.load(Ordering::Relaxed),
        )
    }
}

/// A running no-op webhook on its own actix system thread.
pub struct Noop {
    pub addr: SocketAddr,
    /// Requests answered, and how many of them came over HTTP/2.
    #[allow(dead_code)]
    pub counts: Arc<Counts>,
    handle: ServerHandle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Noop {
    /// Serves `POST /mutate` on `listen` with the certificate pair at `cert`/`key`, with
    /// `workers` worker threads (0: one per core, as the real server), answering every request
    /// with `patch` (JSON patch text, e.g. [`PATCH`]).
    pub fn start(
        listen: SocketAddr,
        cert: &Path,
        key: &Path,
        workers: usize,
        patch: &str,
    ) -> std::io::Result<Noop> {
        let config = server::tls_server_config(cert, key).map_err(std::io::Error::other)?;
        let workers = match workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let patch = base64::engine::general_purpose::STANDARD.encode(patch);
        let counts = Arc::new(Counts::default());
        let counted = Arc::clone(&counts);
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::new(patch.clone()))
                        .app_data(web::Data::from(Arc::clone(&counted)))
                        .app_data(web::PayloadConfig::new(3 * 1024 * 1024))
                        .route("/mutate", web::post().to(mutate))
                })
                .workers(workers)
                .tcp_nodelay(true)
                .disable_signals()
                .shutdown_timeout(1);
                let server = match server.bind_rustls_0_23(listen, config) {
                    Ok(server) => server,
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                        return Ok(());
                    }
                };
                let addr = server.addrs().first().copied().unwrap_or(listen);
                let server = server.run();
                let _ = started_tx.send(Ok((addr, server.handle())));
                server.await
            })
        });
        let (addr, handle) = started_rx.recv().map_err(|_| {
            std::io::Error::other("the no-op webhook thread ended before binding")
        })??;
        Ok(Noop {
            addr,
            counts,
            handle,
            thread: Some(thread),
        })
    }

    /// Waits until the server stops (it never does on its own).
    // Used by the standalone process, not by the cluster benchmark.
    #[allow(dead_code)]
    pub fn wait(mut self) -> std::io::Result<()> {
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(std::io::Error::other("the no-op webhook thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for Noop {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            // The stop command is sent at once; the returned future only waits for completion.
            drop(self.handle.stop(false));
            let _ = thread.join();
        }
    }
}

/// Parses the review as the cheapest webhook would and allows it with the fixed patch.
async fn mutate(
    request: HttpRequest,
    patch: web::Data<String>,
    counts: web::Data<Counts>,
    body: web::Bytes,
) -> HttpResponse {
    counts.requests.fetch_add(1, Ordering::Relaxed);
    if request.version() == Version::HTTP_2 {
        counts.http2.fetch_add(1, Ordering::Relaxed);
    }
    let review: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return HttpResponse::BadRequest().body(e.to_string()),
    };
    let uid = review
        .pointer("/request/uid")
        .and_then(|u| u.as_str())
        .unwrap_or_default();
    HttpResponse::Ok().json(serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": uid,
            "allowed": true,
            "patchType": "JSONPatch",
            "patch": patch.get_ref(),
        }
    }))
}
