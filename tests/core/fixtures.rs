//! Shared builders: the example policy set, pods from YAML, requests as the API server sends them.

use std::collections::HashMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::Pod;
use kube::core::admission::AdmissionResponse;
use notebook_volumes::admission::request::{Requester, pod_request};
use notebook_volumes::admission::{ClaimInfo, Context, Review, review};
use notebook_volumes::files::load_policies;
use notebook_volumes::policy::{NamespaceInfo, Origin, PolicySnapshot, Source, Unit};

pub const HUB: &str = "system:serviceaccount:jupyterhub:hub";
pub const STS: &str = "system:serviceaccount:kube-system:statefulset-controller";
pub const NS: &str = "ds-team";

pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

pub fn examples() -> PolicySnapshot {
    let loaded = load_policies(&[repo("examples/policies")]).expect("examples load");
    let snap = PolicySnapshot::compile(&loaded.units);
    assert!(
        snap.findings().next().is_none(),
        "{:?}",
        snap.findings().collect::<Vec<_>>()
    );
    snap
}

/// The examples with the StatefulSet controller trusted explicitly (the example Settings leave it
/// commented out, see docs/security.md), for ODH pods.
pub fn examples_trusting_statefulset_controller() -> PolicySnapshot {
    let loaded = load_policies(&[repo("examples/policies")]).expect("examples load");
    let units: Vec<Unit> = loaded
        .units
        .into_iter()
        .map(|mut u| {
            for s in &mut u.sources {
                s.text = trusting_statefulset_controller(&s.text);
            }
            u
        })
        .collect();
    let snap = PolicySnapshot::compile(&units);
    assert!(snap.settings().trusted_spawners.iter().any(|s| s == STS));
    snap
}

/// Uncomments the StatefulSet controller in the example Settings.
pub fn trusting_statefulset_controller(text: &str) -> String {
    text.replace(&format!("  # - {STS}"), &format!("  - {STS}"))
}

/// A snapshot from policy text, as one file.
pub fn policy(text: &str) -> PolicySnapshot {
    PolicySnapshot::compile(&[unit("policy.yaml", text)])
}

pub fn unit(name: &str, text: &str) -> Unit {
    Unit {
        name: name.to_string(),
        sources: vec![Source {
            origin: Origin::file(name),
            text: text.to_string(),
        }],
    }
}

pub fn example_pod(name: &str) -> Pod {
    let text =
        std::fs::read_to_string(repo(&format!("examples/pods/{name}.yaml"))).expect("pod file");
    serde_saphyr::from_str(&text).expect("pod parses")
}

pub fn pod(yaml: &str) -> Pod {
    serde_saphyr::from_str(yaml).expect("pod parses")
}

/// Everything one admission needs, with helpers to run it.
pub struct Case {
    pub policy: PolicySnapshot,
    pub ns: NamespaceInfo,
    pub claims: HashMap<(String, String), ClaimInfo>,
    pub requester: Requester,
    pub dry_run: bool,
}

impl Case {
    pub fn new(policy: PolicySnapshot, requester: &str) -> Self {
        Case {
            policy,
            ns: NamespaceInfo::new(NS),
            claims: HashMap::new(),
            requester: Requester {
                username: requester.into(),
                groups: vec![],
            },
            dry_run: false,
        }
    }

    pub fn groups(mut self, groups: &[&str]) -> Self {
        self.requester.groups = groups.iter().map(|g| g.to_string()).collect();
        self
    }

    pub fn claim(mut self, name: &str, home: bool, owner: Option<&str>) -> Self {
        self.claims.insert(
            (NS.into(), name.into()),
            ClaimInfo {
                home,
                owner: owner.map(str::to_string),
            },
        );
        self
    }

    pub fn review(&self, pod: &Pod) -> Review {
        self.review_op(pod, false)
    }

    pub fn review_op(&self, pod: &Pod, ephemeral: bool) -> Review {
        let req = pod_request(pod, &self.ns.name, &self.requester, self.dry_run, ephemeral)
            .expect("request");
        self.run(&req)
    }

    /// A pods UPDATE (or, with `ephemeral`, a `pods/ephemeralcontainers` UPDATE) from `old` to
    /// `new`, as the API server sends it.
    pub fn review_update(&self, old: &Pod, new: &Pod, ephemeral: bool) -> Review {
        let mut req = pod_request(new, &self.ns.name, &self.requester, self.dry_run, ephemeral)
            .expect("request");
        req.operation = kube::core::admission::Operation::Update;
        req.old_object = Some(old.clone());
        self.run(&req)
    }

    /// The wire answer to a pod CREATE, as the server sends it.
    pub fn respond(&self, pod: &Pod) -> AdmissionResponse {
        let req =
            pod_request(pod, &self.ns.name, &self.requester, self.dry_run, false).expect("request");
        self.run(&req).response(AdmissionResponse::from(&req))
    }

    fn run(&self, req: &kube::core::admission::AdmissionRequest<Pod>) -> Review {
        let ctx = Context {
            policy: &self.policy,
            namespace: &self.ns,
            claims: &self.claims,
            webhook_user: None,
        };
        review(ctx, req)
    }
}

/// The pod after the review's patch, as the API server would store it.
pub fn apply(pod: &Pod, outcome: &Review) -> Pod {
    let mut doc = serde_json::to_value(pod).expect("pod json");
    json_patch::patch(&mut doc, &outcome.patch).expect("patch applies");
    serde_json::from_value(doc).expect("patched pod is a Pod")
}

pub use nv_test_support::pod::{annotation, env_of, mounts as mounts_of, volume_read_only};
