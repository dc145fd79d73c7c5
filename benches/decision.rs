//! Decision + patch for one notebook pod against policy sets of 50, 500 and 5,000 shares, with
//! 200 groups and 10,000 users. Shares are spread over 50 namespaces (plus a few cluster-wide),
//! so the cost follows the shares in scope for the pod's namespace, not the whole set. A second
//! group times the compile of the whole policy set, which a policy change costs once; another the
//! server's own work on the KubeSpawner fixture, next to the no-op baseline's.

use std::collections::HashMap;
use std::fmt::Write;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Pod;
use notebook_volumes::admission::notices;
use notebook_volumes::admission::request::{Requester, pod_request};
use notebook_volumes::admission::{ClaimInfo, Context, review};
use notebook_volumes::policy::{NamespaceInfo, Origin, PolicySnapshot, Source, Unit};

const USERS: usize = 10_000;
const GROUPS: usize = 200;
const NAMESPACES: usize = 50;
const HUB: &str = "system:serviceaccount:jupyterhub:hub";

fn policy_text(shares: usize) -> String {
    let mut t =
        format!("kind: Settings\ntrustedSpawners: [\"{HUB}\"]\n---\nkind: Groups\ngroups:\n");
    for g in 0..GROUPS {
        let members: Vec<String> = (0..USERS / GROUPS)
            .map(|k| format!("user{}", g + k * GROUPS))
            .collect();
        let _ = writeln!(t, "  group{g}: [{}]", members.join(", "));
    }
    t.push_str("---\nkind: Home\nclaimNameTemplate: home-{user}\nmountPath: /home/jovyan\ncreate: {size: 2Gi}\n");
    t.push_str("---\nkind: Library\nname: apps\nclaimName: apps\nmountPath: /opt/apps\nlmod: {defaultModules: [StdEnv]}\n");
    for i in 0..shares {
        let level = ["public", "private", "private", "secret"][i % 4];
        // Every 25th share reaches every namespace; the rest one namespace each.
        let scope = if i % 25 == 0 {
            String::new()
        } else {
            format!("namespaces: [team-{}]\n", i % NAMESPACES)
        };
        let _ = write!(
            t,
            "---\nkind: Share\nname: share-{i}\n{scope}claimName: data-{i}\nmountPath: /home/jovyan/shares/s{i}\nlevel: {level}\nwriters: {{users: [user{}], groups: [group{}]}}\n",
            i % USERS,
            (i * 7) % GROUPS
        );
        if level != "public" {
            let _ = writeln!(
                t,
                "readers: {{groups: [group{}, group{}]}}",
                i % GROUPS,
                (i * 3) % GROUPS
            );
        }
    }
    t
}

fn snapshot(shares: usize) -> PolicySnapshot {
    let unit = Unit {
        name: "bench.yaml".into(),
        sources: vec![Source {
            origin: Origin::file("bench.yaml"),
            text: policy_text(shares),
        }],
    };
    let snap = PolicySnapshot::compile(&[unit]);
    assert_eq!(
        snap.rejected_units().count(),
        0,
        "{:?}",
        snap.findings().next()
    );
    snap
}

fn notebook_pod(user: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("jupyter-{user}"), "labels": {"component": "singleuser-server"},
                     "annotations": {"hub.jupyter.org/username": user}},
        "spec": {"containers": [{"name": "notebook", "image": "jupyter/scipy-notebook",
                                 "env": [{"name": "JUPYTERHUB_USER", "value": user}]}]}
    }))
    .expect("pod")
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decision_and_patch");
    for shares in [50, 500, 5_000] {
        let policy = snapshot(shares);
        let ns = NamespaceInfo::new("team-7");
        let user = "user7";
        let claims: HashMap<(String, String), ClaimInfo> = [(
            ("team-7".to_string(), "home-user7".to_string()),
            ClaimInfo {
                home: true,
                owner: Some(user.into()),
                ..Default::default()
            },
        )]
        .into();
        let requester = Requester {
            username: HUB.into(),
            groups: vec![],
        };
        let request =
            pod_request(&notebook_pod(user), "team-7", &requester, false, false).expect("request");
        let ctx = Context {
            policy: &policy,
            namespace: &ns,
            claims: &claims,
            webhook_user: None,
            stamp_key: None,
        };
        let outcome = review(ctx, &request);
        assert!(outcome.allowed() && !outcome.patch.is_empty());
        group.bench_with_input(BenchmarkId::from_parameter(shares), &request, |b, req| {
            b.iter(|| review(ctx, std::hint::black_box(req)))
        });
        if shares == 500 {
            // What the handler adds after the decision: the Events users see, for a notebook
            // with read-only shares (the common case that is not quiet).
            let said = notices::for_admission(&request, &outcome);
            assert!(said.iter().all(|n| n.reason != notices::DENIED));
            group.bench_function("notices_500", |b| {
                b.iter(|| notices::for_admission(std::hint::black_box(&request), &outcome))
            });
        }
    }
    group.finish();
}

/// Stamps at 500 shares: a StatefulSet CREATE stamped for its user (identity and one HMAC), and
/// the pod the StatefulSet controller makes from it (the stamp verified, then the usual decision).
fn stamps(c: &mut Criterion) {
    use notebook_volumes::admission::request::workload_request;
    use notebook_volumes::admission::stamp::StampKey;
    use notebook_volumes::admission::workload::{WorkloadContext, review_workload};
    const STS: &str = "system:serviceaccount:kube-system:statefulset-controller";
    let text = policy_text(500).replacen(
        "kind: Settings\n",
        &format!("kind: Settings\ntrustedControllers: [\"{STS}\"]\n"),
        1,
    );
    let policy = PolicySnapshot::compile(&[Unit {
        name: "bench.yaml".into(),
        sources: vec![Source {
            origin: Origin::file("bench.yaml"),
            text,
        }],
    }]);
    let key = StampKey::new(&[9u8; 32]).expect("key");
    let ns = NamespaceInfo::new("team-7");
    let user = Requester {
        username: "user7".into(),
        groups: vec![],
    };
    let sts = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "nb-user7"},
        "spec": {"template": {"metadata": {"labels": {"notebook-name": "nb-user7"}},
                 "spec": {"containers": [{"name": "nb-user7", "image": "jupyter"}]}}}
    });
    let request = workload_request(&sts, "team-7", &user, false).expect("request");
    let wctx = WorkloadContext {
        policy: &policy,
        namespace: "team-7",
        stamp_key: Some(&key),
    };
    assert_eq!(review_workload(wctx, &request, None).user(), Some("user7"));
    let mut group = c.benchmark_group("stamps");
    group.bench_function("statefulset_create", |b| {
        b.iter(|| review_workload(wctx, std::hint::black_box(&request), None))
    });
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "nb-user7-0", "labels": {"notebook-name": "nb-user7"},
                     "annotations": {"nb-volumes.io/stamp": key.sign("team-7", "nb-user7", "user7")},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                                          "name": "nb-user7", "uid": "u", "controller": true}]},
        "spec": {"containers": [{"name": "nb-user7", "image": "jupyter"}]}
    }))
    .expect("pod");
    let controller = Requester {
        username: STS.into(),
        groups: vec![],
    };
    let claims: HashMap<(String, String), ClaimInfo> = HashMap::new();
    let request = pod_request(&pod, "team-7", &controller, false, false).expect("request");
    let ctx = Context {
        policy: &policy,
        namespace: &ns,
        claims: &claims,
        webhook_user: None,
        stamp_key: Some(&key),
    };
    assert_eq!(review(ctx, &request).user.as_deref(), Some("user7"));
    group.bench_function("stamped_pod_decision_and_patch", |b| {
        b.iter(|| review(ctx, std::hint::black_box(&request)))
    });
    group.finish();
}

/// The server's own work for one admission, without TLS and HTTP: the KubeSpawner fixture's body
/// decoded, decided with the example policies (served from files: no cluster), and the answer
/// encoded, as `POST /mutate` does it; next to the no-op baseline's own work on the same body
/// (parse as a `serde_json::Value`, read the uid, answer with a fixed patch). Their difference is
/// what the webhook adds to the no-op in `make load`, before the kernel and TLS costs that follow.
fn in_process(c: &mut Criterion) {
    use kube::core::admission::{AdmissionRequest, AdmissionResponse};
    use notebook_volumes::admission::NoClaims;
    use notebook_volumes::server::{app, wire};
    let root = env!("CARGO_MANIFEST_DIR");
    let body =
        std::fs::read(format!("{root}/tests/fixtures/kubespawner-alice.json")).expect("fixture");
    let loaded = notebook_volumes::files::load_policies_in(
        &[format!("{root}/examples/policies").into()],
        "notebook-volumes",
    )
    .expect("the example policies");
    let policy = PolicySnapshot::compile(&loaded.units);
    let request: AdmissionRequest<Pod> = app::decode(&body).expect("review");
    let ns = NamespaceInfo::new(request.namespace.as_deref().unwrap_or_default());
    let ctx = Context {
        policy: &policy,
        namespace: &ns,
        claims: &NoClaims,
        webhook_user: None,
        stamp_key: None,
    };
    assert!(
        !review(ctx, &request).patch.is_empty(),
        "the fixture gets a patch"
    );
    let mut group = c.benchmark_group("admission_in_process");
    group.bench_function("decode", |b| {
        b.iter(|| app::decode::<Pod>(std::hint::black_box(&body)).expect("review"))
    });
    group.bench_function("decision", |b| {
        b.iter(|| review(ctx, std::hint::black_box(&request)))
    });
    group.bench_function("decode_decide_encode", |b| {
        b.iter(|| {
            let request: AdmissionRequest<Pod> =
                app::decode(std::hint::black_box(&body)).expect("review");
            let outcome = review(ctx, &request);
            wire::encode(&outcome.response(AdmissionResponse::from(&request)))
        })
    });
    let noop_patch = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        r#"[{"op":"add","path":"/metadata/annotations/noop.notebook-volumes.io~1seen","value":"true"}]"#,
    );
    group.bench_function("noop", |b| {
        b.iter(|| {
            let review: serde_json::Value =
                serde_json::from_slice(std::hint::black_box(&body)).expect("json");
            let uid = review
                .pointer("/request/uid")
                .and_then(|u| u.as_str())
                .unwrap_or_default();
            serde_json::to_vec(&serde_json::json!({
                "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": {"uid": uid, "allowed": true, "patchType": "JSONPatch", "patch": noop_patch}
            }))
            .expect("answer")
        })
    });
    group.finish();
}

/// A policy change takes effect after a full compile: it must stay well under a second.
fn compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy_compile");
    group.sample_size(10);
    for shares in [500, 5_000] {
        let unit = Unit {
            name: "bench.yaml".into(),
            sources: vec![Source {
                origin: Origin::file("bench.yaml"),
                text: policy_text(shares),
            }],
        };
        group.bench_with_input(BenchmarkId::from_parameter(shares), &unit, |b, unit| {
            b.iter(|| PolicySnapshot::compile(std::slice::from_ref(unit)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench, stamps, in_process, compile);
criterion_main!(benches);
