//! Shared builders: the example policy set, pods from YAML, requests as the API server sends them.

use std::collections::HashMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::core::admission::AdmissionResponse;
use notebook_volumes::admission::request::{Requester, pod_request};
use notebook_volumes::admission::stamp::StampKey;
use notebook_volumes::admission::{ClaimInfo, Context, Review, review};
use notebook_volumes::files::load_policies;
use notebook_volumes::keys;
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

/// The key the core tests' webhook signs stamps with.
pub fn stamp_key() -> StampKey {
    StampKey::new(&[42u8; 32]).expect("key")
}

/// `pod` as the StatefulSet controller creates it from StatefulSet `owner`, whose template carries
/// the stamp the webhook wrote for `user`.
pub fn stamped(mut pod: Pod, owner: &str, user: &str) -> Pod {
    pod.metadata.owner_references = Some(vec![controller_ref("apps/v1", "StatefulSet", owner)]);
    pod.metadata.annotations.get_or_insert_default().insert(
        keys::STAMP_ANNOTATION.into(),
        stamp_key().sign(NS, owner, user),
    );
    pod
}

pub fn controller_ref(api_version: &str, kind: &str, name: &str) -> OwnerReference {
    OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: name.into(),
        uid: "00000000-0000-0000-0000-000000000001".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
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
    pub stamp_key: StampKey,
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
            stamp_key: stamp_key(),
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
                ..Default::default()
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
            stamp_key: Some(&self.stamp_key),
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
