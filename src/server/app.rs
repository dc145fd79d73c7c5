//! The HTTP surface of the webhook port: `POST /mutate` (pods), `POST /validate` (policy
//! ConfigMaps), `POST /connect` (connections into pods), `POST /claims` (the claim guard) and
//! `POST /workloads` (stamps on StatefulSets and Notebooks). The same `configure` serves the TLS listener and the in-process tests.

use std::sync::Arc;
use std::time::Instant;

use actix_web::{HttpResponse, web};
use base64::Engine;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod};
use kube::Resource;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde::de::DeserializeOwned;

use super::limits::{INLINE_BODY, JobFailed, body_deadline};
use super::metrics::Decision;
use super::scope;
use super::state::{AppState, Policy};
use crate::admission::{
    ClaimLookup, Context, Effect, NoClaims, Review, home_claim_name, review, review_claim,
    review_policy,
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
                .route("/validate", web::post().to(validate))
                .route("/connect", web::post().to(connect))
                .route("/claims", web::post().to(admit_claim))
                .route(
                    "/workloads",
                    web::post().to(super::workloads::admit_workload),
                ),
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
    let mut value = envelope(body)?;
    let Some(request) = value.get_mut("request") else {
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

/// Decodes a v1 AdmissionReview of any kind (claims and snapshots share one route).
pub fn decode_dynamic(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, BadReview> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_value(envelope(body)?)?;
    review.try_into().map_err(|_| BadReview::NoRequest)
}

/// The JSON of a v1 AdmissionReview that has a request.
fn envelope(body: &[u8]) -> Result<serde_json::Value, BadReview> {
    let value: serde_json::Value = serde_json::from_slice(body)?;
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
    if !value.get("request").is_some_and(|r| r.is_object()) {
        return Err(BadReview::NoRequest);
    }
    Ok(value)
}

pub(super) fn bad_request(
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

/// Counts an answered admission in the metrics; the decision and the time it took, for the log.
pub(super) fn count(
    state: &AppState,
    webhook: &'static str,
    op: &Operation,
    (failed, allowed): (bool, bool),
    started: Instant,
) -> (Decision, std::time::Duration) {
    let decision = if failed {
        Decision::Error
    } else if allowed {
        Decision::Allowed
    } else {
        Decision::Denied
    };
    let elapsed = started.elapsed();
    state
        .metrics
        .admission(webhook, operation(op), decision, elapsed.as_secs_f64());
    (decision, elapsed)
}

pub(super) fn operation(op: &Operation) -> &'static str {
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
    let (decision, elapsed) = count(
        &state,
        "mutate",
        &req.operation,
        (failed, outcome.allowed()),
        started,
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
    let key = state.stamp_key.load_full();
    let probe = Context {
        policy: &policy.snapshot,
        namespace: &ns,
        claims: &NoClaims,
        webhook_user: None,
        stamp_key: key.as_deref(),
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
    let webhook_user = state.cluster.as_ref().and_then(|c| c.webhook_user.clone());
    let stamp_key = state.stamp_key.load_full();
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
            webhook_user: webhook_user.as_deref(),
            stamp_key: stamp_key.as_deref(),
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
    let (decision, elapsed) = count(
        &state,
        "validate",
        &req.operation,
        (false, response.allowed),
        started,
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

/// `pods/exec`, `pods/attach`, `pods/portforward` and `pods/proxy` (CONNECT): the request names
/// the pod, whose spec is read from the API server, and the requester needs the rights its
/// containers have (another user's notebook: that user or an administrator only).
async fn connect(state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let started = Instant::now();
    let req: AdmissionRequest<Pod> = match decode(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(&state, "connect", started, &e),
    };
    let sub_resource = req.sub_resource.clone().unwrap_or_default();
    let response = match connect_denial(&state, &req, &sub_resource).await {
        Ok(None) => AdmissionResponse::from(&req),
        Ok(Some(reason)) | Err(reason) => fail(&req, &reason).response,
    };
    let (decision, elapsed) = count(
        &state,
        "connect",
        &req.operation,
        (false, response.allowed),
        started,
    );
    tracing::info!(
        uid = %req.uid,
        namespace = req.namespace.as_deref().unwrap_or(""),
        pod = %req.name,
        sub_resource = %sub_resource,
        requester = req.user_info.username.as_deref().unwrap_or(""),
        decision = decision.as_str(),
        message = %response.result.message,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "connect admission"
    );
    HttpResponse::Ok().json(wire(response))
}

/// The denial of a connection, if any; `Err` when the pod could not be read (fail closed).
async fn connect_denial(
    state: &AppState,
    req: &AdmissionRequest<Pod>,
    sub_resource: &str,
) -> Result<Option<String>, String> {
    if req.operation != Operation::Connect {
        return Ok(None);
    }
    let Some(cluster) = &state.cluster else {
        return Ok(None);
    };
    let ns_name = req.namespace.clone().unwrap_or_default();
    let ns = cluster
        .namespace_info(&ns_name)
        .await
        .map_err(|e| e.to_string())?;
    // `pods/proxy` names `[scheme:]name[:port]`; the API server proxies to pod `name`.
    let pod_name = if sub_resource == "proxy" {
        proxied_pod(&req.name).ok_or_else(|| {
            format!(
                "'{}' is not a pod proxy target ([scheme:]name[:port])",
                req.name
            )
        })?
    } else {
        req.name.as_str()
    };
    let pod = claims::get_pod(&cluster.client, &ns_name, pod_name)
        .await
        .map_err(|e| e.to_string())?;
    // Nothing to connect to: refusing costs nothing and never lets a name trick through.
    let Some(pod) = pod else {
        return Err(format!(
            "pod '{pod_name}' not found in namespace '{ns_name}'"
        ));
    };
    let policy = state.policy.load_full();
    let lookup = AdmissionClaims {
        fetched: None,
        cache: Some(&cluster.home_claims),
    };
    let ctx = Context {
        policy: &policy.snapshot,
        namespace: &ns,
        claims: &lookup,
        webhook_user: cluster.webhook_user.as_deref(),
        // Connections and claims are judged by the requester; stamps name no one there.
        stamp_key: None,
    };
    Ok(crate::admission::exposure::connect(
        ctx,
        &req.user_info,
        &pod,
        sub_resource,
    ))
}

/// `POST /claims`: the claim guard for PersistentVolumeClaims and VolumeSnapshots.
async fn admit_claim(state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let started = Instant::now();
    let req = match decode_dynamic(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(&state, "claims", started, &e),
    };
    let policy = state.policy.load_full();
    let ns_name = req.namespace.clone().unwrap_or_default();
    let (response, failed) = match &state.cluster {
        Some(cluster) => match cluster.namespace_info(&ns_name).await {
            Ok(ns) => {
                let lookup = AdmissionClaims {
                    fetched: None,
                    cache: Some(&cluster.home_claims),
                };
                let ctx = Context {
                    policy: &policy.snapshot,
                    namespace: &ns,
                    claims: &lookup,
                    webhook_user: cluster.webhook_user.as_deref(),
                    // Connections and claims are judged by the requester; stamps name no one there.
                    stamp_key: None,
                };
                (review_claim(ctx, &req), false)
            }
            Err(e) => (AdmissionResponse::from(&req).deny(e.to_string()), true),
        },
        None => {
            let ns = NamespaceInfo::new(&ns_name);
            let ctx = Context {
                policy: &policy.snapshot,
                namespace: &ns,
                claims: &NoClaims,
                webhook_user: None,
                // Connections and claims are judged by the requester; stamps name no one there.
                stamp_key: None,
            };
            (review_claim(ctx, &req), false)
        }
    };
    let (decision, elapsed) = count(
        &state,
        "claims",
        &req.operation,
        (failed, response.allowed),
        started,
    );
    tracing::info!(
        uid = %req.uid,
        namespace = %ns_name,
        kind = %req.kind.kind,
        name = req
            .object
            .as_ref()
            .and_then(|o| o.metadata.name.as_deref())
            .unwrap_or(&req.name),
        operation = operation(&req.operation),
        requester = req.user_info.username.as_deref().unwrap_or(""),
        decision = decision.as_str(),
        message = if response.allowed { "" } else { response.result.message.as_str() },
        dry_run = req.dry_run,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "claim admission"
    );
    HttpResponse::Ok().json(wire(response))
}

/// The pod a `pods/proxy` request goes to, as the API server splits `[scheme:]name[:port]`.
pub fn proxied_pod(id: &str) -> Option<&str> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name) = match parts.as_slice() {
        [name] | [name, _] => ("", *name),
        [scheme, name, _] => (*scheme, *name),
        _ => return None,
    };
    (!name.is_empty() && ["", "http", "https"].contains(&scheme)).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::proxied_pod;

    #[test]
    fn proxy_targets_name_their_pod_whatever_the_port_and_scheme() {
        assert_eq!(proxied_pod("nb"), Some("nb"));
        assert_eq!(proxied_pod("nb:8888"), Some("nb"));
        assert_eq!(proxied_pod("nb:"), Some("nb"));
        assert_eq!(proxied_pod("http:nb:8888"), Some("nb"));
        assert_eq!(proxied_pod("https:nb:"), Some("nb"));
        assert_eq!(proxied_pod("ftp:nb:21"), None);
        assert_eq!(proxied_pod(":8888"), None);
        assert_eq!(proxied_pod("a:b:c:d"), None);
    }
}
