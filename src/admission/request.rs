//! Builds AdmissionRequests the way the API server sends them, for `audit` and for tests.

use k8s_openapi::api::core::v1::Pod;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview};
use serde_json::json;

/// Who sends the request: `request.userInfo`.
#[derive(Debug, Clone, Default)]
pub struct Requester {
    pub username: String,
    pub groups: Vec<String>,
}

/// A pod CREATE request (or a `pods/ephemeralcontainers` UPDATE with `ephemeral`, adding every
/// debug container of `pod` to the pod without them), as the API server would send it for `pod`
/// in `namespace`.
pub fn pod_request(
    pod: &Pod,
    namespace: &str,
    requester: &Requester,
    dry_run: bool,
    ephemeral: bool,
) -> Result<AdmissionRequest<Pod>, String> {
    let (operation, sub_resource) = if ephemeral {
        ("UPDATE", Some("ephemeralcontainers"))
    } else {
        ("CREATE", None)
    };
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "00000000-0000-0000-0000-000000000000",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "subResource": sub_resource,
            "name": pod.metadata.name.clone().unwrap_or_default(),
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": requester.username, "groups": requester.groups},
            "object": pod,
            "oldObject": if ephemeral { serde_json::to_value(without_debug_containers(pod)).unwrap_or_default() } else { serde_json::Value::Null },
            "dryRun": dry_run,
        }
    });
    let review: AdmissionReview<Pod> = serde_json::from_value(review).map_err(|e| e.to_string())?;
    review
        .try_into()
        .map_err(|e: kube::core::admission::ConvertAdmissionReviewError| e.to_string())
}

/// The pod before its debug containers were added.
fn without_debug_containers(pod: &Pod) -> Pod {
    let mut old = pod.clone();
    if let Some(spec) = old.spec.as_mut() {
        spec.ephemeral_containers = None;
    }
    old
}

/// A CREATE request for a StatefulSet or Notebook manifest (`object`, as JSON), as the API server
/// would send it.
pub fn workload_request(
    object: &serde_json::Value,
    namespace: &str,
    requester: &Requester,
    dry_run: bool,
) -> Result<AdmissionRequest<DynamicObject>, String> {
    let api_version = object
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = object
        .get("kind")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let resource = format!("{}s", kind.to_ascii_lowercase());
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "00000000-0000-0000-0000-000000000000",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "name": object.pointer("/metadata/name").and_then(|v| v.as_str()).unwrap_or_default(),
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": requester.username, "groups": requester.groups},
            "object": object,
            "dryRun": dry_run,
        }
    });
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_value(review).map_err(|e| e.to_string())?;
    review
        .try_into()
        .map_err(|e: kube::core::admission::ConvertAdmissionReviewError| e.to_string())
}
