//! The pod webhook's `matchConditions` (CEL, read from the shipped manifest and evaluated with a
//! CEL interpreter) against the core: whenever the expression lets the API server skip the call,
//! the core agrees that the pod does not concern the webhook, and `review` would have allowed it
//! unchanged for every kind of requester. Generated pods mix every volume kind, extra fields on
//! safe volumes, notebook labels, the webhook's labels and annotations, and every operation.

use cel_interpreter::{Context as Cel, Program, Value as CelValue};
use k8s_openapi::api::core::v1::Pod;
use notebook_volumes::admission::triage::concerns_webhook;
use notebook_volumes::policy::rules::{INLINE_VOLUME_TYPES, SAFE_VOLUME_TYPES};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::fixtures::{Case, HUB, STS, examples, repo};

/// The `matchConditions` of the pods webhook in the base manifest, as (name, expression).
fn pod_match_conditions() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo("manifests/base/mutatingwebhookconfiguration.yaml"))
        .expect("manifest");
    let doc: Value = serde_saphyr::from_str(&text).expect("yaml");
    let hook = doc["webhooks"]
        .as_array()
        .expect("webhooks")
        .iter()
        .find(|w| w["name"] == "pods.notebook-volumes.io")
        .expect("pods webhook");
    hook["matchConditions"]
        .as_array()
        .expect("matchConditions")
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().expect(k).to_string();
            (s("name"), s("expression"))
        })
        .collect()
}

/// Whether the API server calls the webhook: every condition true (an error also calls it,
/// under failurePolicy Fail; here it fails the test).
fn called(programs: &[Program], request: &Value, object: &Value) -> bool {
    let mut ctx = Cel::default();
    ctx.add_variable("request", request.clone())
        .expect("request");
    ctx.add_variable("object", object.clone()).expect("object");
    programs.iter().all(|p| match p.execute(&ctx) {
        Ok(CelValue::Bool(b)) => b,
        other => panic!("condition did not evaluate to a bool: {other:?} for {object}"),
    })
}

fn programs() -> Vec<Program> {
    pod_match_conditions()
        .iter()
        .map(|(name, e)| Program::compile(e).unwrap_or_else(|err| panic!("{name}: {err:?}")))
        .collect()
}

/// A minimal valid source of each kind the pod API has.
fn source(kind: &str) -> Value {
    match kind {
        "configMap" => json!({"name": "cm"}),
        "secret" => json!({"secretName": "s"}),
        "downwardAPI" | "emptyDir" => json!({}),
        "projected" => json!({"sources": [{"serviceAccountToken": {"path": "token"}}]}),
        "image" => json!({"reference": "busybox"}),
        "persistentVolumeClaim" => json!({"claimName": "team-data"}),
        "ephemeral" => json!({"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}),
        "csi" => json!({"driver": "nfs.csi.k8s.io"}),
        "nfs" | "glusterfs" => {
            json!({"server": "nfs.example", "path": "/export", "endpoints": "e"})
        }
        "hostPath" => json!({"path": "/srv"}),
        "iscsi" => json!({"targetPortal": "t", "iqn": "i", "lun": 0}),
        "rbd" => json!({"monitors": ["m"], "image": "i"}),
        "cephfs" => json!({"monitors": ["m"]}),
        "azureDisk" => json!({"diskName": "d", "diskURI": "u"}),
        "azureFile" => json!({"secretName": "s", "shareName": "x"}),
        "awsElasticBlockStore" | "cinder" | "gcePersistentDisk" => {
            json!({"volumeID": "v", "pdName": "p"})
        }
        "flexVolume" => json!({"driver": "d"}),
        "photonPersistentDisk" => json!({"pdID": "p"}),
        "portworxVolume" | "vsphereVolume" => json!({"volumeID": "v", "volumePath": "p"}),
        "quobyte" => json!({"registry": "r", "volume": "v"}),
        "scaleIO" => json!({"gateway": "g", "system": "s", "secretRef": {"name": "x"}}),
        "gitRepo" => json!({"repository": "r"}),
        _ => json!({}),
    }
}

fn volume_kinds() -> Vec<&'static str> {
    let mut kinds: Vec<&str> = SAFE_VOLUME_TYPES.to_vec();
    kinds.extend(INLINE_VOLUME_TYPES);
    kinds.extend(["persistentVolumeClaim", "ephemeral", "csi"]);
    kinds
}

const LABELS: &[(&str, &str)] = &[
    ("app", "batch"),
    ("component", "singleuser-server"),
    ("component", "controller"),
    ("notebook-name", "nb"),
    ("notebook-volumes.io/home", "true"),
    ("nb-volumes.io/x", "y"),
];

const ANNOTATIONS: &[&str] = &[
    "example.com/owner",
    "hub.jupyter.org/username",
    "opendatahub.io/username",
    "notebook-volumes.io/user",
    "notebook-volumes.io/mounts",
    "notebook-volumes.io/inject",
    "notebook-volumes.io/secret-shares",
    "nb-volumes.io/stamp",
    "nb-volumes.io/inject",
    "nb-volumes.io/secret-shares",
];

/// One generated pod: volumes as (kind index, an extra field beside the source), labels and
/// annotations by index.
fn pod_json(volumes: &[(usize, bool)], labels: &[usize], annotations: &[usize]) -> Value {
    let kinds = volume_kinds();
    let volumes: Vec<Value> = volumes
        .iter()
        .enumerate()
        .map(|(i, &(k, extra))| {
            let kind = kinds[k % kinds.len()];
            let mut v = json!({"name": format!("v{i}")});
            v[kind] = source(kind);
            if extra {
                v["nfs"] = source("nfs");
            }
            v
        })
        .collect();
    let mounts: Vec<Value> = (0..volumes.len())
        .map(|i| json!({"name": format!("v{i}"), "mountPath": format!("/m{i}")}))
        .collect();
    let labels: serde_json::Map<String, Value> = labels
        .iter()
        .map(|&i| LABELS[i % LABELS.len()])
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let annotations: serde_json::Map<String, Value> = annotations
        .iter()
        .map(|&i| {
            (
                ANNOTATIONS[i % ANNOTATIONS.len()].to_string(),
                json!("alice"),
            )
        })
        .collect();
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": crate::fixtures::NS},
        "spec": {"containers": [{"name": "job", "image": "busybox", "volumeMounts": mounts}]}
    });
    if !volumes.is_empty() {
        pod["spec"]["volumes"] = json!(volumes);
    }
    if !labels.is_empty() {
        pod["metadata"]["labels"] = json!(labels);
    }
    if !annotations.is_empty() {
        pod["metadata"]["annotations"] = json!(annotations);
    }
    pod
}

fn create() -> Value {
    json!({"operation": "CREATE"})
}

/// What the webhook would do with a pod it never sees: nothing, for every requester.
fn review_is_noop(pod: &Pod) {
    for requester in ["mallory", HUB, STS] {
        let review = Case::new(examples(), requester).review(pod);
        assert!(review.allowed(), "{requester}: {:?}", review.denial);
        assert!(review.patch.is_empty(), "{requester}: {:?}", review.patch);
        assert!(
            review.warnings.is_empty(),
            "{requester}: {:?}",
            review.warnings
        );
        assert!(review.effects.is_empty(), "{requester}");
    }
}

#[test]
fn match_conditions_skip_only_pods_the_core_ignores() {
    let programs = programs();
    let settings = examples().settings().clone();
    proptest!(ProptestConfig::with_cases(400), |(
        volumes in prop::collection::vec((0usize..64, prop::bool::weighted(0.1)), 0..4),
        labels in prop::collection::vec(0usize..16, 0..3),
        annotations in prop::collection::vec(0usize..24, 0..3),
    )| {
        let object = pod_json(&volumes, &labels, &annotations);
        let pod: Pod = serde_json::from_value(object.clone()).expect("pod");
        let call = called(&programs, &create(), &object);
        if !call {
            prop_assert!(!concerns_webhook(&settings, &pod), "skipped a pod the core cares about: {object}");
            review_is_noop(&pod);
        }
        // Never skipped: any other operation or a subresource, whatever the pod.
        for request in [
            json!({"operation": "UPDATE"}),
            json!({"operation": "UPDATE", "subResource": "ephemeralcontainers"}),
            json!({"operation": "CREATE", "subResource": "binding"}),
        ] {
            prop_assert!(called(&programs, &request, &object), "{request} skipped");
        }
    });
}

#[test]
fn each_risky_shape_is_sent_and_a_plain_job_is_not() {
    let programs = programs();
    let kinds = volume_kinds();
    for (k, kind) in kinds.iter().enumerate() {
        let object = pod_json(&[(k, false)], &[], &[]);
        let safe = SAFE_VOLUME_TYPES.contains(kind);
        assert_eq!(called(&programs, &create(), &object), !safe, "{kind}");
        // A safe source with a second, unsafe one beside it is sent.
        let doubled = pod_json(&[(k, true)], &[], &[]);
        assert!(called(&programs, &create(), &doubled), "{kind} + nfs");
    }
    for (l, label) in LABELS.iter().enumerate() {
        let object = pod_json(&[], &[l], &[]);
        assert_eq!(called(&programs, &create(), &object), l != 0, "{label:?}");
    }
    for (a, annotation) in ANNOTATIONS.iter().enumerate() {
        let object = pod_json(&[], &[], &[a]);
        assert_eq!(
            called(&programs, &create(), &object),
            a != 0,
            "{annotation}"
        );
    }
    let plain = pod_json(&[(0, false), (3, false)], &[0], &[0]);
    assert!(!called(&programs, &create(), &plain));
    review_is_noop(&serde_json::from_value(plain).expect("pod"));
}
