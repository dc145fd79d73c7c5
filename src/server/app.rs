//! The HTTP surface of the webhook port: `POST /mutate` (pods) and `POST /validate` (policy
//! ConfigMaps). The same `configure` serves the TLS listener and the in-process tests.

use std::sync::Arc;
use std::time::Instant;

use actix_web::{HttpResponse, web};
use base64::Engine;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod};
use kube::Resource;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde::de::DeserializeOwned;

use super::limits::{INLINE_BODY, JobFailed, body_deadline};
use super::metrics::Decision;
use super::scope;
use super::state::{AppState, Policy};
use crate::admission::{
    ClaimLookup, Context, Effect, NoClaims, Review, home_claim_name, review, review_policy,
};
use crate::cluster::claims::{self, AdmissionClaims, Created};
use crate::policy::NamespaceInfo;

/// Largest AdmissionReview accepted; the API server's own request limit is 3 MiB.
pub const MAX_BODY: usize = 3 * 1024 * 1024;
/// The only AdmissionReview version spoken.
pub const ADMISSION_V1: &str = "admission.k8s.io/v1";

/// Routes of the TLS port; every body must arrive within the body deadline.
pub fn configure(cfg: &mut web::ServiceConfig, state: &AppState) {
    cfg.app_data(web::Data::new(state.clone()))
        .app_data(web::PayloadConfig::new(MAX_BODY))
        .service(
            web::scope("")
                .wrap(actix_web::middleware::from_fn(body_deadline))
                .route("/mutate", web::post().to(mutate))
                .route("/validate", web::post().to(validate)),
        );
}

/// Why a request body is not an AdmissionReview this webhook can answer (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum BadReview {
    #[error("request body is not a valid AdmissionReview JSON document: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "unsupported AdmissionReview apiVersion '{0}'; this webhook speaks {ADMISSION_V1} only (set admissionReviewVersions: [v1] in the webhook configuration)"
    )]
    ApiVersion(String),
    #[error("expected kind AdmissionReview, got '{0}'")]
    Kind(String),
    #[error("the AdmissionReview has no request")]
    NoRequest,
}

/// Decodes a v1 AdmissionReview and extracts its request.
pub fn decode<T>(body: &[u8]) -> Result<AdmissionRequest<T>, BadReview>
where
    T: Resource<DynamicType = ()> + DeserializeOwned,
{
    let mut value: serde_json::Value = serde_json::from_slice(body)?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    if api_version != ADMISSION_V1 {
        return Err(BadReview::ApiVersion(api_version));
    }
    if kind != "AdmissionReview" {
        return Err(BadReview::Kind(kind));
    }
    let Some(request) = value.get_mut("request").filter(|r| r.is_object()) else {
        return Err(BadReview::NoRequest);
    };
    // CONNECT (e.g. pods/exec) and subresources carry other kinds (PodExecOptions, ...): the
    // decision only reads objects of the kind it handles, so others are dropped, not rejected.
    let object_kind = request
        .pointer("/kind/kind")
        .and_then(|k| k.as_str())
        .unwrap_or_default();
    if object_kind != T::kind(&()) {
        for key in ["object", "oldObject"] {
            if let Some(o) = request.get_mut(key) {
                *o = serde_json::Value::Null;
            }
        }
    }
    let review: AdmissionReview<T> = serde_json::from_value(value)?;
    review.try_into().map_err(|_| BadReview::NoRequest)
}

fn bad_request(
    state: &AppState,
    webhook: &'static str,
    started: Instant,
    e: &BadReview,
) -> HttpResponse {
    tracing::warn!(webhook, error = %e, "malformed admission request");
    state.metrics.admission(
        webhook,
        "unknown",
        Decision::Error,
        started.elapsed().as_secs_f64(),
    );
    HttpResponse::BadRequest()
        .content_type("text/plain; charset=utf-8")
        .body(e.to_string())
}

fn operation(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

/// A blocking job that died (answered 500; the API server applies the failure policy).
fn job_failed(
    state: &AppState,
    webhook: &'static str,
    started: Instant,
    e: &JobFailed,
) -> HttpResponse {
    tracing::error!(webhook, error = %e, "admission job failed");
    state.metrics.admission(
        webhook,
        "unknown",
        Decision::Error,
        started.elapsed().as_secs_f64(),
    );
    HttpResponse::InternalServerError()
        .content_type("text/plain; charset=utf-8")
        .body(e.to_string())
}

async fn mutate(state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let started = Instant::now();
    // Small pods are decided on the I/O worker; a large one (up to 3 MiB, thousands of volumes)
    // is decoded and reviewed on a blocking thread.
    let off_worker = body.len() > INLINE_BODY;
    let decoded = if off_worker {
        state
            .limits
            .run_heavy("pod", move || decode::<Pod>(&body))
            .await
    } else {
        Ok(decode::<Pod>(&body))
    };
    let req = match decoded {
        Ok(Ok(r)) => Arc::new(r),
        Ok(Err(e)) => return bad_request(&state, "mutate", started, &e),
        Err(e) => return job_failed(&state, "mutate", started, &e),
    };
    let (outcome, failed) = admit_pod(&state, &req, off_worker).await;
    let decision = if failed {
        Decision::Error
    } else if outcome.allowed() {
        Decision::Allowed
    } else {
        Decision::Denied
    };
    let elapsed = started.elapsed();
    state.metrics.admission(
        "mutate",
        operation(&req.operation),
        decision,
        elapsed.as_secs_f64(),
    );
    let pod = req
        .object
        .as_ref()
        .and_then(|p| p.metadata.name.clone().or(p.metadata.generate_name.clone()))
        .unwrap_or_else(|| req.name.clone());
    tracing::info!(
        uid = %req.uid,
        namespace = req.namespace.as_deref().unwrap_or(""),
        pod = %pod,
        operation = operation(&req.operation),
        sub_resource = req.sub_resource.as_deref().unwrap_or(""),
        requester = req.user_info.username.as_deref().unwrap_or(""),
        user = outcome.user.as_deref().unwrap_or(""),
        decision = decision.as_str(),
        mounts = %outcome.summary(),
        message = outcome.message().unwrap_or(""),
        dry_run = req.dry_run,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "admission"
    );
    HttpResponse::Ok().json(wire(outcome.response))
}

/// The pod decision with its cluster I/O: the namespace check and home claim GET before, the
/// effects after. The flag says a cluster call failed (the pod is denied with a message saying
/// what to do). `off_worker` runs the pure decision on a blocking thread.
pub async fn admit_pod(
    state: &AppState,
    req: &Arc<AdmissionRequest<Pod>>,
    off_worker: bool,
) -> (Review, bool) {
    let policy = state.policy.load_full();
    let ns_name = req.namespace.clone().unwrap_or_default();
    let ns = match &state.cluster {
        Some(cluster) => match cluster.namespace_info(&ns_name).await {
            Ok(ns) => ns,
            Err(e) => return (fail(req, &e.to_string()), true),
        },
        None => NamespaceInfo::new(&ns_name),
    };
    let Some(cluster) = &state.cluster else {
        let outcome = match decide(state, req, &policy, &ns, None, off_worker).await {
            Ok(outcome) => outcome,
            Err(e) => return (fail(req, &e.to_string()), true),
        };
        for effect in &outcome.effects {
            tracing::info!(?effect, "serving from local files: not performing");
        }
        return (outcome, false);
    };
    // Anyone reaching the port can send a review: nothing is looked up or created for a
    // namespace the webhook does not itself see as enabled.
    let ns = match scope::confirm_in_scope(cluster, ns, &state.policy_namespace).await {
        Ok(ns) => ns,
        Err(message) => {
            tracing::warn!(
                uid = %req.uid,
                namespace = %ns_name,
                requester = req.user_info.username.as_deref().unwrap_or(""),
                "review for a namespace out of scope denied without effects"
            );
            return (fail(req, &message), false);
        }
    };
    let probe = Context {
        policy: &policy.snapshot,
        namespace: &ns,
        claims: &NoClaims,
        webhook_user: None,
    };
    let home = home_claim_name(probe, req);
    let mut fetched: Option<PersistentVolumeClaim> = None;
    if let Some(name) = &home {
        match claims::get(&cluster.client, &ns_name, name).await {
            Ok(pvc) => fetched = pvc,
            Err(e) => return (fail(req, &e.to_string()), true),
        }
    }
    let lookup = home.map(|name| (ns_name.clone(), name, fetched.clone()));
    let outcome = match decide(state, req, &policy, &ns, lookup, off_worker).await {
        Ok(outcome) => outcome,
        Err(e) => return (fail(req, &e.to_string()), true),
    };
    if req.dry_run || !outcome.allowed() || outcome.effects.is_empty() {
        return (outcome, false);
    }
    let user = outcome.user.clone().unwrap_or_default();
    for effect in outcome.effects.clone() {
        let result = match &effect {
            Effect::CreateClaim(pvc) => {
                claims::create(&cluster.client, pvc, &user)
                    .await
                    .map(|created| {
                        if created == Created::Created {
                            state.metrics.claim_created();
                            tracing::info!(namespace = %ns_name, claim = ?pvc.metadata.name, %user, "home claim created");
                        }
                    })
            }
            Effect::AdoptClaim {
                namespace,
                name,
                owner,
            } => {
                let version = fetched
                    .as_ref()
                    .filter(|p| p.metadata.name.as_deref() == Some(name.as_str()))
                    .and_then(|p| p.metadata.resource_version.as_deref());
                claims::adopt(&cluster.client, namespace, name, owner, version)
                    .await
                    .map(|()| {
                        state.metrics.claim_adopted();
                        tracing::info!(%namespace, claim = %name, %owner, "home claim adopted");
                    })
            }
        };
        if let Err(e) = result {
            return (outcome.deny(&e.to_string()), true);
        }
    }
    (outcome, false)
}

/// The pure pod decision, with the claims known to the server: `home` is the fetched home claim
/// (namespace, name, the claim if it exists), the cache the rest. Owned inputs, so it can run
/// on a blocking thread when `off_worker`.
async fn decide(
    state: &AppState,
    req: &Arc<AdmissionRequest<Pod>>,
    policy: &Arc<Policy>,
    ns: &NamespaceInfo,
    home: Option<(String, String, Option<PersistentVolumeClaim>)>,
    off_worker: bool,
) -> Result<Review, JobFailed> {
    let cache = state.cluster.as_ref().map(|c| c.home_claims.clone());
    let (req, policy, ns) = (Arc::clone(req), Arc::clone(policy), ns.clone());
    let job = move || {
        let lookup = AdmissionClaims {
            fetched: home
                .as_ref()
                .map(|(namespace, name, pvc)| (namespace.as_str(), name.as_str(), pvc.as_ref())),
            cache: cache.as_ref(),
        };
        let claims: &dyn ClaimLookup = if cache.is_some() { &lookup } else { &NoClaims };
        let ctx = Context {
            policy: &policy.snapshot,
            namespace: &ns,
            claims,
            webhook_user: None,
        };
        review(ctx, &req)
    };
    if off_worker {
        state.limits.run_heavy("pod", job).await
    } else {
        Ok(job())
    }
}

/// The AdmissionReview as the API server expects it. kube-core serializes `patch` (a Go
/// `[]byte`) as an array of numbers; the canonical form is a base64 string, so it is rewritten.
pub fn wire(response: AdmissionResponse) -> serde_json::Value {
    let patch = response.patch.clone();
    let mut review = serde_json::to_value(response.into_review()).unwrap_or_default();
    if let (Some(bytes), Some(slot)) = (patch, review.pointer_mut("/response/patch")) {
        *slot = serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    review
}

/// A denial for a request the decision could not be run on.
fn fail(req: &AdmissionRequest<Pod>, message: &str) -> Review {
    Review {
        response: AdmissionResponse::from(req),
        user: None,
        mounts: Vec::new(),
        effects: Vec::new(),
    }
    .deny(message)
}

async fn validate(state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let started = Instant::now();
    // Parsing and checking a policy ConfigMap (up to 3 MiB of YAML) is CPU-heavy: always on a
    // blocking thread, a bounded number at a time.
    let policy = state.policy.load_full();
    let policy_namespace = state.policy_namespace.clone();
    let job = move || {
        let req: AdmissionRequest<ConfigMap> = decode(&body)?;
        let (response, verdict) = review_policy(&policy.units, &policy_namespace, &req);
        Ok::<_, BadReview>((req, response, verdict))
    };
    let (req, response, verdict) = match state.limits.run_heavy("policy", job).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => return bad_request(&state, "validate", started, &e),
        Err(e) => return job_failed(&state, "validate", started, &e),
    };
    let decision = if response.allowed {
        Decision::Allowed
    } else {
        Decision::Denied
    };
    let elapsed = started.elapsed();
    state.metrics.admission(
        "validate",
        operation(&req.operation),
        decision,
        elapsed.as_secs_f64(),
    );
    tracing::info!(
        uid = %req.uid,
        namespace = req.namespace.as_deref().unwrap_or(""),
        configmap = %req.name,
        operation = operation(&req.operation),
        requester = req.user_info.username.as_deref().unwrap_or(""),
        decision = decision.as_str(),
        checked = verdict.is_some(),
        errors = verdict.as_ref().map_or(0, |v| v.errors.len()),
        warnings = verdict.as_ref().map_or(0, |v| v.warnings.len()),
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "policy admission"
    );
    HttpResponse::Ok().json(wire(response))
}
