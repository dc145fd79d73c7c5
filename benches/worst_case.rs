//! The worst input of each class a caller can send, answered the way the server answers it:
//! through the pure functions (`admission::review`, `admission::review_policy`, on a decoded
//! request) and through the HTTP app in-process (the body bytes to the AdmissionReview answer:
//! decoding, the blocking pool for heavy work, serialisation). Every body is within the 3 MiB
//! cap, and every input is built in a fraction of a second.
//!
//! - `secret_shares_100k`: a notebook pod whose secret-shares annotation names 100,000 shares;
//! - `pod_3mib_volumes_mounts`: a pod near 3 MiB with as many volumes and mounts as fit;
//! - `policy_nested_flow_100k`: a policy ConfigMap with 100,000 levels of nested flow YAML;
//! - `policy_3mib_documents`: a 3 MiB policy ConfigMap of many small documents;
//! - `policy_alias_bomb`: a policy ConfigMap whose aliases would repeat a billion nodes;
//! - `policy_nested_block_32`: 2 MiB of documents nested to the bound in block style.
//!
//! Each must be answered in well under the webhook timeout (15 s; 10 s for the API server's
//! default), and ideally in milliseconds.

use std::fmt::Write;
use std::time::Duration;

use actix_web::{App, test as actix_test};
use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::core::admission::AdmissionRequest;
use notebook_volumes::admission::{Context, NoClaims, review, review_policy};
use notebook_volumes::files::load_policies;
use notebook_volumes::keys;
use notebook_volumes::policy::NamespaceInfo;
use notebook_volumes::server::{AppState, app};
use serde_json::{Value, json};

const NAMESPACE: &str = "ds-team";
const POLICY_NAMESPACE: &str = "notebook-volumes";
const HUB: &str = "system:serviceaccount:jupyterhub:hub";

/// An AdmissionReview for a pod CREATE by the hub in `ds-team`.
fn pod_review(pod: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "00000000-0000-0000-0000-0000000000b1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "jupyter-alice",
            "namespace": NAMESPACE,
            "operation": "CREATE",
            "userInfo": {"username": HUB, "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": pod,
            "dryRun": false
        }
    }))
    .expect("review JSON")
}

/// An AdmissionReview for a policy ConfigMap CREATE with one key.
fn config_map_review(key: &str, text: String) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "00000000-0000-0000-0000-0000000000b2",
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "name": "hostile",
            "namespace": POLICY_NAMESPACE,
            "operation": "CREATE",
            "userInfo": {"username": "platform-admin", "groups": ["system:authenticated"]},
            "object": {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "hostile", "namespace": POLICY_NAMESPACE,
                             "labels": {keys::POLICY_LABEL: "true"}},
                "data": {key: text}
            },
            "dryRun": false
        }
    }))
    .expect("review JSON")
}

fn notebook_pod(annotations: Value, volumes: Value, mounts: Value) -> Value {
    let mut all = json!({"hub.jupyter.org/username": "alice"});
    if let (Some(all), Some(extra)) = (all.as_object_mut(), annotations.as_object()) {
        all.extend(extra.clone());
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "jupyter-alice", "labels": {"component": "singleuser-server"},
                     "annotations": all},
        "spec": {"volumes": volumes,
                 "containers": [{"name": "notebook", "image": "quay.io/jupyter/scipy-notebook",
                                 "volumeMounts": mounts}]}
    })
}

/// 100,000 distinct names in the secret-shares annotation.
fn secret_shares_100k() -> Vec<u8> {
    let mut names = String::with_capacity(800_000);
    for i in 0..100_000 {
        let _ = write!(names, "{}s{i}", if i == 0 { "" } else { "," });
    }
    pod_review(notebook_pod(
        json!({keys::SECRET_SHARES_ANNOTATION: names}),
        json!([]),
        json!([]),
    ))
}

/// As many claim volumes, each mounted once, as fit in the 3 MiB cap (28,000 of each).
fn pod_3mib_volumes_mounts() -> Vec<u8> {
    let n = 28_000;
    let volumes: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("v{i:05}"), "persistentVolumeClaim": {"claimName": format!("c{i:05}")}}))
        .collect();
    let mounts: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("v{i:05}"), "mountPath": format!("/m/{i:05}")}))
        .collect();
    pod_review(notebook_pod(json!({}), json!(volumes), json!(mounts)))
}

/// `groups:` followed by 100,000 nested flow sequences.
fn policy_nested_flow_100k() -> Vec<u8> {
    let depth = 100_000;
    let mut text = String::with_capacity(2 * depth + 32);
    text.push_str("kind: Groups\ngroups: ");
    text.extend(std::iter::repeat_n('[', depth));
    text.extend(std::iter::repeat_n(']', depth));
    text.push('\n');
    config_map_review("nested.yaml", text)
}

/// Small `Groups` documents up to just under 3 MiB of body.
fn policy_3mib_documents() -> Vec<u8> {
    let budget = app::MAX_BODY - 4096;
    let mut text = String::with_capacity(budget);
    let mut i = 0;
    // Each document has three newlines, each escaped as two bytes in the JSON body.
    while text.len() + 3 * i + 64 < budget {
        let _ = write!(text, "---\nkind: Groups\ngroups: {{g{i}: [u{i}]}}\n");
        i += 1;
    }
    config_map_review("many.yaml", text)
}

/// Nine levels of ten aliases each: a billion nodes if expanded.
fn policy_alias_bomb() -> Vec<u8> {
    let mut text = String::from("kind: Groups\nl0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        let _ = writeln!(
            text,
            "l{i}: &l{i} [{}]",
            vec![format!("*l{p}"); 10].join(", ")
        );
    }
    text.push_str("groups: {a: *l9}\n");
    config_map_review("bomb.yaml", text)
}

/// Documents nested 31 levels deep in block style (within the bound, so they are read in full),
/// repeated up to about 2 MiB.
fn policy_nested_block_32() -> Vec<u8> {
    let mut doc = String::from("---\nkind: Groups\ngroups:\n");
    for i in 1..31 {
        let _ = writeln!(doc, "{}a:", " ".repeat(2 * i));
    }
    let _ = writeln!(doc, "{}- x", " ".repeat(62));
    let text = doc.repeat(2 * 1024 * 1024 / doc.len());
    config_map_review("nested.yaml", text)
}

fn state() -> AppState {
    let loaded = load_policies(&["examples/policies".into()]).expect("example policies load");
    AppState::offline(loaded.units, POLICY_NAMESPACE)
}

fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    let inputs = vec![
        ("secret_shares_100k", secret_shares_100k()),
        ("pod_3mib_volumes_mounts", pod_3mib_volumes_mounts()),
        ("policy_nested_flow_100k", policy_nested_flow_100k()),
        ("policy_3mib_documents", policy_3mib_documents()),
        ("policy_alias_bomb", policy_alias_bomb()),
        ("policy_nested_block_32", policy_nested_block_32()),
    ];
    for (name, body) in &inputs {
        assert!(
            body.len() <= app::MAX_BODY,
            "{name}: {} bytes is over the body cap",
            body.len()
        );
    }
    inputs
}

/// The pure decisions on decoded requests (what runs on the blocking thread).
fn functions(c: &mut Criterion) {
    let state = state();
    let policy = state.policy.load_full();
    let ns = NamespaceInfo::new(NAMESPACE);
    let mut group = c.benchmark_group("worst_case_function");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    // Inputs are decoded inside the benchmark closures, so a filter on the command line only
    // pays for the inputs it runs.
    for (name, body) in inputs() {
        if name.starts_with("policy") {
            let mut req: Option<AdmissionRequest<ConfigMap>> = None;
            group.bench_function(name, |b| {
                let req = req.get_or_insert_with(|| app::decode(&body).expect("decodes"));
                b.iter(|| {
                    review_policy(&policy.units, POLICY_NAMESPACE, std::hint::black_box(&*req))
                })
            });
        } else {
            let mut req: Option<AdmissionRequest<Pod>> = None;
            group.bench_function(name, |b| {
                let req = req.get_or_insert_with(|| app::decode(&body).expect("decodes"));
                let ctx = Context {
                    policy: &policy.snapshot,
                    namespace: &ns,
                    claims: &NoClaims,
                    webhook_user: None,
                    stamp_key: None,
                };
                b.iter(|| review(ctx, std::hint::black_box(&*req)))
            });
        }
    }
    group.finish();
}

/// The HTTP app in-process: body bytes in, AdmissionReview out.
fn http(c: &mut Criterion) {
    let state = state();
    let system = actix_web::rt::System::new();
    let service = system.block_on(actix_test::init_service(
        App::new().configure(|cfg| app::configure(cfg, &state)),
    ));
    let mut group = c.benchmark_group("worst_case_http");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for (name, body) in inputs() {
        let path = if name.starts_with("policy") {
            "/validate"
        } else {
            "/mutate"
        };
        let body = actix_web::web::Bytes::from(body);
        let call = || {
            let req = actix_test::TestRequest::post()
                .uri(path)
                .insert_header(("content-type", "application/json"))
                .set_payload(body.clone())
                .to_request();
            system.block_on(async {
                let resp = actix_test::call_service(&service, req).await;
                let status = resp.status();
                (status, actix_test::read_body(resp).await)
            })
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                let (status, answer) = call();
                assert!(
                    status.is_success(),
                    "{name}: {status} {}",
                    String::from_utf8_lossy(&answer)
                );
                answer
            })
        });
    }
    group.finish();
}

criterion_group!(benches, functions, http);
criterion_main!(benches);
