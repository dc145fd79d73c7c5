//! `POST /claims` in-process: the claim guard's route over the example policy, with reviews of
//! PersistentVolumeClaims and VolumeSnapshots written as the API server sends them.

use actix_web::http::StatusCode;
use actix_web::{App, test};
use notebook_volumes::files::load_policies;
use notebook_volumes::server::{AppState, app, probes};
use serde_json::{Value, json};

fn state() -> AppState {
    let loaded = load_policies(&["examples/policies".into()]).expect("example policies load");
    AppState::offline(loaded.units, "notebook-volumes")
}

async fn post(state: &AppState, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let service = test::init_service(App::new().configure(|c| app::configure(c, state))).await;
    let req = test::TestRequest::post()
        .uri("/claims")
        .insert_header(("content-type", "application/json"))
        .set_payload(body)
        .to_request();
    let resp = test::call_service(&service, req).await;
    let status = resp.status();
    (status, test::read_body(resp).await.to_vec())
}

fn review(kind: (&str, &str, &str), operation: &str, object: Value) -> Value {
    let (group, kind, resource) = kind;
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "7f0b2c4e-0000-4000-8000-000000000042",
            "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": resource},
            "requestKind": {"group": group, "version": "v1", "kind": kind},
            "requestResource": {"group": group, "version": "v1", "resource": resource},
            "name": object["metadata"]["name"].clone(),
            "namespace": "ds-team",
            "operation": operation,
            "userInfo": {"username": "mallory", "groups": ["system:authenticated"]},
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
}

fn claim(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "ds-team", "uid": "b1c8a0de-0000-4000-8000-000000000001"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                 "storageClassName": "standard", "volumeMode": "Filesystem"},
        "status": {"phase": "Pending"}
    })
}

async fn answer(state: &AppState, body: Value) -> Value {
    let (status, bytes) = post(state, serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let review: Value = serde_json::from_slice(&bytes).expect("JSON answer");
    assert_eq!(review["kind"], "AdmissionReview");
    assert_eq!(review["response"]["uid"], body["request"]["uid"]);
    review["response"].clone()
}

const PVC: (&str, &str, &str) = ("", "PersistentVolumeClaim", "persistentvolumeclaims");

#[actix_web::test]
async fn claims_route_denies_a_reserved_home_name() {
    let response = answer(&state(), review(PVC, "CREATE", claim("home-carol"))).await;
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("reserved for the home of the user whose name slugs to 'carol'"),
        "{message}"
    );
    assert!(response.get("patch").is_none());
    assert_eq!(response["auditAnnotations"]["reason"], message);
}

#[actix_web::test]
async fn claims_route_allows_an_ordinary_claim() {
    let response = answer(&state(), review(PVC, "CREATE", claim("scratch"))).await;
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none());
}

#[actix_web::test]
async fn claims_route_denies_a_snapshot_of_a_share() {
    let snapshot = json!({
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
        "metadata": {"name": "snap", "namespace": "ds-team"},
        "spec": {"source": {"persistentVolumeClaimName": "mergers-data"}, "volumeSnapshotClassName": "csi"}
    });
    let kind = (
        "snapshot.storage.k8s.io",
        "VolumeSnapshot",
        "volumesnapshots",
    );
    let response = answer(&state(), review(kind, "CREATE", snapshot)).await;
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.contains("secret share 'mergers'"), "{message}");
}

#[actix_web::test]
async fn claims_route_refuses_malformed_and_old_reviews_with_400() {
    let (status, body) = post(&state(), b"{not json".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("not a valid AdmissionReview"));
    let mut old = review(PVC, "CREATE", claim("x"));
    old["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let (status, body) = post(&state(), serde_json::to_vec(&old).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("v1beta1"));
}

#[actix_web::test]
async fn claims_route_is_counted_in_metrics() {
    let state = state();
    answer(&state, review(PVC, "CREATE", claim("finance-data"))).await;
    let service = test::init_service(App::new().configure(|c| probes::configure(c, &state))).await;
    let resp = test::call_service(
        &service,
        test::TestRequest::get().uri("/metrics").to_request(),
    )
    .await;
    let body = String::from_utf8_lossy(&test::read_body(resp).await).into_owned();
    assert!(
        body.lines().any(|l| l.contains("webhook=\"claims\"")
            && l.contains("decision=\"denied\"")
            && l.contains("operation=\"CREATE\"")),
        "{body}"
    );
}
