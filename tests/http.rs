//! The actix app in-process, over the example policy, with AdmissionReview fixtures written as the
//! API server sends them.

use actix_web::http::StatusCode;
use actix_web::{App, test};
use base64::Engine;
use notebook_volumes::files::load_policies;
use notebook_volumes::server::{AppState, Cache, app, probes};
use serde_json::Value;

const POLICY_NAMESPACE: &str = "notebook-volumes";

fn state() -> AppState {
    let loaded = load_policies(&["examples/policies".into()]).expect("example policies load");
    AppState::offline(loaded.units, POLICY_NAMESPACE)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("tests/fixtures/{name}")).expect("fixture exists")
}

/// POSTs `body` to the webhook app; returns status and body.
async fn post(state: &AppState, path: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let service = test::init_service(App::new().configure(|c| app::configure(c, state))).await;
    let req = test::TestRequest::post()
        .uri(path)
        .insert_header(("content-type", "application/json"))
        .set_payload(body)
        .to_request();
    let resp = test::call_service(&service, req).await;
    let status = resp.status();
    (status, test::read_body(resp).await.to_vec())
}

async fn get_probe(state: &AppState, path: &str) -> (StatusCode, String) {
    let service = test::init_service(App::new().configure(|c| probes::configure(c, state))).await;
    let resp = test::call_service(&service, test::TestRequest::get().uri(path).to_request()).await;
    let status = resp.status();
    let body = test::read_body(resp).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The `response` of an answered review.
async fn answer(state: &AppState, path: &str, name: &str) -> Value {
    let (status, body) = post(state, path, fixture(name)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let review: Value = serde_json::from_slice(&body).expect("JSON answer");
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    let request: Value = serde_json::from_slice(&fixture(name)).expect("fixture JSON");
    assert_eq!(review["response"]["uid"], request["request"]["uid"]);
    review["response"].clone()
}

fn decode_patch(response: &Value) -> json_patch::Patch {
    assert_eq!(response["patchType"], "JSONPatch");
    let b64 = response["patch"]
        .as_str()
        .expect("patch is a base64 string");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("valid base64");
    serde_json::from_slice(&bytes).expect("patch is a JSON patch")
}

fn request_object(name: &str) -> Value {
    let request: Value = serde_json::from_slice(&fixture(name)).expect("fixture JSON");
    request["request"]["object"].clone()
}

#[actix_web::test]
async fn kubespawner_pod_from_the_hub_is_allowed_with_a_patch() {
    let state = state();
    let response = answer(&state, "/mutate", "kubespawner-alice.json").await;
    assert_eq!(response["allowed"], true);
    let patch = decode_patch(&response);
    let paths: Vec<String> = patch.0.iter().map(|op| op.path().to_string()).collect();
    for expected in [
        "/metadata/annotations/notebook-volumes.io~1user",
        "/metadata/annotations/notebook-volumes.io~1mounts",
        "/spec/volumes",
        "/spec/containers/0/volumeMounts",
        "/spec/containers/0/env/-",
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected} missing in {paths:?}"
        );
    }
    let mut pod = request_object("kubespawner-alice.json");
    json_patch::patch(&mut pod, &patch).expect("patch applies");
    assert_eq!(
        pod["metadata"]["annotations"]["notebook-volumes.io/user"],
        "alice"
    );
    let volumes: Vec<&str> = pod["spec"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(volumes.contains(&"nv-home"), "{volumes:?}");
    assert!(volumes.contains(&"nv-share-finance"), "{volumes:?}");
    assert!(volumes.contains(&"nv-lib-apps"), "{volumes:?}");
    assert!(
        !volumes.contains(&"nv-share-mergers"),
        "secret share not asked for"
    );
    assert_eq!(response["auditAnnotations"]["user"], "alice");
}

#[actix_web::test]
async fn a_pod_claiming_another_user_is_denied_with_the_reason() {
    let state = state();
    let response = answer(&state, "/mutate", "carol-claims-bob.json").await;
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    let message = response["status"]["message"].as_str().expect("message");
    assert!(
        message.contains("pod claims user 'bob' but was created by 'carol'"),
        "{message}"
    );
    assert!(message.contains("trustedSpawners"), "{message}");
    assert!(response.get("patch").is_none_or(Value::is_null));
}

#[actix_web::test]
async fn a_pod_without_volumes_annotations_or_mounts_gets_a_patch_that_applies() {
    let state = state();
    let response = answer(&state, "/mutate", "bob-bare-pod.json").await;
    assert_eq!(response["allowed"], true);
    let patch = decode_patch(&response);
    let mut pod = request_object("bob-bare-pod.json");
    json_patch::patch(&mut pod, &patch).expect("patch applies to a bare pod");
    assert_eq!(
        pod["metadata"]["annotations"]["notebook-volumes.io/user"],
        "bob"
    );
    let mounts = pod["spec"]["containers"][0]["volumeMounts"]
        .as_array()
        .expect("volumeMounts created");
    let home = mounts
        .iter()
        .find(|m| m["name"] == "nv-home")
        .expect("home mounted");
    assert_eq!(home["mountPath"], "/opt/app-root/src");
    // bob is an analyst: finance is private and he only reads it.
    let finance = mounts
        .iter()
        .find(|m| m["name"] == "nv-share-finance")
        .expect("finance mounted");
    assert_eq!(finance["readOnly"], true);
}

#[actix_web::test]
async fn connect_and_delete_are_allowed_without_a_patch() {
    let state = state();
    for name in ["connect-exec.json", "delete-pod.json"] {
        let response = answer(&state, "/mutate", name).await;
        assert_eq!(response["allowed"], true, "{name}");
        assert!(response.get("patch").is_none_or(Value::is_null), "{name}");
    }
}

#[actix_web::test]
async fn oversized_bodies_are_refused_with_413() {
    let state = state();
    let mut body =
        b"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"pad\":\"".to_vec();
    body.extend(std::iter::repeat_n(b'x', app::MAX_BODY + 1));
    body.extend(b"\"}");
    let (status, _) = post(&state, "/mutate", body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[actix_web::test]
async fn malformed_json_is_a_400_with_a_message() {
    let state = state();
    let (status, body) = post(&state, "/mutate", b"{\"apiVersion\": ".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("not a valid AdmissionReview JSON document"),
        "{text}"
    );
}

#[actix_web::test]
async fn a_review_without_request_is_a_400() {
    let state = state();
    let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec();
    let (status, body) = post(&state, "/mutate", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("no request"));
}

#[actix_web::test]
async fn v1beta1_reviews_are_a_400_naming_the_version() {
    let state = state();
    let (status, body) = post(&state, "/mutate", fixture("kubespawner-alice-v1beta1.json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("admission.k8s.io/v1beta1"), "{text}");
    assert!(text.contains("admissionReviewVersions"), "{text}");
}

#[actix_web::test]
async fn an_invalid_policy_config_map_is_denied_with_field_and_line() {
    let state = state();
    let response = answer(&state, "/validate", "configmap-invalid.json").await;
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().expect("message");
    assert!(
        message.contains("ConfigMap notebook-volumes/team-b, key shares.yaml, line 4"),
        "{message}"
    );
    assert!(message.contains("field 'mountPath'"), "{message}");
}

#[actix_web::test]
async fn a_valid_policy_config_map_is_allowed_with_warnings() {
    let state = state();
    let response = answer(&state, "/validate", "configmap-valid.json").await;
    assert_eq!(response["allowed"], true, "{response}");
    let warnings = response["warnings"].as_array().expect("warnings");
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("auditors"))),
        "{warnings:?}"
    );
}

#[actix_web::test]
async fn probes_answer_and_metrics_count_admissions() {
    let state = state();
    assert_eq!(get_probe(&state, "/healthz").await.0, StatusCode::OK);
    assert_eq!(get_probe(&state, "/readyz").await.0, StatusCode::OK);
    answer(&state, "/mutate", "kubespawner-alice.json").await;
    answer(&state, "/mutate", "carol-claims-bob.json").await;
    answer(&state, "/validate", "configmap-invalid.json").await;
    post(&state, "/mutate", b"not json".to_vec()).await;
    let (status, metrics) = get_probe(&state, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        r#"notebook_volumes_admissions_total{webhook="mutate",operation="CREATE",decision="allowed"} 1"#,
        r#"notebook_volumes_admissions_total{webhook="mutate",operation="CREATE",decision="denied"} 1"#,
        r#"notebook_volumes_admissions_total{webhook="validate",operation="CREATE",decision="denied"} 1"#,
        r#"notebook_volumes_admissions_total{webhook="mutate",operation="unknown",decision="error"} 1"#,
        r#"notebook_volumes_admission_duration_seconds_count{webhook="mutate"} 3"#,
        "notebook_volumes_policy_reloads_total 1",
        "notebook_volumes_policy_invalid_units 0",
        "notebook_volumes_home_claims_created_total 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing `{line}` in\n{metrics}"
        );
    }
}

#[actix_web::test]
async fn readyz_is_503_until_the_caches_are_listed() {
    let mut state = state();
    state.readiness = std::sync::Arc::new(notebook_volumes::server::Readiness::default());
    let (status, body) = get_probe(&state, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("policy ConfigMaps"), "{body}");
    state.readiness.synced(Cache::ConfigMaps);
    state.readiness.synced(Cache::Namespaces);
    state.readiness.synced(Cache::HomeClaims);
    let (status, body) = get_probe(&state, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("PersistentVolumeClaims"), "{body}");
    state.readiness.synced(Cache::VolumeClaims);
    let (status, body) = get_probe(&state, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("OpenShift Groups"), "{body}");
    state.readiness.synced(Cache::OpenShiftGroups);
    let (status, body) = get_probe(&state, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("stamp key"), "{body}");
    state.readiness.stamp_key_loaded();
    assert_eq!(get_probe(&state, "/readyz").await.0, StatusCode::OK);
}

/// The kubespawner review with `env` entries added until its body passes `size` bytes.
fn padded_pod_review(size: usize) -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(&fixture("kubespawner-alice.json")).unwrap();
    let env: Vec<Value> = (0..size / 40 + 1)
        .map(|i| serde_json::json!({"name": format!("PADDING_{i:08}"), "value": "x"}))
        .collect();
    review["request"]["object"]["spec"]["containers"][0]["env"] = Value::Array(env);
    let body = serde_json::to_vec(&review).unwrap();
    assert!(body.len() > size);
    body
}

/// Policy checks and large pods run on blocking threads, a bounded number at a time: with the
/// only permit taken, they wait, while an ordinary pod is still answered on the I/O worker.
#[actix_web::test]
async fn heavy_checks_wait_for_a_blocking_slot_and_ordinary_pods_do_not() {
    use notebook_volumes::server::limits::{INLINE_BODY, RequestLimits};
    use std::time::Duration;

    let mut state = state();
    state.limits = RequestLimits::new(Duration::from_secs(10), 1);
    let service = test::init_service(App::new().configure(|c| app::configure(c, &state))).await;
    let request = |path: &str, body: Vec<u8>| {
        test::TestRequest::post()
            .uri(path)
            .insert_header(("content-type", "application/json"))
            .set_payload(body)
            .to_request()
    };

    // Another heavy job holds the only slot until released.
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let limits = state.limits.clone();
    let holder =
        actix_web::rt::spawn(async move { limits.run_heavy("test", move || wait.recv()).await });
    while state.limits.idle_blocking_jobs() > 0 {
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }

    // An ordinary pod is answered.
    let resp = test::call_service(
        &service,
        request("/mutate", fixture("kubespawner-alice.json")),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);

    // A policy check and a large pod wait for the slot (not answered within 1 s: the bound only
    // fails the test if they were answered, however slow the machine).
    let policy = test::call_service(
        &service,
        request("/validate", fixture("configmap-valid.json")),
    );
    assert!(
        actix_web::rt::time::timeout(Duration::from_secs(1), policy)
            .await
            .is_err()
    );
    let large = padded_pod_review(INLINE_BODY);
    let pod = test::call_service(&service, request("/mutate", large.clone()));
    assert!(
        actix_web::rt::time::timeout(Duration::from_secs(1), pod)
            .await
            .is_err()
    );

    // Released: both are answered.
    release.send(()).unwrap();
    holder.await.unwrap().unwrap().unwrap();
    let (status, body) = post(&state, "/validate", fixture("configmap-valid.json")).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (status, body) = post(&state, "/mutate", large).await;
    assert_eq!(status, StatusCode::OK);
    let review: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(review["response"]["allowed"], true, "{review}");
}
