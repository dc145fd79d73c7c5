//! The HTTP surface of the webhook port: `POST /mutate` (pods), `POST /validate` (policy
//! ConfigMaps), `POST /connect` (connections into pods) and `POST /claims` (the claim guard). The same `configure` serves the TLS listener and the in-process tests.

use std::sync::Arc;
use std::time::Instant;

use actix_web::{HttpResponse, HttpResponseBuilder, web};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod};
use kube::Resource;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::deadline::body_deadline;
use super::limits::{INLINE_BODY, JobFailed};
use super::scope;
use super::state::{AppState, Policy};
use super::wire;
use crate::admission::notices;
use crate::admission::workload::StampAction;
use crate::admission::{
    ClaimLookup, Context, Denial, Effect, HomeClaim, MountSource, NoClaims, Review, expected_home,
    exposure, review, review_claim, review_policy,
};
use crate::cluster::ClusterView;
use crate::cluster::claims::{self, AdmissionClaims, Created};
use crate::metrics::{Decision, Webhook};
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
                .route("/workloads", web::post().to(admit_workload)),
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
    if let Some(request) = wire::decode_direct(body, ADMISSION_V1, Some(&T::kind(&()))) {
        return Ok(request);
    }
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
    // An object without type fields goes the general route too: a repeated `kind` or
    // `apiVersion` in the object makes the one-pass decoding drop both, where a `Value` keeps the
    // last. The API server always sends them, once.
    if let Some(request) = wire::decode_direct(body, ADMISSION_V1, None).filter(
        |r: &AdmissionRequest<DynamicObject>| {
            [&r.object, &r.old_object]
                .into_iter()
                .flatten()
                .all(|o| o.types.is_some())
        },
    ) {
        return Ok(request);
    }
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

fn bad_request(
    state: &AppState,
    webhook: Webhook,
    started: Instant,
    e: &BadReview,
) -> HttpResponse {
    tracing::warn!(webhook = webhook.as_str(), error = %e, "malformed admission request");
    http_error(state, webhook, started, HttpResponse::BadRequest(), e)
}

/// An answer that is no review (the API server applies the failure policy), counted as an error.
fn http_error(
    state: &AppState,
    webhook: Webhook,
    started: Instant,
    mut response: HttpResponseBuilder,
    error: &dyn std::fmt::Display,
) -> HttpResponse {
    state.metrics.admission(
        webhook,
        "unknown",
        Decision::Error,
        started.elapsed().as_secs_f64(),
    );
    response
        .content_type("text/plain; charset=utf-8")
        .body(error.to_string())
}

/// The span every log line of one admission is written in, the claim I/O included.
fn admission_span<T: Resource>(webhook: Webhook, req: &AdmissionRequest<T>) -> tracing::Span {
    tracing::info_span!(
        "admission",
        webhook = webhook.as_str(),
        uid = %req.uid,
        namespace = req.namespace.as_deref().unwrap_or(""),
        operation = operation(&req.operation),
    )
}

/// Counts an answered admission in the metrics (a denial also by its rule); the decision and
/// the time it took, for the log.
fn count(
    state: &AppState,
    webhook: Webhook,
    op: &Operation,
    decision: Decision,
    denial: Option<&Denial>,
    started: Instant,
) -> (Decision, std::time::Duration) {
    let elapsed = started.elapsed();
    state
        .metrics
        .admission(webhook, operation(op), decision, elapsed.as_secs_f64());
    if let Some(denial) = denial {
        state.metrics.denial(webhook, denial.reason());
    }
    (decision, elapsed)
}

/// A pod decision as counted: a cluster call that failed is an error, not a denial.
fn decision_of(denial: Option<&Denial>) -> Decision {
    match denial {
        None => Decision::Allowed,
        Some(Denial::Unavailable(_)) => Decision::Error,
        Some(_) => Decision::Denied,
    }
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
fn job_failed(state: &AppState, webhook: Webhook, started: Instant, e: &JobFailed) -> HttpResponse {
    tracing::error!(webhook = webhook.as_str(), error = %e, "admission job failed");
    http_error(
        state,
        webhook,
        started,
        HttpResponse::InternalServerError(),
        e,
    )
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
        Ok(Err(e)) => return bad_request(&state, Webhook::Mutate, started, &e),
        Err(e) => return job_failed(&state, Webhook::Mutate, started, &e),
    };
    let span = admission_span(Webhook::Mutate, &req);
    async move {
        let outcome = admit_pod(&state, &req, off_worker).await;
        let (decision, elapsed) = count(
            &state,
            Webhook::Mutate,
            &req.operation,
            decision_of(outcome.denial.as_ref()),
            outcome.denial.as_ref(),
            started,
        );
        let pod = req
            .object
            .as_ref()
            .and_then(|p| p.metadata.name.clone().or(p.metadata.generate_name.clone()))
            .unwrap_or_else(|| req.name.clone());
        tracing::info!(
            pod = %pod,
            sub_resource = req.sub_resource.as_deref().unwrap_or(""),
            requester = req.user_info.username.as_deref().unwrap_or(""),
            user = outcome.user.as_deref().unwrap_or(""),
            decision = decision.as_str(),
            reason = outcome.denial.as_ref().map_or("", Denial::reason),
            mounts = %outcome.summary(),
            message = outcome.message().unwrap_or_default(),
            dry_run = req.dry_run,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "admission"
        );
        if let Some(events) = &state.events {
            events.offer(notices::for_admission(&req, &outcome));
        }
        answer(&outcome.response(AdmissionResponse::from(&*req)))
    }
    .instrument(span)
    .await
}

/// The pod decision with its cluster I/O: the namespace check and home claim GET before, the
/// effects after. A cluster call that failed denies the pod with `Denial::Unavailable`, saying
/// what to do. `off_worker` runs the pure decision on a blocking thread.
pub async fn admit_pod(
    state: &AppState,
    req: &Arc<AdmissionRequest<Pod>>,
    off_worker: bool,
) -> Review {
    let policy = state.policy.load_full();
    let outcome = match &state.cluster {
        None => offline(state, req, &policy, off_worker).await,
        Some(cluster) => with_cluster(state, cluster, req, &policy, off_worker).await,
    };
    outcome.unwrap_or_else(|denial| Review::denied(denial, None))
}

/// Serving from files: no namespace labels, no claims, effects only logged.
async fn offline(
    state: &AppState,
    req: &Arc<AdmissionRequest<Pod>>,
    policy: &Arc<Policy>,
    off_worker: bool,
) -> Result<Review, Denial> {
    let ns = NamespaceInfo::new(req.namespace.as_deref().unwrap_or_default());
    let outcome = decide(state, req, policy, &ns, None, off_worker).await?;
    for effect in &outcome.effects {
        tracing::debug!(%effect, "serving from local files: not performing");
    }
    Ok(outcome)
}

async fn with_cluster(
    state: &AppState,
    cluster: &ClusterView,
    req: &Arc<AdmissionRequest<Pod>>,
    policy: &Arc<Policy>,
    off_worker: bool,
) -> Result<Review, Denial> {
    let ns = namespace_in_scope(state, cluster, req).await?;
    let key = state.stamp_key.load_full();
    let lookup = find_home(state, cluster, policy, &ns, req, key.as_deref());
    if let HomeLookup::PresumedAbsent(expected) = &lookup {
        let home = Some((ns.name.clone(), expected.name.clone(), None));
        let outcome = decide(state, req, policy, &ns, home.clone(), off_worker).await?;
        if let Some(outcome) = first_launch(state, cluster, req, outcome).await {
            state.metrics.home_lookup("absent");
            return Ok(finish(cluster, &ns, home.as_ref(), outcome));
        }
    }
    let home = read_home(state, cluster, &ns, lookup).await?;
    let outcome = decide(state, req, policy, &ns, home.clone(), off_worker).await?;
    if req.dry_run || !outcome.allowed() {
        return Ok(outcome);
    }
    let outcome = perform(state, cluster, outcome).await;
    Ok(finish(cluster, &ns, home.as_ref(), outcome))
}

/// The home claim as the lookup found it: the cache's, or read live (also when a presumed
/// absence did not make a plain first launch: a dry run, a denial, or the claim was there).
async fn read_home(
    state: &AppState,
    cluster: &ClusterView,
    ns: &NamespaceInfo,
    lookup: HomeLookup,
) -> Result<Option<FetchedHome>, Denial> {
    let name = match lookup {
        HomeLookup::None => return Ok(None),
        HomeLookup::Cached(fetched) => {
            state.metrics.home_lookup("cache");
            return Ok(Some(fetched));
        }
        HomeLookup::PresumedAbsent(HomeClaim { name, .. }) | HomeLookup::Live(name) => name,
    };
    state.metrics.home_lookup("live");
    let pvc = claims::get(&cluster.client, &ns.name, &name)
        .await
        .map_err(|e| Denial::Unavailable(e.to_string()))?;
    Ok(Some((ns.name.clone(), name, pvc.map(Arc::new))))
}

/// An allowed admission that mounts the home: queues its last-used stamp (never awaited).
fn finish(
    cluster: &ClusterView,
    ns: &NamespaceInfo,
    home: Option<&FetchedHome>,
    outcome: Review,
) -> Review {
    if let Some((_, claim, pvc)) = home
        && outcome.allowed()
        && outcome
            .mounts
            .iter()
            .any(|m| &m.claim_name == claim && m.source == MountSource::Home)
    {
        cluster
            .home_touch
            .offer(&ns.name, claim, last_used(pvc.as_deref()).as_deref());
    }
    outcome
}

/// A first launch decided with no home claim: when the answer is an allowed, real (not dry-run)
/// admission that creates exactly the home claim, the claim is created directly, and the
/// outcome stands if the API server made it (its create is atomic: nobody had the name). `None`
/// when anything else is the case, the claim included: the caller then decides from a live read.
async fn first_launch(
    state: &AppState,
    cluster: &ClusterView,
    req: &AdmissionRequest<Pod>,
    outcome: Review,
) -> Option<Review> {
    let [Effect::CreateClaim(pvc)] = outcome.effects.as_slice() else {
        return None;
    };
    if req.dry_run || !outcome.allowed() {
        return None;
    }
    let user = outcome.user.clone().unwrap_or_default();
    match claims::try_create(&cluster.client, pvc).await {
        Ok(Created::New) => {
            home_created(state, pvc, &user);
            Some(outcome)
        }
        Ok(_) => None,
        // As `perform` answers a creation that failed.
        Err(e) => Some(outcome.deny(Denial::Unavailable(e.to_string()))),
    }
}

fn home_created(state: &AppState, pvc: &PersistentVolumeClaim, user: &str) {
    state.metrics.claim_created();
    tracing::info!(claim = ?pvc.metadata.name, %user, "home claim created");
}

/// The request's namespace, once the webhook itself sees it as enabled: anyone reaching the
/// port can send a review, and nothing is looked up or created for another namespace.
async fn namespace_in_scope(
    state: &AppState,
    cluster: &ClusterView,
    req: &AdmissionRequest<Pod>,
) -> Result<NamespaceInfo, Denial> {
    let name = req.namespace.as_deref().unwrap_or_default();
    let ns = cluster
        .namespace_info(name)
        .await
        .map_err(|e| Denial::Unavailable(e.to_string()))?;
    scope::confirm_in_scope(cluster, ns, &state.policy_namespace)
        .await
        .map_err(|message| {
            tracing::warn!(
                requester = req.user_info.username.as_deref().unwrap_or(""),
                "review for a namespace out of scope denied without effects"
            );
            Denial::OutOfScope(message)
        })
}

/// Where the decision's home claim comes from.
enum HomeLookup {
    /// No home claim to look at (not a notebook CREATE, no user, no Home).
    None,
    /// The cache vouches for the user's claim (`claims::cached_home`: the user's own, current).
    Cached(FetchedHome),
    /// The current cache knows no claim of that name: decided as a first launch, the claim
    /// created directly; anything else falls back to a live read.
    PresumedAbsent(HomeClaim),
    /// Read live (named claim): the cache cannot vouch, and a denial is never decided from it.
    Live(String),
}

/// The home claim the decision will look at, as far as memory can tell (no I/O).
fn find_home(
    state: &AppState,
    cluster: &ClusterView,
    policy: &Policy,
    ns: &NamespaceInfo,
    req: &AdmissionRequest<Pod>,
    stamp_key: Option<&crate::admission::stamp::StampKey>,
) -> HomeLookup {
    let probe = Context {
        policy: &policy.snapshot,
        namespace: ns,
        claims: &NoClaims,
        webhook_user: None,
        stamp_key,
    };
    let Some(expected) = expected_home(probe, req) else {
        return HomeLookup::None;
    };
    let watch_current = !state.readiness.home_claims_stale();
    let cache = &cluster.home_claims;
    if let Some(pvc) = claims::cached_home(
        cache,
        watch_current,
        &ns.name,
        &expected.name,
        &expected.user,
    ) {
        return HomeLookup::Cached((ns.name.clone(), expected.name, Some(pvc)));
    }
    if claims::cache_knows_none(cache, watch_current, &ns.name, &expected.name) {
        return HomeLookup::PresumedAbsent(expected);
    }
    HomeLookup::Live(expected.name)
}

/// The home claim's last-used stamp, if it has one.
fn last_used(pvc: Option<&PersistentVolumeClaim>) -> Option<String> {
    pvc?.metadata
        .annotations
        .as_ref()?
        .get(crate::keys::LAST_USED_ANNOTATION)
        .cloned()
}

/// Performs the effects of an allowed decision; one that fails turns it into a denial.
async fn perform(state: &AppState, cluster: &ClusterView, outcome: Review) -> Review {
    let user = outcome.user.clone().unwrap_or_default();
    for effect in outcome.effects.clone() {
        let pvc = match &effect {
            Effect::CreateClaim(pvc) => pvc,
            Effect::GrowClaim {
                namespace,
                claim,
                size,
            } => {
                cluster.home_growth.offer(namespace, claim, size);
                continue;
            }
        };
        match claims::create(&cluster.client, pvc, &user).await {
            Ok(Created::New) => home_created(state, pvc, &user),
            Ok(_) => {}
            Err(e) => return outcome.deny(Denial::Unavailable(e.to_string())),
        }
    }
    outcome
}

/// A fetched home claim: namespace, name, and the claim if it exists.
type FetchedHome = (String, String, Option<Arc<PersistentVolumeClaim>>);

/// The pure pod decision, with the claims known to the server: `home` is the fetched home claim,
/// the cache the rest. Owned inputs, so it can run on a blocking thread when `off_worker`.
async fn decide(
    state: &AppState,
    req: &Arc<AdmissionRequest<Pod>>,
    policy: &Arc<Policy>,
    ns: &NamespaceInfo,
    home: Option<FetchedHome>,
    off_worker: bool,
) -> Result<Review, Denial> {
    let cache = state.cluster.as_ref().map(|c| c.home_claims.clone());
    let volumes = state.cluster.as_ref().map(|c| c.volume_claims.clone());
    let webhook_user = state.cluster.as_ref().and_then(|c| c.webhook_user.clone());
    let stamp_key = state.stamp_key.load_full();
    let (req, policy, ns) = (Arc::clone(req), Arc::clone(policy), ns.clone());
    let job = move || {
        let lookup = AdmissionClaims {
            fetched: home
                .as_ref()
                .map(|(namespace, name, pvc)| (namespace.as_str(), name.as_str(), pvc.as_deref())),
            cache: cache.as_ref(),
            volumes: volumes.as_ref(),
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
        state
            .limits
            .run_heavy("pod", job)
            .await
            .map_err(|e| Denial::Unavailable(e.to_string()))
    } else {
        Ok(job())
    }
}

/// The HTTP answer carrying the AdmissionReview of `response` (see `wire::encode`).
pub fn answer(response: &AdmissionResponse) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(wire::encode(response))
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
        Ok(Err(e)) => return bad_request(&state, Webhook::Validate, started, &e),
        Err(e) => return job_failed(&state, Webhook::Validate, started, &e),
    };
    let _span = admission_span(Webhook::Validate, &req).entered();
    let (decision, elapsed) = count(
        &state,
        Webhook::Validate,
        &req.operation,
        allowed_or_denied(response.allowed),
        None,
        started,
    );
    tracing::info!(
        configmap = %req.name,
        requester = req.user_info.username.as_deref().unwrap_or(""),
        decision = decision.as_str(),
        checked = verdict.is_some(),
        errors = verdict.as_ref().map_or(0, |v| v.errors.len()),
        warnings = verdict.as_ref().map_or(0, |v| v.warnings.len()),
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "policy admission"
    );
    answer(&response)
}

/// `pods/exec`, `pods/attach`, `pods/portforward` and `pods/proxy` (CONNECT): the request names
/// the pod, whose spec is read from the API server, and the requester needs the rights its
/// containers have (another user's notebook: that user or an administrator only).
async fn connect(state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let started = Instant::now();
    let req: AdmissionRequest<Pod> = match decode(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(&state, Webhook::Connect, started, &e),
    };
    let span = admission_span(Webhook::Connect, &req);
    async move {
        let sub_resource = req.sub_resource.clone().unwrap_or_default();
        let denial = connect_denial(&state, &req, &sub_resource).await.err();
        let (decision, elapsed) = count(
            &state,
            Webhook::Connect,
            &req.operation,
            allowed_or_denied(denial.is_none()),
            denial.as_ref(),
            started,
        );
        let outcome = denial.map_or_else(Review::default, |d| Review::denied(d, None));
        tracing::info!(
            pod = %req.name,
            sub_resource = %sub_resource,
            requester = req.user_info.username.as_deref().unwrap_or(""),
            decision = decision.as_str(),
            message = outcome.message().unwrap_or_default(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "connect admission"
        );
        answer(&outcome.response(AdmissionResponse::from(&req)))
    }
    .instrument(span)
    .await
}

/// As counted when no cluster call can fail the decision.
fn allowed_or_denied(allowed: bool) -> Decision {
    if allowed {
        Decision::Allowed
    } else {
        Decision::Denied
    }
}

/// The denial of a connection, if any, as `Err`; a pod that cannot be read is refused too
/// (fail closed).
async fn connect_denial(
    state: &AppState,
    req: &AdmissionRequest<Pod>,
    sub_resource: &str,
) -> Result<(), Denial> {
    if req.operation != Operation::Connect {
        return Ok(());
    }
    let Some(cluster) = &state.cluster else {
        return Ok(());
    };
    let unavailable = |e: &dyn std::fmt::Display| Denial::Unavailable(e.to_string());
    let ns_name = req.namespace.clone().unwrap_or_default();
    let ns = cluster
        .namespace_info(&ns_name)
        .await
        .map_err(|e| unavailable(&e))?;
    // `pods/proxy` names `[scheme:]name[:port]`; the API server proxies to pod `name`.
    let pod_name = if sub_resource == "proxy" {
        proxied_pod(&req.name).ok_or_else(|| {
            Denial::Unavailable(format!(
                "'{}' is not a pod proxy target ([scheme:]name[:port])",
                req.name
            ))
        })?
    } else {
        req.name.as_str()
    };
    let pod = claims::get_pod(&cluster.client, &ns_name, pod_name)
        .await
        .map_err(|e| unavailable(&e))?;
    // Nothing to connect to: refusing costs nothing and never lets a name trick through.
    let Some(pod) = pod else {
        return Err(Denial::Unavailable(format!(
            "pod '{pod_name}' not found in namespace '{ns_name}'"
        )));
    };
    let policy = state.policy.load_full();
    let lookup = cached_claims(cluster);
    let ctx = cluster_context(cluster, &policy, &ns, &lookup);
    match exposure::connect(ctx, &req.user_info, &pod, sub_resource) {
        Some(denial) => Err(denial),
        None => Ok(()),
    }
}

/// `POST /claims`: the claim guard for PersistentVolumeClaims and VolumeSnapshots.
async fn admit_claim(state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let started = Instant::now();
    let req = match decode_dynamic(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(&state, Webhook::Claims, started, &e),
    };
    let span = admission_span(Webhook::Claims, &req);
    async move {
        let (response, failed) = decide_claim(&state, &req).await;
        let decision = match (failed, response.allowed) {
            (true, _) => Decision::Error,
            (false, allowed) => allowed_or_denied(allowed),
        };
        let (decision, elapsed) = count(
            &state,
            Webhook::Claims,
            &req.operation,
            decision,
            None,
            started,
        );
        tracing::info!(
            kind = %req.kind.kind,
            name = req
                .object
                .as_ref()
                .and_then(|o| o.metadata.name.as_deref())
                .unwrap_or(&req.name),
            requester = req.user_info.username.as_deref().unwrap_or(""),
            decision = decision.as_str(),
            message = if response.allowed { "" } else { response.result.message.as_str() },
            dry_run = req.dry_run,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "claim admission"
        );
        answer(&response)
    }
    .instrument(span)
    .await
}

/// The claim guard's answer with the namespace as the cluster has it; `true` when reading the
/// namespace failed (the claim is denied with what to do).
async fn decide_claim(
    state: &AppState,
    req: &AdmissionRequest<DynamicObject>,
) -> (AdmissionResponse, bool) {
    let policy = state.policy.load_full();
    let ns_name = req.namespace.clone().unwrap_or_default();
    let Some(cluster) = &state.cluster else {
        let ns = NamespaceInfo::new(&ns_name);
        let ctx = Context {
            policy: &policy.snapshot,
            namespace: &ns,
            claims: &NoClaims,
            webhook_user: None,
            stamp_key: None,
        };
        return (review_claim(ctx, req), false);
    };
    match cluster.namespace_info(&ns_name).await {
        Ok(ns) => {
            let lookup = cached_claims(cluster);
            let ctx = cluster_context(cluster, &policy, &ns, &lookup);
            (review_claim(ctx, req), false)
        }
        Err(e) => (AdmissionResponse::from(req).deny(e.to_string()), true),
    }
}

/// The home claims the reflector has cached.
fn cached_claims(cluster: &ClusterView) -> AdmissionClaims<'_> {
    AdmissionClaims {
        fetched: None,
        cache: Some(&cluster.home_claims),
        volumes: Some(&cluster.volume_claims),
    }
}

/// The decision's inputs when serving against a cluster.
fn cluster_context<'a>(
    cluster: &'a ClusterView,
    policy: &'a Policy,
    ns: &'a NamespaceInfo,
    claims: &'a dyn ClaimLookup,
) -> Context<'a> {
    Context {
        policy: &policy.snapshot,
        namespace: ns,
        claims,
        webhook_user: cluster.webhook_user.as_deref(),
        // Connections and claims are judged by the requester; stamps name no one there.
        stamp_key: None,
    }
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

/// `POST /workloads`: the stamp on StatefulSets and Notebooks (`super::workloads`).
async fn admit_workload(state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let started = Instant::now();
    let req = match decode_dynamic(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(&state, Webhook::Workloads, started, &e),
    };
    let (outcome, failed) = super::workloads::decide(&state, &req).await;
    let decision = if failed {
        Decision::Error
    } else if outcome.allowed() {
        Decision::Allowed
    } else {
        Decision::Denied
    };
    let (decision, elapsed) = count(
        &state,
        Webhook::Workloads,
        &req.operation,
        decision,
        None,
        started,
    );
    let action = match &outcome.action {
        StampAction::Stamped(_) => "stamped",
        StampAction::Kept => "kept",
        StampAction::Cleared(_) => "cleared",
        StampAction::NotJudged => "none",
    };
    tracing::info!(
        uid = %req.uid,
        namespace = req.namespace.as_deref().unwrap_or(""),
        kind = %req.kind.kind,
        name = %req.name,
        operation = operation(&req.operation),
        requester = req.user_info.username.as_deref().unwrap_or(""),
        user = outcome.user().unwrap_or(""),
        stamp = action,
        decision = decision.as_str(),
        message = outcome.message().unwrap_or(""),
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "workload admission"
    );
    answer(&outcome.response)
}

#[cfg(test)]
mod tests {
    use kube::core::TypeMeta;

    use k8s_openapi::api::core::v1::Pod;

    use super::{decode, decode_dynamic, proxied_pod};

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).expect("fixture")
    }

    /// A field no route reads, with content a `serde_json::Value` cannot hold (nesting past its
    /// depth limit, a lone surrogate, a number out of range, bytes that are not UTF-8): the fast
    /// path skips it without reading it, so the request judged is the one without it, and a
    /// nesting as deep as the body allows costs no stack. Only the general route would refuse
    /// such a body; the API server never sends one.
    #[test]
    fn content_no_route_reads_leaves_the_request_as_it_is() {
        let clean = fixture("kubespawner-alice.json");
        let expected = serde_json::to_value(decode::<Pod>(clean.as_bytes()).expect("clean"))
            .expect("expected");
        let deep = format!("{}{}", "[".repeat(1_000_000), "]".repeat(1_000_000));
        let unread: [&[u8]; 4] = [deep.as_bytes(), br#""\ud800""#, b"1e400", b"\"\xff\xfe\""];
        for value in unread {
            for (at, inserted) in [(r#""request": {"#, "request"), (r#""spec": {"#, "object")] {
                let cut = clean.find(at).expect("inserted") + at.len();
                let mut body = clean.as_bytes()[..cut].to_vec();
                body.extend_from_slice(b"\"x\":");
                body.extend_from_slice(value);
                body.push(b',');
                body.extend_from_slice(&clean.as_bytes()[cut..]);
                let what = format!(
                    "{} in the {inserted}",
                    String::from_utf8_lossy(&value[..value.len().min(8)])
                );
                assert!(
                    serde_json::from_slice::<serde_json::Value>(&body).is_err(),
                    "{what}: a Value holds it"
                );
                let read = decode::<Pod>(&body).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(
                    serde_json::to_value(read).expect("read"),
                    expected,
                    "{what}"
                );
            }
        }
    }

    /// A repeated type field in the object: the answer reads the object as a `Value` would (the
    /// last entry), not as the one-pass decoding alone would (no type fields at all).
    #[test]
    fn objects_with_repeated_type_fields_keep_them() {
        let path = format!(
            "{}/tests/fixtures/carol-claims-bob.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let body = std::fs::read_to_string(&path).expect("fixture");
        for repeated in [r#""kind": "Pod","#, r#""apiVersion": "v1","#] {
            let body = body.replacen(r#""object": {"#, &format!(r#""object": {{{repeated}"#), 1);
            let req = decode_dynamic(body.as_bytes()).expect("decoded");
            let object = req.object.expect("object");
            let expected = TypeMeta {
                api_version: "v1".into(),
                kind: "Pod".into(),
            };
            assert_eq!(object.types, Some(expected), "{repeated}");
            assert_eq!(
                object.metadata.name.as_deref(),
                Some("not-really-bob"),
                "{repeated}"
            );
        }
    }

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
