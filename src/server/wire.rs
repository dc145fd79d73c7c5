//! The AdmissionReview on the wire, without detours: a request decoded straight from the body into
//! its typed form (one pass; the generic `serde_json::Value` route stays for what the fast path
//! does not take), and an answer serialised straight to bytes with the patch as the base64 string
//! the API server expects (kube-core would write it as an array of numbers).

use base64::Engine;
use kube::Resource;
use kube::core::TypeMeta;
use kube::core::admission::{AdmissionRequest, AdmissionResponse};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The review as the fast path reads it: the envelope's type fields, borrowed, and the request.
/// A request whose object is not of the expected type fails to decode (k8s-openapi checks an
/// object's `apiVersion` and `kind`), which sends it to the general route.
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: DeserializeOwned + Resource"))]
struct Body<'a, T: Resource> {
    #[serde(rename = "apiVersion", borrow, default)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    request: AdmissionRequest<T>,
    /// Never sent with a request, but read as kube-core reads it: a body the general route
    /// rejects for it must not be answered by the fast path.
    #[serde(default)]
    #[allow(dead_code)]
    response: Option<AdmissionResponse>,
}

/// The request of a well-formed `api_version` review whose object is of kind `object_kind` (any
/// kind when `None`), decoded in one pass over the body (kube-core's `AdmissionReview` flattens
/// its type fields, which makes serde buffer the whole document first). `None` when the body is
/// anything else (another version or kind, no request, an object of another kind, a malformed
/// document): the caller then takes the general route, which also words the errors.
pub fn decode_direct<T>(
    body: &[u8],
    api_version: &str,
    object_kind: Option<&str>,
) -> Option<AdmissionRequest<T>>
where
    T: Resource + DeserializeOwned,
{
    let review: Body<T> = serde_json::from_slice(body).ok()?;
    let envelope_ok = review.api_version.as_deref() == Some(api_version)
        && review.kind.as_deref() == Some("AdmissionReview");
    let mut request = review.request;
    if !envelope_ok || object_kind.is_some_and(|expected| request.kind.kind != expected) {
        return None;
    }
    request.types = TypeMeta {
        api_version: api_version.to_string(),
        kind: "AdmissionReview".to_string(),
    };
    Some(request)
}

/// The AdmissionReview answering with `response`, as JSON bytes, in the field order kube-core
/// writes. Written by hand around serde so that the patch, most of the answer, is base64-encoded
/// straight into the output (a base64 string needs no escaping) and the output is sized once.
/// kube-core sets the patch type exactly when it sets a patch (`with_patch`), so a patch means
/// `JSONPatch`.
pub fn encode(response: &AdmissionResponse) -> Vec<u8> {
    let patch_len = response
        .patch
        .as_ref()
        .map_or(0, |p| p.len().div_ceil(3) * 4);
    let mut out = Vec::with_capacity(512 + patch_len);
    out.extend_from_slice(b"{\"apiVersion\":");
    json(&mut out, &response.types.api_version);
    out.extend_from_slice(b",\"kind\":");
    json(&mut out, &response.types.kind);
    out.extend_from_slice(b",\"response\":{\"uid\":");
    json(&mut out, &response.uid);
    out.extend_from_slice(if response.allowed {
        b",\"allowed\":true"
    } else {
        b",\"allowed\":false"
    });
    out.extend_from_slice(b",\"status\":");
    json(&mut out, &response.result);
    if let Some(patch) = &response.patch {
        out.extend_from_slice(b",\"patch\":\"");
        let at = out.len();
        out.resize(at + patch_len, 0);
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(patch, &mut out[at..])
            .unwrap_or(0);
        out.truncate(at + written);
        out.extend_from_slice(b"\",\"patchType\":\"JSONPatch\"");
    }
    if !response.audit_annotations.is_empty() {
        out.extend_from_slice(b",\"auditAnnotations\":");
        json(&mut out, &response.audit_annotations);
    }
    if let Some(warnings) = &response.warnings {
        out.extend_from_slice(b",\"warnings\":");
        json(&mut out, warnings);
    }
    out.extend_from_slice(b"}}");
    out
}

/// Strings, booleans, string maps and a Status only: writing them into memory cannot fail.
fn json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let _ = serde_json::to_writer(&mut *out, value);
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};
    use kube::core::DynamicObject;
    use kube::core::admission::AdmissionReview;
    use serde_json::json;

    use super::*;

    const V1: &str = "admission.k8s.io/v1";

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// kube-core's own route: the whole review through its (flattening) type.
    fn through_kube<T: Resource + DeserializeOwned>(body: &[u8]) -> AdmissionRequest<T> {
        let review: AdmissionReview<T> = serde_json::from_slice(body).expect("review");
        review.try_into().expect("request")
    }

    fn same<T: Resource + Serialize>(a: &AdmissionRequest<T>, b: &AdmissionRequest<T>) {
        assert_eq!(a.types, b.types);
        assert_eq!(
            serde_json::to_value(a).expect("a"),
            serde_json::to_value(b).expect("b")
        );
    }

    #[test]
    fn direct_decoding_reads_what_kube_core_reads() {
        for name in [
            "kubespawner-alice.json",
            "bob-bare-pod.json",
            "carol-claims-bob.json",
            "delete-pod.json",
        ] {
            let body = fixture(name);
            let direct: AdmissionRequest<DynamicObject> =
                decode_direct(&body, V1, None).unwrap_or_else(|| panic!("{name}: not decoded"));
            same(&direct, &through_kube(&body));
        }
        for name in [
            "kubespawner-alice.json",
            "bob-bare-pod.json",
            "delete-pod.json",
        ] {
            let body = fixture(name);
            let direct: AdmissionRequest<Pod> = decode_direct(&body, V1, Some("Pod"))
                .unwrap_or_else(|| panic!("{name}: not decoded"));
            let expected: AdmissionRequest<Pod> = through_kube(&body);
            same(&direct, &expected);
            assert_eq!(direct.object, expected.object, "{name}");
        }
        let body = fixture("configmap-valid.json");
        let direct: AdmissionRequest<ConfigMap> =
            decode_direct(&body, V1, Some("ConfigMap")).expect("configmap");
        same(&direct, &through_kube(&body));
    }

    #[test]
    fn anything_unusual_is_left_to_the_general_route() {
        let pod = |body: &[u8]| decode_direct::<Pod>(body, V1, Some("Pod")).is_some();
        assert!(pod(&fixture("kubespawner-alice.json")));
        // Another version, another object kind (CONNECT carries PodExecOptions), no request, a
        // request that is not an object, a wrong envelope kind, malformed JSON.
        assert!(!pod(&fixture("kubespawner-alice-v1beta1.json")));
        assert!(!pod(&fixture("connect-exec.json")));
        let mut review: serde_json::Value =
            serde_json::from_slice(&fixture("kubespawner-alice.json")).expect("json");
        let variants = [
            ("/request", json!(null)),
            ("/request", json!("a string")),
            ("/kind", json!("AdmissionResponse")),
            ("/request/kind/kind", json!("Secret")),
            ("/request/object/spec/containers", json!("not a list")),
        ];
        for (pointer, value) in variants {
            let mut changed = review.clone();
            *changed.pointer_mut(pointer).expect(pointer) = value.clone();
            let body = serde_json::to_vec(&changed).expect("body");
            assert!(!pod(&body), "{pointer} = {value}");
        }
        review["request"]["object"] = json!(null);
        assert!(pod(&serde_json::to_vec(&review).expect("body")));
        assert!(!pod(br#"{"apiVersion": "admission.k8s.io/v1","#));
    }

    use std::collections::HashMap;

    use kube::core::Status;

    /// The answer as serde writes it from a derived struct: `encode` must give the same bytes.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer<'a> {
        api_version: &'a str,
        kind: &'a str,
        response: AnswerResponse<'a>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct AnswerResponse<'a> {
        uid: &'a str,
        allowed: bool,
        status: &'a Status,
        #[serde(skip_serializing_if = "Option::is_none")]
        patch: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        patch_type: Option<&'static str>,
        #[serde(skip_serializing_if = "HashMap::is_empty")]
        audit_annotations: &'a HashMap<String, String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        warnings: Option<&'a Vec<String>>,
    }

    fn through_serde(response: &AdmissionResponse) -> Vec<u8> {
        let patch = response
            .patch
            .as_ref()
            .map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes));
        serde_json::to_vec(&Answer {
            api_version: &response.types.api_version,
            kind: &response.types.kind,
            response: AnswerResponse {
                uid: &response.uid,
                allowed: response.allowed,
                status: &response.result,
                patch_type: patch.as_ref().map(|_| "JSONPatch"),
                patch,
                audit_annotations: &response.audit_annotations,
                warnings: response.warnings.as_ref(),
            },
        })
        .expect("answer")
    }

    /// What the server answered before: kube-core's serialisation with the patch rewritten.
    fn through_value(response: AdmissionResponse) -> serde_json::Value {
        let patch = response.patch.clone();
        let mut review = serde_json::to_value(response.into_review()).expect("review");
        if let (Some(bytes), Some(slot)) = (patch, review.pointer_mut("/response/patch")) {
            *slot = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
        review
    }

    #[test]
    fn answers_are_what_kube_core_writes_with_a_base64_patch() {
        let body = fixture("kubespawner-alice.json");
        let req: AdmissionRequest<Pod> = decode_direct(&body, V1, Some("Pod")).expect("request");
        let patch = json_patch::Patch(vec![json_patch::PatchOperation::Add(
            json_patch::AddOperation {
                path: json_patch::jsonptr::PointerBuf::parse("/metadata/annotations/a~1b")
                    .expect("pointer"),
                value: json!("x\"y"),
            },
        )]);
        let mut warned = AdmissionResponse::from(&req);
        warned.warnings = Some(vec!["careful".into()]);
        warned
            .audit_annotations
            .insert("notebook-volumes.io/user".into(), "alice".into());
        let responses = [
            AdmissionResponse::from(&req),
            AdmissionResponse::from(&req)
                .with_patch(patch)
                .expect("patch"),
            AdmissionResponse::from(&req).deny("no \"quotes\" spared"),
            warned,
            AdmissionResponse::invalid("not a review"),
        ];
        for response in responses {
            let bytes = encode(&response);
            assert_eq!(
                String::from_utf8_lossy(&bytes),
                String::from_utf8_lossy(&through_serde(&response)),
                "{response:?}"
            );
            let encoded: serde_json::Value = serde_json::from_slice(&bytes).expect("encoded JSON");
            assert_eq!(encoded, through_value(response.clone()), "{response:?}");
        }
        // Every length of the base64 tail (no padding, one `=`, two).
        for n in 0..8 {
            let mut response = AdmissionResponse::from(&req);
            response.patch = Some(vec![b'x'; n]);
            assert_eq!(encode(&response), through_serde(&response), "{n} bytes");
        }
        let allowed = AdmissionResponse::from(&req)
            .with_patch(json_patch::Patch(vec![]))
            .expect("patch");
        let encoded: serde_json::Value = serde_json::from_slice(&encode(&allowed)).expect("json");
        assert_eq!(encoded["response"]["patch"], json!("W10="));
        assert_eq!(encoded["response"]["patchType"], json!("JSONPatch"));
        assert_eq!(encoded["apiVersion"], json!(V1));
        assert_eq!(encoded["kind"], json!("AdmissionReview"));
    }
}
