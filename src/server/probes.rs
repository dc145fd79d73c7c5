//! The plain-HTTP probe port: liveness, readiness (all caches listed) and Prometheus metrics. Kept
//! off the TLS port so kubelet and Prometheus need no certificates.

use actix_web::{HttpResponse, web};

use super::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig, state: &AppState) {
    cfg.app_data(web::Data::new(state.clone()))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok\n")
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let pending = state.readiness.pending();
    let stale = state.readiness.stale();
    if pending.is_empty() && stale.is_empty() {
        HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("ready\n")
    } else if pending.is_empty() {
        // Still ready: every cache was listed once, and admissions use the last complete list
        // (one whole policy snapshot) while the watch reconnects. Going unready here would take
        // every replica out of the Service at once when the API server restarts.
        HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(format!(
                "ready; reconnecting after a watch error, serving the last complete list of: {}\n",
                stale.join(", ")
            ))
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body(format!(
                "waiting for the first list of: {}\n",
                pending.join(", ")
            ))
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render())
}
