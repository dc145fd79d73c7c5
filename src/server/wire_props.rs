//! Properties of the wire layer against hostile bodies and answers: the fast path of
//! `wire::decode_direct` never reads a request otherwise than the general route, and
//! `wire::encode` always writes JSON that reads back as the response it was given.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::Resource;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::core::{DynamicObject, Status, TypeMeta};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::app::decode_dynamic;
use super::wire::{decode_direct, encode};

const V1: &str = "admission.k8s.io/v1";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn same<T: Resource + Serialize>(
    a: &AdmissionRequest<T>,
    b: &AdmissionRequest<T>,
    context: &str,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(&a.types, &b.types, "{}", context);
    prop_assert_eq!(
        serde_json::to_value(a).expect("a"),
        serde_json::to_value(b).expect("b"),
        "{}",
        context
    );
    Ok(())
}

/// Mutations a hostile or careless sender could make to a review: on the document (fields
/// changed or removed) and on its text (keys repeated, which a `serde_json::Value` cannot
/// hold, and escapes).
#[derive(Clone, Debug)]
enum Mutation {
    Set(&'static str, serde_json::Value),
    Remove(&'static str),
    /// A member inserted first (`true`) or last in the object opened by the marker
    /// (`{` alone: the envelope).
    Repeat(&'static str, bool, &'static str),
    /// The first occurrence of one text replaced by another.
    Replace(&'static str, &'static str),
}

fn mutation() -> impl proptest::strategy::Strategy<Value = Mutation> {
    use Mutation::*;
    use proptest::prelude::*;
    use proptest::sample::select;
    let kinds = [
        "Pod",
        "PodExecOptions",
        "Binding",
        "Secret",
        "pod",
        "ConfigMap",
        "PersistentVolumeClaim",
        "",
    ];
    let sets = vec![
        ("/apiVersion", json!("admission.k8s.io/v1beta1")),
        ("/apiVersion", json!("admission.k8s.io/v1 ")),
        ("/apiVersion", json!(null)),
        ("/apiVersion", json!(1)),
        ("/kind", json!("AdmissionResponse")),
        ("/kind", json!(null)),
        ("/response", json!("not a response")),
        ("/response", json!({"uid": "x", "allowed": true})),
        ("/request/kind/group", json!("evil.example")),
        ("/request/subResource", json!("exec")),
        ("/request/subResource", json!("ephemeralcontainers")),
        ("/request/subResource", json!("binding")),
        ("/request/operation", json!("CONNECT")),
        ("/request/operation", json!("NOPE")),
        ("/request/uid", json!("\"\\\u{0}\u{1f}é\u{2028}")),
        ("/request/object", json!(null)),
        ("/request/object", json!({})),
        (
            "/request/object",
            json!({"apiVersion": "v1", "kind": "Secret"}),
        ),
        ("/request/object/kind", json!("Secret")),
        ("/request/object/kind", json!("ConfigMap")),
        ("/request/object/apiVersion", json!("apps/v1")),
        ("/request/object/spec", json!({"containers": "not a list"})),
        ("/request/object/metadata/name", json!(f64::MAX)),
        ("/request/object/spec/priority", json!(u64::MAX)),
        (
            "/request/oldObject",
            json!({"apiVersion": "v1", "kind": "Secret"}),
        ),
        ("/request/userInfo/username", json!("system:admin")),
        ("/request/dryRun", json!("yes")),
    ];
    let removes = [
        "/apiVersion",
        "/kind",
        "/request",
        "/request/kind",
        "/request/kind/kind",
        "/request/object/kind",
        "/request/object/apiVersion",
        "/request/object/metadata",
        "/request/userInfo",
        "/request/operation",
    ];
    let repeats = [
        ("{", r#""apiVersion":"admission.k8s.io/v1beta1""#),
        ("{", r#""apiVersion":"admission.k8s.io/v1""#),
        ("{", r#""kind":"AdmissionResponse""#),
        ("{", r#""request":{}"#),
        ("{", r#""response":7"#),
        (r#""request":{"#, r#""uid":"repeated""#),
        (r#""request":{"#, r#""operation":"DELETE""#),
        (r#""request":{"#, r#""object":null"#),
        (
            r#""request":{"#,
            r#""userInfo":{"username":"system:admin"}"#,
        ),
        (
            r#""request":{"#,
            r#""kind":{"group":"","version":"v1","kind":"PodExecOptions"}"#,
        ),
        (r#""object":{"#, r#""kind":"Secret""#),
        (r#""object":{"#, r#""kind":"Pod""#),
        (r#""object":{"#, r#""apiVersion":"apps/v1""#),
        (r#""object":{"#, r#""metadata":{"name":"other"}"#),
        (r#""metadata":{"#, r#""namespace":"kube-system""#),
        (
            r#""annotations":{"#,
            r#""hub.jupyter.org/username":"mallory""#,
        ),
        (r#""labels":{"#, r#""hub.jupyter.org/username":"mallory""#),
        (r#""userInfo":{"#, r#""username":"system:admin""#),
        (r#""userInfo":{"#, r#""groups":["system:masters"]"#),
        (
            r#""spec":{"#,
            r#""priority":123456789012345678901234567890"#,
        ),
        (r#""spec":{"#, r#""terminationGracePeriodSeconds":1e400"#),
        (
            r#""object":{"#,
            r#""x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"#,
        ),
    ];
    let replaces = [
        (r#""AdmissionReview""#, r#""Admission\u0052eview""#),
        (r#""admission.k8s.io/v1""#, r#""admission.k8s.io\/v1""#),
        (r#""apiVersion""#, r#""\u0061piVersion""#),
        (r#""kind":"Pod""#, r#""kind":"P\u006fd""#),
        (r#""kind":"Pod""#, r#""kind":"Pod\u0000""#),
        (r#""request""#, r#""Request""#),
        (r#""object""#, r#""\u006fbject""#),
        (r#""uid":""#, r#""uid":"\ud800"#),
    ];
    prop_oneof![
        select(sets).prop_map(|(p, v)| Set(p, v)),
        select(kinds.to_vec()).prop_map(|k| Set("/request/kind/kind", json!(k))),
        select(removes.to_vec()).prop_map(Remove),
        (select(repeats.to_vec()), any::<bool>()).prop_map(|((at, m), first)| Repeat(at, first, m)),
        select(replaces.to_vec()).prop_map(|(a, b)| Replace(a, b)),
    ]
}

/// The body with `mutations` applied in order (those whose target is gone are skipped).
fn mutated(body: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut text = String::from_utf8(body.to_vec()).expect("utf-8 fixture");
    for m in mutations {
        match m {
            Mutation::Set(pointer, value) => {
                let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(&text) else {
                    continue;
                };
                let (parent, key) = pointer.rsplit_once('/').expect("pointer");
                if let Some(serde_json::Value::Object(map)) = doc.pointer_mut(parent) {
                    map.insert(key.to_string(), value.clone());
                }
                text = doc.to_string();
            }
            Mutation::Remove(pointer) => {
                let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(&text) else {
                    continue;
                };
                let (parent, key) = pointer.rsplit_once('/').expect("pointer");
                if let Some(serde_json::Value::Object(map)) = doc.pointer_mut(parent) {
                    map.remove(key);
                }
                text = doc.to_string();
            }
            Mutation::Repeat(marker, first, member) => {
                // Compact text, so that the markers are found where a member opens.
                if let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text) {
                    text = doc.to_string();
                }
                let Some(open) = text.find(marker).map(|at| at + marker.len()) else {
                    continue;
                };
                let close = closing(&text, open - 1);
                let inner_empty = text[open..].starts_with('}');
                text = match (first, inner_empty) {
                    (_, true) => format!("{}{member}{}", &text[..open], &text[open..]),
                    (true, false) => format!("{}{member},{}", &text[..open], &text[open..]),
                    (false, false) => {
                        format!("{},{member}{}", &text[..close], &text[close..])
                    }
                };
            }
            Mutation::Replace(from, to) => text = text.replacen(from, to, 1),
        }
    }
    text.into_bytes()
}

/// Where the object opened at `open` (a `{`) closes, in compact JSON text.
fn closing(text: &str, open: usize) -> usize {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, c) in text.char_indices().skip_while(|(i, _)| *i < open) {
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_string = false,
            (true, false, _) => {}
            (false, _, '"') => in_string = true,
            (false, _, '{' | '[') => depth += 1,
            (false, _, '}' | ']') => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    text.len()
}

/// Whenever the fast path decodes `body` as a review of a `T`, the general route reads the same.
fn fast_path_agrees<T>(body: &[u8], context: &str) -> Result<(), TestCaseError>
where
    T: Resource<DynamicType = ()> + DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let Some(direct) = decode_direct::<T>(body, V1, Some(&T::kind(&()))) else {
        return Ok(());
    };
    let general = general::<T>(body);
    prop_assert!(general.is_some(), "general route rejects {}", context);
    let general = general.expect("checked");
    same(&direct, &general, context)?;
    prop_assert_eq!(&direct.object, &general.object, "{}", context);
    prop_assert_eq!(&direct.old_object, &general.old_object, "{}", context);
    Ok(())
}

/// The general route as `app` takes it: the envelope checked on a `serde_json::Value`, then
/// kube-core's `AdmissionReview` from that value. `None` where it rejects the body.
fn general<T: Resource + DeserializeOwned>(body: &[u8]) -> Option<AdmissionRequest<T>> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let envelope_ok = value.get("apiVersion").and_then(|v| v.as_str()) == Some(V1)
        && value.get("kind").and_then(|v| v.as_str()) == Some("AdmissionReview")
        && value.get("request").is_some_and(|r| r.is_object());
    if !envelope_ok {
        return None;
    }
    let review: AdmissionReview<T> = serde_json::from_value(value).ok()?;
    review.try_into().ok()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 256, failure_persistence: None, ..Default::default()
    })]

    /// Whatever is done to a review, the fast path either declines it or reads exactly the
    /// request the general route reads: never one the general route rejects, never another
    /// uid, user, operation or object (duplicate keys included, which serde's structs and
    /// a `Value` resolve differently).
    #[test]
    fn the_fast_path_reads_what_the_general_route_reads(
        fixture_name in proptest::sample::select(vec![
            "kubespawner-alice.json",
            "bob-bare-pod.json",
            "carol-claims-bob.json",
            "delete-pod.json",
            "connect-exec.json",
            "configmap-valid.json",
            "kubespawner-alice-v1beta1.json",
        ]),
        mutations in proptest::collection::vec(mutation(), 0..4),
    ) {
        let body = mutated(&fixture(fixture_name), &mutations);
        let context = String::from_utf8_lossy(&body);
        fast_path_agrees::<Pod>(&body, &context)?;
        fast_path_agrees::<ConfigMap>(&body, &context)?;
        // Claims and workloads: whatever route `decode_dynamic` takes for the body.
        match (decode_dynamic(&body), general::<DynamicObject>(&body)) {
            (Ok(read), Some(general)) => {
                same(&read, &general, &context)?;
                prop_assert_eq!(&read.object, &general.object, "{}", context);
                prop_assert_eq!(&read.old_object, &general.old_object);
            }
            (Err(_), None) => {}
            (read, general) => prop_assert!(
                false,
                "decoded: {}, general route: {}; {}",
                read.is_ok(),
                general.is_some(),
                context
            ),
        }
    }
}

/// Strings as a hostile requester or a careless policy could make them: quotes, backslashes,
/// control characters, line separators, non-ASCII, anything.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(
            proptest::sample::select(vec![
                "\"",
                "\\",
                "\\\"",
                "\u{0}",
                "\u{1f}",
                "\n",
                "\u{7f}",
                "\u{2028}",
                "é",
                "😀",
                "</script>",
                "a",
                "/",
                "\\u0000",
            ]),
            0..8
        )
        .prop_map(|parts| parts.concat()),
        any::<String>(),
    ]
}

fn response() -> impl Strategy<Value = AdmissionResponse> {
    (
        (text(), text(), any::<bool>(), text(), text(), any::<u16>()),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        proptest::collection::hash_map(text(), text(), 0..3),
        proptest::option::of(proptest::collection::vec(text(), 0..3)),
    )
        .prop_map(
            |((kind, uid, allowed, message, reason, code), patch, annotations, warnings)| {
                let mut response = AdmissionResponse::invalid("");
                response.types = TypeMeta {
                    api_version: V1.into(),
                    kind,
                };
                response.uid = uid;
                response.allowed = allowed;
                response.result = Status {
                    message,
                    reason,
                    code,
                    ..Status::default()
                };
                response.patch = patch;
                response.audit_annotations = annotations;
                response.warnings = warnings;
                response
            },
        )
}

proptest::proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256, failure_persistence: None, ..Default::default()
    })]

    /// Whatever the strings and the patch bytes, the answer is one JSON document that reads back
    /// as the response: uid, decision, status, patch (base64) and its type, annotations, warnings.
    #[test]
    fn an_answer_reads_back_as_the_response(response in response()) {
        let bytes = encode(&response);
        let answer: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&bytes))))?;
        let keys: Vec<&String> = answer.as_object().expect("an object").keys().collect();
        prop_assert_eq!(keys.len(), 3);
        prop_assert_eq!(&answer["apiVersion"], &json!(V1));
        prop_assert_eq!(&answer["kind"], &json!(response.types.kind));
        let r = &answer["response"];
        prop_assert_eq!(&r["uid"], &json!(response.uid));
        prop_assert_eq!(&r["allowed"], &json!(response.allowed));
        let status: Status = serde_json::from_value(r["status"].clone()).expect("a status");
        prop_assert_eq!(&status, &response.result);
        match &response.patch {
            Some(patch) => {
                let written = r["patch"].as_str().expect("a base64 string");
                let read = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, written)
                    .expect("base64");
                prop_assert_eq!(&read, patch);
                prop_assert_eq!(&r["patchType"], &json!("JSONPatch"));
            }
            None => prop_assert!(r.get("patch").is_none() && r.get("patchType").is_none()),
        }
        let annotations: HashMap<String, String> = match r.get("auditAnnotations") {
            Some(a) => serde_json::from_value(a.clone()).expect("annotations"),
            None => HashMap::new(),
        };
        prop_assert_eq!(&annotations, &response.audit_annotations);
        let warnings: Option<Vec<String>> = r.get("warnings").map(|w| serde_json::from_value(w.clone()).expect("warnings"));
        prop_assert_eq!(&warnings, &response.warnings);
    }
}

/// A `response` in the request's review is read by kube-core's type, so a malformed one makes
/// the general route refuse the body: the fast path must not answer it either.
#[test]
fn a_malformed_response_field_is_refused_by_both_routes() {
    let mut review: serde_json::Value =
        serde_json::from_slice(&fixture("kubespawner-alice.json")).expect("fixture");
    review["response"] = json!("not a response");
    let body = serde_json::to_vec(&review).expect("body");
    assert!(decode_direct::<Pod>(&body, V1, Some("Pod")).is_none());
    assert!(decode_direct::<DynamicObject>(&body, V1, None).is_none());
    assert!(super::app::decode::<Pod>(&body).is_err());
    assert!(decode_dynamic(&body).is_err());
}
